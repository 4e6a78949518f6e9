"""Shared image geometry for the vision encoders: SSD anchors, box decoding, weighted NMS,
letterboxing and rotated region-of-interest crops.

The encoders themselves live in :mod:`edgemm.encoders.face` (face detection, face mesh),
:mod:`edgemm.encoders.hands` (palm detection, hand landmarks) and
:mod:`edgemm.encoders.gestures` (rule-based gestures from hand landmarks).

Conventions: images are BGR uint8 HxWx3 as they come from OpenCV; coordinates are source
pixels (x right, y down) unless a name says otherwise. A :class:`RotatedRect` maps a square
model crop onto the source image; rotation is in radians, positive turns the crop clockwise on
screen (the same convention as MediaPipe's ``NormalizedRect.rotation``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import ModelError
from ..runtime import TFLiteModel, repair_hint


def ssd_anchor_centers(input_size: int, strides: tuple[int, ...]) -> np.ndarray:
    """Centres (x, y) in [0, 1] of fixed-size SSD anchors, float32 (N, 2).

    Follows MediaPipe's ``SsdAnchorsCalculator`` with one aspect ratio (1.0), an interpolated
    scale (so two anchors per layer), anchor offset 0.5 and ``fixed_anchor_size``: consecutive
    layers with the same stride share one feature map, each adding two anchors per cell.
    BlazeFace short range (128, strides 8,16,16,16) gives 896 anchors; palm detection (192, the
    same strides) gives 2016.
    """
    out: list[np.ndarray] = []
    i = 0
    while i < len(strides):
        stride = strides[i]
        layers = 0
        while i < len(strides) and strides[i] == stride:
            layers += 1
            i += 1
        cells = math.ceil(input_size / stride)
        c = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        ys, xs = np.meshgrid(c, c, indexing="ij")
        grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
        out.append(np.repeat(grid, 2 * layers, axis=0))
    return np.concatenate(out).astype(np.float32)


class SsdDecoder:
    """Decodes ``[x, y, w, h, kx0, ky0, ...]`` regressors against fixed-size anchors.

    Mirrors ``TensorsToDetectionsCalculator`` with ``reverse_output_order`` (x before y),
    ``sigmoid_score`` with ``score_clipping_thresh`` 100, and scales equal to the input size;
    then weighted non-maximum suppression (``NonMaxSuppressionCalculator``, IoU, WEIGHTED).
    Scores are thresholded on the logit, so only candidates get the sigmoid.
    """

    def __init__(
        self,
        input_size: int,
        strides: tuple[int, ...],
        num_keypoints: int,
        min_score: float = 0.5,
        iou_threshold: float = 0.3,
        clip: float = 100.0,
    ) -> None:
        if not 0.0 < min_score < 1.0:
            raise ValueError(f"min_score must be in (0, 1), got {min_score}")
        self.size = float(input_size)
        anchors = ssd_anchor_centers(input_size, strides) * self.size  # pixels
        self.num_keypoints = num_keypoints
        width = 4 + 2 * num_keypoints
        # One linear map takes a raw row [cx, cy, w, h, kx0, ky0, ...] (offsets from the
        # anchor) to [x1, y1, x2, y2, kx0, ky0, ...] in pixels: rows @ _to_corners + anchor term.
        self._to_corners = np.eye(width, dtype=np.float32)
        self._to_corners[2, 0] = self._to_corners[3, 1] = -0.5
        self._to_corners[0, 2] = self._to_corners[1, 3] = 1.0
        self._to_corners[2, 2] = self._to_corners[3, 3] = 0.5
        offsets = np.zeros((len(anchors), width), dtype=np.float32)
        offsets[:, 0::2] = anchors[:, :1]  # the anchor centre for x/y and every keypoint
        offsets[:, 1::2] = anchors[:, 1:]
        offsets[:, 2:4] = 0.0
        self._offsets = offsets @ self._to_corners
        self.min_score = min_score
        self.min_logit = float(math.log(min_score / (1.0 - min_score)))
        self.iou_threshold = iou_threshold
        self.clip = clip

    def decode(self, regressors: np.ndarray, logits: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """``regressors`` (N, 4 + 2K) and ``logits`` (N,) for one image → NMS-filtered
        detections as (score, points) with points (2 + K, 2) in model-input pixels: box corners
        (x1, y1), (x2, y2), then the keypoints. Best score first."""
        idx = np.flatnonzero(logits > self.min_logit)
        if idx.size == 0:
            return []
        rows = regressors[idx] @ self._to_corners + self._offsets[idx]
        c = self.clip
        if idx.size <= SMALL_NMS:
            # A frame has a few candidates. Right after an invoke has flushed the caches every
            # numpy call on a tiny array costs several microseconds, so these few go through
            # plain Python (measured 377 -> 257 us per frame in a replay, paired).
            scores = [1.0 / (1.0 + math.exp(-max(-c, min(c, x)))) for x in logits[idx].tolist()]
            kept = weighted_nms_lists(rows, scores, self.iou_threshold)
        else:
            probs = 1.0 / (1.0 + np.exp(-np.clip(logits[idx], -c, c)))
            kept = weighted_nms(rows, probs, self.iou_threshold)
        return [(sc, r.reshape(-1, 2)) for sc, r in kept]


# Up to this many candidates :meth:`SsdDecoder.decode` suppresses in plain Python.
SMALL_NMS = 32


def weighted_nms(
    rows: np.ndarray, scores: np.ndarray, iou_threshold: float
) -> list[tuple[float, np.ndarray]]:
    """MediaPipe's WEIGHTED suppression on rows ``(x1, y1, x2, y2, ...)`` (anything after the box,
    e.g. keypoints, is averaged along): the best remaining row and every row whose box overlaps
    it by more than ``iou_threshold`` merge into their score-weighted mean, which keeps the best
    score. Returns (score, merged row), best first."""
    if len(scores) == 1:
        return [(float(scores[0]), rows[0])]
    order = np.argsort(-scores, kind="stable")
    rows, scores = rows[order], scores[order]
    x1, y1, x2, y2 = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    alive = np.ones(len(scores), dtype=bool)
    out: list[tuple[float, np.ndarray]] = []
    # One pass per kept detection (IoU of the best remaining box against the rest), not a full
    # IoU matrix: a frame has a few candidates and one or two faces, and each numpy call on
    # arrays this small costs more than its arithmetic.
    while True:
        rest = np.flatnonzero(alive)
        if rest.size == 0:
            return out
        i = rest[0]
        iw = np.minimum(x2[rest], x2[i]) - np.maximum(x1[rest], x1[i])
        ih = np.minimum(y2[rest], y2[i]) - np.maximum(y1[rest], y1[i])
        inter = np.clip(iw, 0.0, None) * np.clip(ih, 0.0, None)
        iou = inter / np.maximum(areas[rest] + areas[i] - inter, 1e-12)
        group = rest[iou > iou_threshold]
        if group.size == 0 or group[0] != i:  # a degenerate box still stands for itself
            group = np.concatenate(([i], group[group != i]))
        alive[group] = False
        w = scores[group]
        out.append((float(scores[i]), (w @ rows[group]) / w.sum()))


def weighted_nms_lists(
    rows: np.ndarray, scores: list[float], iou_threshold: float
) -> list[tuple[float, np.ndarray]]:
    """:func:`weighted_nms` for a handful of candidates: the same merges, in plain Python."""
    boxes = rows[:, :4].tolist()
    alive = sorted(range(len(scores)), key=lambda i: -scores[i])  # stable, like argsort
    out: list[tuple[float, np.ndarray]] = []
    while alive:
        i = alive[0]
        bx1, by1, bx2, by2 = boxes[i]
        barea = (bx2 - bx1) * (by2 - by1)
        group: list[int] = []
        rest: list[int] = []
        for j in alive:
            x1, y1, x2, y2 = boxes[j]
            iw = min(x2, bx2) - max(x1, bx1)
            ih = min(y2, by2) - max(y1, by1)
            inter = (iw if iw > 0.0 else 0.0) * (ih if ih > 0.0 else 0.0)
            union = barea + (x2 - x1) * (y2 - y1) - inter
            if j == i or inter / (union if union > 1e-12 else 1e-12) > iou_threshold:
                group.append(j)
            else:
                rest.append(j)
        alive = rest
        if len(group) == 1:
            out.append((scores[i], rows[i]))
            continue
        w = np.array([scores[j] for j in group], dtype=np.float32)
        out.append((scores[i], (w @ rows[group]) / w.sum()))
    return out


class Letterbox:
    """Fits a BGR image into a square RGB float tensor keeping the aspect ratio, centred, with
    black borders (MediaPipe's ``keep_aspect_ratio`` with ``BORDER_ZERO``).

    The tensor buffer is allocated once; :meth:`to_source` undoes the transform.
    """

    def __init__(self, size: int, value_range: tuple[float, float]) -> None:
        self.size = size
        lo, hi = value_range
        self._alpha = np.float32((hi - lo) / 255.0)
        self._beta = np.float32(lo)
        self._canvas = np.zeros((size, size, 3), dtype=np.uint8)
        self._rgb = np.zeros((size, size, 3), dtype=np.uint8)
        self.tensor = np.zeros((1, size, size, 3), dtype=np.float32)
        self.scale_x = 1.0
        self.scale_y = 1.0
        self.pad_x = 0
        self.pad_y = 0
        self._shape: tuple[int, int] = (0, 0)
        self._view: np.ndarray | None = None

    def __call__(self, image: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The tensor for ``image``, written into ``out`` (1, size, size, 3) if given (e.g. the
        interpreter's own input buffer), else into a buffer of this object's."""
        h, w = image.shape[:2]
        if (h, w) != self._shape:
            self._configure(h, w)
        assert self._view is not None
        vh, vw = self._view.shape[:2]
        # Bilinear like MediaPipe's ImageToTensor; INTER_AREA would cost ~0.4 ms more per frame.
        cv2.resize(image, (vw, vh), dst=self._view, interpolation=cv2.INTER_LINEAR)
        cv2.cvtColor(self._canvas, cv2.COLOR_BGR2RGB, dst=self._rgb)
        tensor = self.tensor if out is None else out
        np.multiply(self._rgb, self._alpha, out=tensor[0])
        tensor[0] += self._beta
        return tensor

    def _configure(self, h: int, w: int) -> None:
        s = self.size / max(h, w)
        vw = max(1, min(self.size, round(w * s)))
        vh = max(1, min(self.size, round(h * s)))
        self.pad_x = (self.size - vw) // 2
        self.pad_y = (self.size - vh) // 2
        self.scale_x = vw / w
        self.scale_y = vh / h
        self._canvas[:] = 0
        self._view = self._canvas[self.pad_y : self.pad_y + vh, self.pad_x : self.pad_x + vw]
        self._shape = (h, w)

    def to_source(self, pts: np.ndarray) -> np.ndarray:
        """Model-input pixel coordinates (..., 2) → source pixel coordinates."""
        out = np.empty_like(pts, dtype=np.float32)
        out[..., 0] = (pts[..., 0] - self.pad_x) / self.scale_x
        out[..., 1] = (pts[..., 1] - self.pad_y) / self.scale_y
        return out


@dataclass(frozen=True)
class RotatedRect:
    """A rotated rectangle in source pixels: centre, width, height, rotation (radians)."""

    cx: float
    cy: float
    width: float
    height: float
    rotation: float

    def corners(self) -> np.ndarray:
        """(4, 2): top-left, top-right, bottom-right, bottom-left in the rect's own frame."""
        local = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]], dtype=np.float32)
        local *= np.array([self.width, self.height], dtype=np.float32)
        return local @ rotation_matrix(self.rotation).T + np.array([self.cx, self.cy], np.float32)


