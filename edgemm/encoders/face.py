"""Face detection (BlazeFace short range) and face mesh (468 landmarks) on BGR arrays.

Pre- and post-processing follow MediaPipe 0.10's graphs: ``face_detection_short_range``
(128×128 letterbox, input in [-1, 1], 896 anchors, weighted NMS at IoU 0.3) and
``face_landmark`` (an eye-aligned ROI 1.5× the detection box, 192×192 input in [0, 1], a
face-presence logit). Arrays in, features out: nothing here touches a device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .vision import (
    RoiCrop,
    RotatedRect,
    SsdDetector,
    load_model,
    output_index,
    rotation_from_points,
    transform_rect,
)

# BlazeFace keypoints (the subject's right eye appears on the image's left).
KP_RIGHT_EYE, KP_LEFT_EYE, KP_NOSE, KP_MOUTH, KP_RIGHT_EAR, KP_LEFT_EAR = range(6)

# Face mesh landmark indices used for the derived features.
LM_NOSE_TIP = 1
LM_LIP_UPPER_INNER, LM_LIP_LOWER_INNER = 13, 14
LM_MOUTH_RIGHT, LM_MOUTH_LEFT = 61, 291
LM_CHEEK_RIGHT, LM_CHEEK_LEFT = 234, 454
LM_FOREHEAD, LM_CHIN = 10, 152


@dataclass(frozen=True, eq=False)
class FaceDetection:
    """One face in source pixels: ``box`` (x1, y1, x2, y2), ``keypoints`` (6, 2) in the order
    right eye, left eye, nose tip, mouth centre, right ear tragion, left ear tragion."""

    box: np.ndarray
    score: float
    keypoints: np.ndarray

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    @property
    def center(self) -> tuple[float, float]:
        return float(self.box[0] + self.box[2]) / 2.0, float(self.box[1] + self.box[3]) / 2.0

    @property
    def frontalness(self) -> float:
        """1 when the nose sits midway between the ears (facing the camera), towards 0 as the
        head turns (yaw); measured along the eye axis, so in-plane roll does not matter."""
        kp = self.keypoints
        return symmetry(
            kp[KP_NOSE], kp[KP_RIGHT_EAR], kp[KP_LEFT_EAR], kp[KP_LEFT_EYE] - kp[KP_RIGHT_EYE]
        )


def symmetry(center: Any, a: Any, b: Any, axis: Any) -> float:
    """min/max of the distances from ``center`` to ``a`` and ``b`` along ``axis`` (0..1).
    Points are (x, y) pairs: arrays or plain floats (this runs per frame, on two numbers)."""
    ux, uy = float(axis[0]), float(axis[1])
    n = math.hypot(ux, uy)
    if n < 1e-6:
        return 0.0
    ux, uy = ux / n, uy / n
    cx, cy = float(center[0]), float(center[1])
    da = abs((cx - float(a[0])) * ux + (cy - float(a[1])) * uy)
    db = abs((float(b[0]) - cx) * ux + (float(b[1]) - cy) * uy)
    hi = max(da, db)
    return min(da, db) / hi if hi > 1e-6 else 0.0


class FaceDetector(SsdDetector):
    """BlazeFace short range: ``detect(bgr) -> list[FaceDetection]`` (best score first).

    One instance per thread; the interpreter, anchors and input buffer are set up once.
    ``model`` is a file path, or None for the installed ``face_detection_short_range``.
    """

    MODEL = "face_detection_short_range"
    SIZE = 128
    KEYPOINTS = 6
    VALUE_RANGE = (-1.0, 1.0)

    def detect(self, image: np.ndarray) -> list[FaceDetection]:
        return [
            FaceDetection(box=src[:2].reshape(4), score=score, keypoints=src[2:])
            for score, src in self.detect_points(image)
        ]


@dataclass(frozen=True, eq=False)
class FaceMeshResult:
    """468 landmarks (x, y in source pixels; z in the same pixel scale, relative to the face
    centre, smaller is nearer) and features derived from them."""

    landmarks: np.ndarray
    presence: float
    mouth_open: float
    frontalness: float
    roi: RotatedRect = field(repr=False)


def aligned_roi(box: list[float], p0: list[float], p1: list[float], scale: float) -> RotatedRect:
    """A box (x1, y1, x2, y2) rotated so that p0→p1 is level, squared on its long side and
    scaled: how MediaPipe turns a face detection or the face's landmarks into the mesh ROI."""
    x1, y1, x2, y2 = box
    rot = rotation_from_points(p0, p1, 0.0)
    return transform_rect((x1 + x2) / 2.0, (y1 + y2) / 2.0, x2 - x1, y2 - y1, rot, scale)


