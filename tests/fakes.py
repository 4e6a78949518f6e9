"""Fakes at the two device seams (PortAudio stream, OpenCV capture) for fault injection.

They drive the real callback and the real reader thread; everything behind them is real.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Flags:
    input_overflow: bool = False

    def __bool__(self) -> bool:
        return self.input_overflow


class FakeInputStream:
    def __init__(
        self,
        samples: np.ndarray,
        overflow_every: int,
        device: Any,
        channels: int,
        samplerate: int,
        dtype: str,
        blocksize: int,
        callback: Any,
        die_after: int = 0,
    ) -> None:
        self.die_after = die_after  # blocks; then the stream goes silent like an unplugged device
        self.samples = samples
        self.overflow_every = overflow_every
        self.blocksize = blocksize
        self.samplerate = samplerate
        self.callback = callback
        self.active = False
        self._stop = threading.Event()
        self._t: threading.Thread | None = None

    def start(self) -> None:
        self.active = True
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        t0 = time.monotonic()
        i = 0
        n = 0
        while not self._stop.is_set():
            blk = self.samples[i : i + self.blocksize]
            if len(blk) < self.blocksize:  # loop the material
                i = 0
                continue
            n += 1
            if self.die_after and n > self.die_after:
                self._stop.wait(0.05)
                continue
            flags = Flags(self.overflow_every > 0 and n % self.overflow_every == 0)
            self.callback(blk.reshape(-1, 1), self.blocksize, None, flags)
            i += self.blocksize
            delay = t0 + n * self.blocksize / self.samplerate - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def stop(self) -> None:
        self._stop.set()
        if self._t:
            self._t.join(2)
        self.active = False

    def close(self) -> None:
        pass


class FakeSoundDevice:
    """Stands in for the ``sounddevice`` module."""

    def __init__(
        self,
        samples: np.ndarray,
        overflow_every: int = 0,
        die_after: int = 0,
        unavailable_s: float = 0.0,
    ) -> None:
        self.samples = samples
        self.overflow_every = overflow_every
        self.die_after = die_after  # the first stream dies after this many blocks
        self.unavailable_s = unavailable_s  # then opening fails for this long
        self.died_at: float | None = None
        self.streams: list[FakeInputStream] = []

    def query_devices(self) -> list[dict[str, Any]]:
        return [
            {"name": "Fake USB Mic", "max_input_channels": 1, "default_samplerate": 16000.0},
            {"name": "Speaker", "max_input_channels": 0, "default_samplerate": 48000.0},
        ]

    def InputStream(self, **kw: Any) -> FakeInputStream:  # noqa: N802 - sounddevice's name
        if self.streams and self.die_after:
            if self.died_at is None:
                self.died_at = time.monotonic()
            if time.monotonic() - self.died_at < self.unavailable_s:
                raise OSError("Error opening InputStream: Device unavailable [PaErrorCode -9985]")
        die = self.die_after if not self.streams else 0
        s = FakeInputStream(self.samples, self.overflow_every, die_after=die, **kw)
        self.streams.append(s)
        return s


class FlakyCapture:
    """A camera that delivers ``good`` frames, then fails reads; reopening works after
    ``down_s`` seconds. Shared state across reopen through the factory."""

    def __init__(self, factory: FlakyCameraFactory) -> None:
        self.f = factory
        self.open = True

    def isOpened(self) -> bool:  # noqa: N802
        return self.open

    def read(self) -> tuple[bool, Any]:
        f = self.f
        time.sleep(1 / 30)
        if f.failing_since is None and f.delivered >= f.good and f.failures_left > 0:
            f.failing_since = time.monotonic()
        if f.failing_since is not None:
            return False, None
        f.delivered += 1
        if f.image is not None:
            return True, f.image.copy()
        img = np.full((48, 64, 3), 200 if f.delivered % 60 < 30 else 40, np.uint8)
        return True, img

    def release(self) -> None:
        self.open = False


class FlakyCameraFactory:
    def __init__(
        self, good: int = 30, down_s: float = 1.0, failures: int = 1, image: Any = None
    ) -> None:
        self.image = image
        self.good = good
        self.down_s = down_s
        self.failures_left = failures
        self.delivered = 0
        self.failing_since: float | None = None
        self.opens = 0

    def __call__(self, device: Any, w: int, h: int, fps: float) -> FlakyCapture:
        self.opens += 1
        if self.failing_since is not None:
            if time.monotonic() - self.failing_since < self.down_s:
                raise OSError("device unplugged")
            self.failing_since = None
            self.failures_left -= 1
            self.good = (
                self.delivered + 10**9 if self.failures_left <= 0 else self.delivered + self.good
            )
        return FlakyCapture(self)
