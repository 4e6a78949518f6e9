#!/usr/bin/env python3
"""Record a live camera + microphone session to files, labelled for fusion training.

Writes ``audio.wav`` (16 kHz mono int16), ``video.avi`` (MJPG, frames at their capture time
on the audio clock) and ``labels.json`` in make_session's format, so
``tools/extract_features.py`` takes recorded and generated sessions alike.

Labels come from keys typed while recording (each followed by Enter) or from a label file:

* ``f`` — a face is in view from now / no longer (toggles);
* ``s`` — speech starts / ends (toggles); ``w`` — the same for a wake phrase;
* ``q`` — stop (or wait for ``--duration``).

A label file (JSON or YAML) holds ``video: [{t0, t1, face}]`` and ``audio: [{t_start, t_end,
say}]`` on the recording's clock (seconds since the start).

    python tools/record_session.py OUT_DIR --duration 60 [--camera 0] [--mic NAME]
    python tools/record_session.py OUT_DIR --duration 30 --labels plan.yaml
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgemm.buffers import AudioRing, FrameRing  # noqa: E402
from edgemm.clock import StreamClock  # noqa: E402
from edgemm.sources.audiofile import write_wav  # noqa: E402
from edgemm.sources.camera import CameraSource  # noqa: E402
from edgemm.sources.microphone import MicSource  # noqa: E402

SR = 16000
WAKE_PHRASE = "hey jarvis"


class KeyLabels:
    """Turns key presses (``f``, ``s``, ``w``) at stream times into a label timeline."""

    def __init__(self) -> None:
        self.video: list[dict[str, Any]] = []
        self.audio: list[dict[str, Any]] = []
        self._face_since: float | None = None
        self._face_t = 0.0
        self._speech: tuple[float, str] | None = None
        self.quit = False

    def key(self, k: str, t: float) -> None:
        k = k.strip().lower()[:1]
        if k == "f":
            self.video.append({"t0": self._face_t, "t1": t, "face": self._face_since is not None})
            self._face_since = None if self._face_since is not None else t
            self._face_t = t
        elif k in ("s", "w"):
            if self._speech is None:
                self._speech = (t, WAKE_PHRASE if k == "w" else "")
            else:
                t0, say = self._speech
                self.audio.append({"kind": "speech", "t_start": t0, "t_end": t, "say": say})
                self._speech = None
        elif k == "q":
            self.quit = True

    def finish(self, t: float) -> dict[str, Any]:
        self.video.append({"t0": self._face_t, "t1": t, "face": self._face_since is not None})
        if self._speech is not None:
            t0, say = self._speech
            self.audio.append({"kind": "speech", "t_start": t0, "t_end": t, "say": say})
        return {"video": [v for v in self.video if v["t1"] > v["t0"]], "audio": self.audio}


def record(out: Path, duration: float, **kw: Any) -> dict[str, Any]:
    """Record ``duration`` seconds (see :func:`_record`). Recordings show and sound like
    people: every file is created user-only (umask 077)."""
    prev = os.umask(0o077)
    try:
        out.mkdir(parents=True, exist_ok=True, mode=0o700)
        return _record(out, duration, **kw)
    finally:
        os.umask(prev)


def _record(
    out: Path,
    duration: float,
    camera: int | str = 0,
    mic: int | str | None = None,
    fps: float = 15.0,
    size: tuple[int, int] = (640, 480),
    keys: IO[str] | None = None,
    sd: Any = None,
    open_capture: Any = None,
) -> dict[str, Any]:
    """Record ``duration`` seconds; returns the labels written (keys from ``keys``)."""
    out.mkdir(parents=True, exist_ok=True)
    clock = StreamClock(SR)
    ring = AudioRing(int((duration + 5) * SR))
    frames = FrameRing(4)
    mic_src = MicSource(ring, clock, mic, SR, 20, sd=sd)
    kw = {"open_capture": open_capture} if open_capture else {}
    cam = CameraSource(camera, frames, clock, size[0], size[1], fps, **kw)
    writer = cv2.VideoWriter(str(out / "video.avi"), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    labels = KeyLabels()
    if keys is not None:

        def read_keys() -> None:
            for line in keys:
                labels.key(line, clock.now())
                if labels.quit:
                    break

        threading.Thread(target=read_keys, daemon=True).start()
    mic_src.start()
    cam.start()
    written = 0
    last: np.ndarray | None = None
    try:
        while not labels.quit:
            t = ring.write_index / SR
            if t >= duration:
                break
            f = frames.latest()
            if f is not None:
                img = f.image
                if (img.shape[1], img.shape[0]) != size:
                    img = cv2.resize(img, size)
                last = img
            # one frame per 1/fps of audio time: repeat or skip camera frames to keep in step
            while last is not None and written < int(t * fps):
                writer.write(last)
                written += 1
            time.sleep(0.005)
    finally:
        cam.stop()
        mic_src.stop()
        writer.release()
    end = min(ring.write_index, int(duration * SR))
    audio = ring.read(max(ring.oldest, end - int(duration * SR)), end)
    write_wav(out / "audio.wav", audio, SR)
    t_end = end / SR
    result = {"spec": {"duration": t_end, "fps": fps, "size": list(size), "recorded": True}}
    result |= labels.finish(t_end)
    (out / "labels.json").write_text(json.dumps(result, indent=1))
    return result


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("out", type=Path)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--camera", default="0", help="camera index or device path")
    ap.add_argument("--mic", default=None, help="input device index or name substring")
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--labels", type=Path, help="a label file instead of keys")
    a = ap.parse_args()
    camera: int | str = int(a.camera) if a.camera.isdigit() else a.camera
    mic: int | str | None = int(a.mic) if a.mic and a.mic.isdigit() else a.mic
    if a.labels is None:
        print("keys (then Enter): f face in/out, s speech start/end, w wake phrase, q stop")
    result = record(a.out, a.duration, camera, mic, a.fps, keys=None if a.labels else sys.stdin)
    if a.labels is not None:
        import yaml

        given = yaml.safe_load(a.labels.read_text())
        for item in given.get("audio", []):
            item.setdefault("kind", "speech")
        result["video"], result["audio"] = given.get("video", []), given.get("audio", [])
        (a.out / "labels.json").write_text(json.dumps(result, indent=1))
    print(f"{a.out}: {result['spec']['duration']:.1f} s recorded")
    return 0


if __name__ == "__main__":
    sys.exit(main())
