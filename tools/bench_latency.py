#!/usr/bin/env python3
"""Capture → event latency and real-time CPU per shipped profile, in ``--realtime`` replay.

* **Latency**: the bundled demo session looped ``--loops`` times (default 3: 60 s), paced to the
  wall clock through the default profile; every event's ``latency_ms`` (wall time from the end
  of its newest input to publication) is collected per type. Prints p50/p95/p99 per type,
  writes ``latency.json`` and ``latency_hist.png``. The audio target is p99 <= one 80 ms hop +
  30 ms; fusion windows wait ``windows.video_lateness_s`` (150 ms) for video by design.
* **Real-time CPU**: for each profile (default, pi, laptop, kiosk), a session made with
  tools/make_session.py at the profile's camera size and rate (MJPG, as a USB camera sends),
  replayed in real time; process CPU seconds per stream second (% of one core), median of
  ``--runs``. Writes ``realtime_cpu.json`` and ``realtime_cpu.png``. The kiosk profile needs
  the ``vosk_ko`` model (``edgemm models install vosk_ko``) and is skipped without it; its
  dashboard listens on a free loopback port and its JSONL file goes to a temporary folder.

    python tools/bench_latency.py [--out results] [--loops 3] [--seconds 20] [--runs 3]
                                  [--profiles default pi laptop kiosk] [--skip-latency]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from make_session import make_session  # noqa: E402

from edgemm import Pipeline, load_config  # noqa: E402
from edgemm.bench import plot_bars, plot_histogram  # noqa: E402
from edgemm.config import Config  # noqa: E402
from edgemm.events import Event  # noqa: E402

AUDIO_TYPES = ("wake_word", "vad", "speech", "intent")
# pi.yaml and laptop.yaml set only camera/threads keys, so alone they run no encoders;
# "default+pi" layers them over the default profile (what their comments describe)
PROFILES = ("default", "pi", "laptop", "kiosk", "default+pi", "default+laptop")


def percentiles(xs: list[float]) -> dict[str, float | int | None]:
    if not xs:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}
    a = np.asarray(xs)
    return {
        "n": len(xs),
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "p99": float(np.percentile(a, 99)),
        "max": float(a.max()),
    }


def measure_latency(cfg: Config, audio: Path, video: Path | None, loops: int = 3) -> dict[str, Any]:
    """``latency_ms`` of every non-status event of a ``--realtime`` replay, by type."""
    got: dict[str, list[float]] = {}

    def collect(ev: Event) -> None:
        if ev.type not in ("status", "error"):
            got.setdefault(ev.type, []).append(float(ev.latency_ms))

    p = Pipeline(cfg, audio_file=audio, video_file=video, realtime=True, loops=loops, stdout=False)
    p.subscribe(collect)
    c0, w0 = time.process_time(), time.perf_counter()
    p.run()
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    stream = max(p.scheduler.audio_t, p.scheduler.vision_t)
    hop_ms = 1000.0 * cfg.hop_samples / cfg.audio.sample_rate
    return {
        "stream_s": stream,
        "wall_s": wall,
        "cpu_percent_of_one_core": 100.0 * cpu / stream,
        "hop_ms": hop_ms,
        "audio_target_p99_ms": hop_ms + 30.0,
        "by_type": {k: percentiles(v) for k, v in sorted(got.items())},
        "samples": got,
        "counters": {
            "audio_overruns": p.scheduler.counters.audio_overruns,
            "frames_skipped": p.scheduler.counters.frames_skipped,
            "windows_skipped": p.scheduler.counters.windows_skipped,
        },
    }


def print_latency(r: dict[str, Any]) -> None:
    print(
        f"--realtime replay, {r['stream_s']:.0f} s, default profile: capture → event latency (ms); "
        f"audio target p99 <= {r['audio_target_p99_ms']:.0f} ms"
    )
    print(f"  {'type':<14}{'n':>5}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}")
    for k, s in r["by_type"].items():
        print(
            f"  {k:<14}{s['n']:>5}{s['p50']:>9.1f}{s['p95']:>9.1f}{s['p99']:>9.1f}{s['max']:>9.1f}"
        )
    print(f"  process CPU {r['cpu_percent_of_one_core']:.1f} % of one core; {r['counters']}")


def session_spec(seconds: float, size: list[int], fps: int, korean: bool) -> dict[str, Any]:
    """A face half of the time, a wake word and a sentence (plus a Korean phrase for STT)."""
    audio: list[dict[str, Any]] = [
        {"t": 2.0, "say": "hey jarvis"},
        {"t": 5.0, "say": "what is the weather like today"},
    ]
    if korean:
        audio.append({"t": min(9.0, seconds - 3), "say": "불 을 켜 주세요", "voice": "ko"})
    half = seconds / 2
    return {
        "duration": seconds,
        "fps": fps,
        "size": size,
        "seed": 3,
        "noise_db": -55,
        "video": [
            {"t0": 0.0, "t1": half, "image": "astronaut", "scale": 0.8, "motion": "drift"},
            {"t0": half, "t1": seconds, "image": "coffee", "scale": 0.9},
        ],
        "audio": audio,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def profile_config(profile: str, tmp: Path) -> Config:
    """The shipped profile, with files and ports moved out of the way (no behaviour change).
    ``base+other`` layers profile ``other``'s keys over profile ``base``; ``name:key=value,...``
    then sets single keys (e.g. ``pi:stages.face.detect_every=1``)."""
    from edgemm.bench import overrides

    name, _, sets = profile.partition(":")
    base, _, layer = name.rpartition("+")
    over: dict[str, Any] = {}
    if base:
        from edgemm.config import parse_yaml, resolve_config_path

        over, _ = parse_yaml(resolve_config_path(layer).read_text(encoding="utf-8"), layer)
    else:
        base = layer
    over = _merge(over, overrides([x for x in sets.split(",") if x]))
    cfg = load_config(base, over)
    safe = "".join(c if c.isalnum() or c in "+-_" else "_" for c in profile)
    sinks = {**over.get("sinks", {}), "jsonl": {"path": str(tmp / f"{safe}.jsonl")}}
    if cfg.sinks.web.enabled:
        sinks["web"] = {"port": _free_port()}
    return load_config(base, {**over, "sinks": sinks})


def realtime_cpu(
    profiles: list[str], seconds: float, runs: int, work: Path
) -> dict[str, dict[str, Any]]:
    """Process CPU % of one core per profile, runs interleaved (machine load hits all alike)."""
    from edgemm.pipeline import _stt_model_missing

    plan: dict[str, tuple[Config, Path, Path]] = {}
    out: dict[str, dict[str, Any]] = {}
    for prof in profiles:
        cfg = profile_config(prof, work)
        if cfg.stt.enabled and _stt_model_missing(cfg):
            out[prof] = {"skipped": f"stt model {cfg.stt.model} is not installed"}
            continue
        v = cfg.video
        sess = work / f"session-{v.width}x{v.height}@{v.fps}{'-ko' if cfg.stt.enabled else ''}"
        if not (sess / "audio.wav").exists():
            make_session(
                session_spec(seconds, [v.width, v.height], v.fps, cfg.stt.enabled),
                sess,
                "video.avi",
            )
        plan[prof] = (cfg, sess / "audio.wav", sess / "video.avi")
    cpu: dict[str, list[float]] = {p: [] for p in plan}
    for _ in range(runs):
        for prof, (cfg, a, v) in plan.items():
            p = Pipeline(cfg, audio_file=a, video_file=v, realtime=True, stdout=False)
            c0 = time.process_time()
            p.run()
            p.stop()
            stream = max(p.scheduler.audio_t, p.scheduler.vision_t)
            cpu[prof].append(100.0 * (time.process_time() - c0) / stream)
    for prof, (cfg, _, _) in plan.items():
        v = cfg.video
        out[prof] = {
            "cpu_percent_of_one_core": statistics.median(cpu[prof]),
            "runs": cpu[prof],
            "camera": f"{v.width}x{v.height} @ {v.fps:g} fps",
            "stt": cfg.stt.enabled,
            "vad": cfg.stages.vad.backend if cfg.stages.vad.enabled else None,
            "face_max_fps": cfg.stages.face.max_fps if cfg.stages.face.enabled else None,
            "num_threads": cfg.runtime.num_threads,
            "web": cfg.sinks.web.enabled,
        }
    return out


def print_realtime(r: dict[str, dict[str, Any]], seconds: float) -> None:
    print(f"--realtime replay of a {seconds:g} s session per profile: process CPU, % of one core")
    for prof, d in r.items():
        if "skipped" in d:
            print(f"  {prof:<9} skipped: {d['skipped']}")
            continue
        runs = ", ".join(f"{x:.1f}" for x in d["runs"])
        print(
            f"  {prof:<9}{d['cpu_percent_of_one_core']:7.1f} %  ({d['camera']}, VAD {d['vad']}, "
            f"STT {'on' if d['stt'] else 'off'}, web {'on' if d['web'] else 'off'}; runs {runs})"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("results"))
    ap.add_argument("--loops", type=int, default=3, help="latency: demo loops (20 s each)")
    ap.add_argument("--seconds", type=float, default=20.0, help="real-time CPU: session length")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--profiles", nargs="*", default=list(PROFILES))
    ap.add_argument("--skip-latency", action="store_true")
    a = ap.parse_args(argv)
    a.out.mkdir(parents=True, exist_ok=True)
    if not a.skip_latency:
        from edgemm.demo import demo_files

        audio, video = demo_files()
        lat = measure_latency(load_config("default"), audio, video, a.loops)
        print_latency(lat)
        (a.out / "latency.json").write_text(json.dumps(lat, indent=1))
        want = [t for t in ("wake_word", "vad", "presence", "recognition") if t in lat["samples"]]
        plot_histogram(
            a.out / "latency_hist.png",
            {t: lat["samples"][t] for t in want},
            f"capture -> event latency, --realtime replay of {lat['stream_s']:.0f} s (default profile)",
            "latency ms",
            marks={"audio target": lat["audio_target_p99_ms"]},
        )
    if a.profiles:
        with tempfile.TemporaryDirectory() as d:
            rt = realtime_cpu(a.profiles, a.seconds, a.runs, Path(d))
        print_realtime(rt, a.seconds)
        (a.out / "realtime_cpu.json").write_text(json.dumps(rt, indent=1))
        plot_bars(
            a.out / "realtime_cpu.png",
            [
                (f"{p} ({d['camera']})", d["cpu_percent_of_one_core"])
                for p, d in rt.items()
                if "skipped" not in d
            ],
            f"--realtime replay, process CPU per profile (median of {a.runs})",
            "% of one core",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
