#!/usr/bin/env python3
"""Benchmark Vosk speech-to-text: model load, real-time factor, end-of-speech → final latency.

Material: a session of Korean espeak-ng phrases (one every ``--every`` seconds over quiet
noise) made with tools/make_session.py; the model is ``vosk_ko`` unless ``--model`` names
another manifest model or a Vosk model directory.

* load: wall time of ``vosk.Model(path)`` and the RSS it adds;
* RTF: processing time / audio duration, hop by hop (80 ms), for free dictation and the phrase
  grammar, ungated (every hop decoded) and gated by the audio level (silence skipped);
* latency: a ``--realtime`` replay through the real Pipeline; for every utterance, the stream
  time from the true end of its speech to the publication of its ``final`` event, median and
  p95, with gating (utterance closed by ``stt.hangover_s`` of silence) and without
  (closed by Vosk's own endpointer).

    python tools/bench_speech.py                 # everything (about 3 minutes)
    python tools/bench_speech.py --no-latency    # load + RTF only
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
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

from edgemm.clock import StreamClock  # noqa: E402
from edgemm.config import load_config  # noqa: E402
from edgemm.events import EventBus  # noqa: E402
from edgemm.pipeline import Pipeline  # noqa: E402
from edgemm.scheduler import Scheduler, SchedulerSettings  # noqa: E402
from edgemm.sources.audiofile import read_wav  # noqa: E402
from edgemm.speech import load_model  # noqa: E402
from edgemm.stages.builtin import EnergyGate  # noqa: E402
from edgemm.stages.speech import build_speech_stage  # noqa: E402

PHRASES = ["안녕하세요", "오늘 날씨 어때 요", "불 을 켜 주세요"]


def make_material(out: Path, count: int, every: float) -> tuple[Path, list[dict[str, Any]]]:
    from make_session import make_session

    items = [
        {"t": 1.0 + i * every, "say": PHRASES[i % len(PHRASES)], "voice": "ko"}
        for i in range(count)
    ]
    spec = {"duration": 1.0 + count * every + 1.0, "seed": 1, "noise_db": -60, "audio": items}
    labels = make_session(spec, out)
    return out / "audio.wav", labels["audio"]


def stt_config(model: str, mode: str, gate: str) -> Any:
    return load_config(
        {
            "video": {"enabled": False},
            "stt": {
                "enabled": True,
                "model": model,
                "mode": mode,
                "phrases": PHRASES,
                "gate": gate,
            },
            "sinks": {"stdout": {"enabled": False}},
        }
    )


def bench_load(model: str) -> tuple[Any, float, float]:
    proc = psutil.Process()
    rss0 = proc.memory_info().rss
    t0 = time.perf_counter()
    m = load_model(model)
    dt = time.perf_counter() - t0
    return m, dt, (proc.memory_info().rss - rss0) / 2**20


def bench_rtf(vmodel: Any, model: str, audio: np.ndarray, mode: str, gate: str) -> dict[str, Any]:
    stage = build_speech_stage(stt_config(model, mode, gate), model=vmodel)
    assert stage is not None
    sched = Scheduler(SchedulerSettings(), EventBus(100_000), StreamClock(), [EnergyGate(), stage])
    t0 = time.perf_counter()
    cpu0 = psutil.Process().cpu_times()
    sched.run_fast(audio, None)
    wall = time.perf_counter() - t0
    cpu1 = psutil.Process().cpu_times()
    dur = len(audio) / 16000
    cpu = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    return {
        "mode": mode,
        "gate": gate,
        "rtf_wall": round(wall / dur, 4),
        "rtf_cpu": round(cpu / dur, 4),
        "hops_fed": stage.stats.hops_fed,
        "finals": stage.stats.finals,
    }


def bench_latency(
    model: str, wav: Path, clips: list[dict[str, Any]], mode: str, gate: str
) -> dict[str, Any]:
    p = Pipeline(stt_config(model, mode, gate), audio_file=wav, realtime=True, stdout=False)
    sub = p.bus.subscribe("bench", 100_000, ["speech"])
    p.run()
    finals = [e for e in sub.drain() if e.label == "final"]
    # latency from the true end of the utterance (its clip) to the final's publication; the
    # first final overlapping a clip counts (free decoding of espeak Korean is often wrong,
    # so the recognized words' own end times are no reference)
    lat: list[float] = []
    right = 0
    for c in clips:
        hit = next((e for e in finals if e.t_start <= c["t_end"] and e.t_end >= c["t_start"]), None)
        if hit is not None:
            lat.append(hit.t_emit - c["t_end"])
            right += hit.data["text"] == c["say"]
    lat_a = np.array(lat)
    ev_ms = np.array([e.latency_ms for e in finals])
    return {
        "mode": mode,
        "gate": gate,
        "finals": len(finals),
        "correct": right,
        "utterances": len(clips),
        "heard": len(lat),
        "first_utterance_s": round(lat[0], 3) if lat else None,
        "end_of_speech_to_final_s_median": round(float(np.median(lat_a)), 3) if lat else None,
        "end_of_speech_to_final_s_p95": round(float(np.percentile(lat_a, 95)), 3) if lat else None,
        "event_latency_ms_median": round(float(np.median(ev_ms)), 1) if ev_ms.size else None,
    }


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--model", default="vosk_ko", help="manifest name or Vosk model directory")
    ap.add_argument("--count", type=int, default=12, help="utterances in the session")
    ap.add_argument("--every", type=float, default=4.0, help="seconds between utterances")
    ap.add_argument("--no-latency", action="store_true", help="skip the realtime replays")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    a = ap.parse_args()

    out: dict[str, Any] = {}
    vmodel, load_s, rss_mb = bench_load(a.model)
    out["load"] = {"seconds": round(load_s, 2), "rss_increase_mb": round(rss_mb, 1)}
    with tempfile.TemporaryDirectory() as d:
        wav, clips = make_material(Path(d), a.count, a.every)
        audio = read_wav(wav)
        out["audio_s"] = round(len(audio) / 16000, 1)
        # the first free-dictation utterance after loading is slow (Kaldi expands the big
        # graph lazily): time it separately so the RTF rows are steady-state numbers
        t0 = time.perf_counter()
        bench_rtf(
            vmodel, a.model, audio[: int((clips[1]["t_end"] + 1.0) * 16000)], "free", "energy"
        )
        out["free_warmup_s"] = round(time.perf_counter() - t0, 2)
        out["rtf"] = [
            bench_rtf(vmodel, a.model, audio, mode, gate)
            for mode in ("free", "grammar")
            for gate in ("off", "energy")
        ]
        del vmodel
        if not a.no_latency:
            out["latency"] = [
                bench_latency(a.model, wav, clips, mode, gate)
                for mode, gate in (("grammar", "energy"), ("grammar", "off"), ("free", "energy"))
            ]
    if a.json:
        print(json.dumps(out, ensure_ascii=False))
        return 0
    print(
        f"model {a.model}: load {out['load']['seconds']} s, +{out['load']['rss_increase_mb']} MB RSS"
    )
    print(f"audio: {out['audio_s']} s, {a.count} utterances")
    print(f"free-mode warm-up (first two utterances after load): {out['free_warmup_s']} s")
    for r in out["rtf"]:
        print(
            f"RTF {r['mode']:7s} gate={r['gate']:6s}  wall {r['rtf_wall']:.3f}  cpu {r['rtf_cpu']:.3f}"
            f"  ({r['hops_fed']} hops decoded, {r['finals']} finals)"
        )
    for r in out.get("latency", []):
        print(
            f"latency {r['mode']:7s} gate={r['gate']:6s}  end of speech → final: median "
            f"{r['end_of_speech_to_final_s_median']} s, p95 {r['end_of_speech_to_final_s_p95']} s"
            f", first {r['first_utterance_s']} s  ({r['correct']}/{r['utterances']} right,"
            f" {r['heard']} heard, {r['finals']} finals)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
