"""The Python API: build from a dict, iterate, subscribe, start/stop, context manager."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from edgemm import Event, Pipeline, load_config

ROOT = Path(__file__).resolve().parent.parent
QUIET = {"sinks": {"stdout": {"enabled": False}}}


def _files(session: Path) -> dict[str, Path]:
    return {"audio_file": session / "audio.wav", "video_file": session / "video.avi"}


def test_build_from_a_dict_and_iterate(beep_session: Path) -> None:
    p = Pipeline({**QUIET, "stages": {"energy_gate": {"on_db": -30.0}}}, **_files(beep_session))
    assert p.cfg.stages.energy_gate.on_db == -30.0
    events = [e for e in p.events()]  # starts the pipeline; ends with the replay
    assert p.wait(10) and p.error is None
    assert all(isinstance(e, Event) for e in events)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    start = next(e for e in events if e.type == "vad" and e.label == "speech_start")
    assert abs(start.t_start - 2.0) < 0.09
    p.stop()


def test_types_filter_and_subscribe_callback_see_the_same_stream(beep_session: Path) -> None:
    seen: list[Event] = []
    with Pipeline(load_config(QUIET), **_files(beep_session)) as p:
        p.subscribe(seen.append)
        vad = list(p.events(types=["vad"]))
    assert [e.label for e in vad] == ["speech_start", "speech_end"]
    assert [e.seq for e in seen if e.type == "vad"] == [e.seq for e in vad]
    assert {"status", "brightness", "vad"} <= {e.type for e in seen}


def test_start_returns_at_once_and_stop_ends_a_realtime_replay(beep_session: Path) -> None:
    p = Pipeline(QUIET, realtime=True, **_files(beep_session))
    got: list[Event] = []
    first = threading.Event()

    def on_event(e: Event) -> None:
        got.append(e)
        first.set()

    p.subscribe(on_event)
    p.start()
    assert not p.wait(0.05)  # 6 s of replay paced to the wall clock is running
    assert first.wait(10)
    p.stop()
    assert p.wait(10)
    assert got and got[-1].t_end < 5.9  # stopped before the end of the session


def test_context_manager_stops_on_exit(beep_session: Path) -> None:
    with Pipeline(QUIET, realtime=True, **_files(beep_session)) as p:
        p.start()
    assert p.wait(10)


def test_api_example_runs_against_the_bundled_demo() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "api_example.py"), "--max-events", "5"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    if out.returncode != 0 and "ModelError" in out.stderr:
        pytest.skip(
            out.stderr.strip().splitlines()[-1]
        )  # a model of the default profile is missing
    assert out.returncode == 0, out.stderr
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("event ")]
    assert len(lines) == 5
    assert "callback saw" in out.stdout
