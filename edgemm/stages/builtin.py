"""Built-in signal stages: cheap diagnostics that need no model.

* :class:`EnergyGate` — RMS level per audio hop (dBFS) and a hysteresis gate that emits
  ``vad`` events (``speech_start`` / ``speech_end``, source ``audio.energy``).
* :class:`Brightness` — mean brightness per video frame, ``brightness`` events (``bright`` /
  ``dark``) on changes.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from .base import Frame, StageContext

_FULL_SCALE = 32768.0


def rms_dbfs(hop: np.ndarray) -> float:
    x = hop.astype(np.float32)
    ms = float(np.dot(x, x)) / max(1, x.size)
    return 10.0 * math.log10(ms / (_FULL_SCALE * _FULL_SCALE) + 1e-12)


class EnergyGate:
    name = "energy_gate"

    def __init__(
        self,
        on_db: float = -35.0,
        off_db: float = -45.0,
        hangover_s: float = 0.3,
        emit: bool = True,
    ) -> None:
        self.emit = emit  # False: only the "level" feature (a real VAD stage emits vad events)
        self.on_db = on_db
        self.off_db = off_db
        self.hangover_s = hangover_s
        self.active = False
        self._onset = 0.0
        self._last_loud = -math.inf

    def process_audio(self, hop: np.ndarray, start: int, ctx: StageContext) -> None:
        sr = ctx.sample_rate
        t0, t1 = start / sr, (start + hop.size) / sr
        db = rms_dbfs(hop)
        ctx.features.put("level", t1, db)
        if not self.emit:
            return
        if db >= self.on_db:
            self._last_loud = t1
            if not self.active:
                self.active = True
                self._onset = t0
                ctx.emit(
                    "vad",
                    "speech_start",
                    t0,
                    t1,
                    score=1.0,
                    source="audio.energy",
                    data={"level_db": round(db, 1)},
                )
        elif self.active and db < self.off_db and t1 - self._last_loud >= self.hangover_s:
            self.active = False
            ctx.emit(
                "vad",
                "speech_end",
                self._onset,
                self._last_loud,
                score=1.0,
                source="audio.energy",
                data={"duration_s": round(self._last_loud - self._onset, 3)},
            )

    def finish(self, ctx: StageContext) -> None:
        if self.active and self.emit:
            self.active = False
            ctx.emit(
                "vad",
                "speech_end",
                self._onset,
                self._last_loud,
                source="audio.energy",
                data={"duration_s": round(self._last_loud - self._onset, 3)},
            )


class Brightness:
    name = "brightness"
    every_k = 1

    def __init__(self, bright: float = 170.0, dark: float = 90.0, max_fps: float = 30.0) -> None:
        self.bright = bright
        self.dark = dark
        self.max_fps = max_fps
        self.state: str | None = None
        self._last_t: float | None = None

    def process_frame(self, frame: Frame, ctx: StageContext) -> None:
        img = frame.image
        small = img[::4, ::4] if img.shape[0] >= 64 else img
        b = float(np.mean(cv2.mean(small)[:3]))
        ctx.features.put("brightness", frame.t, b)
        new = self.state
        if b >= self.bright:
            new = "bright"
        elif b <= self.dark:
            new = "dark"
        if new != self.state:
            if new is not None:
                # the change happened between the previous frame and this one; the frame stands
                # for one frame interval after its timestamp
                prev = self._last_t if self._last_t is not None else frame.t
                step = max(frame.t - prev, 1e-3)
                ctx.emit(
                    "brightness",
                    new,
                    prev,
                    frame.t + step,
                    score=b / 255.0,
                    source="video.brightness",
                    data={"mean": round(b, 1)},
                )
            self.state = new
        self._last_t = frame.t
