#!/usr/bin/env python3
"""The whole benchmark suite in one run: tables on stdout, JSON and PNG plots in ``--out``.

Parts (``--only`` picks some; all by default, about 15 minutes on a 2-core machine):

1. ``floor``     median invoke time of every model of the default profile, 1 and 2 threads;
2. ``overhead``  ``--fast`` replay of the demo looped 3× (60 s): process CPU over the floor of
                 the work done, measured side by side (``edgemm bench overhead``), threaded
                 and in one thread (``--serial``);
3. ``latency``   ``--realtime`` replay: capture → event latency per type (tools/bench_latency.py);
4. ``realtime``  process CPU per shipped profile at its camera size and rate (same tool);
5. ``memory``    RSS over one hour of stream in ``--fast`` replay (tools/bench_memory.py);
6. ``audio``     our audio path vs the bare invokes vs pyopen-wakeword 1.1.0 (tools/bench_audio.py);
   ``vision``    our face path vs MediaPipe 0.10.21 in its side venv (tools/bench_vision.py);
   ``backends``  LiteRT (.venv) vs tflite-runtime (the numpy-1 side venv of
                 tools/smoke_numpy1.sh), same models, rounds alternating;
   ``int8``      float vs weight-only int8 (and dynamic-range int8) variants made by
                 tools/quantize_models.py, timed side by side.

    python tools/bench_suite.py [--out results] [--only floor overhead ...] [--quick]

``--quick`` shrinks every part to a smoke run (for tests; its numbers mean nothing). Parts whose
side venv or package is missing are reported as skipped, never faked.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / "tools"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(TOOLS))

from edgemm.bench import (  # noqa: E402
    config_models,
    measure_overhead,
    plot_bars,
    print_overhead,
    time_model,
)
from edgemm.config import load_config  # noqa: E402
from edgemm.demo import demo_files  # noqa: E402

PARTS = (
    "floor",
    "overhead",
    "latency",
    "realtime",
    "memory",
    "audio",
    "vision",
    "backends",
    "int8",
)
NUMPY1_VENV = Path(
    os.environ.get("EDGEMM_NUMPY1_VENV", Path.home() / ".cache" / "edgemm" / "venv-numpy1")
)

# Runs inside the numpy-1 venv: argv = backend runs names...; prints JSON rows.
_TIME_SCRIPT = r"""
import json, sys
from edgemm.bench import time_model
backend, runs, names = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
rows = []
for n in names:
    try:
        rows.append(time_model(n, 1, runs, backend))
    except Exception as exc:
        rows.append({"model": n, "error": " ".join(str(exc).split())[:200]})
