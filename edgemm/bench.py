"""``edgemm bench``: numbers measured side by side in one run (never pass/fail).

* ``edgemm bench models`` — the floor: median invoke time of every model the active config
  uses (or ``--all`` default models), with 1 and 2 threads, backend named.
* ``edgemm bench pipeline`` — a ``--fast`` replay of the demo session (or given files) through
  the active config: process CPU per stream second, and each stage's share.
* ``edgemm bench overhead`` — the same replay (the demo looped 3×: 60 s) against the floor of
  the work it actually did: every model invoke and VAD frame is counted in one run, then each
  model is re-invoked on its last real input to price it; the ratio is process CPU over that
  floor (+ the image preprocessing), measured side by side in each repetition, with the rest
  broken down (video decoding, the Silero VAD library's own threads, Python).

Results print as a table; ``--json PATH`` also writes them. The whole suite, with latency,
real-time CPU per profile, memory and the reference implementations side by side, is
``python tools/bench_suite.py``; the PNG helpers here draw its plots with OpenCV only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
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
    """Median invoke time of a manifest model, or of a ``.tflite`` file given by path."""
    from .models import load_manifest, model_path
    from .runtime import TFLiteModel

    path = Path(name) if name.endswith(".tflite") else model_path(name)
    entry = load_manifest().get(path.stem)
    shapes = None
    if entry is not None and any(-1 in t.shape for t in entry.inputs):
        shapes = [[1, 1760]] if path.stem == "melspectrogram" else None
    m = TFLiteModel(path, backend=backend, num_threads=threads, input_shapes=shapes)
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


# ---------------------------------------------------------------------------- overhead


@dataclass
class _Probe:
    """Invoke counters wrapped around the models (and VAD frames) of one pipeline's stages."""

    models: dict[int, tuple[str, Any]] = field(default_factory=dict)  # id → (stage, TFLiteModel)
    vads: dict[int, tuple[str, Any]] = field(default_factory=dict)  # id → (stage, VAD)
    dsp: dict[int, tuple[Any, Any]] = field(default_factory=dict)  # model id → (encoder, fn)
    counts: dict[int, int] = field(default_factory=dict)
    seconds: dict[int, float] = field(default_factory=dict)  # thread CPU inside the calls


def _walk(obj: Any, depth: int = 0, seen: set[int] | None = None) -> Iterator[Any]:
    """edgemm objects reachable from ``obj`` through attributes, lists and dicts."""
    seen = set() if seen is None else seen
    if id(obj) in seen or depth > 4:
        return
    seen.add(id(obj))
    if isinstance(obj, (list, tuple)):
        for x in obj:
            yield from _walk(x, depth + 1, seen)
        return
    if isinstance(obj, dict):
        for x in obj.values():
            yield from _walk(x, depth + 1, seen)
        return
    if not type(obj).__module__.startswith("edgemm."):
        return
    yield obj
    for x in vars(obj).values() if hasattr(obj, "__dict__") else ():
        yield from _walk(x, depth + 1, seen)


def _probe(stages: list[Any]) -> _Probe:
    from .encoders.audio import VoiceActivityDetector
    from .runtime import TFLiteModel

    pr = _Probe()
    for st in stages:
        for o in _walk(st):
            if isinstance(o, TFLiteModel):
                pr.models.setdefault(id(o), (st.name, o))
            elif isinstance(o, VoiceActivityDetector):
                pr.vads.setdefault(id(o), (st.name, o))
            m = getattr(o, "model", None)
            if isinstance(m, TFLiteModel):
                fn = getattr(o, "letterbox", None) or getattr(o, "crop", None)
                if fn is not None:
                    pr.dsp[id(m)] = (o, fn)
    return pr


@contextmanager
def _counting(pr: _Probe) -> Iterator[None]:
    """Count calls of every probed model's ``invoke`` and every VAD's frame function."""

    tt = time.thread_time

    def wrap(key: int, fn: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*a: Any) -> Any:
            t0 = tt()
            r = fn(*a)
            pr.seconds[key] += tt() - t0
            pr.counts[key] += 1
            return r

        return counted

    for k, (_, m) in pr.models.items():
        pr.counts[k], pr.seconds[k] = 0, 0.0
        m.invoke = wrap(k, m.invoke)
    for k, (_, v) in pr.vads.items():
        pr.counts[k], pr.seconds[k] = 0, 0.0
        v._run = wrap(k, v._run)
    try:
        yield
    finally:
        for _, m in pr.models.values():
            del m.invoke  # the class method again
        for _, v in pr.vads.values():
            v._run = v._silero if v.backend == "silero" else v._micro


