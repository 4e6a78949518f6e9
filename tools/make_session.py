#!/usr/bin/env python3
"""Compose a labelled audio/video session from real material.

Video: scikit-image photographs (faces: ``astronaut``; no faces: ``coffee``, ``chelsea``,
``camera``) or flat colours, optionally drifting and scaled, on a grey background.
Audio: espeak-ng utterances in chosen voices, sine beeps, and background noise.
Writes ``audio.wav`` (16 kHz mono int16), ``video.mp4`` (mp4v) or ``.avi`` (MJPG) and
``labels.json`` (the spec plus the exact speech intervals measured after synthesis).

    python tools/make_session.py spec.json OUT_DIR
    python tools/make_session.py --demo OUT_DIR      # the bundled demo session

A spec is JSON or YAML::

    {"duration": 8, "fps": 15, "size": [320, 240], "seed": 1, "noise_db": -55,
     "video": [{"t0": 0, "t1": 3, "image": "coffee"},
               {"t0": 3, "t1": 8, "image": "astronaut", "scale": 0.7, "motion": "drift"}],
     "audio": [{"t": 4.0, "say": "hey jarvis", "voice": "en-us"},
               {"t": 6.0, "beep": 1000, "dur": 0.5, "db": -12}]}
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgemm.sources.audiofile import read_wav, write_wav  # noqa: E402

SR = 16000
FACE_IMAGES = {"astronaut"}
IMAGES = ("astronaut", "coffee", "chelsea", "camera")


def load_image(name: str) -> np.ndarray:
    """A scikit-image sample image as BGR uint8; ``lfw:N`` is crop N (25×25) of lfw_subset
    (0-99 faces, 100-199 non-faces)."""
    from skimage import data

    if name.startswith("lfw:"):
        crop = data.lfw_subset()[int(name[4:])]
        g = np.round(crop * 255).astype(np.uint8)
        return cv2.cvtColor(g, cv2.COLOR_GRAY2BGR)
    img = getattr(data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, axis=-1)
    return cv2.cvtColor(img[..., :3].astype(np.uint8), cv2.COLOR_RGB2BGR)


def speak(
    text: str, voice: str = "en-us", speed: int = 150, pitch: int | None = None
) -> np.ndarray:
    """espeak-ng → 16 kHz int16, leading/trailing silence trimmed."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (sudo apt-get install espeak-ng)")
    with tempfile.TemporaryDirectory() as d:
        wav = Path(d) / "s.wav"
        cmd = [exe, "-v", voice, "-s", str(speed), "-w", str(wav)]
        if pitch is not None:
            cmd += ["-p", str(pitch)]
        subprocess.run([*cmd, text], check=True, capture_output=True)
        x = read_wav(wav, SR)
    return trim(x)


def trim(x: np.ndarray, thresh: int = 300) -> np.ndarray:
    idx = np.flatnonzero(np.abs(x.astype(np.int32)) > thresh)
    if idx.size == 0:
        return x[:0]
    return x[idx[0] : idx[-1] + 1]


def beep(freq: float, dur: float, db: float = -12.0) -> np.ndarray:
    t = np.arange(int(round(dur * SR))) / SR
    amp = 32767 * 10 ** (db / 20)
    ramp = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.002) if t.size else t
    return np.round(amp * np.sin(2 * np.pi * freq * t) * ramp).astype(np.int16)


