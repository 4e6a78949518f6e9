"""Reading WAV files into 16 kHz mono int16, converting what can be converted."""

from __future__ import annotations

import logging
import wave
from pathlib import Path

import numpy as np

from ..errors import SourceError

log = logging.getLogger(__name__)


def _fir_lowpass(cutoff: float, taps: int = 63) -> np.ndarray:
    """Windowed-sinc low-pass; ``cutoff`` as a fraction of the sample rate (0..0.5)."""
    n = np.arange(taps) - (taps - 1) / 2
    h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.hamming(taps)
    return (h / h.sum()).astype(np.float64)


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling of float mono audio (low-pass, then linear interpolation)."""
    if sr_in == sr_out or x.size == 0:
        return x
    if sr_out < sr_in:
        x = np.convolve(x, _fir_lowpass(0.45 * sr_out / sr_in, 127), mode="same")
    n_out = int(round(x.size * sr_out / sr_in))
    t = np.arange(n_out) * (sr_in / sr_out)
    return np.interp(t, np.arange(x.size), x)


def read_wav(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """Load a PCM WAV as mono int16 at ``sample_rate``.

    Stereo is averaged, other rates are resampled, 8/24/32-bit PCM is converted; each conversion
    is logged once. Unreadable, truncated or empty files raise :class:`SourceError`.
    """
    p = Path(path)
    if not p.is_file():
        raise SourceError(f"audio file {p} not found", "check the --audio path")
    try:
        with wave.open(str(p), "rb") as w:
            ch, width, sr, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(n)
    except (wave.Error, EOFError, OSError) as exc:
        raise SourceError(
            f"audio file {p} is not a readable PCM WAV ({exc})",
            "convert it with: ffmpeg -i INPUT -ac 1 -ar 16000 -c:a pcm_s16le out.wav",
        ) from None
    frames = len(raw) // (ch * width) if ch and width else 0
    if frames == 0:
        raise SourceError(f"audio file {p} has no samples", "record or choose a non-empty file")
    if frames < n:
        log.warning("audio file %s is truncated: header says %d frames, %d present", p, n, frames)
    raw = raw[: frames * ch * width]
    if width == 2:
        x = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    elif width == 1:
        x = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    elif width == 3:
        b = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3)
        v = (
            b[:, 0].astype(np.int32)
            | (b[:, 1].astype(np.int32) << 8)
            | (b[:, 2].astype(np.int32) << 16)
        )
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        x = v.astype(np.float64) / 256.0
    elif width == 4:
        x = np.frombuffer(raw, dtype="<i4").astype(np.float64) / 65536.0
    else:
        raise SourceError(f"audio file {p}: unsupported sample width {width} bytes")
    if ch > 1:
        log.info("audio file %s: mixing %d channels down to mono", p, ch)
        x = x.reshape(-1, ch).mean(axis=1)
    if sr != sample_rate:
        log.info("audio file %s: resampling %d Hz to %d Hz", p, sr, sample_rate)
        x = resample(x, sr, sample_rate)
    return np.clip(np.rint(x), -32768, 32767).astype(np.int16)


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int = 16000) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())


class LoopedAudio:
    """``loops`` repetitions of a sample array without copying it: ``len()`` and slicing (step 1)
    behave like the concatenation. Used for long soak and memory runs."""

    def __init__(self, samples: np.ndarray, loops: int) -> None:
        self.base = samples
        self.loops = max(1, loops)

    def __len__(self) -> int:
        return len(self.base) * self.loops

    def __getitem__(self, sl: slice) -> np.ndarray:
        start, stop, _ = sl.indices(len(self))
        n = len(self.base)
        a, b = start % n, start % n + (stop - start)
        if b <= n:
            return self.base[a:b]
        return np.take(self.base, np.arange(start, stop) % n)
