"""Config reload without a restart: ``SIGHUP`` (``systemctl reload edgemm``) or
:meth:`edgemm.Pipeline.reload` (a dashboard button).

The new config is loaded strictly first (an invalid file changes nothing). It is then diffed
key by key against the running one:

* **applied live** — thresholds and timings that stages read per hop or frame (energy gate,
  brightness, wake-word thresholds, VAD threshold, face/hand cadences and hold times), the text
  intents, the stdout and JSONL sinks, and the status interval;
* **restart needed** — everything else (devices, sample rate, ring sizes, windows, models,
  backends, enabled stages, network sinks): named in one log line and in the result, and kept
  at their running values.

Audio is never paused: while the pipeline runs live, the changes are queued and applied by the
scheduler thread between two audio hops (when it asks whether the input has finished, i.e. when
it has caught up). Vision stages run in their own thread and read the new values from their next
frame on: each value is one attribute, swapped atomically. If the scheduler does not come by
within ``timeout_s`` (a ``--fast`` replay, or a stopped pipeline) the changes are applied from
the calling thread.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Config, load_config

if TYPE_CHECKING:
    from .pipeline import Pipeline

log = logging.getLogger(__name__)

# keys applied while running; every other changed key needs a restart
LIVE_KEYS = frozenset(
    {
        "stages.energy_gate.enabled",
        "stages.energy_gate.on_db",
        "stages.energy_gate.off_db",
        "stages.energy_gate.hangover_s",
        "stages.brightness.bright",
        "stages.brightness.dark",
        "stages.brightness.max_fps",
        "stages.wakeword.threshold",
        "stages.wakeword.thresholds",
        "stages.vad.threshold",
        "stages.face.on_s",
        "stages.face.off_s",
        "stages.face.max_fps",
        "stages.face.every_k",
        "stages.hands.every_k",
        "stages.hands.max_fps",
        "stages.hands.hold_frames",
        "intents.threshold",
        "intents.on_partials",
        "intents.define",
        "sinks.stdout.enabled",
        "sinks.stdout.exclude",
        "sinks.jsonl.enabled",
        "sinks.jsonl.path",
        "sinks.jsonl.exclude",
        "status.interval_s",
    }
)


@dataclass(frozen=True)
class ReloadResult:
    applied: tuple[str, ...]  # changed keys now in effect
    restart_needed: tuple[str, ...]  # changed keys kept at their running values
    unchanged: bool = False


def flatten(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key paths of a config's leaves (dicts and lists are leaves)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        key = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(v):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def changed_keys(old: Config, new: Config) -> list[str]:
    a, b = flatten(old), flatten(new)
    return [k for k in a if a[k] != b[k]]


# --------------------------------------------------------------------------- appliers


def _stages(p: Pipeline) -> Iterator[Any]:
    s = p.scheduler
    yield from s.audio_stages
    for lane in s.lanes.values():
        yield from lane.stages
    yield from s.video_stages
    yield from s.window_stages


def _of(p: Pipeline, cls_name: str) -> list[Any]:
    return [st for st in _stages(p) if type(st).__name__ == cls_name]


def _energy_gate(p: Pipeline, cfg: Config) -> None:
    eg = cfg.stages.energy_gate
    for st in _of(p, "EnergyGate"):
        st.on_db, st.off_db, st.hangover_s, st.emit = eg.on_db, eg.off_db, eg.hangover_s, eg.enabled


def _brightness(p: Pipeline, cfg: Config) -> None:
    b = cfg.stages.brightness
    for st in _of(p, "Brightness"):
        st.bright, st.dark, st.max_fps = b.bright, b.dark, b.max_fps


def _wakeword(p: Pipeline, cfg: Config) -> None:
    w = cfg.stages.wakeword
    for st in _of(p, "WakeWordStage"):
        new = []
        for name, cur in zip(st.names, st.thresholds, strict=True):
            if name in w.thresholds:
                new.append(float(w.thresholds[name]))
            elif w.threshold is not None:
                new.append(float(w.threshold))
            else:  # null: 0.5 for openWakeWord heads; micro models keep their own cutoff
                new.append(0.5 if st.engine == "openwakeword" else cur)
        st.thresholds[:] = new  # the detector's list, shared with its refractory gate


def _vad(p: Pipeline, cfg: Config) -> None:
    t = cfg.stages.vad.threshold
    for st in _of(p, "VadStage"):
        seg = st.segmenter
        seg.threshold, seg.neg_threshold = t, max(0.01, t - 0.15)


def _vision(p: Pipeline, cfg: Config) -> None:
    f, h = cfg.stages.face, cfg.stages.hands
    for st in _of(p, "FaceStage"):
        st.on_s, st.off_s, st.max_fps, st.every_k = f.on_s, f.off_s, f.max_fps, f.every_k
    for st in _of(p, "HandStage"):
        st.every_k, st.max_fps, st.hold_frames = h.every_k, h.max_fps, h.hold_frames


def _intents(p: Pipeline, cfg: Config) -> None:
    stages = _of(p, "SpeechStage")
    if not stages:
        return
    from .text import IntentMatcher

    it = cfg.intents
    matcher = IntentMatcher.from_config(it.define, it.threshold) if it.define else None
    for st in stages:
        st.intents = matcher  # one reference swap; the lane sees it from its next utterance
        st.intents_on_partials = it.on_partials


def _status(p: Pipeline, cfg: Config) -> None:
    s = p.scheduler
    s.settings = dataclasses.replace(s.settings, status_interval_s=cfg.status.interval_s)


def _sinks(p: Pipeline, cfg: Config) -> None:
    """Rebuild the stdout and JSONL sinks whose settings changed (the others keep running)."""
    from .sinks.jsonl import JsonlSink
    from .sinks.stdout import StdoutSink

    old = p.cfg.sinks
    new = cfg.sinks
    plans: list[tuple[str, bool, Callable[[], Any]]] = []
    if old.stdout != new.stdout and not p._stdout_forced:
        plans.append(("stdout", new.stdout.enabled, lambda: StdoutSink(new.stdout.exclude)))
    if old.jsonl != new.jsonl and not p._out_forced:
        plans.append(
            ("jsonl", new.jsonl.enabled, lambda: JsonlSink(new.jsonl.path, new.jsonl.exclude))
        )
    for name, enabled, make in plans:
        current = [s for s in p.sinks if s.name == name]
        fresh = make() if enabled else None  # a bad path raises here, before anything changes
        for s in current:
            if s.sub is not None:
                p.bus.unsubscribe(s.sub)  # the sink drains what it has, then closes
            p.sinks.remove(s)
        if fresh is not None:
            if p._started:
                fresh.attach(p.bus, cfg.bus.queue_size)
            p.sinks.append(fresh)
        for s in current:
            s.join(5.0)


_APPLIERS: tuple[tuple[str, Callable[[Pipeline, Config], None]], ...] = (
    ("stages.energy_gate.", _energy_gate),
    ("stages.brightness.", _brightness),
    ("stages.wakeword.", _wakeword),
    ("stages.vad.", _vad),
    ("stages.face.", _vision),
    ("stages.hands.", _vision),
    ("intents.", _intents),
    ("status.", _status),
    ("sinks.", _sinks),
)


# --------------------------------------------------------------------------- the queue


class ReloadQueue:
    """Changes waiting for the scheduler thread; applied exactly once, by whoever comes first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Callable[[], None]] = []
        self.applied = 0

    def put(self, fn: Callable[[], None]) -> threading.Event:
        done = threading.Event()

        def run() -> None:
            try:
                fn()
            finally:
                done.set()

        with self._lock:
            self._pending.append(run)
        return done

    def apply_pending(self) -> None:
        if not self._pending:  # the common case costs one attribute read
            return
        with self._lock:
            todo, self._pending = self._pending, []
        for fn in todo:
            try:
                fn()
            except Exception:  # a failed applier must not stop the scheduler
                log.exception("config reload: applying a change failed")
            self.applied += 1


