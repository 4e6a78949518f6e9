"""Smoke tests of the benchmark entry points: each runs on a tiny input and writes well-formed
JSON (and readable PNGs). Benchmarks report numbers; nothing here asserts a time."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgemm.bench import overrides, plot_bars, plot_histogram, plot_lines
from edgemm.cli import main as cli


def _finite(x: object) -> bool:
    """Every number in a JSON tree is finite (json.loads accepts NaN; our files must not)."""
    if isinstance(x, dict):
        return all(_finite(v) for v in x.values())
    if isinstance(x, list):
        return all(_finite(v) for v in x)
    if isinstance(x, float):
        return math.isfinite(x)
    return True


def _load(path: Path) -> dict:
    data = json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"{path}: {c}"))
    assert _finite(data)
    return data


def test_overrides_build_nested_config_dicts() -> None:
    assert overrides(["stages.vad.backend=micro", "status.interval_s=60", "a.b=[1, 2]"]) == {
        "stages": {"vad": {"backend": "micro"}},
        "status": {"interval_s": 60},
        "a": {"b": [1, 2]},
    }


def test_plots_are_drawn(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    plot_histogram(
        tmp_path / "h.png",
        {"a": list(rng.gamma(3, 10, 200)), "b": [5.0, 6.0]},
        "title",
        "ms",
        marks={"target": 110},
    )
    plot_lines(tmp_path / "l.png", {"rss": ([0, 1, 2], [100.0, 101.0, 100.5])}, "t", "x", "y")
    plot_bars(tmp_path / "b.png", [("one", 1.0), ("two", 2.5)], "bars", "ms")
    for name in ("h", "l", "b"):
        img = cv2.imread(str(tmp_path / f"{name}.png"))
        assert img is not None and img.shape[1] == 900
        coloured = np.any(img != 255, axis=2).mean()
        assert 0.005 < coloured < 0.5  # something drawn, mostly white background


def test_bench_models_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "models.json"
    assert cli(["bench", "models", "melspectrogram", "hey_jarvis", "--threads", "1", "2",
                "--runs", "5", "--json", str(out)]) == 0  # fmt: skip
    rows = _load(out)["models"]
    assert {(r["model"], r["threads"]) for r in rows} == {
        ("melspectrogram", 1),
        ("melspectrogram", 2),
        ("hey_jarvis", 1),
        ("hey_jarvis", 2),
    }
    assert all(r["median_ms"] > 0 and r["backend"] for r in rows)


@pytest.mark.slow
@pytest.mark.parametrize("serial", [False, True])
def test_bench_overhead_counts_and_prices_the_work_of_a_replay(
    tmp_path: Path, serial: bool
) -> None:
    out = tmp_path / "overhead.json"
    assert cli(["bench", "overhead", "--loop", "1", "--repeat", "1", "--every", "4",
                "--set", "stages.vad.backend=micro", "--json", str(out)]
               + (["--serial"] if serial else [])) == 0  # fmt: skip
    r = _load(out)["overhead"]
    assert r["threaded"] is not serial
    assert r["stream_s"] == pytest.approx(20.0, abs=0.1)
    work = {w["what"]: w for w in r["work"]}
    # the demo is 20 s: 250 hops of 80 ms, 300 frames at 15 fps, 10 ms micro-VAD frames
    assert work["embedding_model"]["calls"] == 250
    assert work["melspectrogram"]["calls"] == 250
    assert work["face_detection_short_range"]["calls"] == 300
    assert work["face_detection_short_range letterbox"]["calls"] == 300
    assert 0 < work["face_landmark"]["calls"] < 300  # only frames with a face
    assert work["face_landmark crop"]["calls"] == work["face_landmark"]["calls"]
    assert work["vad:micro"]["calls"] == 2000
    # every 4th call (the first included) was repeated 3 times, hot, to price it
    assert work["vad:micro"]["priced_calls"] == 3 * 500
    assert all(w["price_ms"] > 0 and w["in_run_ms"] > 0 for w in r["work"])
    assert r["ratio"] > 0 and r["cpu_s"] > 0 and r["pricing_s"] > 0
    b = r["breakdown"]
    assert set(b) == {"floor_s", "in_run_over_floor_s", "video_decode_s", "other_s"}
    assert sum(b.values()) == pytest.approx(r["cpu_s"])
    assert r["alternating_s"] > 0 and r["ratio_over_alternating"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["silero", "micro"])
def test_pricing_in_place_leaves_the_events_unchanged(backend: str) -> None:
    """The repeats run on twins: the stateful VADs (and models) see only their real input."""
    from edgemm import Pipeline, load_config
    from edgemm.bench import _pricing
    from edgemm.demo import demo_files

    audio, video = demo_files()

    def events(priced: bool) -> list[dict]:
        cfg = load_config("default", {"stages": {"vad": {"backend": backend}}})
        p = Pipeline(cfg, audio_file=audio, video_file=video, stdout=False)
        sch = p.scheduler
        every = 1 if priced else 10**9  # 10**9: only each kind's first call is repeated
        with _pricing([*sch.audio_stages, *sch._all_stages()], every, 2) as (works, order), p:
            evs = [e.to_dict() for e in p.events() if e.type != "status"]
        assert (
            len(works) == 9
        )  # VAD, mel, embedding, head, detector (+ letterbox), mesh (+ crop), fusion
        assert len(order) == sum(w.calls for w in works)
        if priced:
            assert all(len(w.prices) == 2 * w.calls > 0 for w in works)
        for e in evs:
            for k in ("seq", "t_emit", "latency_ms"):
                e.pop(k)
        return evs

    assert events(True) == events(False)


@pytest.mark.slow
def test_bench_latency_and_realtime_write_json(tmp_path: Path) -> None:
    import bench_latency

    assert bench_latency.main(
        ["--out", str(tmp_path), "--loops", "1", "--profiles", "pi", "--seconds", "3", "--runs", "1"]
    ) == 0  # fmt: skip
    lat = _load(tmp_path / "latency.json")
    assert lat["by_type"]["wake_word"]["n"] >= 1  # the demo says "hey jarvis"
    assert lat["by_type"]["presence"]["n"] >= 1
    assert all(x >= 0 for x in lat["samples"]["wake_word"])
    rt = _load(tmp_path / "realtime_cpu.json")
    assert rt["pi"]["camera"] == "320x240 @ 15 fps" and rt["pi"]["cpu_percent_of_one_core"] > 0
    for png in ("latency_hist.png", "realtime_cpu.png"):
        assert cv2.imread(str(tmp_path / png)) is not None


@pytest.mark.slow
def test_bench_memory_samples_every_stream_minute(tmp_path: Path) -> None:
    import bench_memory

    assert bench_memory.main(["--out", str(tmp_path), "--loops", "6", "--warmup-min", "0"]) == 0
    r = _load(tmp_path / "memory.json")
    assert r["stream_s"] == pytest.approx(120.0, abs=0.1)
    minutes = [s["t_min"] for s in r["samples"]]
    assert minutes[0] == pytest.approx(1.0) and minutes[1] == pytest.approx(2.0)
    assert all(s["rss_mb"] > 0 and s["threads"] > 0 for s in r["samples"])
    assert cv2.imread(str(tmp_path / "memory_rss.png")) is not None


@pytest.mark.slow
def test_bench_suite_quick_writes_json(tmp_path: Path) -> None:
    import bench_suite

    assert bench_suite.main(["--out", str(tmp_path), "--quick", "--only", "floor", "audio"]) == 0
    floor = _load(tmp_path / "floor.json")
    assert {r["threads"] for r in floor["models"]} == {1, 2}
    audio = _load(tmp_path / "side_audio.json")
    assert {r["path"] for r in audio["rows"]} >= {"floor", "edgemm"}
    assert audio["edgemm_over_floor_cpu"] > 0
    assert _load(tmp_path / "machine.json")["quick"] is True