def _cpu_ms(fn: Callable[[], Any], runs: int) -> tuple[float, float]:
    """(median thread-CPU ms per call, process-CPU ms per call over all runs)."""
    for _ in range(max(3, runs // 10)):
        fn()
    ts = []
    p0 = time.process_time()
    for _ in range(runs):
        t0 = time.thread_time()
        fn()
        ts.append(time.thread_time() - t0)
    return statistics.median(ts) * 1e3, (time.process_time() - p0) / runs * 1e3


def _floor_prices(pr: _Probe, frame: np.ndarray | None, runs: int) -> dict[int, dict[str, float]]:
    """CPU ms per call of each probed model (its last real input), VAD frame and preprocessing."""
    from .encoders.vision import RotatedRect

    prices: dict[int, dict[str, float]] = {}
    for k, (_, m) in pr.models.items():
        ms, _ = _cpu_ms(m.invoke, runs)
        dsp_ms = 0.0
        if frame is not None and k in pr.dsp:
            enc, fn = pr.dsp[k]
            if getattr(enc, "letterbox", None) is fn:
                dsp_ms, _ = _cpu_ms(lambda fn=fn: fn(frame), runs)
            else:
                h, w = frame.shape[:2]
                roi = RotatedRect(w / 2, h / 2, min(w, h) / 2, min(w, h) / 2, 0.0)
                dsp_ms, _ = _cpu_ms(lambda fn=fn, roi=roi: fn(frame, roi), runs)
        prices[k] = {"invoke_ms": ms, "dsp_ms": dsp_ms, "process_ms": ms}
    for k, (_, v) in pr.vads.items():
        buf = np.zeros(v.frame, dtype=np.int16)
        buf[:] = np.random.default_rng(0).normal(0, 300, v.frame).astype(np.int16)
        run = v._silero if v.backend == "silero" else v._micro
        ms, proc_ms = _cpu_ms(lambda run=run, buf=buf: run(buf), runs * 3)
        prices[k] = {"invoke_ms": ms, "dsp_ms": 0.0, "process_ms": proc_ms}
    return prices


def _decode_cpu(video: str | Path | None, loops: int) -> float:
    """Process CPU seconds to decode the video (all loops) with nothing else running."""
    if video is None:
        return 0.0
    from .sources.videofile import VideoFile

    c0 = time.process_time()
    for _ in VideoFile(video, loops).frames(loops):
        pass
    return time.process_time() - c0


def _first_frame(video: str | Path | None) -> np.ndarray | None:
    if video is None:
        return None
    from .sources.videofile import VideoFile

    return next(iter(VideoFile(video).frames())).image


def measure_overhead(
    cfg: Config,
    audio: str | Path | None,
    video: str | Path | None,
    loops: int = 3,
    repeat: int = 3,
    runs: int = 200,
    threaded: bool = True,
) -> dict[str, Any]:
    """Process CPU of a ``--fast`` replay over the floor cost of the work it did (see module
    doc). Each repetition times one uninstrumented replay, then re-prices the floor and the
    video decoding, so every ratio compares numbers measured side by side. ``threaded=False``
    replays with the video stages in the calling thread (same events, one core busy)."""
    from .pipeline import Pipeline

    def pipeline() -> Pipeline:
        p = Pipeline(cfg, audio_file=audio, video_file=video, loops=loops, stdout=False)
        p.fast_threaded = threaded
        return p

    counted = pipeline()  # run 0: counts the work (deterministic), warms caches
    sch = counted.scheduler
    pr = _probe([*sch.audio_stages, *sch._all_stages()])
    with _counting(pr):
        counted.run()
    stream = max(sch.audio_t, sch.vision_t)
    if not sch.video_stages:  # the replay never opened the video: nothing was decoded
        video = None
    frame = _first_frame(video)
    reps: list[dict[str, Any]] = []
    for _ in range(repeat):
        p = pipeline()
        c0 = time.process_time()
        p.run()
        cpu = time.process_time() - c0
        prices = _floor_prices(pr, frame, runs)
        decode = _decode_cpu(video, loops)
        reps.append(
            {
                "cpu_s": cpu,
                "prices": prices,
                "decode_s": decode,
                "stage_s": dict(p.scheduler.counters.stage_seconds),
            }
        )
    items: list[dict[str, Any]] = []
    for k, (stage, obj) in [*pr.models.items(), *pr.vads.items()]:
        n = pr.counts[k]
        med = {
            f: statistics.median(r["prices"][k][f] for r in reps)
            for f in ("invoke_ms", "dsp_ms", "process_ms")
        }
        name = getattr(obj, "name", None) or f"vad:{obj.backend}"
        if k in pr.vads:
            name = f"vad:{obj.backend}"
        in_run = pr.seconds[k] / n * 1e3 if n else 0.0
        items.append({"what": name, "stage": stage, "calls": n, **med, "in_run_ms": in_run})
    per_rep = []
    for r in reps:
        inv = dsp = extra = 0.0
        for k in pr.counts:
            n = pr.counts[k]
            pz = r["prices"][k]
            inv += n * pz["invoke_ms"] / 1e3
            dsp += n * pz["dsp_ms"] / 1e3
            extra += n * max(0.0, pz["process_ms"] - pz["invoke_ms"]) / 1e3
        per_rep.append((r["cpu_s"], inv, dsp, extra, r["decode_s"]))
    cpu, inv, dsp, extra, decode = (statistics.median(x[i] for x in per_rep) for i in range(5))
    ratio = statistics.median(c / max(i + d, 1e-9) for c, i, d, _, _ in per_rep)
    ratio_net = statistics.median((c - e - dec) / max(i + d, 1e-9) for c, i, d, e, dec in per_rep)
    stage_floor: dict[str, float] = {}
    for it in items:
        stage_floor[it["stage"]] = (
            stage_floor.get(it["stage"], 0.0) + it["calls"] * (it["invoke_ms"] + it["dsp_ms"]) / 1e3
        )
    stage_cpu = {
        s: statistics.median(r["stage_s"].get(s, 0.0) for r in reps) for s in reps[0]["stage_s"]
    }
    stages = {
        s: {
            "cpu_s": v,
            "floor_s": stage_floor.get(s, 0.0),
            "ratio": v / stage_floor[s] if stage_floor.get(s) else None,
        }
        for s, v in stage_cpu.items()
    }
    # the same work priced at what the invokes cost inside the replay (cold caches, the other
    # threads on the second core): what is left over that is the glue between the models
    in_run = sum(it["calls"] * (it["in_run_ms"] + it["dsp_ms"]) for it in items) / 1e3
    return {
        "config": cfg.source if hasattr(cfg, "source") else None,
        "threaded": threaded,
        "floor_in_run_s": in_run,
        "ratio_over_in_run_invokes_without_decode_and_vad_threads": (
            (cpu - decode - extra) / in_run if in_run else None
        ),
        "stream_s": stream,
        "repeat": repeat,
        "cpu_s": cpu,
        "cpu_ms_per_stream_s": cpu / stream * 1e3,
        "floor_invokes_s": inv,
        "floor_dsp_s": dsp,
        "ratio": ratio,
        "rest": {
            "video_decode_s": decode,
            "vad_library_threads_s": extra,
            "other_s": cpu - inv - dsp - decode - extra,
        },
        "ratio_without_decode_and_vad_threads": ratio_net,
        "stages": stages,
        "work": items,
        "counters": {"audio_hops": sch.counters.audio_hops, "frames": sch.counters.frames_in},
    }


def print_overhead(r: dict[str, Any]) -> None:
    S = r["stream_s"]
    how = "video stages in their own thread" if r.get("threaded", True) else "one thread"
    print(
        f"--fast replay of {S:.0f} s of stream ({how}), median of {r['repeat']} "
        "(CPU per stream second)"
    )
    print(
        f"{'work':<28}{'stage':>10}{'calls':>7}{'invoke ms':>10}{'in run':>8}{'prep ms':>8}"
        f"{'floor ms/s':>11}"
    )
    for it in r["work"]:
        fl = it["calls"] * (it["invoke_ms"] + it["dsp_ms"]) / S
        print(
            f"{it['what']:<28}{it['stage']:>10}{it['calls']:>7}{it['invoke_ms']:>10.3f}"
            f"{it['in_run_ms']:>8.3f}{it['dsp_ms']:>8.3f}{fl:>11.2f}"
        )
    print("  (invoke ms: re-invoked alone on its last real input; in run: inside the replay)")
    floor = r["floor_invokes_s"] + r["floor_dsp_s"]
    print(f"  floor (invokes + preprocessing)  {floor / S * 1e3:8.1f} ms/s")
    for k, v in r["rest"].items():
        print(f"  {k:<32} {v / S * 1e3:8.1f} ms/s")
    print(f"  process CPU                      {r['cpu_ms_per_stream_s']:8.1f} ms/s")
    print(f"  ratio process CPU / floor        {r['ratio']:8.3f}x")
    print(f"  same, less decode + VAD threads  {r['ratio_without_decode_and_vad_threads']:8.3f}x")
    if r["floor_in_run_s"]:
        print(
            f"  same, over the invokes' in-run cost ({r['floor_in_run_s'] / S * 1e3:.1f} ms/s) "
            f"{r['ratio_over_in_run_invokes_without_decode_and_vad_threads']:7.3f}x"
        )
    for s, v in r["stages"].items():
        ratio = f"{v['ratio']:.2f}x" if v["ratio"] else "-"
        print(
            f"  stage {s:<12} {v['cpu_s'] / S * 1e3:7.1f} ms/s, floor {v['floor_s'] / S * 1e3:7.1f}: {ratio}"
        )


def overrides(pairs: list[str] | None) -> dict[str, Any]:
    """``["stages.vad.backend=micro", ...]`` → a nested dict (values parsed as YAML)."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, _, value = pair.partition("=")
        d = out
        *parents, leaf = key.strip().split(".")
        for k in parents:
            d = d.setdefault(k, {})
        d[leaf] = yaml.safe_load(value)
    return out


def cmd_overhead(args: argparse.Namespace) -> int:
    from .demo import demo_files

    cfg = load_config(args.config, overrides(args.set))
    audio, video = (args.audio, args.video) if (args.audio or args.video) else demo_files()
    r = measure_overhead(cfg, audio, video, args.loop, args.repeat, args.runs, not args.serial)
    r["config"] = args.config
    print_overhead(r)
    _write(args.json, {"overhead": r})
    return 0


# ---------------------------------------------------------------------------- plots (OpenCV)

_COLORS = [(200, 90, 30), (40, 140, 230), (60, 170, 60), (40, 40, 200), (150, 60, 150)]


def _canvas(title: str, w: int = 900, h: int = 480) -> np.ndarray:
    import cv2

    img = np.full((h, w, 3), 255, np.uint8)
    cv2.putText(img, title, (20, 28), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def _axes(
    img: np.ndarray, x0: float, x1: float, y0: float, y1: float, xlabel: str, ylabel: str
) -> Callable[[float, float], tuple[int, int]]:
    """Draw axes with 5 ticks each; returns data → pixel."""
    import cv2

    h, w = img.shape[:2]
    L, R, T, B = 80, w - 20, 50, h - 55
    x1 = x1 if x1 > x0 else x0 + 1
    y1 = y1 if y1 > y0 else y0 + 1

    def px(x: float, y: float) -> tuple[int, int]:
        return (
            int(round(L + (x - x0) / (x1 - x0) * (R - L))),
            int(round(B - (y - y0) / (y1 - y0) * (B - T))),
        )

    cv2.rectangle(img, (L, T), (R, B), (0, 0, 0), 1)
    font, small = cv2.FONT_HERSHEY_SIMPLEX, 0.42

    def fmt(v: float, step: float) -> str:  # enough decimals to tell neighbouring ticks apart
        return f"{v:.{max(0, 1 - int(np.floor(np.log10(step))))}f}"

    for i in range(6):
        xv, yv = x0 + (x1 - x0) * i / 5, y0 + (y1 - y0) * i / 5
        xp, yp = px(xv, y0)[0], px(x0, yv)[1]
        cv2.line(img, (xp, B), (xp, B + 4), (0, 0, 0), 1)
        cv2.line(img, (L - 4, yp), (L, yp), (0, 0, 0), 1)
        cv2.line(img, (L + 1, yp), (R - 1, yp), (230, 230, 230), 1)
        xs, ys = fmt(xv, (x1 - x0) / 5), fmt(yv, (y1 - y0) / 5)
        cv2.putText(img, xs, (xp - 14, B + 18), font, small, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(img, ys, (8, yp + 4), font, small, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, xlabel, ((L + R) // 2 - 60, h - 12), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, ylabel, (8, T - 8), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return px


def _legend(img: np.ndarray, labels: list[str]) -> None:
    import cv2

    x = img.shape[1] - 330
    for i, lab in enumerate(labels):
        y = 70 + 20 * i
        cv2.rectangle(img, (x, y - 9), (x + 14, y + 3), _COLORS[i % len(_COLORS)], -1)
        cv2.putText(
            img, lab, (x + 20, y + 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA
        )


def plot_histogram(
    path: str | Path,
    series: dict[str, list[float]],
    title: str,
    xlabel: str,
    marks: dict[str, float] | None = None,
    bins: int = 40,
) -> None:
    """Overlaid step histograms (counts) of each series; ``marks`` draws labelled vertical lines."""
    import cv2

    img = _canvas(title)
    vals = [v for s in series.values() for v in s]
    hi = max([*vals, *(marks or {}).values(), 1.0]) * 1.05
    edges = np.linspace(0.0, hi, bins + 1)
    hists = {k: np.histogram(v, edges)[0] for k, v in series.items()}
    top = max([1, *(int(h.max()) for h in hists.values() if h.size)])
    px = _axes(img, 0.0, hi, 0.0, top * 1.1, xlabel, "count")
    for i, (_, hcount) in enumerate(hists.items()):
        c = _COLORS[i % len(_COLORS)]
        pts = []
        for j, n in enumerate(hcount):
            pts += [px(edges[j], n), px(edges[j + 1], n)]
        cv2.polylines(img, [np.array(pts, np.int32)], False, c, 2, cv2.LINE_AA)
    for name, x in (marks or {}).items():
        a, b = px(x, 0), px(x, top * 1.1)
        cv2.line(img, a, b, (0, 0, 180), 1, cv2.LINE_AA)
        cv2.putText(
            img, name, (a[0] + 4, b[1] + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 180), 1
        )
    _legend(img, [f"{k} (n={len(v)})" for k, v in series.items()])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)


def plot_lines(
    path: str | Path,
    series: dict[str, tuple[list[float], list[float]]],
    title: str,
    xlabel: str,
    ylabel: str,
    y_from_zero: bool = False,
) -> None:
    """One polyline per series (x, y)."""
    import cv2

    img = _canvas(title)
    xs = [x for s in series.values() for x in s[0]] or [0.0, 1.0]
    ys = [y for s in series.values() for y in s[1]] or [0.0, 1.0]
    lo, hi = (0.0 if y_from_zero else min(ys)), max(ys)
    pad = max(1e-6, (hi - lo) * 0.1)
    px = _axes(img, min(xs), max(xs), lo - (0 if y_from_zero else pad), hi + pad, xlabel, ylabel)
    for i, (_, (x, y)) in enumerate(series.items()):
        pts = np.array([px(a, b) for a, b in zip(x, y, strict=True)], np.int32)
        if len(pts):
            cv2.polylines(img, [pts], False, _COLORS[i % len(_COLORS)], 2, cv2.LINE_AA)
    _legend(img, list(series))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)


def plot_bars(path: str | Path, rows: list[tuple[str, float]], title: str, unit: str) -> None:
    """Horizontal bars, one per (label, value)."""
    import cv2

    h = 70 + 28 * len(rows)
    img = _canvas(title, 900, max(h, 140))
    hi = max([v for _, v in rows] + [1e-9])
    for i, (label, v) in enumerate(rows):
        y = 50 + 28 * i
        w = int(round(v / hi * 300))
        cv2.rectangle(img, (420, y), (420 + w, y + 18), _COLORS[i % len(_COLORS)], -1)
        font = cv2.FONT_HERSHEY_SIMPLEX
        cv2.putText(img, label[:52], (10, y + 14), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(
            img, f"{v:.3g} {unit}", (426 + w, y + 14), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA
        )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), img)


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
    o = bs.add_parser(
        "overhead", help="--fast replay CPU over the floor of the work it did (target <= 1.10x)"
    )
    o.add_argument("--config", "-c", default="default")
    o.add_argument("--audio")
    o.add_argument("--video")
    o.add_argument("--loop", type=int, default=3, help="replay the files N times (demo: 20 s)")
    o.add_argument("--repeat", type=int, default=3)
    o.add_argument("--runs", type=int, default=200, help="invokes per floor price")
    o.add_argument(
        "--serial",
        action="store_true",
        help="replay in one thread (no contention between the two threads for the cores)",
    )
    o.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override")
    o.add_argument("--json")
    o.set_defaults(func=cmd_overhead)
