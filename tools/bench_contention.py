#!/usr/bin/env python3
"""Why a model invoke costs more inside a replay than re-invoked alone.

The overhead benchmark prices every model "alone": re-invoked back to back on its last input,
with nothing else running. Inside a ``--fast`` replay the audio and video stages run on both
cores at once, and each stage alternates models. This tool times the same invokes

1. with a neighbour process on the other core that is idle, spins in Python, multiplies
   matrices or streams memory (does the other core slow us down?), and
2. alternating BlazeFace and the face mesh, as the face stage does, against the sum of their
   back-to-back prices (do the models evict each other from the caches?).

Rounds alternate; medians are printed::

    python tools/bench_contention.py [--rounds 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NEIGHBOURS = {
    "idle": None,
    "python loop": "x = 0\nwhile True:\n    x += 1\n",
    "sgemm 2000x2000": (
        "import numpy as np\na = np.random.rand(2000, 2000).astype(np.float32)\n"
        "while True:\n    a @ a\n"
    ),
    "memory stream 64 MB": "import numpy as np\na = np.zeros(8 << 20)\nwhile True:\n    a += 1\n",
}


def median_invoke_ms(model, runs: int) -> float:
    for _ in range(20):
        model.invoke()
    ts = []
    for _ in range(runs):
        t0 = time.thread_time()
        model.invoke()
        ts.append(time.thread_time() - t0)
    return statistics.median(ts) * 1e3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--json")
    a = ap.parse_args(argv)

    from edgemm.encoders.audio import SpeechEmbedder
    from edgemm.encoders.face import FaceDetector, FaceMesh

    emb = SpeechEmbedder()
    models = {
        "embedding_model": emb.embedding,
        "face_detection_short_range": FaceDetector().model,
        "face_landmark": FaceMesh().model,
    }
    if hasattr(os, "sched_setaffinity"):  # this process on core 0, the neighbour on core 1
        os.sched_setaffinity(0, {0})
    ms: dict[str, dict[str, list[float]]] = {n: {m: [] for m in models} for n in NEIGHBOURS}
    for _ in range(a.rounds):
        for name, code in NEIGHBOURS.items():
            busy = None
            if code is not None:
                env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
                busy = subprocess.Popen([sys.executable, "-c", code], env=env)
                if hasattr(os, "sched_setaffinity"):
                    with contextlib.suppress(OSError):
                        os.sched_setaffinity(busy.pid, {1 % (os.cpu_count() or 1)})
                time.sleep(0.5)
            try:
                for m, model in models.items():
                    ms[name][m].append(median_invoke_ms(model, a.runs))
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
    det, mesh = models["face_detection_short_range"], models["face_landmark"]
    pairs: list[tuple[float, float]] = []
    for _ in range(a.rounds):
        apart = median_invoke_ms(det, a.runs) + median_invoke_ms(mesh, a.runs)
        for _ in range(20):
            det.invoke()
            mesh.invoke()
        t0 = time.thread_time()
        for _ in range(a.runs):
            det.invoke()
            mesh.invoke()
        pairs.append((apart, (time.thread_time() - t0) / a.runs * 1e3))
    med = {n: {m: statistics.median(v) for m, v in d.items()} for n, d in ms.items()}
    print(f"median invoke ms (1 thread, this process on core 0; {a.rounds} alternating rounds)")
    print(f"{'other core':<22}" + "".join(f"{m:>28}" for m in models))
    for n, d in med.items():
        row = "".join(f"{d[m]:>20.3f} ({d[m] / med['idle'][m]:4.2f}x)" for m in models)
        print(f"{n:<22}{row}")
    apart = statistics.median(p[0] for p in pairs)
    alternating = statistics.median(p[1] for p in pairs)
    print(
        f"BlazeFace + face mesh: {apart:.3f} ms priced back to back, {alternating:.3f} ms "
        f"alternating ({alternating / apart:.2f}x)"
    )
    if a.json:
        Path(a.json).write_text(
            json.dumps({"median_ms": med, "rounds": ms, "face_pair_ms": pairs}, indent=1)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
