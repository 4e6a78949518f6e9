"""Scheduler behaviour with small stages of our own (the real scheduler, real rings)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgemm.buffers import AudioRing
from edgemm.clock import StreamClock
from edgemm.events import EventBus
from edgemm.scheduler import Scheduler, SchedulerSettings
from edgemm.sources.audiofile import read_wav
from edgemm.sources.videofile import VideoFile


class Recorder:
    def __init__(
        self, name: str, lane: str | None = None, sleep: float = 0.0, fail_at: int = -1
    ) -> None:
        self.name = name
        if lane:
            self.lane = lane
        self.sleep = sleep
        self.starts: list[int] = []
        self.sums: list[int] = []
        self.fail_at = fail_at

    def process_audio(self, hop: np.ndarray, start: int, ctx) -> None:
        if len(self.starts) == self.fail_at:
            self.starts.append(start)
            raise RuntimeError("boom")
        self.starts.append(start)
        self.sums.append(int(hop.astype(np.int64).sum()))
        if self.sleep:
            time.sleep(self.sleep)
        if len(self.starts) % 10 == 0:
            ctx.emit("vad", "tick", start / 16000, (start + len(hop)) / 16000, source=self.name)


class FrameCounter:
    def __init__(self, name: str, max_fps: float, every_k: int) -> None:
        self.name, self.max_fps, self.every_k = name, max_fps, every_k
        self.ts: list[float] = []

    def process_frame(self, frame, ctx) -> None:
        self.ts.append(frame.t)


def _sched(stages, video=()) -> tuple[Scheduler, EventBus]:
    bus = EventBus(100_000)
    return Scheduler(SchedulerSettings(), bus, StreamClock(), stages, video), bus


def test_lane_stage_sees_exactly_the_same_hops_as_a_main_stage(beep_session: Path) -> None:
    audio = read_wav(beep_session / "audio.wav")
    main, lane = Recorder("main"), Recorder("lane", lane="speech", sleep=0.001)
    sched, bus = _sched([main, lane])
    sub = bus.subscribe("t")
    sched.run_fast(audio, None)
    assert main.starts == lane.starts == list(range(0, 6 * 16000 - 1279, 1280))
    assert main.sums == lane.sums
    ev = [e for e in sub.drain() if e.type == "vad"]
    # deterministic order: by input time, then stage order (main before lane)
    order = {"main": 0, "lane": 1}
    assert [(e.t_end, e.source) for e in ev] == sorted(
        ((e.t_end, e.source) for e in ev), key=lambda p: (p[0], order[p[1]])
    )
    assert [e.source for e in ev[:2]] == ["main", "lane"] and len(ev) == 14


def test_video_cadence_max_fps_and_every_k(beep_session: Path) -> None:
    every = FrameCounter("every", 1000, 1)
    half = FrameCounter("fps15", 15, 1)
    third = FrameCounter("k3", 1000, 3)
    sched, _ = _sched([], [every, half, third])
    sched.run_fast(None, VideoFile(beep_session / "video.avi"))
    assert len(every.ts) == 180
    assert len(half.ts) == 90
    assert len(third.ts) == 60 and third.ts[1] == 3 / 30


def test_a_failing_stage_reports_error_and_the_others_keep_running(beep_session: Path) -> None:
    audio = read_wav(beep_session / "audio.wav")
    bad, good = Recorder("bad", fail_at=5), Recorder("good")
    sched, bus = _sched([bad, good])
    sub = bus.subscribe("t")
    sched.run_fast(audio, None)
    errors = [e for e in sub.drain() if e.type == "error"]
    assert len(errors) == 1 and errors[0].label == "bad" and "boom" in errors[0].data["message"]
    assert len(good.starts) == len(bad.starts) == 75
    assert sched.counters.stage_errors == 1


def test_live_lane_that_falls_behind_loses_counted_audio_not_memory() -> None:
    sr = 16000
    ring = AudioRing(sr)  # 1 s
    slow = Recorder("slow", lane="speech", sleep=0.05)  # 50 ms work per 80 ms hop at 4x speed
    sched, bus = _sched([slow])
    sub = bus.subscribe("t")
    clock = sched.clock
    done = {"v": False}

    import threading

    def feed() -> None:  # 4 s of audio at 4x real time
        blk = np.ones(320, np.int16)
        for _ in range(200):
            ring.write(blk)
            clock.anchor(ring.write_index, time.monotonic())
            time.sleep(320 / sr / 4)
        done["v"] = True

    t = threading.Thread(target=feed)
    t.start()
    sched.run_live(ring, None, finished=lambda: done["v"])
    t.join()
    lane = sched.lanes["speech"]
    assert lane.overruns >= 1 and lane.lost_samples > 0
    processed = len(slow.starts) * 1280
    assert processed + lane.lost_samples <= 200 * 320
    assert any(
        e.type == "error" and e.label == "speech" and "behind" in e.data["message"]
        for e in sub.drain()
    )


class Flaky:
    """Fails on every hop inside [fail_from, fail_to) stream seconds; counts resets."""

    def __init__(self, fail_from: float, fail_to: float) -> None:
        self.name = "flaky"
        self.fail_from, self.fail_to = fail_from, fail_to
        self.resets = 0
        self.ran: list[float] = []

    def reset(self) -> None:
        self.resets += 1

    def process_audio(self, hop: np.ndarray, start: int, ctx) -> None:
        t = start / 16000
        self.ran.append(t)
        if self.fail_from <= t < self.fail_to:
            raise ValueError(f"bad hop at {t:.2f}")


def test_a_stage_that_keeps_failing_is_paused_with_backoff_and_restarted() -> None:
    audio = np.zeros(16000 * 30, np.int16)
    flaky, good = Flaky(1.0, 2.0), Recorder("good")
    bus = EventBus(100_000)
    settings = SchedulerSettings(max_failures=5, failure_window_s=30, min_backoff_s=5.0)
    sched = Scheduler(settings, bus, StreamClock(), [flaky, good])
    sub = bus.subscribe("t")
    sched.run_fast(audio, None)
    ev = sub.drain()
    errors = [e for e in ev if e.type == "error" and e.label == "flaky"]
    # first failure reported, then the fifth pauses the stage for 5 s
    assert len(errors) == 2 and "paused for 5 s" in errors[1].data["message"]
    paused_at = errors[1].t_start
    restarted = [e for e in ev if e.type == "status" and e.label == "stage"]
    assert len(restarted) == 1 and restarted[0].t_start >= paused_at + 5.0
    assert not [t for t in flaky.ran if paused_at < t < paused_at + 4.9]
    assert flaky.resets == 4 + 1  # after each of the first four failures, and on resume
    assert len(good.starts) == len(range(0, 30 * 16000 - 1279, 1280))  # the others kept running


class Stuck:
    name = "stuck"

    def process_audio(self, hop: np.ndarray, start: int, ctx) -> None:
        if start == 1280 * 3:
            time.sleep(1.2)


def test_watchdog_reports_a_stuck_stage() -> None:
    bus = EventBus()
    sched = Scheduler(SchedulerSettings(stuck_after_s=0.4), bus, StreamClock(), [Stuck()])
    sub = bus.subscribe("t")
    sched.run_fast(np.zeros(16000, np.int16), None)
    stuck = [e for e in sub.drain() if e.type == "error" and e.label == "stuck"]
    assert len(stuck) == 1 and "stuck for" in stuck[0].data["message"]
    assert sched.counters.stage_stuck == 1
