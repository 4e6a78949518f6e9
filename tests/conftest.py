"""Shared fixtures: generated sessions (real espeak-ng speech, scikit-image pictures)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))


@pytest.fixture(scope="session")
def beep_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 s: grey frames and quiet noise; at exactly 2.00 s a 1 kHz beep starts in the WAV and
    the video turns white (30 fps, so frame 60 is at 2.00 s)."""
    from make_session import make_session

    out = tmp_path_factory.mktemp("beep")
    spec = {
        "duration": 6.0,
        "fps": 30,
        "size": [640, 480],
        "seed": 3,
        "noise_db": -70,
        "video": [
            {"t0": 0.0, "t1": 2.0, "color": [60, 60, 60]},
            {"t0": 2.0, "t1": 6.0, "color": [255, 255, 255]},
        ],
        "audio": [{"t": 2.0, "beep": 1000, "dur": 3.0, "db": -10}],
    }
    make_session(spec, out, "video.avi")
    return out
