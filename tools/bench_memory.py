#!/usr/bin/env python3
"""RSS over a long ``--fast`` replay: at least an hour of stream, sampled every stream minute.

The bundled 20 s demo is looped ``--loops`` times (default 180: one hour) through a modest
config that still runs every kind of code that could leak: the built-in energy gate, the
openWakeWord path (mel → embedding → head), BlazeFace + face mesh (at 2 fps instead of 15, so
the hour replays in a few minutes), the int8 fusion head, the feature store, the event bus and
a JSONL sink. ``status.interval_s: 60`` makes the scheduler publish ``rss_mb``, ``threads`` and
``fds`` once per stream minute. The growth after warm-up (the first ``--warmup-min`` minutes)
is the least-squares slope of RSS over stream time, in MB per hour of stream.

    python tools/bench_memory.py [--out results] [--loops 180] [--warmup-min 10]

Writes ``memory.json`` and ``memory_rss.png``. Target: growth < 2 MB per hour.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgemm import Pipeline, load_config  # noqa: E402
from edgemm.bench import plot_lines  # noqa: E402
from edgemm.demo import demo_files  # noqa: E402
from edgemm.events import Event  # noqa: E402

SOAK_CONFIG: dict[str, Any] = {
    "stages": {
        "vad": {"enabled": False},
        "energy_gate": {"enabled": True},
        "face": {"max_fps": 2},
    },
    "status": {"interval_s": 60},
}


def soak(loops: int, warmup_min: float, out_jsonl: Path) -> dict[str, Any]:
    cfg = load_config("default", SOAK_CONFIG)
    audio, video = demo_files()
    samples: list[dict[str, float]] = []

    def collect(ev: Event) -> None:
        if ev.type == "status" and ev.label == "health":
            d = ev.data
            samples.append(
                {
                    "t_min": ev.t_start / 60.0,
                    "rss_mb": d["rss_mb"],
                    "threads": d["threads"],
                    "fds": d["fds"],
                }
            )

    p = Pipeline(cfg, audio_file=audio, video_file=video, loops=loops, stdout=False, out=out_jsonl)
    p.subscribe(collect)
    c0, w0 = time.process_time(), time.perf_counter()
    p.run()
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    stream = max(p.scheduler.audio_t, p.scheduler.vision_t)
    samples.sort(key=lambda s: s["t_min"])
    late = [s for s in samples if s["t_min"] >= warmup_min]
    slope: float | None = None  # too few samples after warm-up to fit a line
    if len(late) >= 3:
        x = np.array([s["t_min"] for s in late]) / 60.0
        y = np.array([s["rss_mb"] for s in late])
        slope = float(np.polyfit(x, y, 1)[0])
    return {
        "config": SOAK_CONFIG,
        "loops": loops,
        "stream_s": stream,
        "wall_s": wall,
        "cpu_s": cpu,
        "x_realtime": stream / wall,
        "warmup_min": warmup_min,
        "rss_start_mb": samples[0]["rss_mb"] if samples else None,
        "rss_after_warmup_mb": late[0]["rss_mb"] if late else None,
        "rss_end_mb": samples[-1]["rss_mb"] if samples else None,
        "growth_mb_per_hour": slope,
        "threads": sorted({s["threads"] for s in samples}),
        "fds": sorted({s["fds"] for s in samples if s["fds"] is not None}),
        "samples": samples,
        "events": p.scheduler.counters.windows,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results"))
    ap.add_argument("--loops", type=int, default=180, help="demo loops (20 s each)")
    ap.add_argument("--warmup-min", type=float, default=10.0)
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        r = soak(a.loops, a.warmup_min, Path(d) / "events.jsonl")
    print(
        f"--fast replay of {r['stream_s'] / 60:.0f} stream minutes in {r['wall_s']:.0f} s "
        f"({r['x_realtime']:.1f}x real time), {len(r['samples'])} samples"
    )
    print(
        f"  RSS {r['rss_start_mb']} MB at start, {r['rss_after_warmup_mb']} MB after "
        f"{a.warmup_min:g} min, {r['rss_end_mb']} MB at the end"
    )
    g = r["growth_mb_per_hour"]
    growth = "n/a (too few samples)" if g is None else f"{g:.2f} MB per hour of stream"
    print(f"  growth after warm-up: {growth}")
    print(f"  threads seen {r['threads']}, fds seen {r['fds']}")
    (a.out / "memory.json").write_text(json.dumps(r, indent=1))
    xs = [s["t_min"] for s in r["samples"]]
    plot_lines(
        a.out / "memory_rss.png",
        {"RSS MB": (xs, [s["rss_mb"] for s in r["samples"]])},
        f"RSS over a --fast replay of {r['stream_s'] / 3600:.1f} h of stream "
        f"(growth after {a.warmup_min:g} min: {growth})",
        "stream minutes",
        "RSS MB",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