def reload_pipeline(
    p: Pipeline, config: Config | dict[str, Any] | str | Path | None = None, timeout_s: float = 2.0
) -> ReloadResult:
    """Load ``config`` (default: the source the pipeline was built from) and apply it."""
    source = p.config_source if config is None else config
    if source is None:
        from .errors import ConfigError

        raise ConfigError("nothing to reload: the pipeline was built from a Config object")
    new = source if isinstance(source, Config) else load_config(source)  # raises on errors
    with p._reload_lock:
        running, started = p.cfg, p.started_cfg
        live = [k for k in changed_keys(running, new) if k in LIVE_KEYS]
        restart = tuple(k for k in changed_keys(started, new) if k not in LIVE_KEYS)
        if not live and not restart:
            log.info("config reload: no changes")
            return ReloadResult((), (), unchanged=True)
        # the running config takes the live values; restart-only keys keep the started ones
        merged = _merge_live(running, new, live)
        fns = [fn for prefix, fn in _APPLIERS if any(k.startswith(prefix) for k in live)]
        fns = list(dict.fromkeys(fns))  # face and hands share one applier

        def apply() -> None:
            for fn in fns:
                fn(p, merged)
            p.cfg = merged

        if fns and p._started and not p._done.is_set():
            done = p.reload_queue.put(apply)
            if not done.wait(timeout_s):
                p.reload_queue.apply_pending()  # the scheduler is not polling: apply from here
                done.wait()
        else:
            apply()
        if live:
            log.info("config reload: applied %s", ", ".join(live))
        if restart:
            log.warning(
                "config reload: restart needed for %s (kept the running values; "
                "restart with: systemctl restart edgemm)",
                ", ".join(restart),
            )
        p._report("status", "reload", {"applied": live, "restart_needed": list(restart)})
        return ReloadResult(tuple(live), restart)


def _merge_live(running: Config, new: Config, live: list[str]) -> Config:
    """``running`` with the values of the ``live`` keys taken from ``new``."""
    out = running
    for key in live:
        out = _set(out, key.split("."), _get(new, key.split(".")))
    return out


def _get(obj: Any, path: list[str]) -> Any:
    for part in path:
        obj = getattr(obj, part)
    return obj


def _set(obj: Any, path: list[str], value: Any) -> Any:
    head, *rest = path
    if not rest:
        return dataclasses.replace(obj, **{head: value})
    return dataclasses.replace(obj, **{head: _set(getattr(obj, head), rest, value)})


def install_sighup(p: Pipeline, source: str | Path | None = None) -> Callable[[], None]:
    """Reload ``source`` on SIGHUP (in a thread of its own: the handler returns at once).

    Returns a function restoring the previous handler. A no-op where SIGHUP does not exist.
    """
    if not hasattr(signal, "SIGHUP") or threading.current_thread() is not threading.main_thread():
        return lambda: None

    def run() -> None:
        try:
            reload_pipeline(p, source)
        except Exception as exc:  # a bad file must not stop a running kiosk
            log.error("config reload failed, kept the running config: %s", exc)

    def on_hup(_signum: int, _frame: Any) -> None:
        threading.Thread(target=run, name="reload", daemon=True).start()

    old = signal.signal(signal.SIGHUP, on_hup)
    return lambda: signal.signal(signal.SIGHUP, old)
