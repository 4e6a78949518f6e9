"""tools/record_session.py with fakes at the device seams: real reader threads, real rings,
real files."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import numpy as np
from fakes import FakeSoundDevice, FlakyCameraFactory
from record_session import record

from edgemm.sources.audiofile import read_wav
from edgemm.sources.videofile import VideoFile


def test_record_writes_a_replayable_user_only_session(tmp_path: Path) -> None:
    tone = (3000 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.int16)
    cam = FlakyCameraFactory(good=10**9, image=np.full((240, 320, 3), 150, np.uint8))
    out = tmp_path / "rec"
    labels = record(
        out,
        2.0,
        fps=10.0,
        size=(320, 240),
        keys=io.StringIO(""),
        sd=FakeSoundDevice(tone),
        open_capture=cam,
    )
    for name in ("audio.wav", "video.avi", "labels.json"):
        mode = stat.S_IMODE((out / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    audio = read_wav(out / "audio.wav")
    assert len(audio) == 32000 and np.abs(audio).max() > 2500
    v = VideoFile(out / "video.avi")
    assert (v.width, v.height) == (320, 240) and 15 <= v.frame_count <= 20
    assert json.loads((out / "labels.json").read_text())["spec"]["recorded"] is True
    assert labels["spec"]["duration"] == 2.0
