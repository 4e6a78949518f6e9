"""Preallocated ring buffers for audio samples and video frames.

``AudioRing`` has one writer (the capture callback) and any number of readers. The writer only
copies into the preallocated array and then advances ``write_index`` — no locks, no allocation.
A reader addresses samples by absolute index; if the writer has lapped the requested range the
read raises :class:`Overwritten` (checked after the copy, so a race is caught too) instead of
returning wrong samples.
"""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

from .stages.base import Frame


class Overwritten(Exception):
    """The requested samples were overwritten before they were read."""

    def __init__(self, start: int, oldest: int) -> None:
        super().__init__(f"samples from {start} were overwritten; oldest available is {oldest}")
        self.start = start
        self.oldest = oldest

    @property
    def lost(self) -> int:
        return self.oldest - self.start


class AudioRing:
    def __init__(self, capacity: int, dtype: type = np.int16) -> None:
        if capacity <= 0:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._buf = np.zeros(capacity, dtype=dtype)
        self.write_index = 0  # absolute index of the next sample to be written

    @property
    def oldest(self) -> int:
        return max(0, self.write_index - self.capacity)

    def write(self, block: np.ndarray) -> None:
        """Append samples (1-D, or 2-D with one channel). Allocation-free."""
        if block.ndim == 2:
            block = block[:, 0]
        n = block.shape[0]
        cap = self.capacity
        w = self.write_index
        if n >= cap:  # keep only the newest capacity samples
            block = block[n - cap :]
            w += n - cap
            n = cap
        pos = w % cap
        first = min(n, cap - pos)
        self._buf[pos : pos + first] = block[:first]
        if first < n:
            self._buf[: n - first] = block[first:]
        self.write_index = w + n  # publish after the copy

    def read(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """Copy samples [start, stop) into ``out`` (allocated if None)."""
        n = stop - start
        if n < 0 or stop > self.write_index:
            raise ValueError(
                f"samples {start}..{stop} are not available yet (written: {self.write_index})"
            )
        if start < self.oldest:
            raise Overwritten(start, self.oldest)
        if out is None:
            out = np.empty(n, dtype=self._buf.dtype)
        cap = self.capacity
        pos = start % cap
        first = min(n, cap - pos)
        out[:first] = self._buf[pos : pos + first]
        if first < n:
            out[first:n] = self._buf[: n - first]
        if start < self.write_index - cap:  # lapped during the copy
            raise Overwritten(start, self.oldest)
        return out


class FrameRing:
    """Keeps the last ``capacity`` frames; a put on a full ring drops the oldest and counts it."""

    def __init__(self, capacity: int = 4) -> None:
        self.capacity = capacity
        self._frames: deque[Frame] = deque(maxlen=capacity)
        self._cond = threading.Condition()
        self.dropped = 0  # frames evicted before anyone took them
        self.put_count = 0
        self._taken_index = -1

    def put(self, frame: Frame) -> None:
        with self._cond:
            if len(self._frames) == self.capacity and self._frames[0].index > self._taken_index:
                self.dropped += 1
            self._frames.append(frame)
            self.put_count += 1
            self._cond.notify_all()

    def latest(self) -> Frame | None:
        with self._cond:
            return self._frames[-1] if self._frames else None

    def take_newest(
        self, after_index: int, timeout: float | None = None
    ) -> tuple[Frame | None, int]:
        """Newest frame with index > after_index (waiting up to ``timeout``) and how many newer-
        than-``after_index`` frames were skipped to get there."""
        with self._cond:
            if not (self._frames and self._frames[-1].index > after_index):
                self._cond.wait(timeout)
            if not (self._frames and self._frames[-1].index > after_index):
                return None, 0
            f = self._frames[-1]
            skipped = max(0, f.index - after_index - 1) if after_index >= 0 else 0
            self._taken_index = f.index
            return f, skipped

    def __len__(self) -> int:
        return len(self._frames)
