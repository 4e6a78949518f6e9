"""picamera2 source: a fake ``picamera2`` module at the device seam; the real CameraSource
reader thread, watchdog, FrameRing and colour conversion run."""

from __future__ import annotations

import threading
import time
from typing import Any

import cv2
import numpy as np
import pytest
from skimage import data

from edgemm import Pipeline, load_config
from edgemm.buffers import FrameRing
from edgemm.clock import StreamClock
from edgemm.errors import ConfigError, SourceError
from edgemm.sources.camera import CameraSource
from edgemm.sources.picamera import (
    Picamera2Capture,
    import_picamera2,
    list_csi_cameras,
    picamera2_factory,
    to_bgr,
)

W, H = 160, 120


def _astronaut_bgr() -> np.ndarray:
    rgb = cv2.resize(data.astronaut(), (W, H), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb[:, :, ::-1])


def _as_format(bgr: np.ndarray, fmt: str) -> np.ndarray:
    """What libcamera hands out for ``fmt``, with 32 bytes of row padding like real strides."""
    if fmt == "RGB888":
        img = bgr
    elif fmt == "XRGB8888":
        img = np.dstack([bgr, np.full(bgr.shape[:2], 255, np.uint8)])
    elif fmt == "BGR888":
        img = bgr[:, :, ::-1]
    elif fmt == "XBGR8888":
        img = np.dstack([bgr[:, :, ::-1], np.full(bgr.shape[:2], 255, np.uint8)])
    else:
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
    pad = np.zeros((img.shape[0], 32 // img.shape[2], img.shape[2]), np.uint8)
    return np.ascontiguousarray(np.concatenate([img, pad], axis=1))


class _Job:
    pass


class FakePicamera2Module:
    """Stands in for the ``picamera2`` module: each opened camera delivers ``good`` frames of
    the astronaut (frame number in pixel [0, 0]) at ~100 fps, then stalls (wait times out)
    until ``down_s`` has passed; opening during that time raises like an unplugged sensor."""

    def __init__(self, fmt: str = "RGB888", good: int = 40, down_s: float = 0.5) -> None:
        mod = self
        self.fmt = fmt
        self.good = good
        self.down_s = down_s
        self.opened = 0
        self.closed = 0
        self.configs: list[dict[str, Any]] = []
        self.delivered = 0
        self.stalled_since: float | None = None
        self.pending_waits = 0
        self.lock = threading.Lock()
        self.base = _astronaut_bgr()

        class Picamera2:
            def __init__(self, camera_num: int = 0) -> None:
                if mod.stalled_since is not None:
                    if time.monotonic() - mod.stalled_since < mod.down_s:
                        raise RuntimeError("Camera __init__ sequence did not complete.")
                    mod.stalled_since = None
                    mod.good = mod.delivered + 10**9  # healthy after the reconnect
                mod.opened += 1
                self.num = camera_num
                self.started = False

            @staticmethod
            def global_camera_info() -> list[dict[str, Any]]:
                return [{"Model": "imx708", "Id": "/base/soc/i2c0mux/i2c@1/imx708@1a"}]

            def create_video_configuration(self, **kw: Any) -> dict[str, Any]:
                mod.configs.append(kw)
                return kw

            def configure(self, config: dict[str, Any]) -> None:
                self.config = config

            def start(self) -> None:
                self.started = True

            def capture_array(self, name: str = "main", wait: Any = None) -> _Job:
                assert name == "main" and wait is False and self.started
                with mod.lock:
                    mod.pending_waits += 1
                return _Job()

            def wait(self, job: _Job, timeout: float | None = None) -> np.ndarray:
                assert timeout is not None  # never an unbounded wait in the reader thread
                if mod.delivered >= mod.good:
                    if mod.stalled_since is None:
                        mod.stalled_since = time.monotonic()
                    time.sleep(min(timeout, 0.05))
                    raise TimeoutError
                time.sleep(0.01)
                with mod.lock:
                    mod.pending_waits -= 1
                mod.delivered += 1
                bgr = mod.base.copy()
                bgr[0, 0] = mod.delivered % 256
                return _as_format(bgr, mod.fmt)

            def stop(self) -> None:
                self.started = False

            def close(self) -> None:
                mod.closed += 1

        self.Picamera2 = Picamera2


@pytest.mark.parametrize("fmt", ["RGB888", "XRGB8888", "BGR888", "XBGR8888", "YUV420"])
def test_every_format_becomes_the_same_bgr_image(fmt: str) -> None:
    bgr = _astronaut_bgr()
    out = to_bgr(_as_format(bgr, fmt), fmt, (W, H))
    assert out.shape == (H, W, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    if fmt == "YUV420":  # chroma is subsampled: close, not equal
        assert float(np.mean(np.abs(out.astype(int) - bgr.astype(int)))) < 6.0
    else:
        np.testing.assert_array_equal(out, bgr)
    # channel order: BGR's last channel is the picture's red (a swap would be caught: the
    # astronaut picture is much redder than it is blue)
    rgb = cv2.resize(data.astronaut(), (W, H), interpolation=cv2.INTER_AREA)
    assert abs(rgb[..., 0].mean() - rgb[..., 2].mean()) > 20
    assert abs(out[..., 2].mean() - rgb[..., 0].mean()) < 3


def test_capture_configures_the_camera_and_returns_bgr() -> None:
    mod = FakePicamera2Module(fmt="XRGB8888", good=5)
    cap = picamera2_factory(mod, fmt="XRGB8888", timeout_s=0.2)("0", W, H, 15.0)
    assert isinstance(cap, Picamera2Capture) and cap.isOpened()
    (cfg,) = mod.configs
    assert cfg["main"] == {"size": (W, H), "format": "XRGB8888"}
    assert cfg["controls"]["FrameRate"] == 15.0
    ok, img = cap.read()
    assert ok and img is not None and img.shape == (H, W, 3)
    np.testing.assert_array_equal(img[1:], _astronaut_bgr()[1:])
    for _ in range(4):
        assert cap.read()[0]
    # stalled sensor: read gives up after the timeout, and does not stack requests
    assert cap.read() == (False, None)
    assert cap.read() == (False, None)
    assert mod.pending_waits == 1
    cap.release()
    assert not cap.isOpened() and mod.closed == 1
    assert cap.read() == (False, None)


def test_camera_source_keeps_newest_frames_and_reconnects_a_stalled_csi_camera() -> None:
    mod = FakePicamera2Module(good=40, down_s=0.5)
    ring = FrameRing(2)
    reports: list[tuple[str, str, dict[str, Any]]] = []
    src = CameraSource(
        0,
        ring,
        StreamClock(16000),
        W,
        H,
        30.0,
        reconnect_after_s=0.3,
        backoff_max_s=0.5,
        open_capture=picamera2_factory(mod, timeout_s=0.1),
        on_report=lambda *r: reports.append(r),
    )
    src.start()
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and not (src.reconnects >= 1 and mod.delivered > 80):
        time.sleep(0.05)
    src.stop()
    assert not src.alive
    frame, _ = ring.take_newest(-1, timeout=1.0)
    assert src.reconnects >= 1 and mod.opened >= 2
    assert mod.closed == mod.opened  # every camera released, including at stop
    assert any(t == "error" and "reconnecting" in d["message"] for t, _, d in reports)
    assert any(t == "status" and d.get("event") == "reconnected" for t, _, d in reports)
    # newest-frame semantics: a 2-slot ring dropped the frames nobody took
    assert ring.dropped > 0
    assert frame is not None and frame.index == src.frames - 1
    assert frame.image.shape == (H, W, 3)
    np.testing.assert_array_equal(frame.image[1:], _astronaut_bgr()[1:])
    assert int(frame.image[0, 0, 0]) == mod.delivered % 256


def test_missing_picamera2_names_the_apt_package_and_the_venv_flag() -> None:
    try:
        import_picamera2()
    except SourceError as exc:
        assert "python3-picamera2" in str(exc) and "--system-site-packages" in str(exc)
    else:  # pragma: no cover - only on a Pi with the apt package
        pytest.skip("picamera2 is installed here")
    assert list_csi_cameras() == []
    cams = list_csi_cameras(FakePicamera2Module())
    assert cams == [{"index": 0, "model": "imx708", "id": "/base/soc/i2c0mux/i2c@1/imx708@1a"}]
    with pytest.raises(SourceError, match="camera number"):
        picamera2_factory(FakePicamera2Module())("/dev/video0", W, H, 30.0)


def test_config_backend_is_checked_and_a_live_pipeline_fails_with_the_fix() -> None:
    with pytest.raises(ConfigError, match="opencv"):
        load_config({"video": {"backend": "libcamera"}})
    cfg = load_config({"video": {"backend": "picamera2"}, "audio": {"enabled": False}})
    assert cfg.video.backend == "picamera2"
    try:
        import_picamera2()
    except SourceError:
        pass
    else:  # pragma: no cover
        pytest.skip("picamera2 is installed here")
    p = Pipeline(cfg, stdout=False)
    with pytest.raises(SourceError, match="python3-picamera2"):
        p.run()
