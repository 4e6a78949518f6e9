"""Replay of a WAV and/or a video file as if they were live devices.

``--fast`` replay does not use this class: the scheduler pulls from the files directly with no
pacing. ``--realtime`` replay feeds the same rings as the live sources, paced to the wall clock,
so everything downstream behaves as live (newest-frame video, lag accounting). File positions are
the clock: a frame at index ``i`` is at ``i / fps``.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from ..buffers import AudioRing, FrameRing
from ..clock import StreamClock
from ..stages.base import Frame
from .videofile import VideoFile


class ReplayFeeder:
    def __init__(
        self,
        audio: np.ndarray | None,
        video: VideoFile | None,
        ring: AudioRing | None,
        frames: FrameRing | None,
        clock: StreamClock,
        block: int = 320,
        speed: float = 1.0,
    ) -> None:
        self.audio = audio
        self.video = video
        self.ring = ring
        self.frame_ring = frames
        self.clock = clock
        self.block = block
        self.speed = speed
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.wall_start = 0.0

    @property
    def duration(self) -> float:
        a = len(self.audio) / self.clock.sample_rate if self.audio is not None else 0.0
        v = self.video.duration if self.video is not None else 0.0
        return max(a, v)

    def start(self) -> None:
        self.wall_start = time.monotonic()
        if self.audio is not None and self.ring is not None:
            self._threads.append(
                threading.Thread(target=self._feed_audio, name="replay-audio", daemon=True)
            )
        if self.video is not None and self.frame_ring is not None:
            self._threads.append(
                threading.Thread(target=self._feed_video, name="replay-video", daemon=True)
            )
        for t in self._threads:
            t.start()

    def _sleep_until(self, t_stream: float) -> bool:
        delay = self.wall_start + t_stream / self.speed - time.monotonic()
        return not (delay > 0 and self._stop.wait(delay))

    def _feed_audio(self) -> None:
        assert self.audio is not None and self.ring is not None
        sr = self.clock.sample_rate
        for i in range(0, len(self.audio), self.block):
            blk = self.audio[i : i + self.block]
            if not self._sleep_until((i + len(blk)) / sr):
                return
            self.ring.write(blk)
            self.clock.anchor(self.ring.write_index, time.monotonic())

    def _feed_video(self) -> None:
        assert self.video is not None and self.frame_ring is not None
        for f in self.video.frames(self.video.loops):
            if not self._sleep_until(f.t):
                return
            self.frame_ring.put(Frame(image=f.image, t=f.t, index=f.index, wall=time.monotonic()))

    @property
    def finished(self) -> bool:
        return all(not t.is_alive() for t in self._threads)

    @property
    def audio_finished(self) -> bool:
        return all(not t.is_alive() for t in self._threads if t.name == "replay-audio")

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(2.0)
