"""The bundled demo session through the default profile: real encoders, real files."""

from __future__ import annotations

import json

import pytest

from edgemm import Pipeline, load_config
from edgemm.demo import demo_files, demo_labels
from edgemm.events import Event


@pytest.fixture(scope="module")
def demo_events() -> list[Event]:
    audio, video = demo_files()
    with Pipeline(load_config("default"), audio_file=audio, video_file=video, stdout=False) as p:
        return list(p.events())


def test_presence_follows_the_face_segments(demo_events: list[Event]) -> None:
    labels = json.loads(demo_labels().read_text())
    faces = [s for s in labels["video"] if s["face"]]
    pres = [e for e in demo_events if e.type == "presence"]
    ons = [e for e in pres if e.data["present"]]
    offs = [e for e in pres if not e.data["present"]]
    assert len(ons) == len(faces)
    for seg, on in zip(faces, ons, strict=True):
        assert abs(on.t_start - seg["t0"]) <= 0.5
    # the first face leaves at 10 s; the second stays to the end of the file
    assert len(offs) == 1 and abs(offs[0].t_start - faces[0]["t1"]) <= 0.5


def test_wake_words_at_the_right_times_and_nowhere_else(demo_events: list[Event]) -> None:
    labels = json.loads(demo_labels().read_text())
    said = [a for a in labels["audio"] if a.get("say") == "hey jarvis"]
    wakes = [e for e in demo_events if e.type == "wake_word"]
    assert [e.label for e in wakes] == ["hey_jarvis"] * len(said)
    for a, e in zip(said, wakes, strict=True):
        assert a["t_end"] - 0.3 <= e.t_end <= a["t_end"] + 1.0


def test_vad_brackets_every_utterance(demo_events: list[Event]) -> None:
    labels = json.loads(demo_labels().read_text())
    ends = [e for e in demo_events if e.type == "vad" and e.label == "speech_end"]
    assert len(ends) == len(labels["audio"])
    for a, e in zip(labels["audio"], ends, strict=True):
        assert abs(e.t_start - a["t_start"]) <= 0.3 and abs(e.t_end - a["t_end"]) <= 0.4


def _strip(evs: list[Event]) -> list[dict]:
    out = []
    for e in evs:
        if e.type != "status":
            d = e.to_dict()
            for k in ("seq", "t_emit", "latency_ms"):
                d.pop(k)
            out.append(d)
    return out


def test_default_replay_is_deterministic(demo_events: list[Event]) -> None:
    audio, video = demo_files()
    with Pipeline(load_config("default"), audio_file=audio, video_file=video, stdout=False) as p:
        again = list(p.events())
    assert _strip(again) == _strip(demo_events)


def test_single_thread_replay_gives_the_same_events(demo_events: list[Event]) -> None:
    audio, video = demo_files()
    p = Pipeline(load_config("default"), audio_file=audio, video_file=video, stdout=False)
    p.fast_threaded = False  # video stages in the calling thread
    with p:
        serial = list(p.events())
    assert p.scheduler.counters.frames_in == 300
    assert _strip(serial) == _strip(demo_events)
