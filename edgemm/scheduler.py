"""The window scheduler: runs stages at their cadences on the stream clock.

Two drive modes share the stages and the accounting:

* :meth:`Scheduler.run_live` — rings filled by capture threads (camera, microphone, or a
  ``--realtime`` replay). Audio hops are processed in order and never skipped (a ring overrun is
  counted and reported); the vision thread takes the newest frame and counts what it skipped;
  windows older than ``max_lag_s`` are skipped and counted. Events are published at once.
* :meth:`Scheduler.run_fast` — files pulled with no pacing and no drops. Audio runs in the calling
  thread, vision in its own thread (up to one window ahead); at the end of each window both are
  joined and the window's events are published sorted by (input time, stage order, emission
  order), so the same inputs and config give the same events.

Audio stages that set ``lane = "<name>"`` (e.g. the Vosk speech worker) run in a worker thread
of their own, reading hops from the scheduler's :class:`AudioRing` by absolute sample index. In
live mode a lane that falls behind sees ``ctx.lag_s`` grow and may skip cheap (non-speech) hops;
if it falls further behind than the ring holds, the lost audio is counted and reported. In fast
mode lanes are joined at every window like the vision thread.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import psutil

from .buffers import AudioRing, FrameRing, Overwritten
from .clock import StreamClock
from .events import Event, EventBus
from .sources.videofile import VideoFile
from .stages.base import AudioStage, FeatureStore, Frame, VideoStage, Window, WindowStage

log = logging.getLogger(__name__)


@dataclass
class Counters:
    audio_hops: int = 0
    audio_overruns: int = 0
    audio_lost_samples: int = 0
    frames_in: int = 0
    frames_processed: int = 0
    frames_skipped: int = 0
    windows: int = 0
    windows_skipped: int = 0
    stage_errors: int = 0
    stage_restarts: int = 0
    stage_skips: int = 0
    stage_stuck: int = 0
    video_lost: int = 0
    stage_runs: dict[str, int] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)  # thread CPU seconds


@dataclass(frozen=True)
class SchedulerSettings:
    sample_rate: int = 16000
    hop_samples: int = 1280
    window_s: float = 1.0
    window_hop_s: float = 0.5
    video_lateness_s: float = 0.15
    max_lag_s: float = 1.0
    status_interval_s: float = 1.0
    error_report_interval_s: float = 5.0
    max_failures: int = 5  # within failure_window_s → the stage is paused
    failure_window_s: float = 30.0
    min_backoff_s: float = 5.0
    max_backoff_s: float = 300.0
    stuck_after_s: float = 10.0
    video_lost_s: float = 2.0  # live: no frame for this long → video stages are told


class _StageCtx:
    """The context handed to one stage; knows the stage's order and current input time."""

    def __init__(self, sched: Scheduler, name: str, order: int) -> None:
        self._sched = sched
        self.name = name
        self.order = order
        self.sample_rate = sched.settings.sample_rate
        self.hop_samples = sched.settings.hop_samples
        self.features = sched.features
        self.lag_s = 0.0  # lanes: how far this stage is behind the audio clock
        self.fast = False  # True in --fast replay: never skip input, no wall-clock pacing
        self.busy_since = 0.0  # monotonic time the current call started (0: idle)
        self.failures: deque[float] = deque()
        self.paused_until = -math.inf
        self.backoff_s = sched.settings.min_backoff_s
        self.cursor = 0.0  # stream time of the newest input handed to the stage
        self.input_wall = 0.0  # wall time when that input arrived
        self._n = 0

    def emit(
        self,
        type: str,
        label: str,
        t_start: float,
        t_end: float,
        score: float = 1.0,
        data: dict[str, Any] | None = None,
        source: str | None = None,
    ) -> None:
        ev = Event(
            type=type,
            label=label,
            t_start=t_start,
            t_end=t_end,
            score=float(score),
            source=source or self.name,
            data=data or {},
        )
        self._n += 1
        self._sched._emit(self, ev, self._n)


