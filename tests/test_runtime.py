from __future__ import annotations

import numpy as np
import pytest

from edgemm.errors import ModelError
from edgemm.models import model_path
from edgemm.runtime import TFLiteModel, available_backends, dequantize, quantize, resolve_backend


def test_quantize_roundtrip_uses_scale_and_zero_point() -> None:
    x = np.array([-1.0, -0.5, 0.0, 0.26, 1.0, 5.0], np.float32)
    q = quantize(x, 0.01, -3, np.int8)
    assert q.dtype == np.int8
    assert q.tolist() == [-103, -53, -3, 23, 97, 127]  # 5.0 saturates
    np.testing.assert_allclose(dequantize(q, 0.01, -3)[:5], x[:5], atol=0.005)
    u = quantize(np.array([0.0, 1.0], np.float32), 1 / 255, 0, np.uint8)
    assert u.tolist() == [0, 255]


def test_backend_resolution_errors_name_the_fix() -> None:
    assert resolve_backend("auto") in ("litert", "tflite-runtime")
    with pytest.raises(ModelError, match="use one of"):
        resolve_backend("coral")
    if "tflite-runtime" not in available_backends():
        with pytest.raises(ModelError, match=r"edgemm\[tflite\]"):
            resolve_backend("tflite-runtime")


def test_missing_and_garbage_model_files(tmp_path) -> None:
    with pytest.raises(ModelError, match="not found.*edgemm models install"):
        TFLiteModel(tmp_path / "nope.tflite")
    bad = tmp_path / "face_detection_short_range.tflite"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(ModelError) as ei:
        TFLiteModel(bad)
    assert "cannot be loaded" in str(ei.value)
    assert "edgemm models install --force face_detection_short_range" in str(ei.value)


def test_int8_model_runs_with_float_in_and_out() -> None:
    m = TFLiteModel(model_path("micro_hey_jarvis"))
    assert m.inputs[0].quantized and m.inputs[0].dtype == np.int8
    (y,) = m.run(np.zeros((1, 3, 40), np.float32))
    assert y.dtype == np.float32 and 0.0 <= float(y.ravel()[0]) <= 1.0


@pytest.mark.skipif(
    len(available_backends()) < 2,
    reason="only one TFLite backend is installed "
    "(tflite-runtime needs numpy < 2; see the numpy-1 stack in the README)",
)
def test_backends_agree_on_the_same_model() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (1, 128, 128, 3)).astype(np.float32)
    a = TFLiteModel(model_path("face_detection_short_range"), backend="litert").run(x)
    b = TFLiteModel(model_path("face_detection_short_range"), backend="tflite-runtime").run(x)
    for ya, yb in zip(a, b, strict=True):
        np.testing.assert_allclose(ya, yb, atol=1e-3)


def test_a_model_with_the_wrong_signature_is_refused_at_start() -> None:
    from edgemm.encoders.face import FaceDetector

    with pytest.raises(ModelError) as ei:  # the hand landmark model in place of BlazeFace
        FaceDetector(model=model_path("hand_landmark_lite"))
    msg = str(ei.value)
    assert "hand_landmark_lite.tflite has inputs [[1, 224, 224, 3]]" in msg
    assert "face_detection_short_range" in msg and "edgemm models install" in msg


def test_a_wake_word_head_with_the_wrong_signature_is_refused() -> None:
    from edgemm.encoders.audio import WakeWordDetector

    with pytest.raises(ModelError):
        WakeWordDetector([model_path("micro_hey_jarvis")])
