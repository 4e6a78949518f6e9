"""The stage API the scheduler drives.

A stage is a small object with a name and one of three entry points, each called from a single
thread (so a stage may keep state and own a TFLite interpreter without locks):

* :class:`AudioStage` — ``process_audio(hop, start, ctx)`` once per audio hop (1280 samples =
  80 ms at 16 kHz by default), in order, never skipped. ``hop`` is int16, length
  ``ctx.hop_samples``; ``start`` is the absolute sample index of ``hop[0]``.
* :class:`VideoStage` — ``process_frame(frame, ctx)`` per video frame, at most ``max_fps`` and
  on every ``every_k``-th frame; in live mode it gets the newest frame and skips the rest.
* :class:`WindowStage` — ``process_window(window, ctx)`` once per window (length/hop from
  config), after the audio and video stages have seen the whole window.

Stages publish through ``ctx.emit(...)`` and share per-window features through
``ctx.features`` (a dict keyed by stage name; the fusion stage reads it). Times are seconds on
the stream clock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..events import Event


@dataclass(frozen=True)
class Frame:
    """A video frame on the stream clock. ``image`` is BGR uint8, HxWx3."""

    image: np.ndarray
    t: float
    index: int
    wall: float = 0.0  # time.monotonic() when grabbed (for latency)


@dataclass(frozen=True)
class Window:
    index: int
    t_start: float
    t_end: float


@dataclass
class FeatureStore:
    """Latest per-stage features, read by window stages (fusion).

    Audio/video stages ``put(name, t, value)`` as they go; a window stage asks for everything
    a stage produced inside ``[t_start, t_end)`` with ``between``. Old entries are pruned.
    """

    horizon_s: float = 10.0
    _items: dict[str, list[tuple[float, Any]]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def put(self, name: str, t: float, value: Any) -> None:
        with self._lock:
            lst = self._items.setdefault(name, [])
            lst.append((t, value))
            if len(lst) > 64 and lst[0][0] < t - self.horizon_s:
                cut = next(
                    (i for i, (ti, _) in enumerate(lst) if ti >= t - self.horizon_s), len(lst)
                )
                del lst[:cut]

    def between(self, name: str, t_start: float, t_end: float) -> list[tuple[float, Any]]:
        with self._lock:
            return [(t, v) for t, v in self._items.get(name, ()) if t_start <= t < t_end]

    def latest(self, name: str, before: float | None = None) -> tuple[float, Any] | None:
        with self._lock:
            for t, v in reversed(self._items.get(name, ())):
                if before is None or t < before:
                    return t, v
        return None

    def size(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._items.values())


class StageContext(Protocol):
    """What the scheduler hands to stages."""

    sample_rate: int
    hop_samples: int
    features: FeatureStore
    fast: bool  # --fast replay: deterministic, never skip input
    lag_s: float  # lane stages: how far behind the audio clock (0 in fast replay)

    def emit(
        self,
        type: str,
        label: str,
        t_start: float,
        t_end: float,
        score: float = 1.0,
        data: dict[str, Any] | None = None,
        source: str | None = None,
    ) -> None: ...


@runtime_checkable
class AudioStage(Protocol):
    name: str

    def process_audio(self, hop: np.ndarray, start: int, ctx: StageContext) -> None: ...


@runtime_checkable
class VideoStage(Protocol):
    name: str
    max_fps: float
    every_k: int

    def process_frame(self, frame: Frame, ctx: StageContext) -> None: ...


@runtime_checkable
class WindowStage(Protocol):
    name: str

    def process_window(self, window: Window, ctx: StageContext) -> None: ...


@dataclass
class CollectingContext:
    """A :class:`StageContext` that collects the events in a list: runs stages without the
    scheduler (tests, notebooks, offline tools). ``now`` is stamped into each event's
    ``t_emit``; ``fast`` is True as in a deterministic replay."""

    sample_rate: int = 16000
    hop_samples: int = 1280
    features: FeatureStore = field(default_factory=FeatureStore)
    events: list[Event] = field(default_factory=list)
    now: float = 0.0
    fast: bool = True
    lag_s: float = 0.0

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
        ev = Event(type, label, t_start, t_end, float(score), source or "", data or {})
        ev.t_emit = self.now
        self.events.append(ev)