def render_audio(
    spec: dict[str, Any], rng: np.random.Generator
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    n = int(round(spec["duration"] * SR))
    mix = np.zeros(n, dtype=np.float64)
    noise_db = spec.get("noise_db")
    if noise_db is not None:
        mix += rng.normal(0.0, 32767 * 10 ** (noise_db / 20), n)
    placed = []
    for item in spec.get("audio", []):
        if "say" in item:
            clip = speak(
                item["say"], item.get("voice", "en-us"), item.get("speed", 150), item.get("pitch")
            )
            gain = 10 ** (item.get("gain_db", 0.0) / 20)
            kind = "speech"
        elif "beep" in item:
            clip = beep(item["beep"], item.get("dur", 0.5), item.get("db", -12.0))
            gain = 1.0
            kind = "beep"
        else:
            raise ValueError(f"audio item needs 'say' or 'beep': {item}")
        start = int(round(item["t"] * SR))
        end = min(n, start + clip.size)
        mix[start:end] += clip[: end - start].astype(np.float64) * gain
        placed.append({**item, "kind": kind, "t_start": start / SR, "t_end": end / SR})
    return np.clip(np.round(mix), -32768, 32767).astype(np.int16), placed


def render_frame(
    seg: dict[str, Any] | None, t: float, size: tuple[int, int], cache: dict[str, np.ndarray]
) -> np.ndarray:
    w, h = size
    frame = np.full((h, w, 3), 96, dtype=np.uint8)
    if seg is None:
        return frame
    if "color" in seg:
        frame[:] = np.array(seg["color"][::-1], dtype=np.uint8)  # RGB in the spec, BGR here
        return frame
    name = seg["image"]
    key = f"{name}{seg.get('crop')}"
    if key not in cache:
        img = load_image(name)
        if "crop" in seg:  # [x0, y0, x1, y1] in the source image, e.g. a head-and-shoulders shot
            x0, y0, x1, y1 = seg["crop"]
            img = np.ascontiguousarray(img[y0:y1, x0:x1])
        cache[key] = img
    img = cache[key]
    scale = seg.get("scale", 0.8) * min(w / img.shape[1], h / img.shape[0])
    iw, ih = max(1, int(img.shape[1] * scale)), max(1, int(img.shape[0] * scale))
    interp = cv2.INTER_LINEAR if scale > 1 else cv2.INTER_AREA
    img = cv2.resize(img, (iw, ih), interpolation=interp)
    px, py = seg.get("pos", [0.5, 0.5])  # where the picture sits: 0..1 of the free space
    dx = dy = 0.0
    if seg.get("motion") == "drift":
        ax, ay = seg.get("drift", [0.08, 0.05])  # amplitude as a fraction of the frame
        ph = (t - seg["t0"]) * 2 * np.pi / 6.0
        dx, dy = ax * w * np.sin(ph), ay * h * np.sin(2 * ph)
    x0 = int(round((w - iw) * px + dx))
    y0 = int(round((h - ih) * py + dy))
    xs, ys = max(0, x0), max(0, y0)
    xe, ye = min(w, x0 + iw), min(h, y0 + ih)
    if xe > xs and ye > ys:
        frame[ys:ye, xs:xe] = img[ys - y0 : ye - y0, xs - x0 : xe - x0]
    return frame


def render_video(spec: dict[str, Any], path: Path) -> list[dict[str, Any]]:
    fps = spec.get("fps", 15)
    size = tuple(spec.get("size", [320, 240]))
    fourcc = "MJPG" if path.suffix == ".avi" else "mp4v"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, size)
    if not vw.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path} with {fourcc}")
    cache: dict[str, np.ndarray] = {}
    segs = spec.get("video", [])
    nframes = int(round(spec["duration"] * fps))
    for i in range(nframes):
        t = i / fps
        seg = next((s for s in segs if s["t0"] <= t < s["t1"]), None)
        vw.write(render_frame(seg, t, size, cache))
    vw.release()
    return [{**s, "face": s.get("image") in FACE_IMAGES} for s in segs]


def make_session(spec: dict[str, Any], out: Path, video_name: str = "video.mp4") -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.get("seed", 0))
    labels: dict[str, Any] = {"spec": spec}
    if spec.get("audio") is not None:
        audio, placed = render_audio(spec, rng)
        write_wav(out / "audio.wav", audio, SR)
        labels["audio"] = placed
    if spec.get("video") is not None:
        labels["video"] = render_video(spec, out / video_name)
    (out / "labels.json").write_text(json.dumps(labels, indent=1))
    return labels


# head and shoulders of the astronaut photograph (her face spans about x 178-272, y 81-175)
PORTRAIT = [95, 0, 355, 300]

DEMO_SPEC: dict[str, Any] = {
    "duration": 20.0,
    "fps": 15,
    "size": [320, 240],
    "seed": 7,
    "noise_db": -60,
    "video": [
        {"t0": 0.0, "t1": 3.0, "image": "coffee", "scale": 0.9},
        {
            "t0": 3.0,
            "t1": 10.0,
            "image": "astronaut",
            "crop": PORTRAIT,
            "scale": 0.9,
            "motion": "drift",
        },
        {"t0": 10.0, "t1": 13.5, "image": "chelsea", "scale": 0.9},
        {
            "t0": 13.5,
            "t1": 20.0,
            "image": "astronaut",
            "crop": PORTRAIT,
            "scale": 0.75,
            "motion": "drift",
        },
    ],
    "audio": [
        {"t": 4.5, "say": "hey jarvis", "voice": "en-us"},
        {"t": 6.5, "say": "what is the weather like today", "voice": "en-us"},
        {"t": 11.0, "say": "and now the news", "voice": "en+f3"},
        {"t": 15.0, "say": "hey jarvis", "voice": "en+m3"},
        {"t": 17.0, "say": "turn on the lights please", "voice": "en+m3"},
    ],
}


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("spec", nargs="?", help="JSON or YAML spec file")
    ap.add_argument("out", help="output folder")
    ap.add_argument("--demo", action="store_true", help="make the bundled demo session")
    ap.add_argument(
        "--video-name", default="video.mp4", help="video.mp4 (mp4v) or video.avi (MJPG)"
    )
    a = ap.parse_args()
    if a.demo:
        spec = DEMO_SPEC
    elif a.spec:
        text = Path(a.spec).read_text()
        import yaml

        spec = yaml.safe_load(text)
    else:
        ap.error("give a spec file or --demo")
    labels = make_session(spec, Path(a.out), a.video_name)
    print(json.dumps({k: v for k, v in labels.items() if k != "spec"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
