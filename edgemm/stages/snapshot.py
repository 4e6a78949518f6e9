"""A low-rate camera snapshot for the dashboard: newest frame, downscaled, boxes drawn, JPEG.

:class:`SnapshotStage` is a video stage (default 2 fps). It reads what the vision stages put
into ``ctx.features`` for the same moment: ``"face"`` (``boxes`` as ``[x1, y1, x2, y2]`` in
source-frame pixels, or normalised when all values are <= 1; without boxes, the largest face's
normalised ``cx``, ``cy`` and ``area``) and
``"gesture"`` (``hands`` with ``cx``, ``cy``, ``gesture``, and ``box`` when present). With no
vision stages it still shows the picture. The JPEG goes to a :class:`SnapshotBuffer` the
pipeline hands to the web dashboard; nothing goes through the event bus.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from .base import Frame, StageContext

FACE_COLOR = (80, 220, 80)  # BGR
HAND_COLOR = (60, 170, 255)


@dataclass(frozen=True)
class Snapshot:
    jpeg: bytes
    t: float  # stream time of the frame
    n: int  # increases with every new snapshot
    faces: int = 0
    hands: int = 0


class SnapshotBuffer:
    """Holds the newest snapshot; written by the vision thread, read by HTTP handlers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snap: Snapshot | None = None
        self._n = 0

    def put(self, jpeg: bytes, t: float, faces: int = 0, hands: int = 0) -> None:
        with self._lock:
            self._n += 1
            self._snap = Snapshot(jpeg, t, self._n, faces, hands)

    def get(self) -> Snapshot | None:
        with self._lock:
            return self._snap


def _recent(ctx: StageContext, name: str, t: float, max_age: float) -> Any:
    hit = ctx.features.latest(name, before=t + 1e-6)
    if hit is None or t - hit[0] > max_age:
        return None
    return hit[1]


def _scale_box(b: Any, w: int, h: int, scale: float) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = (float(v) for v in b[:4])
    if max(abs(x0), abs(y0), abs(x1), abs(y1)) <= 1.0:  # normalised
        return int(x0 * w), int(y0 * h), int(x1 * w), int(y1 * h)
    return int(x0 * scale), int(y0 * scale), int(x1 * scale), int(y1 * scale)


def _boxes_from(
    feats: dict[str, Any], w: int, h: int, scale: float
) -> list[tuple[int, int, int, int]]:
    """Pixel boxes from a face feature dict (explicit boxes, or centre + area of the largest)."""
    raw = feats.get("boxes") or ([feats["box"]] if feats.get("box") is not None else [])
    out = [_scale_box(b, w, h, scale) for b in raw]
    if not out and feats.get("count") and feats.get("area"):
        side = math.sqrt(float(feats["area"])) * math.sqrt(w * h)
        cx, cy = float(feats.get("cx", 0.5)) * w, float(feats.get("cy", 0.5)) * h
        out.append((int(cx - side / 2), int(cy - side / 2), int(cx + side / 2), int(cy + side / 2)))
    return out


def draw_overlays(
    image: np.ndarray, face: Any, gesture: Any, scale: float = 1.0
) -> tuple[int, int]:
    """Draw face and hand boxes in place (``scale``: output / source width); returns counts."""
    h, w = image.shape[:2]
    thick = max(1, round(w / 240))
    nf = nh = 0
    if isinstance(face, dict):
        for x0, y0, x1, y1 in _boxes_from(face, w, h, scale):
            cv2.rectangle(image, (x0, y0), (x1, y1), FACE_COLOR, thick, cv2.LINE_AA)
            nf += 1
        if nf:
            score = float(face.get("score", 0.0))
            cv2.putText(
                image,
                f"face {score:.2f}",
                (max(0, x0), max(12, y0 - 6)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.45 * thick,
                FACE_COLOR,
                thick,
                cv2.LINE_AA,
            )
    if isinstance(gesture, dict):
        for hand in gesture.get("hands", ()):
            label = str(hand.get("gesture") or hand.get("hand") or "hand")
            if hand.get("box") is not None:
                x0, y0, x1, y1 = _scale_box(hand["box"], w, h, scale)
                p0, p1 = (x0, y0), (x1, y1)
            else:
                cx, cy = float(hand.get("cx", 0.5)) * w, float(hand.get("cy", 0.5)) * h
                r = 0.09 * min(w, h)
                p0, p1 = (int(cx - r), int(cy - r)), (int(cx + r), int(cy + r))
            cv2.rectangle(image, p0, p1, HAND_COLOR, thick, cv2.LINE_AA)
            cv2.putText(
                image,
                label,
                (max(0, p0[0]), max(12, p0[1] - 6)),
                cv2.FONT_HERSHEY_SIMPLEX,
                0.45 * thick,
                HAND_COLOR,
                thick,
                cv2.LINE_AA,
            )
            nh += 1
    return nf, nh


class SnapshotStage:
    """Encode the newest frame as JPEG at ``max_fps`` for the dashboard."""

    name = "snapshot"
    every_k = 1

    def __init__(
        self, buffer: SnapshotBuffer, max_fps: float = 2.0, width: int = 480, quality: int = 75
    ) -> None:
        self.buffer = buffer
        self.max_fps = max_fps
        self.width = width
        self._params = [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)]
        self._max_age = max(0.5, 2.0 / max_fps)

    def process_frame(self, frame: Frame, ctx: StageContext) -> None:
        img = frame.image
        h, w = img.shape[:2]
        if w > self.width:
            img = cv2.resize(
                img, (self.width, round(h * self.width / w)), interpolation=cv2.INTER_AREA
            )
        else:
            img = img.copy()  # never draw on the shared frame
        face = _recent(ctx, "face", frame.t, self._max_age)
        gesture = _recent(ctx, "gesture", frame.t, self._max_age)
        nf, nh = draw_overlays(img, face, gesture, img.shape[1] / w)
        ok, jpeg = cv2.imencode(".jpg", img, self._params)
        if ok:
            self.buffer.put(jpeg.tobytes(), frame.t, nf, nh)