def rotation_matrix(theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s], [s, c]], dtype=np.float32)


def normalize_radians(angle: float) -> float:
    return angle - 2.0 * math.pi * math.floor((angle + math.pi) / (2.0 * math.pi))


def rotation_from_points(p0: Any, p1: Any, target: float) -> float:
    """Rotation that brings the vector p0→p1 to ``target`` radians (counter-clockwise from +x,
    y up), as MediaPipe's ``DetectionsToRectsCalculator`` computes it."""
    return normalize_radians(target - math.atan2(-(p1[1] - p0[1]), p1[0] - p0[0]))


def transform_rect(
    cx: float,
    cy: float,
    w: float,
    h: float,
    rotation: float,
    scale: float,
    shift_y: float = 0.0,
) -> RotatedRect:
    """``RectTransformationCalculator`` with ``square_long``: shift along the rect's own y axis
    (a fraction of its height), make it square on the long side, then scale."""
    if shift_y:
        dx, dy = rotation_matrix(rotation) @ np.array([0.0, h * shift_y], dtype=np.float32)
        cx, cy = cx + float(dx), cy + float(dy)
    side = max(w, h) * scale
    return RotatedRect(cx, cy, side, side, rotation)


class RoiCrop:
    """Warps a rotated ROI of a BGR image into a square RGB float tensor (preallocated) and maps
    model-input pixel coordinates back to the source image."""

    def __init__(self, size: int, value_range: tuple[float, float], border: int) -> None:
        self.size = size
        lo, hi = value_range
        self._alpha = np.float32((hi - lo) / 255.0)
        self._beta = np.float32(lo)
        self._border = border
        self._rgba = np.zeros((size, size, 4), dtype=np.uint8)
        self._rgb = np.zeros((size, size, 3), dtype=np.uint8)
        self.tensor = np.zeros((1, size, size, 3), dtype=np.float32)
        self.matrix = np.zeros((2, 3), dtype=np.float32)  # model pixels → source pixels

    def __call__(
        self, image: np.ndarray, rect: RotatedRect, out: np.ndarray | None = None
    ) -> np.ndarray:
        """The tensor for ``rect`` of ``image``, written into ``out`` if given (see
        :meth:`Letterbox.__call__`)."""
        a = rotation_matrix(rect.rotation) * np.array(
            [rect.width / self.size, rect.height / self.size], dtype=np.float32
        )
        half = self.size / 2.0
        self.matrix[:, :2] = a
        self.matrix[:, 2] = np.array([rect.cx, rect.cy], np.float32) - a @ np.array(
            [half, half], np.float32
        )
        # The matrix maps pixel corners; OpenCV samples pixel centres, hence the half-pixel terms.
        m = self.matrix.astype(np.float64)
        m[:, 2] += m[:, :2] @ np.array([0.5, 0.5]) - 0.5
        # Warp only the part of the image the ROI samples, converted to RGBA first: OpenCV's
        # 4-channel warp is vectorized where the 3-channel one is not (5.0: 0.12 vs 0.32 ms for
        # 192x192), and the channel swap comes for free. Clamping the part to the image keeps
        # BORDER_REPLICATE's edge pixels the image's own.
        h, w = image.shape[:2]
        s = self.size - 1.0
        xs = m[0, 0] * np.array([0.0, s, 0.0, s]) + m[0, 1] * np.array([0.0, 0.0, s, s]) + m[0, 2]
        ys = m[1, 0] * np.array([0.0, s, 0.0, s]) + m[1, 1] * np.array([0.0, 0.0, s, s]) + m[1, 2]
        x0 = min(max(math.floor(xs.min()) - 1, 0), w - 1)
        y0 = min(max(math.floor(ys.min()) - 1, 0), h - 1)
        x1 = max(min(math.ceil(xs.max()) + 2, w), x0 + 1)
        y1 = max(min(math.ceil(ys.max()) + 2, h), y0 + 1)
        part = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_BGR2RGBA)
        m[0, 2] -= x0
        m[1, 2] -= y0
        cv2.warpAffine(
            part,
            m,
            (self.size, self.size),
            dst=self._rgba,
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=self._border,
        )
        cv2.cvtColor(self._rgba, cv2.COLOR_RGBA2RGB, dst=self._rgb)
        tensor = self.tensor if out is None else out
        np.multiply(self._rgb, self._alpha, out=tensor[0])
        if self._beta:
            tensor[0] += self._beta
        return tensor

    def to_source(self, pts: np.ndarray) -> np.ndarray:
        """(N, 2) model-input pixels → (N, 2) source pixels, with the last crop's ROI."""
        return (pts[:, :2] @ self.matrix[:, :2].T + self.matrix[:, 2]).astype(np.float32)


