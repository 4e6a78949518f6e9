"""Prometheus metrics fed from events, in a registry of the pipeline's own.

Per event: ``edgemm_events_total{type}`` and the capture→event latency histogram
``edgemm_event_latency_seconds{type}``. From the newest ``status`` event (its counters are
cumulative): drops, audio overruns, reconnects, stage errors, per-stage time and calls, and
gauges for fps, lag, CPU, memory, audio level and MQTT connectivity. Served on the dashboard's
``/metrics`` or, with ``sinks.metrics.port``, on a server of its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from ..errors import ConfigError
from ..events import Event
from .base import Sink

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
STAGE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
_DROP_KINDS = ("frames_skipped", "windows_skipped", "frames_dropped", "bus_dropped")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _prom() -> Any:
    try:
        import prometheus_client
    except ImportError:
        raise ConfigError(
            "sinks.metrics needs the prometheus-client package", "pip install 'edgemm[web]'"
        ) from None
    return prometheus_client


class _StatusCollector:
    """Exposes the newest status event's cumulative counters and gauges."""

    def __init__(self, sink: MetricsSink) -> None:
        self.sink = sink

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        d = self.sink.latest_status()
        if d is None:
            return
        c = d.get("counters", {})

        def counter(name: str, doc: str, value: Any) -> Any:
            m = CounterMetricFamily(name, doc)
            m.add_metric([], float(value or 0))
            return m

        def gauge(name: str, doc: str, value: Any) -> Any:
            m = GaugeMetricFamily(name, doc)
            m.add_metric([], float(value))
            return m

        drops = CounterMetricFamily(
            "edgemm_drops", "Inputs or events dropped to bound latency or memory", labels=["kind"]
        )
        for kind in _DROP_KINDS:
            drops.add_metric([kind], float(d.get(kind, 0) or 0))
        mqtt = d.get("sinks", {}).get("mqtt")
        if mqtt is not None:
            drops.add_metric(["mqtt_overflow"], float(mqtt.get("overflow", 0)))
        yield drops
        yield counter(
            "edgemm_audio_overruns", "Audio ring overruns (audio lost)", d.get("audio_overruns")
        )
        yield counter(
            "edgemm_audio_lost_samples",
            "Audio samples lost to overruns",
            d.get("audio_lost_samples"),
        )
        yield counter("edgemm_stage_errors", "Exceptions raised by stages", d.get("stage_errors"))
        rec = CounterMetricFamily("edgemm_reconnects", "Reconnects", labels=["component"])
        rec.add_metric(["camera"], float(d.get("camera_reconnects", 0) or 0))
        if mqtt is not None:
            rec.add_metric(["mqtt"], float(mqtt.get("reconnects", 0)))
        yield rec
        for key, doc in (
            ("frames_in", "Video frames read"),
            ("frames_processed", "Video frames processed by at least one stage"),
            ("audio_hops", "Audio hops processed"),
            ("windows", "Windows processed"),
        ):
            if key in c:
                yield counter(f"edgemm_{key}", doc, c[key])
        stages = d.get("stages") or {}
        if stages:
            secs = CounterMetricFamily(
                "edgemm_stage_seconds", "Time spent in each stage", labels=["stage"]
            )
            calls = CounterMetricFamily(
                "edgemm_stage_calls", "Calls of each stage", labels=["stage"]
            )
            for name, st in sorted(stages.items()):
                secs.add_metric([name], float(st.get("seconds", 0.0)))
                calls.add_metric([name], float(st.get("calls", 0)))
            yield secs
            yield calls
        fps = GaugeMetricFamily("edgemm_fps", "Video frames per second", labels=["direction"])
        fps.add_metric(["in"], float(d.get("fps_in", 0.0)))
        fps.add_metric(["out"], float(d.get("fps_out", 0.0)))
        yield fps
        yield gauge(
            "edgemm_lag_seconds", "How far processing is behind capture", d.get("lag_ms", 0) / 1000
        )
        yield gauge(
            "edgemm_cpu_percent", "Process CPU use (100 = one core)", d.get("cpu_percent", 0)
        )
        yield gauge("edgemm_memory_rss_bytes", "Resident memory", d.get("rss_mb", 0) * 2**20)
        if d.get("audio_level_db") is not None:
            yield gauge("edgemm_audio_level_dbfs", "Input level", d["audio_level_db"])
        lanes = d.get("lanes") or {}
        if lanes:
            lag = GaugeMetricFamily(
                "edgemm_lane_lag_seconds", "How far a worker lane is behind", labels=["lane"]
            )
            for name, ln in sorted(lanes.items()):
                lag.add_metric([name], float(ln.get("lag_ms", 0)) / 1000)
            yield lag
        if mqtt is not None:
            yield gauge(
                "edgemm_mqtt_connected",
                "1 while connected to the broker",
                mqtt.get("connected", False),
            )
            yield gauge(
                "edgemm_mqtt_buffered", "Messages waiting for the broker", mqtt.get("buffered", 0)
            )

    def describe(self) -> list[Any]:
        return []  # dynamic: nothing to check at registration


class MetricsSink(Sink):
    """Counts and times events into a private Prometheus registry."""

    name = "metrics"

    def __init__(self, exclude: list[str] | None = None) -> None:
        super().__init__(exclude)
        prom = _prom()
        self._prom = prom
        self.registry = prom.CollectorRegistry(auto_describe=False)
        self.events_total = prom.Counter(
            "edgemm_events", "Events published, by type", ["type"], registry=self.registry
        )
        self.latency = prom.Histogram(
            "edgemm_event_latency_seconds",
            "Wall time from the newest input of a window to the event's publication",
            ["type"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.stage_time = prom.Histogram(
            "edgemm_stage_call_seconds",
            "Mean time per call of each stage, one observation per stage per status interval",
            ["stage"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StatusCollector(self))
        self._lock = threading.Lock()
        self._status: dict[str, Any] | None = None
        self._prev_stages: dict[str, tuple[float, int]] = {}
        self._server: Any = None
        self.port: int | None = None  # of its own server, when serving
        self._server_thread: threading.Thread | None = None

    def write(self, ev: Event) -> None:
        self.events_total.labels(ev.type).inc()
        if ev.latency_ms > 0:
            self.latency.labels(ev.type).observe(ev.latency_ms / 1000.0)
        if ev.type == "status":
            self._on_status(ev.data)

    def _on_status(self, d: dict[str, Any]) -> None:
        for name, st in (d.get("stages") or {}).items():
            secs, calls = float(st.get("seconds", 0.0)), int(st.get("calls", 0))
            s0, c0 = self._prev_stages.get(name, (0.0, 0))
            if calls > c0:
                self.stage_time.labels(name).observe((secs - s0) / (calls - c0))
            self._prev_stages[name] = (secs, calls)
        with self._lock:
            self._status = d

    def latest_status(self) -> dict[str, Any] | None:
        with self._lock:
            return self._status

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return self._prom.generate_latest(self.registry)

    # ------------------------------------------------------------------ own server

    def serve(self, host: str = "127.0.0.1", port: int = 9108) -> int:
        """Serve ``/metrics`` on a port of its own; returns the bound port."""
        try:
            server, thread = self._prom.start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve metrics on {host}:{port}: {exc.strerror}",
                "choose another sinks.metrics.port",
            ) from None
        self._server, self._server_thread = server, thread
        self.port = int(server.server_address[1])
        return self.port

    def shutdown(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
