from __future__ import annotations

import threading

import numpy as np
import pytest

from edgemm.buffers import AudioRing, FrameRing, Overwritten
from edgemm.stages.base import Frame


def test_audio_ring_wraps_and_reads_by_absolute_index() -> None:
    r = AudioRing(1000)
    x = np.arange(2500, dtype=np.int16)
    for i in range(0, 2500, 300):  # blocks that straddle the wrap point
        r.write(x[i : i + 300])
    assert r.write_index == 2500
    assert r.oldest == 1500
    np.testing.assert_array_equal(r.read(1500, 2500), x[1500:2500])
    np.testing.assert_array_equal(r.read(1990, 2010), x[1990:2010])  # across the wrap
    out = np.empty(20, dtype=np.int16)
    assert r.read(2200, 2220, out=out) is out


def test_audio_ring_detects_overwritten_reads() -> None:
    r = AudioRing(100)
    r.write(np.arange(250, dtype=np.int16))
    with pytest.raises(Overwritten) as ei:
        r.read(100, 160)
    assert ei.value.oldest == 150 and ei.value.lost == 50
    with pytest.raises(ValueError):
        r.read(240, 260)  # not written yet


def test_audio_ring_block_larger_than_capacity_keeps_newest() -> None:
    r = AudioRing(64)
    x = np.arange(200, dtype=np.int16)
    r.write(x.reshape(-1, 1))  # 2-D (frames, channels) as sounddevice delivers
    assert r.write_index == 200
    np.testing.assert_array_equal(r.read(136, 200), x[136:])


def test_audio_ring_never_returns_wrong_samples_under_a_racing_writer() -> None:
    """A reader that lags behind a fast writer gets Overwritten, never stale data."""
    r = AudioRing(512)
    stop = threading.Event()

    def writer() -> None:
        base = 0
        while not stop.is_set():
            blk = (np.arange(base, base + 64) % 30000).astype(np.int16)
            r.write(blk)
            base += 64

    t = threading.Thread(target=writer)
    t.start()
    bad = overwritten = ok = 0
    try:
        for _ in range(3000):
            end = r.write_index
            start = max(0, end - 480)
            try:
                got = r.read(start, end)
            except Overwritten:
                overwritten += 1
                continue
            want = (np.arange(start, end) % 30000).astype(np.int16)
            ok += 1
            bad += int(not np.array_equal(got, want))
    finally:
        stop.set()
        t.join()
    assert ok > 0
    assert bad == 0


def _frame(i: int) -> Frame:
    return Frame(image=np.zeros((2, 2, 3), np.uint8), t=i / 30, index=i)


def test_frame_ring_drops_oldest_and_counts() -> None:
    fr = FrameRing(3)
    for i in range(10):
        fr.put(_frame(i))
    assert len(fr) == 3
    assert fr.dropped == 7
    f, skipped = fr.take_newest(-1)
    assert f is not None and f.index == 9 and skipped == 0
    assert fr.take_newest(9, timeout=0.01) == (None, 0)
    fr.put(_frame(10))
    fr.put(_frame(11))
    f, skipped = fr.take_newest(9)
    assert f is not None and f.index == 11 and skipped == 1


def test_frame_ring_frames_taken_are_not_counted_as_dropped() -> None:
    fr = FrameRing(2)
    for i in range(6):
        fr.put(_frame(i))
        fr.take_newest(i - 1)
    assert fr.dropped == 0
