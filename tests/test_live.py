"""Live mode with fakes only at the device seams: the real callback, reader thread, rings,
scheduler and bus run."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from fakes import FakeSoundDevice, Flags, FlakyCameraFactory

from edgemm import Pipeline, load_config
from edgemm.buffers import AudioRing
from edgemm.clock import StreamClock
from edgemm.events import Event
from edgemm.sources.audiofile import read_wav
from edgemm.sources.microphone import MicSource, resolve_device


def test_mic_callback_copies_into_the_ring_and_counts_overflows() -> None:
    ring = AudioRing(16000)
    clock = StreamClock(16000)
    mic = MicSource(ring, clock, sd=FakeSoundDevice(np.zeros(10, np.int16)))
    x = (np.arange(320 * 60) % 1000).astype(np.int16)
    for i in range(60):
        blk = x[i * 320 : (i + 1) * 320].reshape(-1, 1)
        mic.callback(blk, 320, None, Flags(input_overflow=(i % 20 == 19)))
    assert mic.overflows == 3
    assert ring.write_index == 320 * 60
    np.testing.assert_array_equal(ring.read(ring.oldest, ring.write_index), x[-16000:])
    assert abs(clock.now() - 320 * 60 / 16000) < 0.5  # the clock follows the audio anchor


def test_mic_device_by_name_substring() -> None:
    sd = FakeSoundDevice(np.zeros(10, np.int16))
    assert resolve_device("usb", sd) == 0
    assert resolve_device(3, sd) == 3
    assert resolve_device(None, sd) is None
    import pytest

    from edgemm.errors import SourceError

    with pytest.raises(SourceError, match="Fake USB Mic"):
        resolve_device("webcam", sd)


def test_camera_unplug_reconnect_while_audio_keeps_flowing(beep_session: Path) -> None:
    samples = read_wav(beep_session / "audio.wav")
    sd = FakeSoundDevice(samples, overflow_every=50)
    cam = FlakyCameraFactory(good=30, down_s=1.0)
    cfg = load_config({"video": {"reconnect_after_s": 0.5}, "status": {"interval_s": 0.5}})
    events: list[Event] = []
    p = Pipeline(cfg, stdout=False, camera_factory=cam, sounddevice_module=sd)
    p.subscribe(events.append)
    p.start()
    time.sleep(5.0)
    p.stop()
    assert p.error is None
    status = [e for e in events if e.type == "status"]
    errors = [e for e in events if e.type == "error" and e.label == "camera"]
    assert errors and "reconnecting" in errors[0].data["message"]
    assert p.camera is not None and p.camera.reconnects >= 1
    assert status[-1].data["camera_reconnects"] >= 1
    # audio never stopped: hops cover (almost) all the wall time, and speech was detected
    hops = status[-1].data["counters"]["audio_hops"]
    assert hops >= 4.0 / 0.08
    assert any(e.type == "vad" for e in events)
    assert status[-1].data["input_overflows"] >= 3
    # frames came back after the reconnect
    assert cam.delivered > 30
    assert status[-1].data["counters"]["frames_in"] > 30


def test_camera_lost_turns_presence_off_and_recovery_turns_it_back_on(beep_session: Path) -> None:
    import cv2
    from skimage import data

    img = cv2.cvtColor(data.astronaut()[0:300, 95:355], cv2.COLOR_RGB2BGR)
    samples = read_wav(beep_session / "audio.wav")
    cam = FlakyCameraFactory(good=45, down_s=2.0, image=np.ascontiguousarray(img))
    cfg = load_config(
        {"video": {"reconnect_after_s": 0.5}, "stages": {"face": {"enabled": True, "mesh": False}}}
    )
    events: list[Event] = []
    p = Pipeline(cfg, stdout=False, camera_factory=cam, sounddevice_module=FakeSoundDevice(samples))
    p.subscribe(events.append)
    p.start()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        pres = [e for e in events if e.type == "presence"]
        if len(pres) >= 3:
            break
        time.sleep(0.2)
    p.stop()
    pres = [e for e in events if e.type == "presence"]
    assert [e.data["present"] for e in pres[:3]] == [True, False, True], pres
    assert pres[1].data.get("reason") == "camera_lost"
    assert p.camera is not None and p.camera.reconnects == 1
    # audio kept flowing through the outage
    vad_or_level = [e for e in events if e.type == "vad"]
    assert vad_or_level


def test_microphone_gone_is_reported_retried_and_recovered(beep_session: Path) -> None:
    samples = read_wav(beep_session / "audio.wav")
    sd = FakeSoundDevice(samples, die_after=50, unavailable_s=1.5)  # dies after 1 s of audio
    cfg = load_config({"video": {"enabled": False}, "status": {"interval_s": 0.5}})
    events: list[Event] = []
    p = Pipeline(cfg, stdout=False, sounddevice_module=sd)
    p.subscribe(events.append)
    p.start()
    time.sleep(7.0)
    p.stop()
    assert p.error is None
    errors = [e for e in events if e.type == "error" and e.label == "microphone"]
    back = [e for e in events if e.type == "status" and e.label == "microphone"]
    assert errors and "no audio" in errors[0].data["message"]
    assert back and back[0].data["event"] == "reconnected"
    assert p.mic is not None and p.mic.reconnects == 1 and len(sd.streams) >= 2
    # status kept coming during the outage, and audio resumed afterwards with the gap filled
    health = [e for e in events if e.type == "status" and e.label == "health"]
    outage = [e for e in health if errors[0].t_start < e.t_start < back[0].t_start]
    assert outage
    assert health[-1].data["audio_gap_s"] >= 1.5
    assert health[-1].data["counters"]["audio_hops"] >= 6.0 / 0.08
