"""``edgemm bench``: numbers measured side by side in one run (never pass/fail).

* ``edgemm bench models`` — the floor: median invoke time of every model the active config
  uses (or ``--all`` default models), with 1 and 2 threads, backend named.
* ``edgemm bench pipeline`` — a ``--fast`` replay of the demo session (or given files) through
  the active config: process CPU per stream second, and each stage's share.

Results print as a table; ``--json PATH`` also writes them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from .config import Config, load_config


def config_models(cfg: Config) -> list[str]:
    """Manifest names of the TFLite models the config's stages load."""
    st = cfg.stages
    names: list[str] = []
    if cfg.audio.enabled and st.wakeword.enabled:
        if st.wakeword.engine == "openwakeword":
            names += ["melspectrogram", "embedding_model"]
        names += [Path(m).stem for m in st.wakeword.models]
    if cfg.video.enabled and st.face.enabled:
        names.append("face_detection_short_range")
        if st.face.mesh:
            names.append("face_landmark")
    if cfg.video.enabled and st.hands.enabled:
        names += ["palm_detection_lite", "hand_landmark_lite"]
    return names


def _input_for(t: Any, rng: np.random.Generator) -> np.ndarray:
    shape = tuple(max(1, s) for s in t.shape)
    if t.dtype == np.float32:
        return rng.uniform(-1, 1, shape).astype(np.float32)
    info = np.iinfo(t.dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(t.dtype)


def time_model(name: str, threads: int, runs: int, backend: str = "auto") -> dict[str, Any]:
    from .models import load_manifest, model_path
    from .runtime import TFLiteModel

    entry = load_manifest().get(name)
    shapes = None
    if entry is not None and any(-1 in t.shape for t in entry.inputs):
        shapes = [[1, 1760]] if name == "melspectrogram" else None
    m = TFLiteModel(model_path(name), backend=backend, num_threads=threads, input_shapes=shapes)
    rng = np.random.default_rng(0)
    for i, t in enumerate(m.inputs):
        m.set_input(i, _input_for(t, rng))
    for _ in range(max(3, runs // 10)):
        m.invoke()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        m.invoke()
        ts.append(time.perf_counter() - t0)
    return {
        "model": name,
        "threads": threads,
        "backend": m.backend,
        "median_ms": statistics.median(ts) * 1e3,
        "p90_ms": float(np.percentile(ts, 90)) * 1e3,
    }


def cmd_models(args: argparse.Namespace) -> int:
    cfg = load_config(args.config)
    if args.names:
        names = args.names
    elif args.all:
        from .models import load_manifest

        names = [n for n, e in load_manifest().items() if e.default and e.kind == "tflite"]
    else:
        names = config_models(cfg)
    rows = [time_model(n, th, args.runs, cfg.runtime.backend) for n in names for th in args.threads]
    print(f"{'model':<30}{'threads':>8}{'median ms':>12}{'p90 ms':>10}  backend")
    for r in rows:
        print(
            f"{r['model']:<30}{r['threads']:>8}{r['median_ms']:>12.3f}{r['p90_ms']:>10.3f}  {r['backend']}"
        )
    _write(args.json, {"models": rows})
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    from .demo import demo_files
    from .pipeline import Pipeline

    cfg = load_config(args.config)
    audio, video = (args.audio, args.video) if (args.audio or args.video) else demo_files()
    results = []
    for _ in range(args.repeat):
        p = Pipeline(cfg, audio_file=audio, video_file=video, stdout=False)
        c0, w0 = time.process_time(), time.perf_counter()
        p.run()
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        stream = max(p.scheduler.audio_t, p.scheduler.vision_t)
        results.append(
            {
                "cpu_s": cpu,
                "wall_s": wall,
                "stream_s": stream,
                "stages": dict(p.scheduler.counters.stage_seconds),
            }
        )
    cpu = statistics.median(r["cpu_s"] for r in results)
    wall = statistics.median(r["wall_s"] for r in results)
    stream = results[0]["stream_s"]
    stages = {
        k: statistics.median(r["stages"].get(k, 0.0) for r in results) for k in results[0]["stages"]
    }
    print(
        f"--fast replay of {stream:.1f} s of stream, config {args.config}, median of {args.repeat}"
    )
    print(
        f"  process CPU: {cpu / stream * 1000:.1f} ms per stream second ({100 * cpu / stream:.1f} % of one core "
        f"in real time); throughput {stream / wall:.1f}x real time"
    )
    total = sum(stages.values())
    for k, v in sorted(stages.items(), key=lambda kv: -kv[1]):
        print(f"  stage {k:<14} {v / stream * 1000:8.2f} ms per stream second")
    print(
        f"  stages together {total / stream * 1000:8.2f} ms; the rest (decode, scheduling, bus) "
        f"{(cpu - total) / stream * 1000:.2f} ms per stream second"
    )
    _write(
        args.json,
        {"pipeline": {"cpu_s": cpu, "wall_s": wall, "stream_s": stream, "stages": stages}},
    )
    return 0


def _write(path: str | None, data: dict[str, Any]) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(data, indent=1))


def register_cli(sub: Any) -> None:
    b = sub.add_parser("bench", help="measure models and the pipeline (numbers, not pass/fail)")
    bs = b.add_subparsers(dest="bench_command", metavar="WHAT", required=True)
    m = bs.add_parser("models", help="median invoke time per model, 1 and 2 threads")
    m.add_argument("names", nargs="*", help="manifest names (default: the models the config uses)")
    m.add_argument("--all", action="store_true", help="every default model")
    m.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    m.add_argument("--runs", type=int, default=200)
    m.add_argument("--config", "-c", default="default")
    m.add_argument("--json")
    m.set_defaults(func=cmd_models)
    p = bs.add_parser("pipeline", help="CPU per stream second of a --fast replay, per stage")
    p.add_argument("--config", "-c", default="default")
    p.add_argument("--audio")
    p.add_argument("--video")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json")
    p.set_defaults(func=cmd_pipeline)
