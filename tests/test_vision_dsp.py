"""The vision pre- and post-processing kept cheap for speed (issue #7) still computes what the
straightforward version computes: weighted NMS against a full-IoU-matrix reference, ROI crops
against a warp of the whole image, and inputs written into the interpreter's own buffer
against a copied-in tensor."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import skimage.data

from edgemm.encoders.face import FaceDetector, FaceMesh, face_roi
from edgemm.encoders.vision import RoiCrop, RotatedRect, weighted_nms, weighted_nms_lists
from edgemm.errors import ModelError


def reference_weighted_nms(
    rows: np.ndarray, scores: np.ndarray, thr: float
) -> list[tuple[float, np.ndarray]]:
    """MediaPipe's weighted suppression written out plainly: the full IoU matrix, then a
    greedy pass in score order."""
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    n = len(order)
    iou = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            p, q = rows[order[a]], rows[order[b]]
            iw = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
            ih = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
            inter = iw * ih
            union = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - inter
            iou[a, b] = inter / max(union, 1e-12)
    alive = [True] * n
    out = []
    for a in range(n):
        if not alive[a]:
            continue
        group = [b for b in range(n) if alive[b] and (b == a or iou[a, b] > thr)]
        for b in group:
            alive[b] = False
        w = np.array([scores[order[b]] for b in group], np.float64)
        merged = (w[:, None] * np.array([rows[order[b]] for b in group], np.float64)).sum(0)
        out.append((float(scores[order[a]]), merged / w.sum()))
    return out


def test_weighted_nms_matches_the_plain_reference() -> None:
    rng = np.random.default_rng(7)
    for trial in range(600):
        n = int(rng.integers(1, 30))
        xy = rng.random((n, 2)) * 100
        wh = rng.random((n, 2)) * 50 * (rng.random((n, 1)) > 0.05)  # some zero-size boxes
        rows = np.concatenate([xy, xy + wh, rng.random((n, 12)) * 100], 1).astype(np.float32)
        scores = rng.random(n).astype(np.float32)
        if trial % 5 == 0:
            scores[:] = 0.75  # ties keep the input order
        want = reference_weighted_nms(rows, scores, 0.3)
        for got in (
            weighted_nms(rows.copy(), scores.copy(), 0.3),  # numpy, for many candidates
            weighted_nms_lists(rows.copy(), scores.tolist(), 0.3),  # plain Python, for a few
        ):
            assert len(got) == len(want)
            for (gs, gr), (ws, wr) in zip(got, want, strict=True):
                assert gs == pytest.approx(ws)
                np.testing.assert_allclose(gr, wr, rtol=1e-5, atol=1e-3)


def reference_crop(image: np.ndarray, crop: RoiCrop) -> np.ndarray:
    """The last crop's matrix applied to the whole image with a 3-channel warp."""
    m = crop.matrix.astype(np.float64)
    m[:, 2] += m[:, :2] @ np.array([0.5, 0.5]) - 0.5
    bgr = cv2.warpAffine(
        image,
        m,
        (crop.size, crop.size),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB).astype(np.float32) / 255.0


@pytest.mark.parametrize("size", [192, 224])
def test_roi_crop_equals_a_warp_of_the_whole_image(size: int) -> None:
    image = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)[::2, ::2].copy()
    h, w = image.shape[:2]
    rng = np.random.default_rng(3)
    crop = RoiCrop(size, (0.0, 1.0), cv2.BORDER_REPLICATE)
    worst = 0.0
    for _ in range(120):
        side = float(rng.uniform(4, 2 * max(w, h)))
        rect = RotatedRect(
            float(rng.uniform(-0.3 * w, 1.3 * w)),  # partly and wholly outside too
            float(rng.uniform(-0.3 * h, 1.3 * h)),
            side,
            side,
            float(rng.uniform(-math.pi, math.pi)),
        )
        got = crop(image, rect)[0]
        want = reference_crop(image, crop)
        diff = np.abs(got - want)
        worst = max(worst, float(diff.max()))
        assert (diff > 1e-6).mean() < 0.001  # at most a rounding step on a few values
    assert worst <= 1.0 / 255 + 1e-6


@pytest.fixture(scope="module")
def face_models() -> tuple[FaceDetector, FaceMesh]:
    try:
        return FaceDetector(), FaceMesh()
    except ModelError as exc:
        pytest.skip(str(exc))


def test_inputs_written_in_place_give_the_same_outputs(
    face_models: tuple[FaceDetector, FaceMesh],
) -> None:
    det, mesh = face_models
    image = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    # twice in a row: the in-place view must be gone before each invoke
    faces = det.detect(image)
    faces = det.detect(image)
    assert len(faces) == 1
    det.model.set_input(0, det.letterbox(image).copy())  # the copying way
    det.model.invoke()
    reg = det.model.output(det._reg)[0]
    logits = det.model.output(det._cls)[0, :, 0]
    (score, pts), *_ = det.decoder.decode(reg, logits)
    assert faces[0].score == pytest.approx(score, abs=1e-6)
    np.testing.assert_allclose(faces[0].box, det.letterbox.to_source(pts)[:2].reshape(4), atol=1e-3)

    r = mesh.process(image, faces[0])
    assert r is not None
    mesh.model.set_input(0, mesh.crop(image, face_roi(faces[0])).copy())
    mesh.model.invoke()
    raw = mesh.model.output(mesh._lm).reshape(468, 3)
    np.testing.assert_allclose(r.landmarks[:, :2], mesh.crop.to_source(raw), atol=1e-3)


def test_both_decode_paths_agree_on_real_outputs(
    face_models: tuple[FaceDetector, FaceMesh], monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgemm.encoders import vision

    det = face_models[0]
    image = cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR)
    det.model.fill_input(0, det.letterbox, image)
    det.model.invoke()
    reg = det.model.output(det._reg)[0].copy()
    logits = det.model.output(det._cls)[0, :, 0].copy()
    decoder = vision.SsdDecoder(128, det.STRIDES, det.KEYPOINTS, min_score=0.02)
    n = int((logits > decoder.min_logit).sum())
    assert n > 8  # enough candidates to merge and to keep more than one
    results = []
    for small in (0, 10_000):  # numpy path, plain-Python path
        monkeypatch.setattr(vision, "SMALL_NMS", small)
        results.append(decoder.decode(reg, logits))
    a, b = results
    assert len(a) == len(b) > 1
    for (sa, pa), (sb, pb) in zip(a, b, strict=True):
        assert sa == pytest.approx(sb, abs=1e-6)
        np.testing.assert_allclose(pa, pb, atol=1e-3)
