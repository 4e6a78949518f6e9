"""Live camera capture: one reader thread owns the device and keeps the newest frames.

A watchdog in the same thread reopens the device when no frame has arrived for
``reconnect_after_s``, with exponential backoff up to ``backoff_max_s``. Every reconnect is
counted and reported through ``on_report``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import cv2

from ..buffers import FrameRing
from ..clock import StreamClock
from ..stages.base import Frame

log = logging.getLogger(__name__)


class Capture(Protocol):
    def isOpened(self) -> bool: ...  # noqa: N802 - OpenCV's name
    def read(self) -> tuple[bool, Any]: ...
    def release(self) -> None: ...


def opencv_capture(device: int | str, width: int, height: int, fps: float) -> Capture:
    """Open a camera by index, device path, file or URL."""
    if isinstance(device, str) and device.isdigit():
        device = int(device)
    cap = cv2.VideoCapture(device)
    if cap.isOpened() and isinstance(device, int):
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        cap.set(cv2.CAP_PROP_FPS, fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
    return cap


Report = Callable[[str, str, dict[str, Any]], None]  # (type, label/component, data)


class CameraSource:
    def __init__(
        self,
        device: int | str,
        ring: FrameRing,
        clock: StreamClock,
        width: int = 640,
        height: int = 480,
        fps: float = 30.0,
        reconnect_after_s: float = 2.0,
        backoff_max_s: float = 30.0,
        open_capture: Callable[[int | str, int, int, float], Capture] = opencv_capture,
        on_report: Report | None = None,
    ) -> None:
        self.device = device
        self.ring = ring
        self.clock = clock
        self.size = (width, height)
        self.fps = fps
        self.reconnect_after_s = reconnect_after_s
        self.backoff_max_s = backoff_max_s
        self._open = open_capture
        self._report = on_report or (lambda *a: None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.frames = 0
        self.read_failures = 0
        self.reconnects = 0
        self.connected = False
        self.last_frame_wall = 0.0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="camera", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return bool(self._thread and self._thread.is_alive())

    def _try_open(self) -> Capture | None:
        try:
            cap = self._open(self.device, self.size[0], self.size[1], self.fps)
        except Exception as exc:  # a seam or backend may raise instead of returning closed
            log.debug("camera open raised: %s", exc)
            return None
        if cap is None or not cap.isOpened():
            if cap is not None:
                cap.release()
            return None
        return cap

    def _run(self) -> None:
        backoff = 0.5
        cap = self._try_open()
        if cap is None:
            self._report(
                "error",
                "camera",
                {
                    "message": f"camera {self.device!r} cannot be opened; retrying "
                    "(check the cable and video.device; `edgemm devices` lists cameras)"
                },
            )
        else:
            self.connected = True
        self.last_frame_wall = time.monotonic()
        index = 0
        while not self._stop.is_set():
            if cap is None:
                if self._stop.wait(backoff):
                    break
                backoff = min(backoff * 2, self.backoff_max_s)
                cap = self._try_open()
                if cap is not None:
                    self.reconnects += 1
                    self.connected = True
                    self.last_frame_wall = time.monotonic()
                    self._report(
                        "status", "camera", {"event": "reconnected", "reconnects": self.reconnects}
                    )
                continue
            ok, img = cap.read()
            now = time.monotonic()
            if ok and img is not None:
                self.ring.put(Frame(image=img, t=self.clock.to_stream(now), index=index, wall=now))
                index += 1
                self.frames += 1
                self.last_frame_wall = now
                backoff = 0.5
                continue
            self.read_failures += 1
            if now - self.last_frame_wall >= self.reconnect_after_s:
                cap.release()
                cap = None
                self.connected = False
                self._report(
                    "error",
                    "camera",
                    {
                        "message": f"no frames from camera {self.device!r} for "
                        f"{self.reconnect_after_s:g} s; reconnecting",
                        "reconnects": self.reconnects,
                    },
                )
            else:
                self._stop.wait(0.01)
        if cap is not None:
            cap.release()
