"""End-to-end replays of generated files through the real pipeline (built-in stages)."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from edgemm import Pipeline, load_config
from edgemm.errors import SourceError
from edgemm.events import Event
from edgemm.sources.audiofile import read_wav, write_wav


def _replay(session: Path, realtime: bool = False, **kw) -> list[Event]:
    cfg = load_config({})  # built-in stages only (the dataclass defaults)
    with Pipeline(
        cfg,
        audio_file=session / "audio.wav",
        video_file=session / "video.avi",
        realtime=realtime,
        stdout=False,
        **kw,
    ) as p:
        return list(p.events())


def _onsets(events: list[Event]) -> tuple[Event, Event]:
    audio = next(e for e in events if e.type == "vad" and e.label == "speech_start")
    video = next(e for e in events if e.type == "brightness" and e.label == "bright")
    return audio, video


def _overlap(a: Event, b: Event) -> bool:
    return a.t_start < b.t_end and b.t_start < a.t_end


def test_fast_replay_beep_and_white_frame_land_in_overlapping_windows(beep_session: Path) -> None:
    events = _replay(beep_session)
    audio, video = _onsets(events)
    assert abs(audio.t_start - 2.0) < 0.09, audio
    assert abs(video.t_end - 2.0) < 0.07, video
    assert _overlap(audio, video)
    assert [e.label for e in events if e.type == "vad"] == ["speech_start", "speech_end"]
    end = next(e for e in events if e.label == "speech_end")
    assert abs(end.t_end - 5.0) < 0.1
    status = [e for e in events if e.type == "status"]
    assert status and status[-1].data["counters"]["frames_in"] == 180
    assert status[-1].data["counters"]["audio_hops"] == 75


@pytest.mark.slow
def test_realtime_replay_gives_the_same_onsets(beep_session: Path) -> None:
    events = _replay(beep_session, realtime=True)
    audio, video = _onsets(events)
    assert abs(audio.t_start - 2.0) < 0.09
    assert abs(video.t_end - 2.0) < 0.1
    assert _overlap(audio, video)
    for e in (audio, video):
        assert 0 <= e.latency_ms < 1000
        assert e.t_emit >= e.t_end - 0.05  # published after its input existed


def _strip(events: list[Event]) -> list[dict]:
    out = []
    for e in events:
        if e.type == "status":
            continue
        d = e.to_dict()
        d.pop("t_emit"), d.pop("latency_ms"), d.pop("seq")
        out.append(d)
    return out


def test_fast_replay_is_deterministic(beep_session: Path, tmp_path: Path) -> None:
    a = _replay(beep_session)
    b = _replay(beep_session)
    assert _strip(a) == _strip(b) and len(_strip(a)) >= 4


def test_jsonl_out_has_every_event_flushed(beep_session: Path, tmp_path: Path) -> None:
    out = tmp_path / "ev.jsonl"
    events = _replay(beep_session, out=out)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [d["seq"] for d in lines] == [e.seq for e in events]
    assert (out.stat().st_mode & 0o777) == 0o600


def test_audio_only_and_video_only_replays(beep_session: Path) -> None:
    cfg = load_config({})  # built-in stages only (the dataclass defaults)
    with Pipeline(cfg, audio_file=beep_session / "audio.wav", stdout=False) as p:
        ev = list(p.events())
    assert any(e.type == "vad" for e in ev) and not any(e.type == "brightness" for e in ev)
    with Pipeline(cfg, video_file=beep_session / "video.avi", stdout=False) as p:
        ev = list(p.events())
    assert any(e.type == "brightness" for e in ev) and not any(e.type == "vad" for e in ev)


def test_stereo_44k_wav_is_converted(tmp_path: Path) -> None:
    sr = 44100
    t = np.arange(sr * 2) / sr
    tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    p = tmp_path / "st.wav"
    with wave.open(str(p), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(np.stack([tone, tone], axis=1).tobytes())
    x = read_wav(p)
    assert abs(len(x) - 32000) <= 1
    spec = np.abs(np.fft.rfft(x.astype(float)))
    assert abs(np.argmax(spec) * 16000 / len(x) - 440) < 2
    assert 7000 < np.abs(x).max() < 8500


@pytest.mark.parametrize("content", [b"", b"RIFF\x00\x00", b"not a wav at all" * 10])
def test_broken_wav_files_are_refused_with_a_fix(tmp_path: Path, content: bytes) -> None:
    p = tmp_path / "bad.wav"
    p.write_bytes(content)
    with pytest.raises(SourceError) as ei:
        read_wav(p)
    assert "bad.wav" in str(ei.value)


def test_truncated_wav_keeps_what_is_there(tmp_path: Path) -> None:
    p = tmp_path / "t.wav"
    write_wav(p, np.ones(16000, np.int16) * 100)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    x = read_wav(p)
    assert 7000 < len(x) < 9000


def test_corrupt_and_empty_video_are_refused(tmp_path: Path) -> None:
    from edgemm.sources.videofile import VideoFile

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x13" * 5000)
    with pytest.raises(SourceError, match="cannot be decoded"):
        VideoFile(bad)
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    with pytest.raises(SourceError):
        VideoFile(empty)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "edgemm.cli", *args], capture_output=True, text=True, timeout=300
    )


def test_cli_replay_and_errors(beep_session: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli.jsonl"
    core = tmp_path / "core.yaml"
    core.write_text(
        "stages:\n  energy_gate: {enabled: true}\n  brightness: {enabled: true}\n"
        "  vad: {enabled: false}\n  wakeword: {enabled: false}\n  face: {enabled: false}\n"
    )
    r = _cli(
        "replay",
        "--config",
        str(core),
        "--audio",
        str(beep_session / "audio.wav"),
        "--video",
        str(beep_session / "video.avi"),
        "--fast",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    assert "speech_start" in r.stdout
    assert any(json.loads(x)["type"] == "brightness" for x in out.read_text().splitlines())
    r = _cli("replay", "--audio", str(tmp_path / "missing.wav"))
    assert r.returncode == 2 and "missing.wav not found" in r.stderr and "Traceback" not in r.stderr
    r = _cli("replay")
    assert r.returncode != 0 and "--audio" in r.stderr
    r = _cli(
        "replay",
        "--audio",
        str(beep_session / "audio.wav"),
        "--config",
        str(tmp_path / "nope.yaml"),
    )
    assert r.returncode == 2 and "not found" in r.stderr
    r = _cli("frobnicate")
    assert r.returncode == 2


def test_non_utf8_path_is_handled(tmp_path: Path, beep_session: Path) -> None:
    odd = Path(str(tmp_path).encode().decode() + "/caf\udce9.wav")
    try:
        odd.write_bytes((beep_session / "audio.wav").read_bytes())
    except (UnicodeEncodeError, OSError):
        pytest.skip("filesystem refuses undecodable names")
    x = read_wav(odd)
    assert len(x) == 6 * 16000
