#!/usr/bin/env python3
"""The recipe of the generated sessions the default fusion head is trained and judged on.

Every session is a make_session spec (see tools/make_session.py) drawn from a seeded random
generator, so the recipe is the code below plus ``SEED``. Training and held-out sessions use
disjoint material:

* voices: different espeak-ng voices (all of which make ``hey_jarvis`` fire), speeds, pitches;
* faces: the astronaut photograph (several crops) and lfw_subset faces 0-59 for training,
  lfw_subset faces 60-99 for held-out sessions; non-faces likewise (coffee, rocket, lfw
  non-faces 100-159 | chelsea, camera, lfw non-faces 160-199, flat colours);
* phrases: different sentences; timings, noise level, face scale and position all drawn anew.

Images beyond make_session's named photographs (``lfw:N`` — face crop N of
``skimage.data.lfw_subset()``) and a free position (``pos`` [x, y] in 0..1 of the free space)
are rendered by :func:`render_video` here; audio comes from make_session's own renderer.

    python tools/fusion_sessions.py OUT_DIR [--split train|heldout] [--count N]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
sys.path.insert(0, str(ROOT))

import make_session as ms  # noqa: E402

from edgemm.sources.audiofile import write_wav  # noqa: E402

SEED = 20261101
TRAIN_COUNT = 64
HELDOUT_COUNT = 24
WAKE_PHRASE = "hey jarvis"

VOICES = {
    "train": (
        "en-us", "en+f1", "en+f2", "en+m1", "en+m3", "en+m5", "en+m7", "en-gb-scotland",
        "en+klatt2", "en+Alex", "en+Annie", "en+max", "en+benjamin", "en+edward", "en+grandma",
    ),
    "heldout": (
        "en", "en+m4", "en+m6", "en-us-nyc", "en+klatt", "en+paul", "en+belinda", "en+caleb",
        "en+michel", "en-gb-x-rp",
    ),
}  # fmt: skip
PHRASES = {
    "train": (
        "what is the weather like today",
        "turn on the lights please",
        "play some music",
        "set a timer for five minutes",
        "how are you doing",
        "open the front door",
        "tell me a joke",
        "what time is it",
        "and now the news",
        "the meeting starts at nine",
        "please call my sister",
        "the traffic is heavy this morning",
    ),
    "heldout": (
        "switch off the television",
        "what is on my calendar",
        "remind me to buy milk",
        "good morning everybody",
        "the weather will be sunny tomorrow",
        "show me the recipe",
        "increase the volume a little",
        "where did i leave my keys",
    ),
}
FACES = {
    "train": [("astronaut", c) for c in ("portrait", "head", "full")]
    + [(f"lfw:{i}", None) for i in range(60)],
    "heldout": [(f"lfw:{i}", None) for i in range(60, 100)],
}
NON_FACES = {
    "train": ["coffee", "rocket", *(f"lfw:{i}" for i in range(100, 160)), "grey", "color"],
    "heldout": ["chelsea", "camera", *(f"lfw:{i}" for i in range(160, 200)), "grey", "color"],
}
CROPS = {"portrait": ms.PORTRAIT, "head": [150, 40, 310, 220], "full": None}


def _video(rng: np.random.Generator, split: str, duration: float) -> list[dict[str, Any]]:
    segs: list[dict[str, Any]] = []
    t = 0.0
    face = bool(rng.random() < 0.5)
    while t < duration:
        length = float(rng.uniform(3.0, 8.0))
        t1 = min(duration, round(t + length, 2))
        seg: dict[str, Any] = {"t0": round(t, 2), "t1": t1}
        if face:
            name, crop = FACES[split][int(rng.integers(len(FACES[split])))]
            seg["image"] = name
            if crop is not None and CROPS[crop] is not None:
                seg["crop"] = CROPS[crop]
            if name.startswith("lfw:"):
                seg["scale"] = round(float(rng.uniform(0.38, 0.62)), 2)
            else:
                seg["scale"] = round(float(rng.uniform(0.65, 1.0)), 2)
            seg["face"] = True
        else:
            name = NON_FACES[split][int(rng.integers(len(NON_FACES[split])))]
            if name == "grey":
                seg["color"] = [96, 96, 96]
            elif name == "color":
                seg["color"] = [int(c) for c in rng.integers(20, 230, 3)]
            else:
                seg["image"] = name
                seg["scale"] = round(float(rng.uniform(0.4, 0.95)), 2)
            seg["face"] = False
        seg["pos"] = [
            round(float(rng.uniform(0.1, 0.9)), 2),
            round(float(rng.uniform(0.1, 0.9)), 2),
        ]
        if rng.random() < 0.5:
            seg["motion"] = "drift"
            seg["drift"] = [0.06, 0.04]
        segs.append(seg)
        t = t1
        face = not face
    return segs


def _say(rng: np.random.Generator, split: str, text: str, t: float) -> dict[str, Any]:
    voices = VOICES[split]
    return {
        "t": round(t, 2),
        "say": text,
        "voice": voices[int(rng.integers(len(voices)))],
        "speed": int(rng.integers(135, 171)),
        "pitch": int(rng.integers(35, 66)),
        "gain_db": round(float(rng.uniform(-8.0, 0.0)), 1),
    }


def _audio(rng: np.random.Generator, split: str, duration: float) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    t = float(rng.uniform(0.5, 2.5))
    phrases = PHRASES[split]
    while t < duration - 3.5:
        r = rng.random()
        if r < 0.4:  # wake word, often followed by a command
            items.append(_say(rng, split, WAKE_PHRASE, t))
            t += 1.0 + float(rng.uniform(0.8, 1.6))
            if rng.random() < 0.6 and t < duration - 3.5:
                items.append(_say(rng, split, phrases[int(rng.integers(len(phrases)))], t))
                t += 2.6
        elif r < 0.85:
            items.append(_say(rng, split, phrases[int(rng.integers(len(phrases)))], t))
            t += 2.6
        else:  # a beep (not speech)
            items.append(
                {"t": round(t, 2), "beep": int(rng.integers(400, 2000)), "dur": 0.4, "db": -20}
            )
            t += 0.8
        t += float(rng.uniform(0.8, 3.5))
    return items


def session_specs(split: str, count: int | None = None, seed: int = SEED) -> list[dict[str, Any]]:
    """The recipe: ``count`` session specs for ``split`` (``train`` or ``heldout``)."""
    if split not in VOICES:
        raise ValueError(f"split must be train or heldout, not {split!r}")
    n = count if count is not None else (TRAIN_COUNT if split == "train" else HELDOUT_COUNT)
    rng = np.random.default_rng([seed, 0 if split == "train" else 1])
    specs = []
    for i in range(n):
        duration = float(rng.choice([20.0, 24.0, 28.0]))
        size = [320, 240] if rng.random() < 0.75 else [480, 360]
        specs.append(
            {
                "name": f"{split}-{i:03d}",
                "duration": duration,
                "fps": 15,
                "size": size,
                "seed": int(rng.integers(1 << 30)),
                "noise_db": round(float(rng.uniform(-66.0, -46.0)), 1),
                "video": _video(rng, split, duration),
                "audio": _audio(rng, split, duration),
            }
        )
    return specs


# ------------------------------------------------------------------------------ rendering


def render_video(spec: dict[str, Any], path: Path) -> None:
    fps = spec.get("fps", 15)
    size = (int(spec["size"][0]), int(spec["size"][1]))
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    if not vw.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    cache: dict[str, np.ndarray] = {}
    segs = spec["video"]
    for i in range(int(round(spec["duration"] * fps))):
        t = i / fps
        seg = next((s for s in segs if s["t0"] <= t < s["t1"]), None)
        vw.write(ms.render_frame(seg, t, size, cache))
    vw.release()


def make(spec: dict[str, Any], out: Path) -> dict[str, Any]:
    """Write ``audio.wav``, ``video.avi`` and ``labels.json`` (make_session's format)."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.get("seed", 0))
    audio, placed = ms.render_audio(spec, rng)
    write_wav(out / "audio.wav", audio, ms.SR)
    render_video(spec, out / "video.avi")
    labels = {"spec": spec, "audio": placed, "video": spec["video"]}
    (out / "labels.json").write_text(json.dumps(labels, indent=1))
    return labels


def make_all(out: Path, split: str, count: int | None = None) -> list[Path]:
    """Render every session of ``split`` under ``out/split`` (skipping ones already made)."""
    dirs = []
    for spec in session_specs(split, count):
        d = out / split / spec["name"]
        lab = d / "labels.json"
        if not (lab.is_file() and json.loads(lab.read_text()).get("spec") == spec):
            make(spec, d)
        dirs.append(d)
    return dirs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--split", choices=["train", "heldout"], default="train")
    ap.add_argument("--count", type=int, default=None)
    a = ap.parse_args()
    for d in make_all(a.out, a.split, a.count):
        print(d)
    return 0


if __name__ == "__main__":
    sys.exit(main())