class _Lane:
    """A worker thread running some audio stages from the scheduler's ring, in hop order."""

    def __init__(self, name: str, sched: Scheduler) -> None:
        self.name = name
        self.sched = sched
        self.stages: list[Any] = []
        self.next = 0  # absolute index of the next sample to process
        self.cond = threading.Condition()
        self.thread: threading.Thread | None = None
        self._closing = False
        self.overruns = 0
        self.lost_samples = 0

    def notify(self) -> None:
        with self.cond:
            self.cond.notify_all()

    def start(self, start_index: int) -> None:
        self.next = start_index
        self._closing = False
        self.thread = threading.Thread(target=self._run, name=f"lane-{self.name}", daemon=True)
        self.thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Process what has been written so far, then end the thread."""
        with self.cond:
            self._closing = True
            self.cond.notify_all()
        if self.thread is not None:
            self.thread.join(timeout)

    def wait_until(self, index: int) -> None:
        with self.cond:
            while (
                self.next + self.sched.settings.hop_samples <= index
                and self.thread
                and self.thread.is_alive()
            ):
                self.cond.wait(0.1)

    def _run(self) -> None:
        s = self.sched
        hop, sr = s.settings.hop_samples, s.settings.sample_rate
        buf = np.empty(hop, dtype=np.int16)
        while True:
            with self.cond:
                while not self._closing and s._audio_index - self.next < hop:
                    self.cond.wait(0.1)
                if s._audio_index - self.next < hop:
                    return
            ring = s.ring
            assert ring is not None
            try:
                ring.read(self.next, self.next + hop, out=buf)
            except Overwritten as exc:
                skip_to = exc.oldest + (-(exc.oldest - self.next)) % hop
                self.overruns += 1
                self.lost_samples += skip_to - self.next
                s.report(
                    "error",
                    self.name,
                    {
                        "message": f"{self.name} fell {(skip_to - self.next) / sr:.1f} s "
                        "behind and skipped that audio",
                        "lost_samples": self.lost_samples,
                    },
                )
                self.next = skip_to
                continue
            end_t = (self.next + hop) / sr
            lag = 0.0 if s._fast else (s._audio_index - self.next - hop) / sr
            for st in self.stages:
                ctx = s._ctx[id(st)]
                ctx.cursor = end_t
                ctx.lag_s = lag
                ctx.input_wall = time.monotonic() if s._fast else s.clock.to_wall(end_t)
                s._call(st, ctx, st.process_audio, buf, self.next, ctx)
            with self.cond:
                self.next += hop
                self.cond.notify_all()


class Scheduler:
    def __init__(
        self,
        settings: SchedulerSettings,
        bus: EventBus,
        clock: StreamClock,
        audio_stages: Sequence[AudioStage] = (),
        video_stages: Sequence[VideoStage] = (),
        window_stages: Sequence[WindowStage] = (),
        extra_status: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        self.settings = settings
        self.bus = bus
        self.clock = clock
        self.features = FeatureStore()
        self.counters = Counters()
        self.audio_stages = [st for st in audio_stages if not getattr(st, "lane", None)]
        self.lanes: dict[str, _Lane] = {}
        for st in audio_stages:
            lane = getattr(st, "lane", None)
            if lane:
                self.lanes.setdefault(lane, _Lane(lane, self)).stages.append(st)
        self.video_stages = list(video_stages)
        self.window_stages = list(window_stages)
        order = 0
        self._ctx: dict[int, _StageCtx] = {}
        lane_stages = [st for ln in self.lanes.values() for st in ln.stages]
        for st in [*self.audio_stages, *lane_stages, *self.video_stages, *self.window_stages]:
            self._ctx[id(st)] = _StageCtx(self, st.name, order)
            order += 1
        self._sys_ctx = _StageCtx(self, "scheduler", order)
        self._extra_status = extra_status
        self._stop = threading.Event()
        self._wd_stop = threading.Event()
        self._fast = False
        self._pending: list[tuple[float, int, int, Event, float]] = []
        self._pending_lock = threading.Lock()
        self._last_error_t: dict[str, float] = {}
        self._proc = psutil.Process()
        self._status_next = settings.status_interval_s
        self._status_last: tuple[float, float, int, int, int] | None = None
        self.ring: AudioRing | None = None
        self._audio_index = 0  # absolute index up to which main-thread audio stages have run
        self.audio_t = 0.0  # stream time up to which audio has been processed
        self.vision_t = 0.0

    # ------------------------------------------------------------------ emission

    def _emit(self, ctx: _StageCtx, ev: Event, n: int) -> None:
        if self._fast:
            with self._pending_lock:
                self._pending.append((ctx.cursor, ctx.order, n, ev, ctx.input_wall))
            return
        ev.t_emit = self.clock.now()
        ev.latency_ms = (time.monotonic() - ctx.input_wall) * 1000.0 if ctx.input_wall else 0.0
        self.bus.publish(ev)

    def _flush(self, upto: float) -> None:
        """Fast mode: publish buffered events with input time <= upto, in a fixed order."""
        with self._pending_lock:
            ready = [p for p in self._pending if p[0] <= upto]
            self._pending = [p for p in self._pending if p[0] > upto]
        ready.sort(key=lambda p: (p[0], p[1], p[2]))
        now = time.monotonic()
        for cursor, _, _, ev, wall in ready:
            ev.t_emit = cursor
            ev.latency_ms = (now - wall) * 1000.0 if wall else 0.0
            self.bus.publish(ev)

    def report(self, type: str, label: str, data: dict[str, Any], t: float | None = None) -> None:
        """Publish a status/error event from outside the stages (sources, sinks). Thread-safe."""
        t = self.clock.now() if t is None else t
        ev = Event(type=type, label=label, t_start=t, t_end=t, source=label, data=data)
        ev.t_emit = t
        self.bus.publish(ev)

    def _call(self, stage: Any, ctx: _StageCtx, fn: Callable[..., None], *args: Any) -> None:
        """Run one stage step, supervised: an exception is reported (rate-limited) and the stage
        is reset (its ``reset()`` if it has one); a stage failing ``max_failures`` times within
        ``failure_window_s`` is paused with exponential backoff, then restarted."""
        if ctx.paused_until > ctx.cursor:
            self.counters.stage_skips += 1
            return
        if ctx.paused_until > -math.inf:  # pause over: restart
            ctx.paused_until = -math.inf
            self._restart(stage, ctx, reason="resumed after pause")
        t0 = time.thread_time()  # CPU of this thread: what the stage cost, not time spent waiting
        ctx.busy_since = time.monotonic()
        try:
            fn(*args)
        except Exception as exc:
            self._failed(stage, ctx, exc)
        finally:
            ctx.busy_since = 0.0
            dt = time.thread_time() - t0
            c = self.counters
            c.stage_runs[ctx.name] = c.stage_runs.get(ctx.name, 0) + 1
            c.stage_seconds[ctx.name] = c.stage_seconds.get(ctx.name, 0.0) + dt

    def _failed(self, stage: Any, ctx: _StageCtx, exc: Exception) -> None:
        st = self.settings
        self.counters.stage_errors += 1
        ctx.failures.append(ctx.cursor)
        while ctx.failures and ctx.failures[0] < ctx.cursor - st.failure_window_s:
            ctx.failures.popleft()
        data: dict[str, Any] = {
            "message": f"{type(exc).__name__}: {exc}",
            "errors": self.counters.stage_errors,
        }
        pause = len(ctx.failures) >= st.max_failures
        if pause:
            ctx.paused_until = ctx.cursor + ctx.backoff_s
            data["message"] += (
                f"; {len(ctx.failures)} failures in {st.failure_window_s:g} s, paused for {ctx.backoff_s:g} s"
            )
            data["paused_s"] = ctx.backoff_s
            ctx.backoff_s = min(ctx.backoff_s * 2, st.max_backoff_s)
            ctx.failures.clear()
        last = self._last_error_t.get(ctx.name, -math.inf)
        if pause or ctx.cursor - last >= st.error_report_interval_s:
            self._last_error_t[ctx.name] = ctx.cursor
            log.warning(
                "stage %s failed: %s", ctx.name, exc, exc_info=log.isEnabledFor(logging.DEBUG)
            )
            ev = Event(
                type="error",
                label=ctx.name,
                t_start=ctx.cursor,
                t_end=ctx.cursor,
                source=ctx.name,
                data=data,
            )
            self._emit(ctx, ev, 10**9)
        if not pause:
            self._restart(stage, ctx, reason=None)

    def _restart(self, stage: Any, ctx: _StageCtx, reason: str | None) -> None:
        reset = getattr(stage, "reset", None)
        if reset is not None:
            try:
                reset()
            except Exception as exc:  # a reset that fails leaves the stage as it was
                log.warning("stage %s reset failed: %s", ctx.name, exc)
        self.counters.stage_restarts += 1
        if reason:
            ev = Event(
                type="status",
                label="stage",
                t_start=ctx.cursor,
                t_end=ctx.cursor,
                source=ctx.name,
                data={
                    "stage": ctx.name,
                    "event": "restarted",
                    "reason": reason,
                    "restarts": self.counters.stage_restarts,
                },
            )
            self._emit(ctx, ev, 10**9 + 1)

    def _watchdog(self) -> None:
        """Report a stage stuck in one call for longer than ``stuck_after_s`` (once per episode)."""
        reported: dict[str, float] = {}
        period = min(1.0, self.settings.stuck_after_s / 4)
        while not self._wd_stop.wait(period):
            now = time.monotonic()
            for ctx in list(self._ctx.values()):
                since = ctx.busy_since
                if (
                    since
                    and now - since >= self.settings.stuck_after_s
                    and reported.get(ctx.name) != since
                ):
                    reported[ctx.name] = since
                    self.counters.stage_stuck += 1
                    self.report(
                        "error",
                        ctx.name,
                        {
                            "message": f"stage {ctx.name} has been stuck for "
                            f"{now - since:.1f} s in one call",
                            "stuck": self.counters.stage_stuck,
                        },
                    )

    def _start_watchdog(self) -> threading.Thread:
        t = threading.Thread(target=self._watchdog, name="watchdog", daemon=True)
        t.start()
        return t

    # ------------------------------------------------------------------ stage steps

    def _audio_hop(self, hop: np.ndarray, start: int, wall: float) -> None:
        sr = self.settings.sample_rate
        end_t = (start + len(hop)) / sr
        for st in self.audio_stages:
            ctx = self._ctx[id(st)]
            ctx.cursor = end_t
            ctx.input_wall = wall
            self._call(st, ctx, st.process_audio, hop, start, ctx)
        self.counters.audio_hops += 1
        self.audio_t = end_t
        if self.lanes:
            self._audio_index = start + len(hop)
            for ln in self.lanes.values():
                ln.notify()

    def _video_frame(self, frame: Frame, state: dict[int, list[float]]) -> None:
        ran = False
        for st in self.video_stages:
            s = state.setdefault(id(st), [-math.inf, 0])
            k = max(1, int(getattr(st, "every_k", 1)))
            period = 1.0 / max(1e-6, float(getattr(st, "max_fps", 1000.0)))
            s[1] += 1
            if (s[1] - 1) % k or frame.t - s[0] < period - 1e-3:
                continue
            s[0] = frame.t
            ctx = self._ctx[id(st)]
            ctx.cursor = frame.t
            ctx.input_wall = frame.wall
            self._call(st, ctx, st.process_frame, frame, ctx)
            ran = True
        if ran:
            self.counters.frames_processed += 1
        self.vision_t = frame.t

    def _video_lost(self, t: float) -> None:
        """Tell video stages that frames stopped (they may publish presence off/unknown)."""
        self.counters.video_lost += 1
        for st in self.video_stages:
            hook = getattr(st, "on_video_lost", None)
            if hook is not None:
                ctx = self._ctx[id(st)]
                ctx.cursor = t
                ctx.input_wall = time.monotonic()
                self._call(st, ctx, hook, t, ctx)

    def _window(self, k: int) -> Window:
        s = self.settings
        t0 = k * s.window_hop_s
        return Window(index=k, t_start=t0, t_end=t0 + s.window_s)

    def _run_window(self, w: Window, wall: float) -> None:
        for st in self.window_stages:
            ctx = self._ctx[id(st)]
            ctx.cursor = w.t_end
            ctx.input_wall = wall
            self._call(st, ctx, st.process_window, w, ctx)
        self.counters.windows += 1

    def _all_stages(self) -> list[Any]:
        lane_stages = [st for ln in self.lanes.values() for st in ln.stages]
        return [*self.audio_stages, *lane_stages, *self.video_stages, *self.window_stages]

    def _finish_stages(self, t: float) -> None:
        lane_stages = [st for ln in self.lanes.values() for st in ln.stages]
        for st in [*self.audio_stages, *lane_stages, *self.video_stages, *self.window_stages]:
            fin = getattr(st, "finish", None)
            if fin is not None:
                ctx = self._ctx[id(st)]
                ctx.cursor = t
                self._call(st, ctx, fin, ctx)

    # ------------------------------------------------------------------ status

    def status_data(self) -> dict[str, Any]:
        c = self.counters
        now = time.monotonic()
        cpu = self._proc.cpu_times()
        cpu_s = cpu.user + cpu.system
        fin, fout, hops = c.frames_in, c.frames_processed, c.audio_hops
        if self._status_last is None:
            self._status_last = (now, cpu_s, fin, fout, hops)
        t0, cpu0, fin0, fout0, _ = self._status_last
        dt = max(now - t0, 1e-6)
        self._status_last = (now, cpu_s, fin, fout, hops)
        data: dict[str, Any] = {
            "fps_in": round((fin - fin0) / dt, 2),
            "fps_out": round((fout - fout0) / dt, 2),
            "cpu_percent": round(100.0 * (cpu_s - cpu0) / dt, 1),
            "rss_mb": round(self._proc.memory_info().rss / 2**20, 1),
            "threads": threading.active_count(),
            "fds": self._proc.num_fds() if hasattr(self._proc, "num_fds") else None,
            "lag_ms": round(self.lag_s() * 1000.0, 1),
            "audio_level_db": round(lvl[1], 1) if (lvl := self.features.latest("level")) else None,
            "audio_overruns": c.audio_overruns,
            "audio_lost_samples": c.audio_lost_samples,
            "frames_skipped": c.frames_skipped,
            "windows_skipped": c.windows_skipped,
            "stage_errors": c.stage_errors,
            "bus_dropped": self.bus.dropped,
            "counters": {k: v for k, v in asdict(c).items() if not isinstance(v, dict)},
        }
        if self.lanes:
            sr = self.settings.sample_rate
            data["lanes"] = {
                n: {
                    "lag_ms": round(max(0, self._audio_index - ln.next) / sr * 1000, 1),
                    "overruns": ln.overruns,
                    "lost_samples": ln.lost_samples,
                }
                for n, ln in self.lanes.items()
            }
        stage_status = {}
        for st in self._all_stages():
            fn = getattr(st, "status", None)
            if fn is not None:
                try:
                    stage_status[st.name] = fn()
                except Exception as exc:  # status must never break the health event
                    stage_status[st.name] = {"error": str(exc)}
        if stage_status:
            data["stages"] = stage_status
        if self._extra_status is not None:
            data.update(self._extra_status())
        return data

    def lag_s(self) -> float:
        return 0.0 if self._fast else max(0.0, self.clock.now() - self.audio_t)

    def _maybe_status(self, t: float) -> None:
        if t + 1e-9 < self._status_next:
            return
        self._status_next = (
            math.floor(t / self.settings.status_interval_s) + 1
        ) * self.settings.status_interval_s
        ev = Event(
            type="status",
            label="health",
            t_start=t,
            t_end=t,
            source="scheduler",
            data=self.status_data(),
        )
        ev.t_emit = t
        self.bus.publish(ev)

    # ------------------------------------------------------------------ drive modes

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run_fast(
        self, audio: np.ndarray | None, video: VideoFile | None, threaded: bool = True
    ) -> None:
        """Process every hop, frame and window of the files, deterministically. ``threaded``
        runs the video stages in a thread of their own (up to one window ahead of the audio);
        without it everything runs in the calling thread, in the same order of events: the
        same results on one core, and CPU measurements free of the two threads contending."""
        self._fast = True
        for c in self._ctx.values():
            c.fast = True
        self._wd_stop.clear()
        wd = self._start_watchdog()
        s = self.settings
        sr, hop = s.sample_rate, s.hop_samples
        duration = max(
            len(audio) / sr if audio is not None else 0.0, video.duration if video else 0.0
        )
        use_video = video is not None and bool(self.video_stages)
        cond = threading.Condition()
        box: dict[str, Any] = {
            "allowed": s.window_s + s.window_hop_s,
            "progress": -math.inf,
            "done": not use_video,
            "error": None,
        }

        state: dict[int, list[float]] = {}

        def frame_in(f: Any) -> None:  # one decoded frame through the video stages
            self.counters.frames_in += 1
            self._video_frame(Frame(f.image, f.t, f.index, time.monotonic()), state)
            box["progress"] = f.t

        def vision() -> None:
            try:
                assert video is not None
                for f in video.frames(video.loops):
                    with cond:
                        while f.t > box["allowed"] and not self._stop.is_set():
                            cond.wait(0.5)
                    if self._stop.is_set():
                        break
                    frame_in(f)
                    with cond:
                        cond.notify_all()
            except Exception as exc:  # decoding errors end the video stream, not the run
                box["error"] = exc
            finally:
                with cond:
                    box["done"] = True
                    cond.notify_all()

        vt = None
        pending: list[Any] = []  # serial: the next frame, not yet due
        serial_frames = None
        if use_video and threaded:
            vt = threading.Thread(target=vision, name="vision-fast", daemon=True)
            vt.start()
        elif use_video:
            assert video is not None
            serial_frames = iter(video.frames(video.loops))

        def vision_until(limit: float) -> None:  # serial: frames up to ``limit`` in this thread
            assert serial_frames is not None
            try:
                while True:
                    f = pending.pop() if pending else next(serial_frames, None)
                    if f is None:
                        box["done"] = True
                        return
                    if f.t > limit:
                        pending.append(f)
                        return
                    frame_in(f)
            except Exception as exc:  # decoding errors end the video stream, not the run
                box["error"] = exc
                box["done"] = True

        next_hop = 0
        n_audio = len(audio) if audio is not None else 0
        lanes = list(self.lanes.values()) if audio is not None else []
        if lanes:
            self.ring = AudioRing(max(int(30 * sr), int(4 * (s.window_s + s.window_hop_s) * sr)))
            for ln in lanes:
                ln.start(0)
        k = 0
        try:
            while not self._stop.is_set():
                w = self._window(k)
                S = w.t_end
                limit = min(n_audio, int(round(S * sr)))
                while next_hop + hop <= limit:
                    chunk = audio[next_hop : next_hop + hop]  # type: ignore[index]
                    if self.ring is not None:
                        self.ring.write(chunk)
                    self._audio_hop(chunk, next_hop, time.monotonic())
                    next_hop += hop
                for ln in lanes:
                    ln.wait_until(next_hop)
                if serial_frames is not None and not box["done"]:
                    vision_until(S + s.window_hop_s)
                with cond:
                    box["allowed"] = S + s.window_hop_s
                    cond.notify_all()
                    while not box["done"] and box["progress"] < S and not self._stop.is_set():
                        cond.wait(0.5)
                self._flush(S)
                if w.t_start < duration:
                    self._run_window(w, time.monotonic())
                self._maybe_status(S)
                if duration <= S and box["done"]:
                    break
                k += 1
        finally:
            with cond:
                box["allowed"] = math.inf
                cond.notify_all()
            if vt:
                vt.join()
            for ln in lanes:
                ln.close()
        end = max(duration, self.audio_t)
        self._finish_stages(end)
        self._flush(math.inf)
        if box["error"] is not None:
            self.report(
                "error", "video", {"message": f"video decoding stopped: {box['error']}"}, t=end
            )
        self._status_next = 0.0
        self._maybe_status(end)
        self._fast = False
        for c in self._ctx.values():
            c.fast = False
        self._wd_stop.set()
        wd.join()

    def run_live(
        self,
        ring: AudioRing | None,
        frames: FrameRing | None,
        finished: Callable[[], bool] = lambda: False,
    ) -> None:
        """Drive stages from rings filled by capture threads until stopped or ``finished()``."""
        self._fast = False
        self._wd_stop.clear()
        wd = self._start_watchdog()
        s = self.settings
        sr, hop = s.sample_rate, s.hop_samples
        vt = None
        if frames is not None and self.video_stages:
            vt = threading.Thread(
                target=self._vision_live, args=(frames, finished), name="vision", daemon=True
            )
            vt.start()
        buf = np.empty(hop, dtype=np.int16)
        next_hop = ring.write_index if ring is not None else 0
        self.ring = ring
        self._audio_index = next_hop
        lanes = list(self.lanes.values()) if ring is not None else []
        for ln in lanes:
            ln.start(next_hop)
        k = 0
        hop_s = hop / sr
        try:
            while not self._stop.is_set():
                progressed = False
                if ring is not None:
                    if ring.write_index - next_hop >= hop:
                        try:
                            ring.read(next_hop, next_hop + hop, out=buf)
                        except Overwritten as exc:
                            self.counters.audio_overruns += 1
                            skip_to = exc.oldest + (-(exc.oldest - next_hop)) % hop
                            self.counters.audio_lost_samples += skip_to - next_hop
                            self.report(
                                "error",
                                "audio",
                                {
                                    "message": "audio processing fell behind; "
                                    f"{(skip_to - next_hop) / sr:.2f} s of audio were overwritten",
                                    "audio_overruns": self.counters.audio_overruns,
                                },
                            )
                            next_hop = skip_to
                            continue
                        self._audio_hop(buf, next_hop, self.clock.to_wall((next_hop + hop) / sr))
                        next_hop += hop
                        progressed = True
                    now_t = self.audio_t
                else:
                    now_t = self.clock.now()
                    self.audio_t = now_t
                while True:
                    w = self._window(k)
                    if w.t_end + s.video_lateness_s > now_t:
                        break
                    if now_t - w.t_end > s.max_lag_s + s.video_lateness_s:
                        self.counters.windows_skipped += 1
                    else:
                        self._run_window(w, self.clock.to_wall(w.t_end))
                    k += 1
                if ring is not None and not progressed and self.clock.now() - now_t > 1.0:
                    now_t = self.clock.now()  # audio stalled (microphone gone): keep reporting
                self._maybe_status(now_t)
                if not progressed:
                    audio_done = ring is None or ring.write_index - next_hop < hop
                    if finished() and audio_done and (vt is None or not vt.is_alive()):
                        break
                    # sleep until the next hop should be complete (the capture callback
                    # cannot signal without a lock), at least 1 ms, at most one hop
                    due = self.clock.to_wall((next_hop + hop) / sr) if ring is not None else 0.0
                    self._stop.wait(min(hop_s, max(0.001, due - time.monotonic() + 0.002)))
        finally:
            self._stop.set()
            if vt:
                vt.join(5.0)
            for ln in lanes:
                ln.close()
        self._finish_stages(self.audio_t)
        self._status_next = 0.0
        self._maybe_status(max(self.audio_t, self.vision_t))
        self._wd_stop.set()
        wd.join()

    def _vision_live(self, frames: FrameRing, finished: Callable[[], bool]) -> None:
        state: dict[int, list[float]] = {}
        last = -1
        last_wall = time.monotonic()
        lost = False
        while not self._stop.is_set():
            f, skipped = frames.take_newest(last, timeout=0.1)
            if f is None:
                if finished():
                    return
                if not lost and time.monotonic() - last_wall > self.settings.video_lost_s:
                    lost = True
                    self._video_lost(self.clock.now())
                continue
            last_wall = time.monotonic()
            lost = False
            self.counters.frames_in += 1 + skipped
            self.counters.frames_skipped += skipped
            last = f.index
            self._video_frame(f, state)