def load_model(name: str, path: str | Path | None, backend: str, num_threads: int) -> TFLiteModel:
    """Loads a model by manifest name (``edgemm models install`` puts it in the cache) or an
    explicit file path. Call it on the thread that will run the model."""
    from ..models import load_manifest, model_path

    if path is None:
        path = model_path(name)
    model = TFLiteModel(path, backend=backend, num_threads=num_threads, name=name)
    entry = load_manifest().get(name)
    if entry is not None:  # a replacement file must have the signature this encoder expects
        for i, spec in enumerate(entry.inputs):
            if i >= len(model.inputs) or not spec.matches(model.inputs[i].shape):
                got = [list(t.shape) for t in model.inputs]
                raise ModelError(
                    f"model {Path(path).name} has inputs {got}, but the {name} encoder needs "
                    f"{[list(s.shape) for s in entry.inputs]}",
                    f"use the default model: edgemm models install {name}",
                )
    return model


def output_index(model: TFLiteModel, last_dim: int) -> int:
    """Index of the output tensor whose last dimension is ``last_dim`` (order differs by
    converter, shapes do not)."""
    for i, t in enumerate(model.outputs):
        if t.shape[-1] == last_dim:
            return i
    shapes = [t.shape for t in model.outputs]
    raise ModelError(
        f"model {model.name} has no output with last dimension {last_dim} (outputs {shapes})",
        repair_hint(model.path),
    )


