#!/usr/bin/env python3
"""Benchmark the streaming core with only the built-in stages (energy gate, brightness).

Makes a session (16 kHz audio, 640x480 video at 30 fps, MJPG) and reports, as medians of
several runs in one process:

* ``--realtime`` replay: process CPU seconds per stream second (% of one core), which includes
  video decoding, the rings, the scheduler, the stages, the bus and a JSONL sink;
* ``--fast`` replay: throughput in × real time;
* the same ``--fast`` replay with audio only, to separate the video-decoding share.

    python tools/bench_core.py [--seconds 20] [--runs 3] [--json results/bench_core.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from make_session import make_session  # noqa: E402

from edgemm import Pipeline, load_config  # noqa: E402


def run_once(session: Path, realtime: bool, video: bool, out: Path) -> tuple[float, float]:
    cfg = load_config({})  # the core with built-in stages only
    p = Pipeline(
        cfg,
        audio_file=session / "audio.wav",
        video_file=(session / "video.avi") if video else None,
        realtime=realtime,
        stdout=False,
        out=out,
    )
    c0, w0 = time.process_time(), time.perf_counter()
    p.run()
    return time.process_time() - c0, time.perf_counter() - w0


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        sess = Path(d)
        spec = {
            "duration": a.seconds,
            "fps": 30,
            "size": [640, 480],
            "seed": 1,
            "noise_db": -50,
            "video": [
                {"t0": 0, "t1": a.seconds / 2, "image": "astronaut", "motion": "drift"},
                {"t0": a.seconds / 2, "t1": a.seconds, "image": "coffee", "motion": "drift"},
            ],
            "audio": [
                {"t": 1.0, "beep": 800, "dur": 0.5},
                {"t": a.seconds / 2, "say": "hello there"},
            ],
        }
        make_session(spec, sess, "video.avi")
        out = sess / "ev.jsonl"
        rows: dict[str, list[tuple[float, float]]] = {
            "realtime": [],
            "fast": [],
            "fast_audio_only": [],
        }
        for _ in range(a.runs):
            rows["realtime"].append(run_once(sess, True, True, out))
            rows["fast"].append(run_once(sess, False, True, out))
            rows["fast_audio_only"].append(run_once(sess, False, False, out))
    S = a.seconds
    res = {
        "stream_seconds": S,
        "runs": a.runs,
        "realtime_cpu_percent_of_one_core": statistics.median(
            100 * c / S for c, _ in rows["realtime"]
        ),
        "realtime_wall_s": statistics.median(w for _, w in rows["realtime"]),
        "fast_x_realtime": statistics.median(S / w for _, w in rows["fast"]),
        "fast_cpu_s_per_stream_s": statistics.median(c / S for c, _ in rows["fast"]),
        "fast_audio_only_x_realtime": statistics.median(S / w for _, w in rows["fast_audio_only"]),
    }
    print(
        f"core with built-in stages, 16 kHz + 640x480 @ 30 fps MJPG, {S:g} s stream, median of {a.runs}"
    )
    print(
        f"  --realtime replay CPU:       {res['realtime_cpu_percent_of_one_core']:6.1f} % of one core "
        "(includes MJPG decoding)"
    )
    print(
        f"  --fast replay throughput:    {res['fast_x_realtime']:6.1f} x real time "
        f"({res['fast_cpu_s_per_stream_s'] * 1000:.1f} ms CPU per stream second)"
    )
    print(f"  --fast, audio only:          {res['fast_audio_only_x_realtime']:6.1f} x real time")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
