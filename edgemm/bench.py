"""``edgemm bench``: numbers measured side by side in one run (never pass/fail).

* ``edgemm bench models`` — the floor: median invoke time of every model the active config
  uses (or ``--all`` default models), with 1 and 2 threads, backend named.
* ``edgemm bench pipeline`` — a ``--fast`` replay of the demo session (or given files) through
  the active config: process CPU per stream second, and each stage's share.
* ``edgemm bench overhead`` — the same replay (the demo looped 3×: 60 s) against the floor of
  the work it actually did: every model invoke, VAD frame and image preprocessing is counted,
  and every 8th is repeated in place by a twin, back to back with hot caches, to price it. The
  ratio is process CPU (less that pricing) over calls × hot price, both measured in one run at
  the same moments, with the rest broken down (the calls' extra cost inside the replay, video
  decoding, everything else).

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
class _Work:
    """One kind of work a replay does (a model's invoke, a VAD frame, an image preprocessing),
    counted and priced inside the replay itself."""

    what: str
    stage: str
    kind: str  # invoke | vad | prep
    calls: int = 0
    in_run_s: float = 0.0  # thread CPU inside the replay's own calls
    prices: list[float] = field(default_factory=list)  # thread CPU of hot calls in the bursts
    pricing_s: float = 0.0  # thread CPU spent pricing (taken off the replay's CPU)
    repeat: Callable[[], Any] | None = None  # the call again on the twin (None: preprocessing)


class _Priced:
    """Stands in for a callable (a model's ``invoke``, a VAD's frame function, a preprocessing
    object): times every real call and, on every ``every``-th one (the first included), makes
    a twin repeat the same call ``1 + burst`` times back to back. The first repeat warms the
    caches, the other ``burst`` are the hot prices: the floor, measured at the same moments
    and under the same machine load as the replay itself."""

    def __init__(
        self,
        real: Any,
        work: _Work,
        twin: Callable[..., Any],
        every: int,
        burst: int,
        order: list[_Work],
    ) -> None:
        self.real, self.work, self.twin, self.every, self.burst = real, work, twin, every, burst
        self.order = order

    def __call__(self, *a: Any, **kw: Any) -> Any:
        tt, w = time.thread_time, self.work
        t0 = tt()
        r = self.real(*a, **kw)
        t1 = tt()
        w.in_run_s += t1 - t0
        w.calls += 1
        self.order.append(w)
        if w.calls % self.every == 1 % self.every:
            self.twin(*a, **kw)
            for _ in range(self.burst):
                s = tt()
                self.twin(*a, **kw)
                w.prices.append(tt() - s)
            w.pricing_s += tt() - t1
        return r

    def __getattr__(self, name: str) -> Any:  # e.g. the crop's to_source()
        return getattr(self.real, name)


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


def _model_twin(m: Any) -> Callable[[], None]:
    """A second interpreter of the same model: its invoke on the real model's current inputs
    (a twin, because some models keep state between invokes)."""
    from .runtime import TFLiteModel

    twin = TFLiteModel(
        m.path, m.backend, m.num_threads, m.name, input_shapes=[list(t.shape) for t in m.inputs]
    )
    pairs = [(twin._set, m._get, t.index) for t in m.inputs]
    done = [0]

    def invoke() -> None:
        if done[0] != m._calls:  # new real inputs since the last repeat: copy them over
            for set_, get, i in pairs:
                set_(i, get(i))
            done[0] = m._calls
        twin._invoke()

    return invoke


@contextmanager
def _pricing(
    stages: list[Any], every: int, burst: int
) -> Iterator[tuple[list[_Work], list[_Work]]]:
    """Count, time and price (see :class:`_Priced`) every model invoke, VAD frame and image
    preprocessing of these stages while the block runs. Yields the kinds of work and the
    order of all calls (for :func:`_alternating_cpu`)."""
    from .encoders.audio import VoiceActivityDetector
    from .runtime import TFLiteModel

    works: list[_Work] = []
    order: list[_Work] = []
    undo: list[Callable[[], None]] = []
    seen: set[int] = set()
    try:
        for st in stages:
            for o in _walk(st):
                if id(o) in seen:
                    continue
                seen.add(id(o))
                if isinstance(o, TFLiteModel):
                    w = _Work(o.name, st.name, "invoke")
                    o._calls = 0
                    twin = _model_twin(o)
                    real = o.invoke

                    def counted(real: Any = real, o: Any = o) -> None:
                        o._calls += 1
                        real()

                    w.repeat = twin
                    o.invoke = _Priced(counted, w, twin, every, burst, order)
                    # the class method again, and no counter left behind
                    undo.append(lambda o=o: (delattr(o, "invoke"), delattr(o, "_calls")))
                elif isinstance(o, VoiceActivityDetector):
                    w = _Work(f"vad:{o.backend}", st.name, "vad")
                    twin_vad = VoiceActivityDetector(o.backend, o.hop_samples)
                    real = o._run
                    w.repeat = lambda t=twin_vad, o=o: t._run(o._frame_buf)
                    o._run = _Priced(real, w, twin_vad._run, every, burst, order)
                    undo.append(lambda o=o, real=real: setattr(o, "_run", real))
                else:
                    for attr in ("letterbox", "crop"):
                        fn = getattr(o, attr, None)
                        if fn is None or not isinstance(getattr(o, "model", None), TFLiteModel):
                            continue
                        w = _Work(f"{o.model.name} {attr}", st.name, "prep")
                        scratch: dict[str, np.ndarray] = {}

                        def twin_fn(
                            *a: Any, out: Any = None, fn: Any = fn, s: Any = scratch
                        ) -> Any:
                            if out is None:
                                return fn(*a)
                            if "out" not in s:
                                s["out"] = np.empty_like(out)
                            return fn(*a, out=s["out"])

                        setattr(o, attr, _Priced(fn, w, twin_fn, every, burst, order))
                        undo.append(lambda o=o, attr=attr, fn=fn: setattr(o, attr, fn))
                        break
                    else:
                        continue
                works.append(w)
        yield works, order
    finally:
        for u in undo:
            u()


def _alternating_cpu(order: list[_Work]) -> float:
    """Thread CPU of the replay's model invokes and VAD frames repeated on the twins in the
    replay's own order, with nothing between them: what these calls cost alternating as they
    do, whatever the code around them (preprocessing is left out)."""
    seq = [w.repeat for w in order if w.repeat is not None]
    for call in seq[:50]:
        call()
    t0 = time.thread_time()
    for call in seq:
        call()
    return time.thread_time() - t0


def _decode_cpu(video: str | Path | None, loops: int) -> float:
    """Process CPU seconds to decode the video (all loops) with nothing else running."""
    if video is None:
        return 0.0
    from .sources.videofile import VideoFile

    c0 = time.process_time()
    for _ in VideoFile(video, loops).frames(loops):
        pass
    return time.process_time() - c0


def measure_overhead(
    cfg: Config,
    audio: str | Path | None,
    video: str | Path | None,
    loops: int = 3,
    repeat: int = 3,
    every: int = 8,
    burst: int = 3,
    threaded: bool = True,
) -> dict[str, Any]:
    """Process CPU of a ``--fast`` replay over the floor cost of the work it did (see module
    doc). Each repetition runs the replay twice: once untouched (its CPU is the plain
    figure), once with every model invoke, VAD frame and preprocessing counted and priced in
    place (:class:`_Priced`). The ratio is that second replay's CPU, less the pricing itself,
    over the sum of calls × hot price: both sides measured in one run, at the same moments.
    ``threaded=False`` replays with the video stages in the calling thread (same events)."""
    from .pipeline import Pipeline

    def pipeline() -> Pipeline:
        p = Pipeline(cfg, audio_file=audio, video_file=video, loops=loops, stdout=False)
        p.fast_threaded = threaded
        return p

    reps: list[dict[str, Any]] = []
    for _ in range(repeat):
        plain = pipeline()
        c0 = time.process_time()
        plain.run()
        cpu_plain = time.process_time() - c0
        p = pipeline()
        sch = p.scheduler
        with _pricing([*sch.audio_stages, *sch._all_stages()], every, burst) as (works, order):
            c0 = time.process_time()
            p.run()
            cpu = time.process_time() - c0
            alternating = _alternating_cpu(order)
        decode = _decode_cpu(video if sch.video_stages else None, loops)
        pricing = sum(w.pricing_s for w in works)
        floor = sum(w.calls * statistics.median(w.prices) for w in works if w.prices)
        prep = sum(
            w.calls * statistics.median(w.prices) for w in works if w.prices and w.repeat is None
        )
        reps.append(
            {
                "cpu_plain_s": cpu_plain,
                "cpu_s": cpu - pricing,
                "pricing_s": pricing,
                "floor_s": floor,
                "alternating_s": alternating + prep,
                "in_run_s": sum(w.in_run_s for w in works),
                "decode_s": decode,
                "works": works,
                "stage_s": dict(plain.scheduler.counters.stage_seconds),
                "stream_s": max(sch.audio_t, sch.vision_t),
                "counters": (sch.counters.audio_hops, sch.counters.frames_in),
            }
        )

    def med(f: Callable[[dict[str, Any]], float]) -> float:
        return statistics.median(f(r) for r in reps)

    items: list[dict[str, Any]] = []
    for i, w in enumerate(reps[0]["works"]):
        ws = [r["works"][i] for r in reps]
        items.append(
            {
                "what": w.what,
                "stage": w.stage,
                "kind": w.kind,
                "calls": w.calls,
                "price_ms": statistics.median(statistics.median(x.prices) for x in ws) * 1e3,
                "in_run_ms": statistics.median(x.in_run_s / max(x.calls, 1) for x in ws) * 1e3,
                "priced_calls": statistics.median(len(x.prices) for x in ws),
            }
        )
    stage_floor: dict[str, float] = {}
    for it in items:
        stage_floor[it["stage"]] = (
            stage_floor.get(it["stage"], 0.0) + it["calls"] * it["price_ms"] / 1e3
        )
    stages = {}
    for s in reps[0]["stage_s"]:
        v = med(lambda r, s=s: r["stage_s"].get(s, 0.0))
        f = stage_floor.get(s, 0.0)
        stages[s] = {"cpu_s": v, "floor_s": f, "ratio": v / f if f else None}
    cpu, floor, in_run, decode = (
        med(lambda r, k=k: r[k]) for k in ("cpu_s", "floor_s", "in_run_s", "decode_s")
    )
    return {
        "threaded": threaded,
        "stream_s": reps[0]["stream_s"],
        "repeat": repeat,
        "every": every,
        "burst": burst,
        "cpu_s": cpu,
        "cpu_plain_s": med(lambda r: r["cpu_plain_s"]),
        "pricing_s": med(lambda r: r["pricing_s"]),
        "cpu_ms_per_stream_s": cpu / reps[0]["stream_s"] * 1e3,
        "floor_s": floor,
        "ratio": med(lambda r: r["cpu_s"] / r["floor_s"]),
        "ratio_plain": med(lambda r: r["cpu_plain_s"] / r["floor_s"]),
        "breakdown": {
            "floor_s": floor,
            "in_run_over_floor_s": in_run - floor,
            "video_decode_s": decode,
            "other_s": cpu - in_run - decode,
        },
        "ratio_in_run_over_floor": med(lambda r: r["in_run_s"] / r["floor_s"]),
        "alternating_s": med(lambda r: r["alternating_s"]),
        "ratio_alternating_over_floor": med(lambda r: r["alternating_s"] / r["floor_s"]),
        "ratio_over_alternating": med(lambda r: r["cpu_s"] / r["alternating_s"]),
        "ratio_over_in_run": med(lambda r: (r["cpu_s"] - r["decode_s"]) / r["in_run_s"]),
        "stages": stages,
        "work": items,
        "counters": {"audio_hops": reps[0]["counters"][0], "frames": reps[0]["counters"][1]},
    }


def print_overhead(r: dict[str, Any]) -> None:
    S = r["stream_s"]
    how = "video stages in their own thread" if r.get("threaded", True) else "one thread"
    print(
        f"--fast replay of {S:.0f} s of stream ({how}), median of {r['repeat']}; every "
        f"{r['every']}th call priced in place ({r['burst']} hot repeats). CPU per stream second:"
    )
    print(f"{'work':<38}{'stage':>9}{'calls':>7}{'hot ms':>8}{'in run':>8}{'floor ms/s':>11}")
    for it in r["work"]:
        print(
            f"{it['what']:<38}{it['stage']:>9}{it['calls']:>7}{it['price_ms']:>8.3f}"
            f"{it['in_run_ms']:>8.3f}{it['calls'] * it['price_ms'] / S:>11.2f}"
        )
    b = r["breakdown"]
    print(f"  floor (the same calls, hot)           {b['floor_s'] / S * 1e3:7.1f} ms/s")
    print(f"  + the calls' extra cost in the replay {b['in_run_over_floor_s'] / S * 1e3:7.1f} ms/s")
    print(f"  + video decoding                      {b['video_decode_s'] / S * 1e3:7.1f} ms/s")
    print(f"  + everything else (glue)              {b['other_s'] / S * 1e3:7.1f} ms/s")
    print(
        f"  = process CPU                         {r['cpu_ms_per_stream_s']:7.1f} ms/s "
        f"(the unpriced replay: {r['cpu_plain_s'] / S * 1e3:.1f})"
    )
    print(
        f"  ratio process CPU / floor             {r['ratio']:7.3f}x (target <= 1.10x; "
        f"the unpriced replay: {r['ratio_plain']:.3f}x)"
    )
    print(
        f"  the same calls alternating as in the replay, nothing between them (preprocessing "
        f"hot): {r['alternating_s'] / S * 1e3:.1f} ms/s = {r['ratio_alternating_over_floor']:.3f}x "
        f"the floor; process CPU / that: {r['ratio_over_alternating']:.3f}x"
    )
    print(f"  the calls in the replay / hot         {r['ratio_in_run_over_floor']:7.3f}x")
    print(f"  process CPU less decoding / the calls {r['ratio_over_in_run']:7.3f}x")
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
    r = measure_overhead(
        cfg, audio, video, args.loop, args.repeat, args.every, args.burst, not args.serial
    )
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
    o.add_argument("--every", type=int, default=8, help="price every N-th call in place")
    o.add_argument("--burst", type=int, default=3, help="hot repeats per pricing")
    o.add_argument(
        "--serial",
        action="store_true",
        help="replay in one thread (no contention between the two threads for the cores)",
    )
    o.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override")
    o.add_argument("--json")
    o.set_defaults(func=cmd_overhead)
