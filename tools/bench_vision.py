"""Benchmark the vision encoders against MediaPipe's own face detection on the same image.

Prints the median ``invoke()`` time of each vision model, the median per-frame time of our
face path (letterbox + invoke + decode + NMS, BGR in) and of the other encoder paths, all on
scikit-image's astronaut (512×512); then runs MediaPipe 0.10.21's
``mp.solutions.face_detection`` on the same image in a side virtualenv (created on first use
under ``~/.cache/edgemm/bench-venvs/mediapipe``; MediaPipe 0.10.21 needs numpy < 2, which is
why it is not in the project's environment) and prints the ratios.

    python tools/bench_vision.py [--runs 300] [--threads 1] [--no-mediapipe]

Numbers, not pass/fail: nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from edgemm.encoders.face import FaceDetector, FaceMesh
from edgemm.encoders.hands import HandLandmarker, PalmDetector
from edgemm.encoders.vision import RotatedRect

MEDIAPIPE = "mediapipe==0.10.21"
SIDE_VENV = Path.home() / ".cache" / "edgemm" / "bench-venvs" / "mediapipe"

# Runs inside the side venv: argv = image.npy runs; prints JSON.
_MP_SCRIPT = r"""
import json, sys, time
import numpy as np
import mediapipe as mp
rgb = np.load(sys.argv[1])
runs = int(sys.argv[2])
with mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5) as fd:
    for _ in range(20):
        res = fd.process(rgb)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        res = fd.process(rgb)
        times.append(time.perf_counter() - t)
times.sort()
box = None
if res.detections:
    b = res.detections[0].location_data.relative_bounding_box
    h, w = rgb.shape[:2]
    box = [b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h]
print(json.dumps({"median_ms": times[len(times) // 2] * 1e3, "faces": len(res.detections or []),
                  "box": box, "version": mp.__version__}))
"""


def median_ms(fn: Callable[[], object], runs: int, warmup: int = 20) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def side_python() -> Path:
    """The side venv's python, creating the venv and installing MediaPipe if needed."""
    py = SIDE_VENV / "bin" / "python"
    if py.exists():
        probe = subprocess.run([str(py), "-c", "import mediapipe"], capture_output=True)
        if probe.returncode == 0:
            return py
    print(f"creating {SIDE_VENV} with {MEDIAPIPE} (numpy<2) ...", file=sys.stderr)
    venv.EnvBuilder(with_pip=True, clear=True).create(SIDE_VENV)
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", MEDIAPIPE, "numpy<2"], check=True)
    return py


def mediapipe_face(rgb: np.ndarray, runs: int) -> dict:
    py = side_python()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "image.npy"
        np.save(path, np.ascontiguousarray(rgb))
        out = subprocess.run(
            [str(py), "-c", _MP_SCRIPT, str(path), str(runs)],
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=300)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds ours/MediaPipe")
    ap.add_argument("--no-mediapipe", action="store_true", help="skip the MediaPipe comparison")
    args = ap.parse_args(argv)

    import skimage.data

    rgb = skimage.data.astronaut()
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    kw = {"backend": args.backend, "num_threads": args.threads}
    face = FaceDetector(**kw)
    mesh = FaceMesh(**kw)
    palm = PalmDetector(**kw)
    hand = HandLandmarker(min_presence=0.0, **kw)
    (det,) = face.detect(bgr)
    hand_roi = RotatedRect(256.0, 300.0, 200.0, 200.0, 0.0)

    rows: list[tuple[str, float]] = []
    for name, enc in (
        ("face_detection_short_range", face),
        ("face_landmark", mesh),
        ("palm_detection_lite", palm),
        ("hand_landmark_lite", hand),
    ):
        rows.append((f"invoke {name}", median_ms(enc.model.invoke, args.runs)))
    ours = median_ms(lambda: face.detect(bgr), args.runs)
    rows.append(("face path (letterbox+invoke+decode+NMS)", ours))
    rows.append(
        (
            "face mesh path (ROI warp+invoke+project)",
            median_ms(lambda: mesh.process(bgr, det), args.runs),
        )
    )
    rows.append(
        ("palm path (letterbox+invoke+decode+NMS)", median_ms(lambda: palm.detect(bgr), args.runs))
    )
    rows.append(
        (
            "hand landmark path (ROI warp+invoke)",
            median_ms(lambda: hand.process(bgr, hand_roi), args.runs),
        )
    )

    print(
        f"edgemm vision, astronaut 512x512, backend {face.model.backend}, {args.threads} thread(s), median of {args.runs}"
    )
    for label, ms in rows:
        print(f"  {label:45s} {ms:7.3f} ms")
    print(f"  face box {np.round(det.box, 1).tolist()} score {det.score:.3f}")

    if not args.no_mediapipe:
        # Alternate ours and MediaPipe's so both see the same machine load; best round of each.
        ours_rounds, mp_rounds = [ours], []
        mp_res: dict = {}
        for r in range(args.rounds):
            mp_res = mediapipe_face(rgb, args.runs)
            mp_rounds.append(mp_res["median_ms"])
            if r + 1 < args.rounds:
                ours_rounds.append(median_ms(lambda: face.detect(bgr), args.runs))
        ours, mp_ms = min(ours_rounds), min(mp_rounds)
        print(f"MediaPipe {mp_res['version']} solutions.face_detection (same image, RGB in)")
        box = np.round(mp_res["box"] or [], 1).tolist()
        print(
            f"  per image {mp_ms:7.3f} ms (rounds {_fmt(mp_rounds)}), faces {mp_res['faces']}, box {box}"
        )
        print(f"  our face path {ours:7.3f} ms (rounds {_fmt(ours_rounds)})")
        print(f"  ratio ours/MediaPipe: {ours / mp_ms:.2f}  (MediaPipe/ours: {mp_ms / ours:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