def face_roi(det: FaceDetection, scale: float = 1.5) -> RotatedRect:
    """The eye-aligned square ROI MediaPipe feeds the face mesh model (1.5× the box)."""
    right_eye, left_eye = det.keypoints[[KP_RIGHT_EYE, KP_LEFT_EYE]].tolist()
    return aligned_roi(det.box.tolist(), right_eye, left_eye, scale)


LM_RIGHT_EYE_OUTER, LM_LEFT_EYE_OUTER = 33, 263


def landmark_box(lm: np.ndarray) -> list[float]:
    """The landmarks' bounding box (x1, y1, x2, y2) in source pixels."""
    return [*lm[:, :2].min(axis=0).tolist(), *lm[:, :2].max(axis=0).tolist()]


def mesh_roi(lm: np.ndarray, box: list[float] | None = None, scale: float = 1.5) -> RotatedRect:
    """The ROI for the next frame from this frame's landmarks, as MediaPipe derives it: the
    landmarks' bounding box (``box`` if already computed), rotated to level the outer eye
    corners, squared and scaled."""
    right, left = lm[[LM_RIGHT_EYE_OUTER, LM_LEFT_EYE_OUTER], :2].tolist()
    return aligned_roi(box or landmark_box(lm), right, left, scale)


_MOUTH = [LM_LIP_UPPER_INNER, LM_LIP_LOWER_INNER, LM_MOUTH_RIGHT, LM_MOUTH_LEFT]
_YAW = [LM_NOSE_TIP, LM_CHEEK_RIGHT, LM_CHEEK_LEFT]


def mouth_open_ratio(lm: np.ndarray) -> float:
    """Inner-lip gap over mouth width: ~0 closed, ~0.3+ wide open."""
    (ux, uy), (lx, ly), (rx, ry), (mx, my) = lm[_MOUTH, :2].tolist()
    width = math.hypot(mx - rx, my - ry)
    return math.hypot(lx - ux, ly - uy) / width if width > 1e-6 else 0.0


def mesh_frontalness(lm: np.ndarray) -> float:
    """Yaw estimate from the mesh: nose tip against the two cheek contours (1 = frontal)."""
    nose, right, left = lm[_YAW, :2].tolist()
    return symmetry(nose, right, left, (left[0] - right[0], left[1] - right[1]))


class FaceMesh:
    """``process(bgr, detection) -> FaceMeshResult | None`` (None when the model's face flag is
    below ``min_presence``). One instance per thread."""

    SIZE = 192

    def __init__(
        self,
        min_presence: float = 0.5,
        model: str | Path | None = None,
        backend: str = "auto",
        num_threads: int = 1,
    ) -> None:
        self.model = load_model("face_landmark", model, backend, num_threads)
        self._lm = output_index(self.model, 1404)
        self._flag = output_index(self.model, 1)
        self.crop = RoiCrop(self.SIZE, (0.0, 1.0), cv2.BORDER_REPLICATE)
        self.min_presence = min_presence

    def process(self, image: np.ndarray, detection: FaceDetection) -> FaceMeshResult | None:
        return self.process_roi(image, face_roi(detection))

    def process_roi(self, image: np.ndarray, roi: RotatedRect) -> FaceMeshResult | None:
        """The mesh on an explicit ROI: :func:`face_roi` of a detection, or :func:`mesh_roi`
        of the previous frame's landmarks (tracking, as MediaPipe's face mesh does)."""
        self.model.fill_input(0, self.crop, image, roi)
        self.model.invoke()
        logit = float(self.model.output(self._flag).reshape(-1)[0])
        presence = 1.0 / (1.0 + math.exp(-max(-100.0, min(100.0, logit))))
        if presence < self.min_presence:
            return None
        raw = self.model.output(self._lm).reshape(468, 3)
        lm = np.empty((468, 3), dtype=np.float32)
        lm[:, :2] = self.crop.to_source(raw)
        lm[:, 2] = raw[:, 2] * (roi.width / self.SIZE)
        return FaceMeshResult(
            landmarks=lm,
            presence=presence,
            mouth_open=mouth_open_ratio(lm),
            frontalness=mesh_frontalness(lm),
            roi=roi,
        )
