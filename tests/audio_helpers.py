"""Real test audio: espeak-ng speech resampled to 16 kHz mono int16, plus noise and mixing.

Every helper returns int16 arrays at 16 kHz and is deterministic: speech comes from the Debian
``espeak-ng`` binary, resampled by ``sox`` without dither (``-D``; sox dithers randomly by
default), noise from seeded generators. Tests that need speech call :func:`require_espeak`
(a clean skip when the binaries are absent).
"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache

import numpy as np
import pytest

SAMPLE_RATE = 16000


def have_espeak() -> bool:
    return shutil.which("espeak-ng") is not None and shutil.which("sox") is not None


def require_espeak() -> None:
    if not have_espeak():
        pytest.skip("espeak-ng and sox are needed (apt-get install espeak-ng sox)")


@cache
def _speak(text: str, voice: str, speed: int) -> bytes:
    tts = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text],
        check=True,
        capture_output=True,
    )
    pcm = subprocess.run(
        ["sox", "-D", "-t", "wav", "-", "-r", str(SAMPLE_RATE), "-c", "1", "-b", "16"]
        + ["-e", "signed", "-t", "raw", "-"],
        input=tts.stdout,
        check=True,
        capture_output=True,
    )
    return pcm.stdout


def speak(text: str, voice: str = "en-us", speed: int = 150, trim: bool = True) -> np.ndarray:
    """``text`` spoken by espeak-ng as 16 kHz mono int16; leading/trailing silence trimmed."""
    x = np.frombuffer(_speak(text, voice, speed), dtype=np.int16).copy()
    if trim:
        loud = np.flatnonzero(np.abs(x.astype(np.int32)) > 300)
        if loud.size:
            x = x[loud[0] : loud[-1] + 1]
    return x


def noise(n: int, rms: float, seed: int = 0, color: str = "pink") -> np.ndarray:
    """Gaussian noise with the given RMS (int16 units); ``color`` is ``white`` or ``pink``."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(n)
    if color == "pink":
        spec = np.fft.rfft(w)
        f = np.arange(spec.size, dtype=np.float64)
        f[0] = 1.0
        w = np.fft.irfft(spec / np.sqrt(f), n)
    elif color != "white":
        raise ValueError(f"unknown noise color {color!r}")
    w *= rms / max(float(np.sqrt(np.mean(w * w))), 1e-12)
    return np.clip(np.rint(w), -32768, 32767).astype(np.int16)


def rms(x: np.ndarray) -> float:
    xf = x.astype(np.float64)
    return float(np.sqrt(np.mean(xf * xf)))


def scene(
    parts: list[tuple[float, np.ndarray]],
    duration_s: float,
    noise_rms: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """A ``duration_s`` clip of noise (or silence) with each ``(t_seconds, clip)`` added at t."""
    n = int(round(duration_s * SAMPLE_RATE))
    out = noise(n, noise_rms, seed).astype(np.int32) if noise_rms > 0 else np.zeros(n, np.int32)
    for t, clip in parts:
        i = int(round(t * SAMPLE_RATE))
        if i + clip.size > n:
            raise ValueError(f"clip at {t}s of {clip.size} samples does not fit in {duration_s}s")
        out[i : i + clip.size] += clip
    return np.clip(out, -32768, 32767).astype(np.int16)


def chunks(x: np.ndarray, sizes: list[int] | int) -> list[np.ndarray]:
    """Split ``x`` into consecutive chunks; a list of sizes is cycled until ``x`` is used up."""
    seq = [sizes] if isinstance(sizes, int) else sizes
    out, i, k = [], 0, 0
    while i < x.size:
        s = seq[k % len(seq)]
        out.append(x[i : i + s])
        i += s
        k += 1
    return out
