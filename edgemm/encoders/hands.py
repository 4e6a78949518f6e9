"""Palm detection and hand landmarks (21 points) on BGR arrays.

Pre- and post-processing follow MediaPipe 0.10's hand graphs: ``palm_detection_lite`` (192×192
letterbox, input in [0, 1], 2016 anchors with strides 8,16,16,16, 7 keypoints, weighted NMS at
IoU 0.3); the hand ROI is the palm box rotated so the wrist→middle-finger line points up,
shifted half a box towards the fingers and scaled 2.6× (square); ``hand_landmark_lite`` takes
that ROI at 224×224 in [0, 1]. Between frames the ROI can come from the previous landmarks
(rotation from the wrist to the PIP joints, scale 2.0, shift 0.1) so palm detection runs only
when a hand is new.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .vision import (
    RoiCrop,
    RotatedRect,
    SsdDetector,
    load_model,
    output_index,
    rotation_from_points,
    rotation_matrix,
    transform_rect,
)

# Palm keypoints: 0 wrist centre, 2 middle-finger MCP (the others are other knuckles/thumb).
PALM_WRIST, PALM_MIDDLE_MCP = 0, 2
# Landmarks MediaPipe uses to place the next frame's ROI (wrist, thumb base, MCPs, PIPs).
_ROI_LANDMARKS = np.array([0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18])


@dataclass(frozen=True, eq=False)
class PalmDetection:
    """A palm in source pixels: ``box`` (x1, y1, x2, y2), ``keypoints`` (7, 2)."""

    box: np.ndarray
    score: float
    keypoints: np.ndarray


@dataclass(frozen=True, eq=False)
class Hand:
    """21 landmarks (x, y in source pixels, z relative depth in the same pixel scale; the
    MediaPipe order: wrist, thumb 1-4, index 5-8, middle 9-12, ring 13-16, pinky 17-20).

    ``handedness`` is the subject's hand ("left"/"right") for an un-mirrored camera image.
    """

    landmarks: np.ndarray
    handedness: str
    handedness_score: float
    presence: float
    roi: RotatedRect = field(repr=False)

    @property
    def box(self) -> np.ndarray:
        lo = self.landmarks[:, :2].min(axis=0)
        hi = self.landmarks[:, :2].max(axis=0)
        return np.concatenate([lo, hi])


def palm_roi(palm: PalmDetection) -> RotatedRect:
    """The hand ROI MediaPipe derives from a palm detection."""
    x1, y1, x2, y2 = (float(v) for v in palm.box)
    kp = palm.keypoints
    rot = rotation_from_points(kp[PALM_WRIST], kp[PALM_MIDDLE_MCP], math.pi / 2)
    return transform_rect((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1, rot, 2.6, -0.5)


def landmarks_roi(landmarks: np.ndarray) -> RotatedRect:
    """The next frame's hand ROI from this frame's landmarks (``HandLandmarksToRect``)."""
    lm = landmarks[:, :2].astype(np.float32)
    pip = ((lm[6] + lm[14]) / 2 + lm[10]) / 2
    rot = rotation_from_points(lm[0], pip, math.pi / 2)
    pts = lm[_ROI_LANDMARKS]
    r = rotation_matrix(rot)
    local = pts @ r  # into the ROI's own frame (R is orthonormal: R^T = R^-1)
    lo, hi = local.min(axis=0), local.max(axis=0)
    c = r @ ((lo + hi) / 2)
    w, h = float(hi[0] - lo[0]), float(hi[1] - lo[1])
    return transform_rect(float(c[0]), float(c[1]), w, h, rot, 2.0, -0.1)


class PalmDetector(SsdDetector):
    """``detect(bgr) -> list[PalmDetection]`` (best first). One instance per thread."""

    MODEL = "palm_detection_lite"
    SIZE = 192
    KEYPOINTS = 7
    VALUE_RANGE = (0.0, 1.0)

    def detect(self, image: np.ndarray) -> list[PalmDetection]:
        return [
            PalmDetection(src[:2].reshape(4), score, src[2:])
            for score, src in self.detect_points(image)
        ]


class HandLandmarker:
    """``process(bgr, roi) -> Hand | None`` (None when the hand flag is below
    ``min_presence``). Set ``mirrored`` when frames are selfie-mirrored. One per thread."""

    SIZE = 224

    def __init__(
        self,
        min_presence: float = 0.5,
        mirrored: bool = False,
        model: str | Path | None = None,
        backend: str = "auto",
        num_threads: int = 1,
    ) -> None:
        self.model = load_model("hand_landmark_lite", model, backend, num_threads)
        outs = self.model.outputs
        scalars = [i for i, t in enumerate(outs) if t.shape[-1] == 1]
        vectors = [i for i, t in enumerate(outs) if t.shape[-1] == 63]
        if len(scalars) != 2 or not vectors:
            output_index(self.model, -1)  # raises ModelError naming the outputs
        # Screen landmarks come before world landmarks, the hand flag before handedness.
        self._lm = vectors[0]
        self._flag, self._hand = scalars
        self.crop = RoiCrop(self.SIZE, (0.0, 1.0), cv2.BORDER_REPLICATE)
        self.min_presence = min_presence
        self.mirrored = mirrored

    def process(self, image: np.ndarray, roi: RotatedRect) -> Hand | None:
        self.model.fill_input(0, self.crop, image, roi)
        self.model.invoke()
        presence = float(self.model.output(self._flag).reshape(-1)[0])
        if presence < self.min_presence:
            return None
        raw = self.model.output(self._lm).reshape(21, 3)
        lm = np.empty((21, 3), dtype=np.float32)
        lm[:, :2] = self.crop.to_source(raw)
        lm[:, 2] = raw[:, 2] * (roi.width / self.SIZE)
        # The model's score is for MediaPipe's "Left" label, which assumes a mirrored image.
        p_left_mirrored = float(self.model.output(self._hand).reshape(-1)[0])
        right = (p_left_mirrored > 0.5) != self.mirrored
        score = p_left_mirrored if p_left_mirrored > 0.5 else 1.0 - p_left_mirrored
        return Hand(lm, "right" if right else "left", score, presence, roi)


class HandTracker:
    """Palm detection plus hand landmarks with MediaPipe's tracking shortcut: hands found in
    the previous call are re-measured from their landmark ROI, and palm detection runs only
    while fewer than ``max_hands`` are tracked. ``process(bgr) -> list[Hand]``.

    ``detect_every`` n > 1 runs that palm detection on every n-th call only (and at once when
    a tracked hand is lost): waiting for hands costs 1/n of the palm model, and a new hand is
    seen up to n - 1 calls later."""

    def __init__(
        self,
        max_hands: int = 2,
        min_score: float = 0.5,
        min_presence: float = 0.5,
        mirrored: bool = False,
        palm_model: str | Path | None = None,
        landmark_model: str | Path | None = None,
        backend: str = "auto",
        num_threads: int = 1,
        detect_every: int = 1,
    ) -> None:
        self.detect_every = max(1, detect_every)
        self._since_palm = self.detect_every  # the first call detects
        self.palms = PalmDetector(
            min_score, model=palm_model, backend=backend, num_threads=num_threads
        )
        self.landmarker = HandLandmarker(
            min_presence, mirrored, model=landmark_model, backend=backend, num_threads=num_threads
        )
        self.max_hands = max_hands
        self._rois: list[RotatedRect] = []
        self.palm_runs = 0

    def reset(self) -> None:
        self._rois = []
        self._since_palm = self.detect_every

    def process(self, image: np.ndarray) -> list[Hand]:
        hands = [h for h in (self.landmarker.process(image, r) for r in self._rois) if h]
        lost = len(hands) < len(self._rois)
        self._since_palm += 1
        if len(hands) < self.max_hands and (lost or self._since_palm >= self.detect_every):
            self._since_palm = 0
            self.palm_runs += 1
            for palm in self.palms.detect(image):
                if len(hands) >= self.max_hands:
                    break
                if any(_inside(palm.keypoints[PALM_MIDDLE_MCP], h.box) for h in hands):
                    continue  # already tracked
                hand = self.landmarker.process(image, palm_roi(palm))
                if hand is not None:
                    hands.append(hand)
        self._rois = [landmarks_roi(h.landmarks) for h in hands]
        return hands


def _inside(p: np.ndarray, box: np.ndarray) -> bool:
    return bool(box[0] <= p[0] <= box[2] and box[1] <= p[1] <= box[3])
