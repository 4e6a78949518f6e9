#!/usr/bin/env python3
"""Replay labelled sessions through the real encoders and write per-window features (.npz).

Each session folder holds ``audio.wav``, ``video.avi`` or ``video.mp4`` and ``labels.json``
(from tools/make_session.py, tools/fusion_sessions.py or tools/record_session.py). The
session is replayed in deterministic fast mode through the face stage (with the face mesh),
the wake-word stage and the VAD, and every window's fusion feature vector is kept together with
the window's class from the ground truth:

* face: the face segments cover at least half the window;
* speech: spoken audio overlaps the window by at least ``SPEECH_MIN_S``;
* wake: the window holds the moment the wake word ends (plus the head's usual delay);
* class: wake → ``wake_with_person``/``wake_without_person``; else speech →
  ``person_speaking``/``speech_without_person``; else face → ``person_present``; else ``idle``.

Windows on a boundary (a face covering 30-70 % of the window, speech overlapping it only a
little or only with its last ``SPEECH_TAIL_S``, a wake word ending at its very edge) are kept but flagged ``ambiguous``; training
skips them and the report scores with and without them.

    python tools/extract_features.py SESSION_DIR [SESSION_DIR ...] --out features.npz
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgemm.clock import StreamClock  # noqa: E402
from edgemm.config import Config, load_config  # noqa: E402
from edgemm.events import EventBus  # noqa: E402
from edgemm.fusion import DEFAULT_CLASSES, FeatureAssembler, FeatureLayout  # noqa: E402
from edgemm.pipeline import build_stages, scheduler_settings  # noqa: E402
from edgemm.scheduler import Scheduler  # noqa: E402
from edgemm.sources.audiofile import read_wav  # noqa: E402
from edgemm.sources.videofile import VideoFile  # noqa: E402
from edgemm.stages.base import StageContext, Window  # noqa: E402

WAKE_WORDS = {"hey jarvis": "hey_jarvis"}
SPEECH_MIN_S = 0.2
SPEECH_TAIL_S = 0.25  # the VAD still hears speech this long after it ends
WAKE_DELAY_S = (0.0, 0.35)  # the head scores highest this long after the phrase ends

EXTRACT_CONFIG: dict[str, Any] = {
    "stages": {
        "energy_gate": {"enabled": False},
        "brightness": {"enabled": False},
        "face": {"enabled": True, "mesh": True},
        "wakeword": {"enabled": True, "models": ["hey_jarvis"]},
        "vad": {"enabled": True},
    },
    "fusion": {"enabled": False},
    "sinks": {"stdout": {"enabled": False}},
}


class FeatureRecorder:
    """A window stage that keeps every window's feature vector."""

    name = "feature_recorder"

    def __init__(self, layout: FeatureLayout, decay_s: float = 3.0) -> None:
        self.assembler = FeatureAssembler(layout, decay_s)
        self.windows: list[Window] = []
        self.vectors: list[np.ndarray] = []

    def process_window(self, window: Window, ctx: StageContext) -> None:
        self.vectors.append(self.assembler.assemble(ctx.features, window).copy())
        self.windows.append(window)


