"""Speech-to-text with the real Korean Vosk model on espeak-ng speech, through the scheduler."""

from __future__ import annotations

import logging
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from edgemm.buffers import AudioRing
from edgemm.clock import StreamClock
from edgemm.config import load_config
from edgemm.errors import ModelError
from edgemm.events import Event, EventBus
from edgemm.pipeline import Pipeline, build_stages
from edgemm.scheduler import Scheduler, SchedulerSettings
from edgemm.sources.audiofile import read_wav
from edgemm.speech import (
    StreamRecognizer,
    check_grammar,
    grammar_json,
    recognizer_factory,
    unk_token,
)
from edgemm.stages.builtin import EnergyGate
from edgemm.stages.speech import SpeechStage, build_speech_stage
from edgemm.text import window_scores

PHRASES = ["안녕하세요", "오늘 날씨 어때 요", "불 을 켜 주세요"]
INTENTS = {
    "greeting": {"examples": ["안녕하세요"]},
    "weather": {"examples": ["오늘 날씨 어때요"]},
    "lights_on": {"examples": ["불 켜 줘"]},
}
TOL = 0.3


def _have_korean_model() -> bool:
    try:
        from edgemm.models import model_path

        model_path("vosk_ko", verify=False)
        import vosk  # noqa: F401
    except (ModelError, ImportError):
        return False
    return True


needs_model = pytest.mark.skipif(
    not _have_korean_model(),
    reason="needs vosk and the vosk_ko model (edgemm models install vosk_ko)",
)


@pytest.fixture(scope="session")
def ko_model() -> Any:
    """The Korean Vosk model, loaded once per test session (a few seconds, ~500 MB)."""
    from edgemm.speech import load_model

    return load_model("vosk_ko")


@pytest.fixture(scope="session")
def ko_session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, Any]]]:
    """14 s of quiet noise with the three Korean phrases at known offsets."""
    from make_session import make_session

    out = tmp_path_factory.mktemp("ko")
    spec = {
        "duration": 14.0,
        "seed": 5,
        "noise_db": -60,
        "audio": [
            {"t": 2.0, "say": PHRASES[0], "voice": "ko"},
            {"t": 6.3, "say": PHRASES[1], "voice": "ko"},
            {"t": 10.1, "say": PHRASES[2], "voice": "ko"},
        ],
    }
    labels = make_session(spec, out)
    return out / "audio.wav", labels["audio"]


def _cfg(**stt: Any) -> Any:
    return load_config(
        {
            "video": {"enabled": False},
            "stt": {"enabled": True, "mode": "grammar", "phrases": PHRASES, **stt},
            "intents": {"define": INTENTS},
        }
    )


def _run_fast(stages: list[Any], audio: np.ndarray) -> tuple[list[Event], Scheduler]:
    bus = EventBus(100_000)
    sched = Scheduler(SchedulerSettings(), bus, StreamClock(), stages)
    sub = bus.subscribe("t")
    sched.run_fast(audio, None)
    return sub.drain(), sched


def _finals(events: list[Event]) -> list[Event]:
    return [e for e in events if e.type == "speech" and e.label == "final"]


def _check_clip(final: Event, clip: dict[str, Any]) -> None:
    assert final.data["text"] == clip["say"]
    lo, hi = clip["t_start"] - TOL, clip["t_end"] + TOL
    words = final.data["words"]
    assert [w["word"] for w in words] == clip["say"].split()
    for w in words:
        assert lo <= w["start"] < w["end"] <= hi, (w, clip)
    assert final.t_start == pytest.approx(words[0]["start"], abs=1e-3)
    assert final.t_end == pytest.approx(words[-1]["end"], abs=1e-3)


@needs_model
@pytest.mark.slow
@pytest.mark.parametrize("gate", ["auto", "off"])
def test_grammar_replay_recognizes_phrases_on_the_stream_clock(
    ko_model: Any, ko_session: tuple[Path, list[dict[str, Any]]], gate: str
) -> None:
    wav, clips = ko_session
    stage = build_speech_stage(_cfg(gate=gate), model=ko_model)
    assert isinstance(stage, SpeechStage) and stage.lane == "speech"
    events, sched = _run_fast([EnergyGate(), stage], read_wav(wav))
    finals = _finals(events)
    # the first two clips come back as themselves, at their true place in the replay
    for clip in clips[:2]:
        hits = [f for f in finals if clip["t_start"] - 1 < f.t_start < clip["t_end"] + 1]
        assert len(hits) == 1, [(f.data["text"], f.t_start) for f in finals]
        _check_clip(hits[0], clip)
    # nothing is heard in the silence before the first clip or between the clips
    for f in finals:
        assert any(c["t_start"] - TOL <= f.t_start <= c["t_end"] + TOL for c in clips), f
    # partials come before their final and change text each time
    partials = [e for e in events if e.type == "speech" and e.label == "partial"]
    assert partials and all(p.data["text"] for p in partials)
    # intents from the finals, with the score vector in the feature store for fusion
    intents = [(e.label, round(e.t_start, 2)) for e in events if e.type == "intent"]
    assert ("greeting", round(finals[0].t_start, 2)) in intents
    assert any(label == "weather" for label, _ in intents)
    end2 = next(f for f in finals if f.data["text"] == PHRASES[1]).t_end
    w = window_scores(sched.features, type("W", (), {"t_end": end2 + 0.5})(), 3.0)
    assert max(w, key=w.get) == "weather"
    later = window_scores(sched.features, type("W", (), {"t_end": end2 + 2.0})(), 3.0)
    assert later["weather"] == pytest.approx(w["weather"] * np.exp(-0.5), rel=1e-6)
    if gate == "auto":
        # silence was never fed to the recognizer (gated off), only speech plus pre-roll
        assert stage.stats.hops_gated > stage.stats.hops_fed
        assert stage.stats.utterances == 3
    else:
        assert stage.stats.hops_gated == 0


