"""SIGINT/SIGTERM: capture stops, the bus drains, JSONL is flushed, exit 0, nothing lost."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_drains_and_loses_no_published_event(
    beep_session: Path, tmp_path: Path, sig: int
) -> None:
    out = tmp_path / "ev.jsonl"
    cfg = tmp_path / "c.yaml"
    # status every 0.2 s so there is a steady stream of events up to the signal
    cfg.write_text(
        "status: {interval_s: 0.2}\nstages:\n  energy_gate: {enabled: true}\n"
        "  brightness: {enabled: true}\n"
    )
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgemm.cli",
            "replay",
            "--realtime",
            "-q",
            "--config",
            str(cfg),
            "--audio",
            str(beep_session / "audio.wav"),
            "--video",
            str(beep_session / "video.avi"),
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = (
        time.monotonic() + 60
    )  # wait for the replay to be under way (a loaded machine is slow)
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and any(
            json.loads(x)["t_end"] >= 1.0 for x in out.read_text().splitlines()
        ):
            break
        time.sleep(0.1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    m = re.search(r"stopped: (\d+) events published", err)
    assert m, err
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(lines) == int(m.group(1))
    assert [d["seq"] for d in lines] == list(range(1, len(lines) + 1))
    assert lines[-1]["type"] == "status"  # the final health event is written too
    assert 1.0 <= lines[-1]["t_end"] < 5.5  # stopped early, not at the end of the file
    assert "Traceback" not in err
