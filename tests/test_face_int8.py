"""The weight-only int8 face models (bundled, made by tools/quantize_models.py) meet the same
accuracy bars as the float ones, through the same code the face stage runs."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from test_vision_encoders import ASTRONAUT_FACE, _bgr, _lfw_frames

from edgemm.encoders.face import FaceDetector, FaceMesh
from edgemm.models import install, model_path
from edgemm.pipeline import model_file


@pytest.fixture(scope="module")
def int8() -> tuple[FaceDetector, FaceMesh]:
    install(["face_detection_short_range_wi8", "face_landmark_wi8"], progress=lambda _m: None)
    det = FaceDetector(model=model_path("face_detection_short_range_wi8"))
    mesh = FaceMesh(model=model_path("face_landmark_wi8"))
    assert det.model.inputs[0].shape == (1, 128, 128, 3)
    return det, mesh


def _confirmed(det: FaceDetector, mesh: FaceMesh, img: np.ndarray) -> list:
    return [f for f in det.detect(img) if mesh.process(img, f) is not None]


def test_int8_astronaut_one_face_within_10_px_and_no_face_in_cat_or_coffee(int8) -> None:
    det, mesh = int8
    faces = _confirmed(det, mesh, _bgr(skimage.data.astronaut()))
    assert len(faces) == 1
    assert np.max(np.abs(np.asarray(faces[0].box) - ASTRONAUT_FACE)) <= 10
    for name in ("chelsea", "coffee"):
        assert _confirmed(det, mesh, _bgr(getattr(skimage.data, name)())) == []


@pytest.mark.slow
def test_int8_lfw_subset(int8) -> None:
    det, mesh = int8
    frames = _lfw_frames()
    hits = [bool(_confirmed(det, mesh, f)) for f in frames]
    assert sum(hits[:100]) >= 98
    assert sum(hits[100:]) <= 1


def test_config_chooses_the_model_by_name_or_path(tmp_path) -> None:
    assert (
        model_file("face_detection_short_range_wi8").name == "face_detection_short_range_wi8.tflite"
    )
    from edgemm.errors import ModelError

    with pytest.raises(ModelError, match="neither a manifest name nor a file"):
        model_file(str(tmp_path / "nope.tflite"))
