"""The stream clock: seconds since the session started, with audio as the master.

Audio time is ``sample_index / sample_rate``. Video frames are stamped with the wall clock when
grabbed and mapped onto the stream clock through the latest audio anchor (the wall time at which
a known sample index arrived). Without audio, the stream clock is wall time since start.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class StreamClock:
    def __init__(
        self, sample_rate: int = 16000, wall: Callable[[], float] = time.monotonic
    ) -> None:
        self.sample_rate = sample_rate
        self._wall = wall
        self.wall_start = wall()
        # (sample_index, wall) of the newest audio block; replaced atomically as one tuple
        self._anchor: tuple[int, float] | None = None

    def anchor(self, sample_index: int, wall: float) -> None:
        """Record that ``sample_index`` samples had arrived by wall time ``wall``."""
        self._anchor = (sample_index, wall)

    def now(self) -> float:
        return self.to_stream(self._wall())

    def to_stream(self, wall: float) -> float:
        a = self._anchor
        if a is None:
            return wall - self.wall_start
        return a[0] / self.sample_rate + (wall - a[1])

    def to_wall(self, t: float) -> float:
        a = self._anchor
        if a is None:
            return self.wall_start + t
        return a[1] + (t - a[0] / self.sample_rate)

    def samples_to_seconds(self, n: int) -> float:
        return n / self.sample_rate

    def seconds_to_samples(self, t: float) -> int:
        return int(round(t * self.sample_rate))