@needs_model
@pytest.mark.slow
def test_recognizer_maps_words_onto_the_stream_clock_across_gaps_and_resets(
    ko_model: Any, ko_session: tuple[Path, list[dict[str, Any]]]
) -> None:
    wav, clips = ko_session
    audio = read_wav(wav)
    sr, hop = 16000, 1280
    kept, missing = check_grammar(ko_model, PHRASES)
    assert kept == PHRASES and missing == []
    rec = StreamRecognizer(
        recognizer_factory(ko_model, sr, grammar_json(kept, unk_token(ko_model)))(), sr
    )
    offsets = [100 * sr, 1000 * sr]  # the same two clips, pretended to sit much later
    for clip, offset in zip(clips[:2], offsets, strict=True):
        a = int(clip["t_start"] * sr) // hop * hop - 4 * hop
        b = int(clip["t_end"] * sr) // hop * hop + 8 * hop
        for s in range(a, b, hop):
            assert rec.feed(audio[s : s + hop], offset + s) is None or True
        tr = rec.finish()
        assert tr is not None and tr.text == clip["say"]
        for w in tr.words:
            assert (
                offset / sr + clip["t_start"] - TOL
                <= w.start
                < w.end
                <= (offset / sr + clip["t_end"] + TOL)
            )
    assert len(rec._rec_marks) == 1  # breakpoints are pruned after each utterance


@needs_model
@pytest.mark.slow
def test_free_mode_hears_no_text_in_noise(ko_model: Any, tmp_path: Path) -> None:
    from make_session import make_session

    make_session({"duration": 8.0, "seed": 9, "noise_db": -40, "audio": []}, tmp_path)
    audio = read_wav(tmp_path / "audio.wav")
    # ungated: every hop reaches the recognizer, and no transcript comes out (a one-syllable
    # partial hypothesis may flicker while the decoder adapts; it never becomes final)
    ungated = build_speech_stage(
        load_config({"video": {"enabled": False}, "stt": {"enabled": True, "gate": "off"}}),
        model=ko_model,
    )
    assert ungated is not None
    events, _ = _run_fast([ungated], audio)
    assert ungated.stats.hops_fed == 8 * 16000 // 1280
    assert _finals(events) == [] and ungated.stats.finals == 0
    # gated (the default): noise below stt.gate_on_db never reaches the recognizer
    make_session({"duration": 8.0, "seed": 9, "noise_db": -50, "audio": []}, tmp_path)
    gated = build_speech_stage(
        load_config({"video": {"enabled": False}, "stt": {"enabled": True}}), model=ko_model
    )
    assert gated is not None
    events, _ = _run_fast([EnergyGate(), gated], read_wav(tmp_path / "audio.wav"))
    assert gated.stats.hops_fed == 0 and [e for e in events if e.type == "speech"] == []


@needs_model
@pytest.mark.slow
def test_pipeline_from_config_reports_unknown_grammar_words(
    ko_session: tuple[Path, list[dict[str, Any]]], caplog: pytest.LogCaptureFixture
) -> None:
    wav, clips = ko_session
    cfg = {
        "video": {"enabled": False},
        "stt": {
            "enabled": True,
            "model": "vosk_ko",
            "mode": "grammar",
            "phrases": [*PHRASES, "없는말 날씨"],
        },
        "intents": {"define": INTENTS},
    }
    with caplog.at_level(logging.INFO, logger="edgemm"):
        p = Pipeline(cfg, audio_file=wav, stdout=False)
    lines = [r.getMessage() for r in caplog.records if "vocabulary" in r.getMessage()]
    assert len(lines) == 1 and "'없는말'" in lines[0] and "날씨" not in lines[0]
    sub = p.bus.subscribe("t")
    p.run()
    events = sub.drain()
    assert not [e for e in events if e.type == "error"]
    finals = _finals(events)
    _check_clip(next(f for f in finals if f.data["text"] == PHRASES[0]), clips[0])
    assert {e.label for e in events if e.type == "intent"} >= {"greeting", "weather"}