print(json.dumps(rows))
"""


def save(out: Path, name: str, data: Any) -> None:
    (out / f"{name}.json").write_text(json.dumps(data, indent=1))


def part_floor(out: Path, q: bool) -> dict[str, Any]:
    names = config_models(load_config("default"))
    runs = 20 if q else 300
    rows = [time_model(n, th, runs) for n in names for th in (1, 2)]
    print(f"\n[1] floor: median invoke, default profile models, backend {rows[0]['backend']}")
    print(f"  {'model':<30}{'1 thread':>10}{'2 threads':>11}")
    for n in names:
        one, two = (r["median_ms"] for r in rows if r["model"] == n)
        print(f"  {n:<30}{one:>10.3f}{two:>11.3f}")
    save(out, "floor", {"models": rows})
    plot_bars(
        out / "floor.png",
        [(f"{r['model']} ({r['threads']} thr)", r["median_ms"]) for r in rows],
        f"median invoke time, {rows[0]['backend']}",
        "ms",
    )
    return {"models": rows}


def part_overhead(out: Path, q: bool) -> dict[str, Any]:
    audio, video = demo_files()
    cfg = load_config("default")
    print("\n[2] overhead")
    n = (1, 1, 4) if q else (3, 3, 8)  # loops, repetitions, price every n-th call
    r = measure_overhead(cfg, audio, video, *n)
    r["config"] = "default"
    print_overhead(r)
    # the same replay in one thread: no contention between the two threads for the cores
    serial = measure_overhead(cfg, audio, video, *n, threaded=False)
    serial["config"] = "default"
    print()
    print_overhead(serial)
    r["serial"] = serial
    save(out, "overhead", r)
    S = r["stream_s"]
    rows = [(f"floor: {it['what']}", it["calls"] * it["price_ms"] / S) for it in r["work"]]
    rows += [(f"rest: {k}", v / S * 1e3) for k, v in r["breakdown"].items() if k != "floor_s"]
    rows.append(("the calls alternating, nothing between", r["alternating_s"] / S * 1e3))
    rows.append(("process CPU (total)", r["cpu_ms_per_stream_s"]))
    plot_bars(
        out / "overhead.png",
        rows,
        f"--fast replay, default profile: CPU ms per stream second ({r['ratio']:.2f}x the floor)",
        "ms/s",
    )
    return r


def part_latency_realtime(out: Path, q: bool, parts: set[str]) -> None:
    import bench_latency

    args = ["--out", str(out)]
    if "latency" not in parts:
        args.append("--skip-latency")
    if "realtime" not in parts:
        args += ["--profiles"]
    if q:
        args += ["--loops", "1", "--seconds", "3", "--runs", "1"]
        if "realtime" in parts:
            args += ["--profiles", "pi"]
    print("\n[3/4] latency and real-time CPU")
    bench_latency.main(args)


def part_memory(out: Path, q: bool) -> None:
    print("\n[5] memory", flush=True)
    # a process of its own: the RSS must be the replay's, not this suite's (which has loaded
    # Vosk and every other part's models by now)
    args = ["--out", str(out)] + (["--loops", "6", "--warmup-min", "0"] if q else [])
    subprocess.run([sys.executable, str(TOOLS / "bench_memory.py"), *args], check=True)


def part_audio(out: Path, q: bool) -> dict[str, Any]:
    import bench_audio as ba

    seconds, reps, model = (4.0, 1, "hey_jarvis") if q else (20.0, 5, "hey_jarvis")
    audio = ba.make_audio(seconds, None)
    inputs = ba.record_inputs(audio, model)
    plan: list[tuple[str, Any]] = [
        ("floor", ba.floor_step(model, inputs)),
        ("edgemm", ba.edgemm_step(model)),
    ]
    skipped = {}
    py = ba.pyopen_step(model)
    if py is None:
        skipped["pyopen-wakeword"] = "pip install pyopen-wakeword==1.1.0"
    else:
        plan.append(("pyopen-wakeword", py))
    plan.append(("edgemm WakeWordStage", ba.stage_step(model)))
    rows = ba.time_rows(plan, audio, reps)
    res: dict[str, Any] = {
        "audio_s": audio.size / ba.SR,
        "reps": reps,
        "rows": [{"path": n, "cpu_ms": c, "wall_ms": w, "hops": k} for n, c, w, k in rows],
        "skipped": skipped,
    }
    by = {r["path"]: r for r in res["rows"]}
    res["edgemm_over_floor_cpu"] = by["edgemm"]["cpu_ms"] / by["floor"]["cpu_ms"]
    if "pyopen-wakeword" in by:
        res["edgemm_over_pyopen_cpu"] = by["edgemm"]["cpu_ms"] / by["pyopen-wakeword"]["cpu_ms"]
    print(f"\n[6a] audio path per 80 ms hop, {res['audio_s']:.0f} s of espeak-ng speech + noise")
    print(f"  {'path':<24}{'CPU ms':>9}{'wall ms':>9}")
    for r in res["rows"]:
        print(f"  {r['path']:<24}{r['cpu_ms']:>9.3f}{r['wall_ms']:>9.3f}")
    print(f"  edgemm / floor CPU: {res['edgemm_over_floor_cpu']:.3f}x", end="")
    if "edgemm_over_pyopen_cpu" in res:
        print(f"; edgemm / pyopen-wakeword CPU: {res['edgemm_over_pyopen_cpu']:.3f}x")
    else:
        print(f"; pyopen-wakeword skipped ({skipped})")
    save(out, "side_audio", res)
    plot_bars(
        out / "side_audio.png",
        [(r["path"], r["cpu_ms"]) for r in res["rows"]],
        "CPU per 80 ms audio hop (same audio, same run)",
        "ms",
    )
    return res


def part_vision(out: Path, q: bool) -> dict[str, Any]:
    import bench_vision as bv
    import cv2
    import skimage.data

    runs, rounds = (20, 1) if q else (300, 3)
    rgb = skimage.data.astronaut()
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    face = bv.FaceDetector()
    invoke = bv.median_ms(face.model.invoke, runs)
    ours: list[float] = []
    theirs: list[float] = []
    res: dict[str, Any] = {"image": "astronaut 512x512", "runs": runs, "rounds": rounds}
    side = None
    try:
        side = bv.side_python()
    except Exception as exc:  # no network or pip: the comparison is skipped, not faked
        res["skipped"] = f"mediapipe side venv unavailable: {exc}"
    for _ in range(rounds):
        ours.append(bv.median_ms(lambda: face.detect(bgr), runs))
        if side is not None:
            mp = bv.mediapipe_face(rgb, runs)
            theirs.append(mp["median_ms"])
            res["mediapipe"] = {k: mp[k] for k in ("version", "faces", "box")}
    res["invoke_ms"] = invoke
    res["ours_ms"] = statistics.median(ours)
    res["ours_rounds"] = ours
    if theirs:
        res["mediapipe_ms"] = statistics.median(theirs)
        res["mediapipe_rounds"] = theirs
        res["ours_over_mediapipe"] = res["ours_ms"] / res["mediapipe_ms"]
    print("\n[6b] face path, astronaut 512x512 (letterbox + BlazeFace + decode + NMS)")
    print(f"  BlazeFace invoke {invoke:.3f} ms; our face path {res['ours_ms']:.3f} ms", end="")
    if theirs:
        print(
            f"; MediaPipe {res['mediapipe']['version']} solutions.face_detection "
            f"{res['mediapipe_ms']:.3f} ms: ours/MediaPipe {res['ours_over_mediapipe']:.2f}x"
        )
    else:
        print(f" ({res.get('skipped')})")
    save(out, "side_vision", res)
    bars = [("BlazeFace invoke", invoke), ("edgemm face path", res["ours_ms"])]
    if theirs:
        bars.append(("MediaPipe 0.10.21 face_detection", res["mediapipe_ms"]))
    plot_bars(out / "side_vision.png", bars, "face detection per image (median)", "ms")
    return res


def _numpy1_rows(names: list[str], runs: int) -> list[dict[str, Any]]:
    py = NUMPY1_VENV / "bin" / "python"
    out = subprocess.run(
        [str(py), "-c", _TIME_SCRIPT, "tflite-runtime", str(runs), *names],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(ROOT),
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def part_backends(out: Path, q: bool) -> dict[str, Any]:
    from edgemm.models import load_manifest

    names = [n for n, e in load_manifest().items() if e.default and e.kind == "tflite"]
    runs, rounds = (10, 1) if q else (200, 2)
    res: dict[str, Any] = {"runs": runs, "rounds": rounds, "models": {}}
    if not (NUMPY1_VENV / "bin" / "python").exists():
        res["skipped"] = f"no numpy-1 venv at {NUMPY1_VENV} (make it with tools/smoke_numpy1.sh)"
    lit: dict[str, list[float]] = {n: [] for n in names}
    tfl: dict[str, list[float]] = {n: [] for n in names}
    errors: dict[str, str] = {}
    for _ in range(rounds):
        for n in names:
            lit[n].append(time_model(n, 1, runs, "litert")["median_ms"])
        if "skipped" not in res:
            for r in _numpy1_rows(names, runs):
                if "error" in r:
                    errors[r["model"]] = r["error"]
                else:
                    tfl[r["model"]].append(r["median_ms"])
    print("\n[6c] backends, 1 thread, median invoke ms (rounds alternate)")
    print(f"  {'model':<30}{'litert':>9}{'tflite-runtime':>16}{'ratio':>8}")
    for n in names:
        a = statistics.median(lit[n])
        b = statistics.median(tfl[n]) if tfl[n] else None
        res["models"][n] = {"litert_ms": a, "tflite_runtime_ms": b, "error": errors.get(n)}
        if b is not None:
            print(f"  {n:<30}{a:>9.3f}{b:>16.3f}{b / a:>8.2f}")
        else:
            why = errors.get(n) or res.get("skipped", "")
            print(f"  {n:<30}{a:>9.3f}{'-':>16}   {why[:60]}")
    save(out, "side_backends", res)
    plot_bars(
        out / "side_backends.png",
        [
            (f"{n} {b}", v)
            for n, d in res["models"].items()
            for b, v in (("litert", d["litert_ms"]), ("tflite-rt", d["tflite_runtime_ms"]))
            if v is not None
        ],
        "median invoke, 1 thread: LiteRT vs tflite-runtime 2.14",
        "ms",
    )
    return res


def part_int8(out: Path, q: bool) -> dict[str, Any]:
    from edgemm.models import model_path

    res: dict[str, Any] = {"models": {}}
    try:
        import quantize_models as qm
    except ImportError as exc:
        res["skipped"] = str(exc)
        save(out, "side_int8", res)
        return res
    names = list(qm.DEFAULT_NAMES[:1] if q else qm.DEFAULT_NAMES)
    qdir = out / "quantized"
    qdir.mkdir(parents=True, exist_ok=True)
    runs, rounds = (10, 1) if q else (200, 3)
    for n in names:
        fp32 = qdir / f"{n}_fp32.tflite"
        data, _ = qm.fold_fp16_weights(model_path(n).read_bytes())
        fp32.write_bytes(data)
        variants = {"float (fp16 original)": model_path(n), "fp32": fp32}
        for suffix, recipe in (("wi8", "weight_only_wi8_afp32"), ("dri8", "dynamic_wi8_afp32")):
            path = qdir / f"{n}_{suffix}.tflite"
            path.write_bytes(qm.quantize(fp32, recipe))
            variants[suffix] = path
        times: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(rounds):
            for k, path in variants.items():
                times[k].append(time_model(str(path), 1, runs)["median_ms"])
        res["models"][n] = {
            k: {"ms": statistics.median(v), "kb": variants[k].stat().st_size / 1000}
            for k, v in times.items()
        }
    print("\n[6d] float vs int8 variants (ai-edge-quantizer), 1 thread, median invoke ms / KB")
    for n, d in res["models"].items():
        cells = "  ".join(f"{k} {v['ms']:.3f} ms {v['kb']:.0f} KB" for k, v in d.items())
        print(f"  {n:<28} {cells}")
    save(out, "side_int8", res)
    plot_bars(
        out / "side_int8.png",
        [(f"{n} {k}", v["ms"]) for n, d in res["models"].items() for k, v in d.items()],
        "median invoke, 1 thread: float vs weight-only int8 (wi8) vs dynamic-range int8 (dri8)",
        "ms",
    )
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results"))
    ap.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    ap.add_argument("--quick", action="store_true", help="smoke-sized runs (numbers meaningless)")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    parts = set(a.only)
    t0 = time.perf_counter()
    import platform

    import psutil

    save(
        a.out,
        "machine",
        {
            "cpu": platform.processor() or platform.machine(),
            "cores": psutil.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "quick": a.quick,
        },
    )
    if "floor" in parts:
        part_floor(a.out, a.quick)
    if "overhead" in parts:
        part_overhead(a.out, a.quick)
    if parts & {"latency", "realtime"}:
        part_latency_realtime(a.out, a.quick, parts)
    if "memory" in parts:
        part_memory(a.out, a.quick)
    if "audio" in parts:
        part_audio(a.out, a.quick)
    if "vision" in parts:
        part_vision(a.out, a.quick)
    if "backends" in parts:
        part_backends(a.out, a.quick)
    if "int8" in parts:
        part_int8(a.out, a.quick)
    print(f"\nsuite done in {time.perf_counter() - t0:.0f} s; results in {a.out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
