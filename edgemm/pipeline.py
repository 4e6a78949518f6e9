"""Wiring: config → sources, stages, scheduler, bus and sinks. Also the Python API.

>>> from edgemm import Pipeline, load_config
>>> with Pipeline(load_config("default"), audio_file="a.wav", video_file="v.avi") as p:
...     for event in p.events():
...         print(event.type, event.label)
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .buffers import AudioRing, FrameRing
from .clock import StreamClock
from .config import Config, load_config
from .errors import EdgemmError, ModelError, SourceError
from .events import Event, EventBus
from .scheduler import Scheduler, SchedulerSettings
from .sinks.base import Sink
from .sinks.jsonl import JsonlSink
from .sinks.stdout import StdoutSink
from .sources.audiofile import LoopedAudio, read_wav
from .sources.camera import CameraSource
from .sources.microphone import MicSource
from .sources.replay import ReplayFeeder
from .sources.videofile import VideoFile
from .stages.builtin import Brightness, EnergyGate

log = logging.getLogger(__name__)


def build_stages(cfg: Config) -> tuple[list[Any], list[Any], list[Any]]:
    """Audio, video and window stages enabled in ``cfg``, in their fixed order."""
    st = cfg.stages
    audio: list[Any] = []
    video: list[Any] = []
    window: list[Any] = []
    backend = cfg.runtime.backend
    if cfg.audio.enabled:
        # always measures the level (status, dashboard, speech gating); emits vad events only
        # when enabled
        eg = st.energy_gate
        audio.append(EnergyGate(eg.on_db, eg.off_db, eg.hangover_s, emit=eg.enabled))
        if st.vad.enabled:
            from .stages.audio import VadStage

            v = st.vad
            audio.append(VadStage(v.threshold, v.min_speech_s, v.min_silence_s, backend=v.backend))
        if st.wakeword.enabled:
            from .stages.audio import WakeWordStage

            w = st.wakeword
            thr: float | dict[str, float] | None = w.threshold
            if w.thresholds:
                thr = dict(w.thresholds)
                if w.threshold is not None:
                    for m in w.models:
                        thr.setdefault(Path(m).stem, w.threshold)
            audio.append(
                WakeWordStage(
                    list(w.models),
                    threshold=thr,
                    refractory_s=w.refractory_s,
                    backend=backend,
                    num_threads=w.num_threads or cfg.runtime.num_threads,
                    engine=w.engine,
                )
            )
    if cfg.stt.enabled:
        from .stages.speech import build_speech_stage

        if _stt_model_missing(cfg):  # an unattended kiosk keeps running without STT
            log.warning(
                "STT off: model %r is not installed (install it with: edgemm models install %s)",
                cfg.stt.model,
                cfg.stt.model,
            )
        elif (speech := build_speech_stage(cfg)) is not None:  # None (one log line): STT off
            audio.append(speech)
    if cfg.video.enabled:
        if cfg.runtime.opencv_threads:
            import cv2

            cv2.setNumThreads(cfg.runtime.opencv_threads)
        if st.brightness.enabled:
            b = st.brightness
            video.append(Brightness(b.bright, b.dark, b.max_fps))
        if st.face.enabled:
            from .stages.vision import FaceStage

            f = st.face
            face = FaceStage(
                min_score=f.min_score,
                on_s=f.on_s,
                off_s=f.off_s,
                mesh=f.mesh,
                max_fps=f.max_fps,
                every_k=f.every_k,
                backend=backend,
                min_presence=f.min_presence,
                detector_model=model_file(f.model),
                mesh_model=model_file(f.mesh_model) if f.mesh else None,
                num_threads=f.num_threads or cfg.runtime.num_threads,
                detect_every=f.detect_every,
            )
            face.load()  # a missing or corrupt model fails here, at start-up
            video.append(face)
        if st.hands.enabled:
            from .stages.vision import HandStage

            h = st.hands
            hands = HandStage(
                every_k=h.every_k,
                max_fps=h.max_fps,
                min_score=h.min_score,
                min_presence=h.min_presence,
                max_hands=h.max_hands,
                hold_frames=h.hold_frames,
                mirrored=h.mirrored,
                backend=backend,
                num_threads=h.num_threads or cfg.runtime.num_threads,
                detect_every=h.detect_every,
            )
            hands.load()
            video.append(hands)
    if cfg.fusion.enabled:
        from .stages.fusion import build_fusion_stage

        window.append(build_fusion_stage(cfg))
    return audio, video, window


def model_file(spec: str) -> Path:
    """A model given by manifest name (installed, sha256-verified) or by file path."""
    from .models import load_manifest, model_path

    if spec in load_manifest():
        return model_path(spec)
    p = Path(spec).expanduser()
    if not p.is_file():
        raise ModelError(
            f"model {spec!r} is neither a manifest name nor a file",
            "see `edgemm models list`, or give the path of a .tflite file",
        )
    return p


def _stt_model_missing(cfg: Config) -> bool:
    """True when ``stt.model`` names a manifest model that is not installed."""
    from .models import load_manifest, models_dir

    entry = load_manifest().get(cfg.stt.model or "")
    return entry is not None and not (models_dir() / entry.file).exists()


def scheduler_settings(cfg: Config) -> SchedulerSettings:
    return SchedulerSettings(
        sample_rate=cfg.audio.sample_rate,
        hop_samples=cfg.hop_samples,
        window_s=cfg.windows.length_s,
        window_hop_s=cfg.windows.hop_s,
        video_lateness_s=cfg.windows.video_lateness_s,
        max_lag_s=cfg.windows.max_lag_s,
        status_interval_s=cfg.status.interval_s,
        video_lost_s=cfg.video.reconnect_after_s,
    )


class Pipeline:
    """A recognition pipeline over live devices or replayed files.

    Live when neither ``audio_file`` nor ``video_file`` is given; otherwise a replay, paced to
    the wall clock with ``realtime=True`` or as fast as possible (deterministic) by default.
    """

    def __init__(
        self,
        config: Config | dict[str, Any] | str | Path | None = None,
        *,
        audio_file: str | Path | None = None,
        video_file: str | Path | None = None,
        realtime: bool = False,
        loops: int = 1,
        out: str | Path | None = None,
        stdout: bool | None = None,
        camera_factory: Callable[..., Any] | None = None,
        sounddevice_module: Any = None,
    ) -> None:
        self.cfg = config if isinstance(config, Config) else load_config(config)
        cfg = self.cfg
        self.replay = audio_file is not None or video_file is not None
        self.realtime = realtime
        # --fast replays run the video stages in a thread of their own; False keeps everything
        # in one thread (same events; what `edgemm bench overhead --serial` measures)
        self.fast_threaded = True
        self.bus = EventBus(cfg.bus.queue_size)
        self.clock = StreamClock(cfg.audio.sample_rate)
        self._audio: np.ndarray | None = None
        self._video: VideoFile | None = None
        if self.replay:
            if audio_file is not None:
                self._audio = read_wav(audio_file, cfg.audio.sample_rate)
                if loops > 1:
                    self._audio = LoopedAudio(self._audio, loops)  # type: ignore[assignment]
            if video_file is not None:
                self._video = VideoFile(video_file, loops)
        a, v, w = build_stages(self._effective_config())
        self.snapshots = None  # newest camera JPEG for the dashboard
        if (
            cfg.sinks.web.enabled
            and cfg.sinks.web.snapshot
            and self._effective_config().video.enabled
        ):
            from .stages.snapshot import SnapshotBuffer, SnapshotStage

            self.snapshots = SnapshotBuffer()
            v.append(
                SnapshotStage(
                    self.snapshots, cfg.sinks.web.snapshot_fps, cfg.sinks.web.snapshot_width
                )
            )
        self.scheduler = Scheduler(
            scheduler_settings(cfg), self.bus, self.clock, a, v, w, extra_status=self._source_status
        )
        self.sinks: list[Sink] = []
        show = cfg.sinks.stdout.enabled if stdout is None else stdout
        if show:
            self.sinks.append(StdoutSink(cfg.sinks.stdout.exclude))
        if out is not None:
            self.sinks.append(JsonlSink(out, cfg.sinks.jsonl.exclude))
        elif cfg.sinks.jsonl.enabled:
            self.sinks.append(JsonlSink(cfg.sinks.jsonl.path, cfg.sinks.jsonl.exclude))
        if cfg.sinks.mqtt.enabled or cfg.sinks.web.enabled or cfg.sinks.metrics.enabled:
            from .sinks.web import network_sinks

            self.mqtt, self.web, self.metrics = network_sinks(
                cfg, self._report, self.snapshots, [*a, *v, *w]
            )
            self.sinks += [s for s in (self.metrics, self.mqtt, self.web) if s is not None]
            if self.web is not None:
                self.web.on_reload = self.reload  # the dashboard's "reload config" button
        self._camera_factory = camera_factory
        self._sd = sounddevice_module
        self.camera: CameraSource | None = None
        self.mic: MicSource | None = None
        self.feeder: ReplayFeeder | None = None
        self._thread: threading.Thread | None = None
        self._started = False
        self._done = threading.Event()
        self.error: BaseException | None = None
        # config reload (edgemm/reload.py): SIGHUP or reload(); CLI --out/--quiet stay in force
        from .reload import ReloadQueue

        self.config_source = None if isinstance(config, Config) else config
        self.started_cfg = cfg
        self.reload_queue = ReloadQueue()
        self._reload_lock = threading.Lock()
        self._stdout_forced = stdout is not None
        self._out_forced = out is not None

    def _effective_config(self) -> Config:
        """In replay, a missing input disables its modality."""
        if not self.replay:
            return self.cfg
        from dataclasses import replace

        return replace(
            self.cfg,
            audio=replace(
                self.cfg.audio, enabled=self.cfg.audio.enabled and self._audio is not None
            ),
            video=replace(
                self.cfg.video, enabled=self.cfg.video.enabled and self._video is not None
            ),
        )

    def _source_status(self) -> dict[str, Any]:
        d: dict[str, Any] = {}
        if self.camera is not None:
            d["camera_reconnects"] = self.camera.reconnects
            d["camera_connected"] = self.camera.connected
        if self.mic is not None:
            d["input_overflows"] = self.mic.overflows
            d["mic_reconnects"] = self.mic.reconnects
            d["audio_gap_s"] = round(self.mic.gap_samples / self.cfg.audio.sample_rate, 2)
        if self._frames is not None:
            d["frames_dropped"] = self._frames.dropped
        c = self.scheduler.counters
        secs = dict(c.stage_seconds)
        d["stages"] = {
            n: {"calls": k, "seconds": round(secs.get(n, 0.0), 6)}
            for n, k in dict(c.stage_runs).items()
        }
        sink_stats = {s.name: s.stats() for s in self.sinks if hasattr(s, "stats")}
        if sink_stats:
            d["sinks"] = sink_stats
        return d

    _frames: FrameRing | None = None
    mqtt: Any = None  # the MQTT sink, dashboard and metrics when the config enables them
    web: Any = None
    metrics: Any = None

    # ---------------------------------------------------------------- subscription API

    def subscribe(self, callback: Callable[[Event], None], types: list[str] | None = None) -> None:
        """Call ``callback(event)`` for every event (in a thread of its own)."""
        sink = _CallbackSink(callback)
        sink.attach(self.bus, self.cfg.bus.queue_size)
        self.sinks.append(sink)

    def events(self, types: list[str] | None = None) -> Iterator[Event]:
        """Iterate over events until the pipeline stops. Starts it if needed."""
        sub = self.bus.subscribe("iterator", self.cfg.bus.queue_size, types)
        if not self._started:
            self.start()
        return iter(sub)

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Start in a background thread; returns at once."""
        if self._started:
            return
        self._started = True
        for s in self.sinks:
            if s.sub is None:
                s.attach(self.bus, self.cfg.bus.queue_size)
        self._thread = threading.Thread(target=self._run_guarded, name="scheduler", daemon=True)
        self._thread.start()

    def run(self) -> None:
        """Run in the calling thread until the replay ends or :meth:`stop` is called."""
        if not self._started:
            self._started = True
            for s in self.sinks:
                if s.sub is None:
                    s.attach(self.bus, self.cfg.bus.queue_size)
        self._run_guarded()
        if self.error is not None:
            raise self.error

    def _run_guarded(self) -> None:
        try:
            self._run()
        except BaseException as exc:
            self.error = exc
            if not isinstance(exc, EdgemmError):
                log.exception("pipeline failed")
        finally:
            self._shutdown_sinks()
            self._done.set()

    def _run(self) -> None:
        cfg = self._effective_config()
        if self.replay and not self.realtime:
            self.scheduler.run_fast(self._audio, self._video, self.fast_threaded)
            return
        ring = (
            AudioRing(int(cfg.audio.ring_s * cfg.audio.sample_rate)) if cfg.audio.enabled else None
        )
        frames = FrameRing(cfg.video.ring_frames) if cfg.video.enabled else None
        self._frames = frames
        if self.replay:
            self.feeder = ReplayFeeder(
                self._audio,
                self._video,
                ring,
                frames,
                self.clock,
                block=cfg.audio.sample_rate * cfg.audio.block_ms // 1000,
            )
            self.feeder.start()
            try:
                self.scheduler.run_live(
                    ring,
                    frames,
                    finished=lambda: self._between_hops() or self.feeder.finished,  # type: ignore[union-attr]
                )
            finally:
                self.feeder.stop()
            return
        try:
            if ring is not None:
                self.mic = MicSource(
                    ring,
                    self.clock,
                    cfg.audio.device,
                    cfg.audio.sample_rate,
                    cfg.audio.block_ms,
                    sd=self._sd,
                    on_report=self._report,
                )
                self.mic.start()
            if frames is not None:
                kw = {"open_capture": self._camera_factory} if self._camera_factory else {}
                v = cfg.video
                if not kw and v.backend == "picamera2":
                    from .sources.picamera import picamera2_factory

                    kw = {"open_capture": picamera2_factory()}  # SourceError names the fix
                self.camera = CameraSource(
                    v.device,
                    frames,
                    self.clock,
                    v.width,
                    v.height,
                    v.fps,
                    v.reconnect_after_s,
                    v.backoff_max_s,
                    on_report=self._report,
                    **kw,
                )
                self.camera.start()
            self.scheduler.run_live(ring, frames, finished=self._between_hops)
        finally:
            if self.camera is not None:
                self.camera.stop()
            if self.mic is not None:
                self.mic.stop()

    def _report(self, type: str, label: str, data: dict[str, Any]) -> None:
        self.scheduler.report(type, label, data)

    def reload(self, config: Config | dict[str, Any] | str | Path | None = None) -> Any:
        """Apply a changed config without dropping audio (thresholds, intents, stdout/JSONL
        sinks); keys that need a restart are logged and returned. See edgemm/reload.py."""
        from .reload import reload_pipeline

        return reload_pipeline(self, config)

    def _between_hops(self) -> bool:
        """Called by the live scheduler whenever it has caught up: apply queued reloads."""
        self.reload_queue.apply_pending()
        return False

    def stop(self, timeout: float = 10.0) -> None:
        """Stop capture, let the scheduler finish, drain and close every sink."""
        self.scheduler.stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        for s in (self.web, self.metrics):  # servers outlive the event stream until stop()
            if s is not None:
                s.shutdown()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    def _shutdown_sinks(self) -> None:
        self.bus.close()
        for s in self.sinks:
            s.join(10.0)

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class _CallbackSink(Sink):
    name = "callback"

    def __init__(self, fn: Callable[[Event], None]) -> None:
        super().__init__()
        self.fn = fn

    def write(self, ev: Event) -> None:
        self.fn(ev)


def require_inputs(audio: str | None, video: str | None) -> None:
    if audio is None and video is None:
        raise SourceError(
            "replay needs --audio and/or --video", "edgemm replay --audio A.wav --video V.avi"
        )