def replay_features(
    session: Path, cfg: Config | None = None, layout: FeatureLayout | None = None
) -> tuple[np.ndarray, list[Window]]:
    """Every window's feature vector of one session, replayed in fast mode."""
    cfg = cfg or load_config(EXTRACT_CONFIG)
    layout = layout or FeatureLayout(wake_models=("hey_jarvis",))
    audio = read_wav(session / "audio.wav", cfg.audio.sample_rate)
    video_path = next(session / n for n in ("video.avi", "video.mp4") if (session / n).is_file())
    video = VideoFile(video_path)
    cfg = replace(cfg, fusion=replace(cfg.fusion, enabled=False))
    a, v, w = build_stages(cfg)
    rec = FeatureRecorder(layout, cfg.intents.decay_s)
    w.append(rec)
    bus = EventBus(cfg.bus.queue_size)
    sched = Scheduler(scheduler_settings(cfg), bus, StreamClock(cfg.audio.sample_rate), a, v, w)
    sched.run_fast(audio, video)
    bus.close()
    return np.stack(rec.vectors), rec.windows


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def window_labels(
    labels: dict[str, Any], windows: list[Window], classes: tuple[str, ...] = DEFAULT_CLASSES
) -> tuple[np.ndarray, np.ndarray]:
    """Class index per window from a session's ground truth, and an ``ambiguous`` flag."""
    faces = [(s["t0"], s["t1"]) for s in labels.get("video", []) if s.get("face")]
    speech = [a for a in labels.get("audio", []) if a.get("kind") == "speech"]
    wakes = [a["t_end"] for a in speech if a.get("say", "").strip().lower() in WAKE_WORDS]
    y = np.zeros(len(windows), dtype=np.int32)
    amb = np.zeros(len(windows), dtype=bool)
    for k, w in enumerate(windows):
        length = w.t_end - w.t_start
        cover = sum(_overlap(w.t_start, w.t_end, a, b) for a, b in faces) / length
        spoken = sum(_overlap(w.t_start, w.t_end, s["t_start"], s["t_end"]) for s in speech)
        wake_in = [
            t for t in wakes if w.t_start <= t + WAKE_DELAY_S[0] and t + WAKE_DELAY_S[1] < w.t_end
        ]
        wake_edge = [
            t
            for t in wakes
            if _overlap(w.t_start, w.t_end, t + WAKE_DELAY_S[0], t + WAKE_DELAY_S[1]) > 0
            and t not in wake_in
        ]
        tail = sum(
            _overlap(w.t_start, w.t_end, s["t_start"], s["t_end"] + SPEECH_TAIL_S) for s in speech
        )
        face = cover >= 0.5
        amb[k] = 0.3 < cover < 0.7 or bool(wake_edge) or (spoken < SPEECH_MIN_S and tail > 0)
        if wake_in:
            name = "wake_with_person" if face else "wake_without_person"
        elif spoken >= SPEECH_MIN_S:
            name = "person_speaking" if face else "speech_without_person"
        else:
            name = "person_present" if face else "idle"
        y[k] = classes.index(name)
    return y, amb


def extract(sessions: list[Path], cfg: Config | None = None) -> dict[str, np.ndarray]:
    """Features, labels and bookkeeping of many sessions, ready for ``np.savez``."""
    layout = FeatureLayout(wake_models=("hey_jarvis",))
    cfg = cfg or load_config(EXTRACT_CONFIG)
    xs, ys, ambs, sess, t0 = [], [], [], [], []
    for i, s in enumerate(sessions):
        x, windows = replay_features(s, cfg, layout)
        labels = json.loads((s / "labels.json").read_text())
        y, amb = window_labels(labels, windows)
        xs.append(x)
        ys.append(y)
        ambs.append(amb)
        sess.append(np.full(len(windows), i, dtype=np.int32))
        t0.append(np.array([w.t_start for w in windows], dtype=np.float32))
        print(f"{s.name}: {len(windows)} windows", flush=True)
    return {
        "x": np.concatenate(xs).astype(np.float32),
        "y": np.concatenate(ys),
        "ambiguous": np.concatenate(ambs),
        "session": np.concatenate(sess),
        "t_start": np.concatenate(t0),
        "session_names": np.array([s.name for s in sessions]),
        "feature_names": np.array(layout.names),
        "classes": np.array(DEFAULT_CLASSES),
        "layout": np.array(json.dumps(layout.to_dict())),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("sessions", nargs="+", type=Path, help="session folders")
    ap.add_argument("--out", type=Path, required=True, help="output .npz")
    a = ap.parse_args()
    data = extract(a.sessions)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(a.out, **data)
    print(f"{a.out}: {data['x'].shape[0]} windows × {data['x'].shape[1]} features")
    return 0


if __name__ == "__main__":
    sys.exit(main())
