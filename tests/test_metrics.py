"""Prometheus /metrics fed from a replayed session; parsed with prometheus-client's parser."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("prometheus_client", reason="prometheus-client is not installed (.[web])")
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from edgemm import Pipeline  # noqa: E402
from edgemm.errors import ConfigError  # noqa: E402
from edgemm.events import Event  # noqa: E402


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _replay(session: Path, sinks: dict) -> tuple[list[Event], dict, str]:
    cfg = {"sinks": {"stdout": {"enabled": False}, **sinks}}
    with Pipeline(cfg, audio_file=session / "audio.wav", video_file=session / "video.avi") as p:
        events = list(p.events())
        if p.metrics.port is not None:
            url = f"http://127.0.0.1:{p.metrics.port}/metrics"
        else:
            url = p.web.url + "metrics"
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode()
            ctype = r.headers["Content-Type"]
    return events, _samples(text), ctype


def test_metrics_on_their_own_port_count_what_was_published(beep_session: Path) -> None:
    events, s, ctype = _replay(beep_session, {"metrics": {"enabled": True, "port": 0}})
    assert ctype.startswith("text/plain")
    for etype in {e.type for e in events}:
        n = sum(1 for e in events if e.type == etype)
        assert s[("edgemm_events_total", (("type", etype),))] == n
    assert s[("edgemm_event_latency_seconds_count", (("type", "vad"),))] == 2
    assert s[("edgemm_event_latency_seconds_bucket", (("le", "+Inf"), ("type", "vad")))] == 2
    assert s[("edgemm_frames_in_total", ())] == 180
    assert s[("edgemm_audio_hops_total", ())] == 75
    assert s[("edgemm_audio_overruns_total", ())] == 0
    assert ("edgemm_drops_total", (("kind", "frames_skipped"),)) in s
    assert s[("edgemm_stage_calls_total", (("stage", "brightness"),))] == 180
    assert s[("edgemm_stage_seconds_total", (("stage", "energy_gate"),))] > 0
    assert s[("edgemm_stage_call_seconds_count", (("stage", "brightness"),))] >= 1
    assert ("edgemm_fps", (("direction", "in"),)) in s
    assert ("edgemm_lag_seconds", ()) in s
    assert ("edgemm_reconnects_total", (("component", "camera"),)) in s


def test_metrics_on_the_dashboard_and_registries_are_per_pipeline(beep_session: Path) -> None:
    sinks = {"metrics": {"enabled": True}, "web": {"enabled": True, "port": 0, "snapshot": False}}
    first, s1, _ = _replay(beep_session, sinks)
    second, s2, _ = _replay(beep_session, sinks)
    key = ("edgemm_events_total", (("type", "vad"),))
    assert s1[key] == s2[key] == 2  # a second pipeline does not add to the first one's counts


def test_metrics_without_a_server_is_a_config_error(beep_session: Path) -> None:
    with pytest.raises(ConfigError, match="sinks.metrics.port"):
        Pipeline({"sinks": {"metrics": {"enabled": True}}}, audio_file=beep_session / "audio.wav")
