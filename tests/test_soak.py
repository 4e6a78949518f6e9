"""Soak: 30 minutes of stream (the demo session looped) in --fast replay through real encoders.

Asserts what a kiosk running for weeks needs: bounded queues, no growth of threads or file
descriptors, RSS flat after warm-up, and the same recognitions in the last loop as in the first.
"""

from __future__ import annotations

import pytest

from edgemm import Pipeline, load_config
from edgemm.demo import demo_files
from edgemm.events import Event

LOOPS = 90  # x 20 s = 30 min of stream


@pytest.mark.slow
def test_thirty_minutes_of_stream_stay_bounded() -> None:
    audio, video = demo_files()
    cfg = load_config(
        {
            "status": {"interval_s": 60.0},
            "bus": {"queue_size": 500},
            "stages": {
                "energy_gate": {"enabled": True},
                "brightness": {"enabled": True},
                "wakeword": {"enabled": True},
                "face": {"enabled": True, "max_fps": 2, "mesh": False},
            },
        }
    )
    p = Pipeline(cfg, audio_file=audio, video_file=video, loops=LOOPS, stdout=False)
    kept: list[Event] = []
    max_backlog = 0

    def on_event(ev: Event) -> None:
        nonlocal max_backlog
        if ev.type != "vad" and ev.type != "brightness":
            kept.append(ev)
        max_backlog = max(max_backlog, max(len(s) for s in p.bus.subscriptions()))

    p.subscribe(on_event)
    p.run()
    status = [e for e in kept if e.type == "status" and e.label == "health"]
    assert len(status) >= 29
    assert max_backlog <= 500
    running = [e for e in status[1:] if e.t_end < 20 * LOOPS - 1]  # not the ones after shutdown
    threads = {e.data["threads"] for e in running}
    fds = {e.data["fds"] for e in running}
    assert len(threads) == 1, threads
    assert len(fds) == 1, fds
    rss = [e.data["rss_mb"] for e in status]
    warm = rss[5]
    assert max(rss[5:]) - warm < 8.0, rss  # MB over 25 minutes after warm-up
    wakes = [e for e in kept if e.type == "wake_word"]
    assert len(wakes) == 2 * LOOPS

    # the last loop recognises exactly what the second did (both follow a loop), shifted
    def loop(k: int) -> list[tuple[str, str, float]]:
        t0 = 20.0 * k
        return [
            (e.type, e.label, round(e.t_start - t0, 1))
            for e in kept
            if e.type in ("wake_word", "presence") and t0 <= e.t_start < t0 + 20.0
        ]

    first, last = loop(1), loop(LOOPS - 1)
    assert len(first) >= 4 and [x[:2] for x in first] == [x[:2] for x in last]
    assert p.bus.dropped == 0
    assert p.scheduler.counters.stage_errors == 0
