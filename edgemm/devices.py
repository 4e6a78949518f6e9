"""Finding cameras and microphones without holding them open."""

from __future__ import annotations

import glob
import sys
from pathlib import Path
from typing import Any

from .config import Config
from .errors import SourceError


def list_cameras() -> list[dict[str, Any]]:
    """V4L2 capture devices on Linux (``/dev/video*``); elsewhere, indices 0-3 that open."""
    found: list[dict[str, Any]] = []
    if sys.platform.startswith("linux"):
        for path in sorted(
            glob.glob("/dev/video*"), key=lambda p: int(p[10:] or 0) if p[10:].isdigit() else 99
        ):
            idx = path[len("/dev/video") :]
            if idx.isdigit():
                found.append({"index": int(idx), "path": path})
        return found
    import cv2

    for i in range(4):
        cap = cv2.VideoCapture(i)
        if cap.isOpened():
            found.append({"index": i, "path": f"camera {i}"})
        cap.release()
    return found


def list_microphones() -> tuple[list[dict[str, Any]], str | None]:
    try:
        from .sources.microphone import input_devices

        return input_devices(), None
    except SourceError as exc:
        return [], str(exc)
    except Exception as exc:  # PortAudio errors when no sound system is present
        return [], f"cannot query audio devices: {exc}"


def find_inputs(cfg: Config) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    """Cameras and microphones usable by ``cfg`` and a one-line reason when one is missing."""
    cams: list[dict[str, Any]] = []
    dev = cfg.video.device
    if cfg.video.backend == "picamera2":
        from .sources.picamera import list_csi_cameras

        try:
            cams = list_csi_cameras()
        except Exception:  # picamera2 missing: run() reports it with the fix
            cams = []
    elif isinstance(dev, str) and not dev.isdigit():
        if "://" in dev or Path(dev).exists():
            cams = [{"index": -1, "path": dev}]
    else:
        want = int(dev)
        cams = [c for c in list_cameras() if c["index"] == want]
    mics, err = list_microphones()
    reasons = []
    if cfg.video.enabled and not cams:
        reasons.append(f"no camera at video.device={dev!r}")
    if cfg.audio.enabled and not mics:
        reasons.append("no microphone found" + (f" ({err})" if err else ""))
    return cams, mics, " and ".join(reasons)