class SsdDetector:
    """A single-shot detector as MediaPipe runs them (BlazeFace, palm detection): letterbox,
    invoke, decode anchors, weighted NMS, map back to source pixels. Subclasses set the model
    and its geometry and wrap :meth:`detect_points` in their own records. One per thread."""

    MODEL = ""
    SIZE = 128
    STRIDES: tuple[int, ...] = (8, 16, 16, 16)
    KEYPOINTS = 6
    VALUE_RANGE = (-1.0, 1.0)

    def __init__(
        self,
        min_score: float = 0.5,
        iou_threshold: float = 0.3,
        model: str | Path | None = None,
        backend: str = "auto",
        num_threads: int = 1,
    ) -> None:
        self.model = load_model(self.MODEL, model, backend, num_threads)
        self._reg = output_index(self.model, 4 + 2 * self.KEYPOINTS)
        self._cls = output_index(self.model, 1)
        self.letterbox = Letterbox(self.SIZE, self.VALUE_RANGE)
        self.decoder = SsdDecoder(self.SIZE, self.STRIDES, self.KEYPOINTS, min_score, iou_threshold)

    def detect_points(self, image: np.ndarray) -> list[tuple[float, np.ndarray]]:
        """(score, points) best first; points are the box corners then the keypoints, in source
        pixels."""
        self.model.fill_input(0, self.letterbox, image)
        self.model.invoke()
        reg = self.model.output(self._reg)[0]
        logits = self.model.output(self._cls)[0, :, 0]
        return [
            (score, self.letterbox.to_source(pts))
            for score, pts in self.decoder.decode(reg, logits)
        ]