class SlowRecognizer:
    """The real recognizer, made slower than real time (fault injection)."""

    def __init__(self, rec: Any, delay: float) -> None:
        self.rec, self.delay, self.calls = rec, delay, 0

    def AcceptWaveform(self, data: bytes) -> bool:  # noqa: N802
        self.calls += 1
        time.sleep(self.delay)
        return self.rec.AcceptWaveform(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.rec, name)


@needs_model
@pytest.mark.slow
def test_live_backlog_skips_silence_reports_lag_and_stays_bounded(
    ko_model: Any, ko_session: tuple[Path, list[dict[str, Any]]]
) -> None:
    wav, _ = ko_session
    audio = np.tile(read_wav(wav), 3)  # 42 s, nine utterances
    sr, speed = 16000, 8.0  # fed at 8x real time: 10 ms per 80 ms hop
    cfg = _cfg(gate="off", max_backlog_s=1.0, report_interval_s=2.0)
    slow: list[SlowRecognizer] = []

    def wrap(factory: Any) -> Any:
        def make() -> SlowRecognizer:
            slow.append(SlowRecognizer(factory(), 0.03))  # 30 ms per hop: 3x too slow
            return slow[-1]

        return make

    stage = build_speech_stage(cfg, model=ko_model, wrap=wrap)
    assert stage is not None
    ring = AudioRing(4 * sr)
    bus = EventBus(100_000)
    clock = StreamClock()
    sched = Scheduler(SchedulerSettings(), bus, clock, [EnergyGate(), stage])
    sub = bus.subscribe("t")
    done = threading.Event()

    def feed() -> None:
        blk = 320
        for i in range(0, len(audio) - blk + 1, blk):
            ring.write(audio[i : i + blk])
            clock.anchor(ring.write_index, time.monotonic())
            time.sleep(blk / sr / speed)
        done.set()

    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    t = threading.Thread(target=feed)
    t.start()
    sched.run_live(ring, None, finished=done.is_set)
    t.join()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    events = sub.drain()
    errs = [e for e in events if e.type == "error" and e.label == "stt"]
    assert errs and all("behind" in e.data["message"] for e in errs)
    assert all(e.data["lag_s"] > 1.0 for e in errs)
    st = stage.stats
    assert st.hops_skipped_backlog > 0 and st.max_lag_s > 1.0
    # every hop the lane saw was either fed or skipped as non-speech; none queued up anywhere
    lane = sched.lanes["speech"]
    seen = st.hops_fed + st.hops_skipped_backlog
    assert seen * 1280 + lane.lost_samples <= len(audio)
    assert slow[0].calls == st.hops_fed
    # memory: the traced growth stays far below the audio that went through (1.3 MB)
    assert peak - base < audio.nbytes // 2, (peak - base, audio.nbytes)
    assert any(e.type == "status" and e.label == "stt" for e in events)  # caught up again


def test_no_model_means_stt_off_and_a_missing_model_names_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = load_config({"stt": {"enabled": True}})
    with caplog.at_level(logging.INFO, logger="edgemm"):
        assert build_speech_stage(cfg) is None
        audio, _, _ = build_stages(cfg)
    assert not any(isinstance(s, SpeechStage) for s in audio)
    off = [r.getMessage() for r in caplog.records if r.getMessage().startswith("STT off")]
    assert off and "stt.model" in off[0]
    with pytest.raises(ModelError, match="not found") as ei:
        build_speech_stage(load_config({"stt": {"enabled": True, "model": str(tmp_path / "nope")}}))
    assert "stt.model" in str(ei.value)
    monkeypatch.setenv("EDGEMM_MODELS", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelError, match="edgemm models install vosk_ko"):
        build_speech_stage(load_config({"stt": {"enabled": True, "model": "vosk_ko"}}))
    for profile in ("default", "laptop", "pi"):  # general profiles keep STT off
        assert build_speech_stage(load_config(profile)) is None


@needs_model
@pytest.mark.slow
def test_kiosk_grammar_words_are_all_in_the_korean_vocabulary(ko_model: Any) -> None:
    from edgemm.text import IntentMatcher

    cfg = load_config("kiosk")
    assert cfg.stt.enabled and cfg.stt.mode == "grammar"
    kept, missing = check_grammar(ko_model, cfg.stt.phrases)
    assert missing == [] and kept == cfg.stt.phrases
    matcher = IntentMatcher.from_config(cfg.intents.define, cfg.intents.threshold)
    for phrase in cfg.stt.phrases:  # every phrase the kiosk can hear maps to an intent
        assert matcher.match(phrase) is not None, phrase
