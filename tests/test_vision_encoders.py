"""Vision encoders and stages on real images (scikit-image) with the real MediaPipe models.

No image bundled with scikit-image (or anything else available offline) shows a hand, so the
hand pipeline is checked for staying silent on real images; the gesture rules are tested on
landmark arrays in test_gestures.py.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import skimage.data

from edgemm.encoders.face import FaceDetector, FaceMesh
from edgemm.encoders.hands import Hand, HandTracker, PalmDetector, palm_roi
from edgemm.encoders.vision import RotatedRect, ssd_anchor_centers
from edgemm.errors import ConfigError, ModelError
from edgemm.stages.base import CollectingContext, Frame, VideoStage
from edgemm.stages.vision import FaceStage, HandStage

# The astronaut's face in skimage.data.astronaut() (512×512), found by inspecting 8× zoomed
# crops with a 5 px grid: left and right cheek contours at eye height (ears excluded), top at
# the hair fringe above the eyebrows, bottom at the chin.
ASTRONAUT_FACE = (181, 82, 269, 178)


def _bgr(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="session")
def models() -> None:
    from edgemm.models import model_path

    try:
        for name in (
            "face_detection_short_range",
            "face_landmark",
            "palm_detection_lite",
            "hand_landmark_lite",
        ):
            model_path(name)
    except ModelError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def detector(models: None) -> FaceDetector:
    return FaceDetector()


@pytest.fixture(scope="session")
def mesh(models: None) -> FaceMesh:
    return FaceMesh()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return _bgr(skimage.data.astronaut())


def test_anchor_layouts() -> None:
    face = ssd_anchor_centers(128, (8, 16, 16, 16))
    palm = ssd_anchor_centers(192, (8, 16, 16, 16))
    assert face.shape == (896, 2) and palm.shape == (2016, 2)
    # Two anchors per cell on the 16×16 map, then six per cell on the 8×8 map.
    np.testing.assert_allclose(face[0], face[1])
    np.testing.assert_allclose(face[:2], [[0.5 / 16, 0.5 / 16]] * 2)
    np.testing.assert_allclose(face[512:518], [[0.5 / 8, 0.5 / 8]] * 6)
    np.testing.assert_allclose(palm[-1], [11.5 / 12, 11.5 / 12])


def test_astronaut_has_one_face_at_the_true_box(
    detector: FaceDetector, astronaut: np.ndarray
) -> None:
    faces = detector.detect(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.8
    np.testing.assert_allclose(face.box, ASTRONAUT_FACE, atol=10)
    right_eye, left_eye, nose = face.keypoints[:3]
    assert right_eye[0] < nose[0] < left_eye[0]  # un-mirrored image: subject's right on the left
    assert face.frontalness > 0.7


@pytest.mark.parametrize("name", ["chelsea", "coffee"])
def test_no_face_on_cat_and_coffee(detector: FaceDetector, name: str) -> None:
    assert detector.detect(_bgr(getattr(skimage.data, name)())) == []


def test_letterbox_is_undone_for_any_frame_shape(
    detector: FaceDetector, astronaut: np.ndarray
) -> None:
    # The face region pasted into landscape and portrait frames, and the image at twice its
    # size, is found where it was put.
    crop = astronaut[40:300, 100:400]  # 260×300 around the face
    for shape, (ox, oy) in (((300, 400), (60, 30)), ((420, 320), (10, 120))):
        frame = np.zeros((*shape, 3), np.uint8)
        frame[oy : oy + 260, ox : ox + 300] = crop
        (face,) = detector.detect(frame)
        shift = np.array([ox - 100, oy - 40, ox - 100, oy - 40])
        np.testing.assert_allclose(face.box, np.add(ASTRONAUT_FACE, shift), atol=10)
    big = cv2.resize(astronaut, (1024, 1024), interpolation=cv2.INTER_LINEAR)
    (face,) = detector.detect(big)
    np.testing.assert_allclose(face.box, np.multiply(ASTRONAUT_FACE, 2), atol=20)


def test_face_mesh_on_astronaut(
    detector: FaceDetector, mesh: FaceMesh, astronaut: np.ndarray
) -> None:
    (face,) = detector.detect(astronaut)
    result = mesh.process(astronaut, face)
    assert result is not None and result.presence > 0.9
    lm = result.landmarks
    assert lm.shape == (468, 3)
    x1, y1, x2, y2 = ASTRONAUT_FACE
    inside = (
        (lm[:, 0] >= x1 - 5) & (lm[:, 0] <= x2 + 5) & (lm[:, 1] >= y1 - 5) & (lm[:, 1] <= y2 + 5)
    )
    assert inside.mean() > 0.95
    # Lips parted by a smile, not an open mouth (inner-lip gap ≈ 0.16 of the mouth width).
    assert result.mouth_open < 0.3
    assert result.frontalness > 0.8
    # The mesh's nose tip agrees with the detector's nose keypoint.
    assert np.hypot(*(lm[1, :2] - face.keypoints[2])) < 0.1 * face.width


@pytest.mark.parametrize("angle", [30, -45, 90])
def test_face_mesh_follows_a_rotated_face(
    detector: FaceDetector, mesh: FaceMesh, astronaut: np.ndarray, angle: int
) -> None:
    m = cv2.getRotationMatrix2D((256, 256), angle, 1.0)
    image = cv2.warpAffine(astronaut, m, (512, 512))
    (face,) = detector.detect(image)
    result = mesh.process(image, face)
    assert result is not None and result.presence > 0.9
    nose = m @ np.array([225.0, 125.0, 1.0])  # the nose tip in the upright image, rotated
    assert np.hypot(*(result.landmarks[1, :2] - nose)) < 8
    assert result.mouth_open < 0.3


def _lfw_frames() -> list[np.ndarray]:
    """lfw_subset's 25×25 crops (100 faces, then 100 non-faces) as a camera would see them: each
    upscaled bilinearly to 96×96 and pasted in the centre of a 256×256 mid-grey frame (the face
    then spans ~35 % of the frame width, typical for someone in front of a laptop). 80 and 112
    px give the same counts."""
    frames = []
    for crop in skimage.data.lfw_subset():
        g = cv2.resize(
            np.round(crop * 255).astype(np.uint8), (96, 96), interpolation=cv2.INTER_LINEAR
        )
        canvas = np.full((256, 256), 128, np.uint8)
        canvas[80:176, 80:176] = g
        frames.append(cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR))
    return frames


@pytest.mark.slow
def test_lfw_subset_faces_and_non_faces(detector: FaceDetector, mesh: FaceMesh) -> None:
    frames = _lfw_frames()
    detected = [detector.detect(f) for f in frames]
    # The detector alone finds every face; the non-faces include close-ups of eyes and half
    # faces, some of which it accepts at 0.5, so the face mesh's face flag confirms (as
    # FaceStage does with mesh=True).
    assert sum(bool(d) for d in detected[:100]) >= 98
    confirmed = [
        any(mesh.process(f, x) is not None for x in d)
        for f, d in zip(frames, detected, strict=True)
    ]
    assert sum(confirmed[:100]) >= 98
    assert sum(confirmed[100:]) <= 1


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee"])
def test_no_hands_in_real_images_without_hands(models: None, name: str) -> None:
    tracker = HandTracker()
    image = _bgr(getattr(skimage.data, name)())
    assert tracker.process(image) == []
    # Palm candidates the detector does produce at a low threshold are rejected by the
    # landmark model's hand flag.
    palms = PalmDetector(min_score=0.05)
    for palm in palms.detect(image)[:5]:
        assert tracker.landmarker.process(image, palm_roi(palm)) is None


def test_hand_landmarker_maps_back_through_the_roi(models: None, astronaut: np.ndarray) -> None:
    lm = HandTracker().landmarker
    lm.min_presence = 0.0  # keep the (meaningless) points to check the geometry
    roi = RotatedRect(300.0, 350.0, 160.0, 160.0, 0.6)
    hand = lm.process(astronaut, roi)
    assert hand is not None and hand.landmarks.shape == (21, 3)
    back = (hand.landmarks[:, :2] - [roi.cx, roi.cy]) @ np.array(
        [
            [np.cos(roi.rotation), -np.sin(roi.rotation)],
            [np.sin(roi.rotation), np.cos(roi.rotation)],
        ]
    )
    assert np.all(np.abs(back) <= roi.width)  # the points lie around the ROI, not elsewhere


# --- stages -----------------------------------------------------------------------------------


def _clip(
    first: np.ndarray, second: np.ndarray, fps: float = 15.0, seconds: float = 1.0
) -> list[Frame]:
    n = round(fps * seconds)
    return [
        Frame(image=img, t=i / fps, index=i) for i, img in enumerate([first] * n + [second] * n)
    ]


@pytest.mark.slow
@pytest.mark.parametrize("use_mesh", [False, True])
def test_face_stage_presence_on_then_off(
    models: None, astronaut: np.ndarray, use_mesh: bool
) -> None:
    stage = FaceStage(mesh=use_mesh, on_s=0.2, off_s=0.5)
    assert isinstance(stage, VideoStage)
    ctx = CollectingContext()
    for frame in _clip(astronaut, _bgr(skimage.data.coffee())):
        stage.process_frame(frame, ctx)
    assert [(e.type, e.label, e.data["present"], e.data["count"]) for e in ctx.events] == [
        ("presence", "face", True, 1),
        ("presence", "face", False, 0),
    ]
    on, off = ctx.events
    assert on.source == off.source == "vision.face"
    assert abs(on.t_end - 0.2) <= 0.5 and abs(off.t_end - 1.5) <= 0.5
    assert on.t_start == 0.0 and off.t_start == pytest.approx(1.0)
    (t, feats) = ctx.features.between("face", 0.5, 0.55)[0]
    assert feats["count"] == 1 and 0.02 < feats["area"] < 0.1
    assert 0.35 < feats["cx"] < 0.5 and 0.15 < feats["cy"] < 0.35
    assert feats["frontalness"] > 0.7
    if use_mesh:
        assert 0.0 < feats["mouth_open"] < 0.3
    assert ctx.features.latest("face")[1]["count"] == 0


def test_face_stage_ignores_a_single_frame_blip(models: None, astronaut: np.ndarray) -> None:
    stage = FaceStage(on_s=0.2, off_s=0.5)
    ctx = CollectingContext()
    coffee = _bgr(skimage.data.coffee())
    frames = [coffee] * 5 + [astronaut] + [coffee] * 5
    for i, img in enumerate(frames):
        stage.process_frame(Frame(img, i / 15.0, i), ctx)
    assert ctx.events == []


def _hand(landmarks: np.ndarray, side: str) -> Hand:
    return Hand(landmarks.astype(np.float32), side, 0.9, 0.95, RotatedRect(0, 0, 1, 1, 0))


def test_hand_stage_debounces_gestures() -> None:
    from test_gestures import POSES, transform

    stage = HandStage(hold_frames=3)
    ctx = CollectingContext()
    fist = transform(POSES["fist"], scale=100.0, shift=(300.0, 200.0))
    palm = transform(POSES["open_palm"], scale=100.0, shift=(300.0, 200.0))
    sequence = [[fist]] * 2 + [[]] + [[fist]] * 6 + [[palm]] * 4 + [[fist]] * 3
    for i, hands in enumerate(sequence):
        stage.observe([_hand(h, "right") for h in hands], i / 7.5, ctx, 640, 480)
    assert [(e.type, e.label, e.data) for e in ctx.events] == [
        ("gesture", "fist", {"hand": "right"}),
        ("gesture", "open_palm", {"hand": "right"}),
        ("gesture", "fist", {"hand": "right"}),
    ]
    assert ctx.events[0].t_start == pytest.approx(3 / 7.5) and ctx.events[0].t_end == pytest.approx(
        5 / 7.5
    )
    assert all(e.source == "vision.hands" for e in ctx.events)
    _, feats = ctx.features.latest("gesture")
    assert feats["count"] == 1 and feats["hands"][0]["gesture"] == "fist"


@pytest.mark.slow
def test_hand_stage_is_silent_on_a_face(models: None, astronaut: np.ndarray) -> None:
    stage = HandStage()
    assert isinstance(stage, VideoStage)
    ctx = CollectingContext()
    for frame in _clip(astronaut, astronaut, fps=7.5):
        stage.process_frame(frame, ctx)
    assert ctx.events == []
    assert ctx.features.latest("gesture")[1]["count"] == 0


def test_face_tracking_follows_a_moving_face_and_detects_again_when_lost(
    models: None, astronaut: np.ndarray
) -> None:
    """detect_every=5: the detector runs on every 5th frame; in between the mesh follows the
    face from its own landmarks. The face drifts 4 px per frame; the tracked centre stays on
    the one the detector finds on every frame. When the face is gone, the detector runs on
    every frame again and presence goes off as without tracking."""
    h, w = astronaut.shape[:2]
    moving = [
        cv2.warpAffine(astronaut, np.float32([[1, 0, 4 * i], [0, 1, 2 * i]]), (w, h))
        for i in range(20)
    ]
    coffee = _bgr(skimage.data.coffee())
    frames = [*moving, *[coffee] * 12]
    tracked = FaceStage(mesh=True, detect_every=5)
    plain = FaceStage(mesh=True)
    ctx_t, ctx_p = CollectingContext(), CollectingContext()
    for i, img in enumerate(frames):
        tracked.process_frame(Frame(img, i / 15.0, i), ctx_t)
        plain.process_frame(Frame(img, i / 15.0, i), ctx_p)
    # 20 face frames: detections at 0, 5, 10, 15; then every one of the 12 empty frames
    assert tracked.tracked_frames == 16
    assert tracked.detector_runs == 4 + 12
    assert plain.detector_runs == 32 and plain.tracked_frames == 0
    for (_, ft), (_, fp) in zip(
        ctx_t.features.between("face", 0.0, 19.5 / 15), ctx_p.features.between("face", 0.0, 19.5 / 15),
        strict=True,
    ):  # fmt: skip
        assert ft["count"] == fp["count"] == 1
        assert abs(ft["cx"] - fp["cx"]) * w < 6 and abs(ft["cy"] - fp["cy"]) * h < 8
        # the tracking ROI is MediaPipe's (the landmarks' box, 1.5x), a little wider than the
        # detector's, so the mouth reads a little differently; both see it closed
        assert 0.0 < ft["mouth_open"] < 0.3 and 0.0 < fp["mouth_open"] < 0.3
    # the drift moved the face 76 px right: the tracked box went along
    first, last = ctx_t.features.between("face", 0.0, 0.01)[0][1], ctx_t.features.latest("face")
    assert ctx_t.features.between("face", 19 / 15 - 0.01, 19 / 15 + 0.01)[0][1]["cx"] * w > (
        first["cx"] * w + 60
    )
    assert last[1]["count"] == 0
    assert [(e.data["present"]) for e in ctx_t.events] == [e.data["present"] for e in ctx_p.events]
    assert [round(e.t_start, 3) for e in ctx_t.events] == [
        round(e.t_start, 3) for e in ctx_p.events
    ]


def test_face_tracking_needs_the_mesh() -> None:
    with pytest.raises(ConfigError, match="detect_every"):
        FaceStage(mesh=False, detect_every=3)


def test_palm_detection_every_nth_frame_while_waiting_for_hands(models: None) -> None:
    coffee = _bgr(skimage.data.coffee())
    every = HandTracker(detect_every=4)
    always = HandTracker()
    for _ in range(12):
        assert every.process(coffee) == [] and always.process(coffee) == []
    assert always.palm_runs == 12
    assert every.palm_runs == 3  # calls 1, 5, 9


def test_palm_detection_runs_at_once_when_a_tracked_hand_is_lost(models: None) -> None:
    coffee = _bgr(skimage.data.coffee())
    tracker = HandTracker(detect_every=10)
    tracker.process(coffee)  # the first call detects
    assert tracker.palm_runs == 1
    tracker.process(coffee)
    assert tracker.palm_runs == 1  # nothing tracked, not due: skipped
    # a hand was being tracked here; the landmark model no longer finds it in this frame
    tracker._rois = [RotatedRect(200.0, 150.0, 120.0, 120.0, 0.0)]
    assert tracker.process(coffee) == []
    assert tracker.palm_runs == 2  # lost: palm detection at once, not 8 frames later
