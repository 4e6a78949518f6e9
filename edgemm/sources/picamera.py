"""CSI cameras on the libcamera stack through ``picamera2``, which OpenCV cannot open.

``picamera2`` is imported lazily: it comes from Raspberry Pi OS's apt package
``python3-picamera2`` (built against the system numpy < 2), so the venv must be created with
``--system-site-packages``. Pip cannot install it here or on other machines.

:class:`Picamera2Capture` wraps one camera in the :class:`~edgemm.sources.camera.Capture`
protocol (``isOpened`` / ``read`` / ``release``), so :class:`~edgemm.sources.camera.CameraSource`
keeps owning the device in its reader thread with the same newest-frame ring, watchdog,
reconnect and backoff as for USB cameras. ``read`` waits at most ``timeout_s`` for a frame
(an unanswered request is waited on again by the next ``read``, never stacked), so a stalled
sensor makes the watchdog reconnect instead of blocking the thread forever.

Frames are BGR uint8 as everywhere else in edgemm. libcamera names formats by their
little-endian word layout, so ``RGB888`` is stored as B, G, R bytes (already BGR) and
``XRGB8888`` as B, G, R, X; ``BGR888`` / ``XBGR8888`` hold R, G, B and are converted.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np

from ..errors import SourceError

FORMATS = ("RGB888", "XRGB8888", "BGR888", "XBGR8888", "YUV420")
_INSTALL = (
    "install it with: sudo apt install -y python3-picamera2, and create the venv with "
    "python3 -m venv --system-site-packages (see docs/kiosk.md)"
)


def import_picamera2() -> Any:
    """The ``picamera2`` module, or SourceError naming the apt package and the venv flag."""
    try:
        return importlib.import_module("picamera2")
    except Exception as exc:  # ImportError, or a numpy ABI error in a numpy >= 2 venv
        why = " ".join(str(exc).split())[:120]
        raise SourceError(
            f"video.backend picamera2: cannot import picamera2 ({why})", _INSTALL
        ) from None


def camera_number(device: int | str) -> int:
    if isinstance(device, int):
        return device
    if device.isdigit():
        return int(device)
    raise SourceError(
        f"video.device {device!r} is not a camera number",
        "with video.backend: picamera2 set video.device to 0, 1, ... (edgemm doctor lists them)",
    )


def to_bgr(image: np.ndarray, fmt: str, size: tuple[int, int]) -> np.ndarray:
    """Convert one picamera2 array in ``fmt`` to a contiguous BGR uint8 image of ``size``
    (width, height); row padding that libcamera may add is cropped."""
    w, h = size
    if fmt in ("RGB888", "XRGB8888"):
        out = image[:h, :w, :3]
    elif fmt in ("BGR888", "XBGR8888"):
        out = image[:h, :w, 2::-1]
    elif fmt == "YUV420":  # planar I420: (h * 3 / 2) rows of the (padded) width
        out = cv2.cvtColor(image, cv2.COLOR_YUV2BGR_I420)[:h, :w]
    else:
        raise SourceError(f"picamera2 format {fmt!r} is not supported", f"use one of {FORMATS}")
    return np.ascontiguousarray(out)


class Picamera2Capture:
    """One started ``Picamera2`` camera behind the ``Capture`` protocol."""

    def __init__(
        self,
        module: Any,
        camera_num: int,
        width: int,
        height: int,
        fps: float,
        fmt: str = "RGB888",
        timeout_s: float = 1.0,
    ) -> None:
        if fmt not in FORMATS:
            raise SourceError(f"picamera2 format {fmt!r} is not supported", f"use one of {FORMATS}")
        self.size = (width, height)
        self.fmt = fmt
        self.timeout_s = timeout_s
        self._job: Any = None
        self.cam: Any = None
        cam = module.Picamera2(camera_num)
        try:
            config = cam.create_video_configuration(
                main={"size": (width, height), "format": fmt},
                controls={"FrameRate": float(fps)},
                buffer_count=4,
                queue=False,  # each request waits for a fresh frame, not a queued old one
            )
            cam.configure(config)
            cam.start()
        except Exception:
            cam.close()
            raise
        self.cam = cam

    def isOpened(self) -> bool:  # noqa: N802 - the Capture protocol is OpenCV's
        return self.cam is not None

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.cam is None:
            return False, None
        try:
            if self._job is None:
                self._job = self.cam.capture_array("main", wait=False)
            image = self.cam.wait(self._job, timeout=self.timeout_s)
        except TimeoutError:
            return False, None  # keep the job: the next read waits on it again
        except Exception:
            self._job = None
            return False, None
        self._job = None
        if image is None:
            return False, None
        return True, to_bgr(image, self.fmt, self.size)

    def release(self) -> None:
        cam, self.cam = self.cam, None
        if cam is None:
            return
        try:
            cam.stop()
        finally:
            cam.close()


def picamera2_factory(
    module: Any = None, fmt: str = "RGB888", timeout_s: float = 1.0
) -> Callable[[int | str, int, int, float], Picamera2Capture]:
    """An ``open_capture`` for :class:`~edgemm.sources.camera.CameraSource`.

    Imports picamera2 now (so a missing package fails at start-up with the fix, not in the
    reader thread); ``module`` replaces the import (a test seam).
    """
    mod = module if module is not None else import_picamera2()

    def open_capture(device: int | str, width: int, height: int, fps: float) -> Picamera2Capture:
        return Picamera2Capture(mod, camera_number(device), width, height, fps, fmt, timeout_s)

    return open_capture


def list_csi_cameras(module: Any = None) -> list[dict[str, Any]]:
    """Cameras libcamera sees (``Picamera2.global_camera_info()``); [] without picamera2."""
    try:
        mod = module if module is not None else import_picamera2()
        info = mod.Picamera2.global_camera_info()
    except Exception:
        return []
    return [
        {"index": i, "model": str(c.get("Model", "?")), "id": str(c.get("Id", ""))}
        for i, c in enumerate(info)
    ]
