"""Live web dashboard: one page, Server-Sent Events, a low-rate snapshot, optional /metrics.

Routes (all behind the bearer token when one is configured; browsers pass it as ``?token=``
because ``EventSource`` cannot set headers):

* ``/`` — the dashboard page (full-window layout, fit for a kiosk browser);
* ``/events`` — Server-Sent Events: first a ``state`` message, then one ``ev`` message per event;
* ``/state`` — the current state as JSON (presence, last detection, transcript, health, timeline);
* ``/snapshot.jpg`` — the newest camera snapshot (204 when there is none);
* ``/metrics`` — Prometheus text format, when a :class:`MetricsSink` is handed in;
* ``/healthz`` — ``ok``.

Every SSE client has its own bounded queue. A client that stops reading fills it and is
dropped (its socket shut down) and counted; the other clients and the pipeline never wait.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ..errors import ConfigError
from ..events import Event
from ..stages.snapshot import SnapshotBuffer
from .base import Sink
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import MetricsSink

log = logging.getLogger(__name__)

PAGE = Path(__file__).resolve().parent / "static" / "dashboard.html"
DETECTION_TYPES = frozenset({"recognition", "wake_word", "gesture", "intent"})
KEEPALIVE_S = 10.0


class _Client:
    """One SSE connection: a bounded queue of encoded messages."""

    def __init__(self, conn: socket.socket, maxsize: int) -> None:
        self.conn = conn
        self.maxsize = maxsize
        self.q: deque[bytes] = deque()
        self.cond = threading.Condition()
        self.dropped = False
        self.sent = 0

    def offer(self, msg: bytes) -> bool:
        """Queue a message; False when the queue is full (the client is stuck)."""
        with self.cond:
            if len(self.q) >= self.maxsize:
                return False
            self.q.append(msg)
            self.cond.notify()
            return True

    def take(self, timeout: float) -> list[bytes] | None:
        with self.cond:
            if not self.q and not self.dropped:
                self.cond.wait(timeout)
            if not self.q:
                return None
            out = list(self.q)
            self.q.clear()
            return out

    def kick(self) -> None:
        with self.cond:
            self.dropped = True
            self.cond.notify_all()
        with contextlib.suppress(OSError):
            self.conn.shutdown(socket.SHUT_RDWR)


def sse(kind: str, payload: Any) -> bytes:
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=_plain)
    return f"event: {kind}\ndata: {data}\n\n".encode()


def _plain(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    raise TypeError(type(o).__name__)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    sink: WebSink


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "edgemm"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)

    def _send(
        self, code: int, body: bytes, ctype: str, extra: dict[str, str] | None = None
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _authorized(self, query: dict[str, list[str]]) -> bool:
        token = self.server.sink.token
        if not token:
            return True
        given = ""
        auth = self.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
        elif query.get("token"):
            given = query["token"][0]
        return hmac.compare_digest(given.encode(), token.encode())

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        sink = self.server.sink
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if not self._authorized(query):
            self._send(
                401,
                b"unauthorized: pass the dashboard token as a Bearer header or ?token=\n",
                "text/plain; charset=utf-8",
                {"WWW-Authenticate": 'Bearer realm="edgemm"'},
            )
            return
        path = url.path
        if path in ("/", "/index.html"):
            self._send(200, sink.page(), "text/html; charset=utf-8")
        elif path == "/events":
            self._stream()
        elif path == "/state":
            self._send(200, json.dumps(sink.state(), default=_plain).encode(), "application/json")
        elif path == "/snapshot.jpg":
            snap = sink.snapshots.get() if sink.snapshots is not None else None
            if snap is None:
                self._send(204, b"", "image/jpeg")
            else:
                self._send(200, snap.jpeg, "image/jpeg", {"X-Stream-Time": f"{snap.t:.3f}"})
        elif path == "/metrics" and sink.metrics is not None:
            self._send(200, sink.metrics.render(), METRICS_CONTENT_TYPE)
        elif path == "/healthz":
            self._send(200, b"ok\n", "text/plain")
        else:
            self._send(404, b"not found\n", "text/plain")

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        """``POST /reload``: re-read the config (thresholds, intents, sinks) like SIGHUP. Needs
        the token when one is set and the ``X-Edgemm-Action: reload`` header, which a plain
        cross-site form cannot send."""
        sink = self.server.sink
        url = urlsplit(self.path)
        if not self._authorized(parse_qs(url.query)):
            self._send(401, b'{"error": "unauthorized"}', "application/json")
            return
        if url.path != "/reload" or sink.on_reload is None:
            self._send(404, b'{"error": "not found"}', "application/json")
            return
        if self.headers.get("X-Edgemm-Action") != "reload":
            self._send(400, b'{"error": "missing X-Edgemm-Action: reload"}', "application/json")
            return
        try:
            result = sink.on_reload()
        except Exception as exc:  # a bad config file: say why, keep running
            body = json.dumps({"error": f"reload failed: {exc}"}).encode()
            self._send(422, body, "application/json")
            return
        body = json.dumps(
            {
                "applied": list(result.applied),
                "restart_needed": list(result.restart_needed),
                "unchanged": result.unchanged,
            }
        ).encode()
        self._send(200, body, "application/json")

    def _stream(self) -> None:
        sink = self.server.sink
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Accel-Buffering", "no")
        self.end_headers()
        client = sink._add_client(self.connection)
        try:
            self.wfile.write(b"retry: 2000\n\n")
            self.wfile.flush()
            while not client.dropped and not sink.stopping:
                msgs = client.take(KEEPALIVE_S)
                if msgs is None:
                    if client.dropped:
                        break
                    self.wfile.write(b": keepalive\n\n")
                else:
                    self.wfile.write(b"".join(msgs))
                    client.sent += len(msgs)
                self.wfile.flush()
        except OSError:
            pass  # the browser went away, or we dropped it
        finally:
            sink._remove_client(client)
        self.close_connection = True


class WebSink(Sink):
    """Serves the dashboard and pushes every event to connected browsers.

    The server starts at construction (so a busy port fails early) and runs until
    :meth:`shutdown`; when the event stream ends the page shows that it ended.
    """

    name = "web"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8080,
        token: str | None = None,
        snapshots: SnapshotBuffer | None = None,
        metrics: MetricsSink | None = None,
        timeline: int = 50,
        client_queue: int = 200,
        device: str = "",
        exclude: list[str] | None = None,
    ) -> None:
        super().__init__(exclude)
        if host not in ("127.0.0.1", "localhost", "::1") and not token:
            log.warning(
                "dashboard on %s:%s is reachable from the network without a token "
                "(set sinks.web.token_env)",
                host,
                port,
            )
        self.token = token or ""
        self.on_reload: Any = None  # set by the pipeline: () -> ReloadResult
        self.snapshots = snapshots
        self.metrics = metrics
        self.client_queue = client_queue
        self.device = device or socket.gethostname()
        self._lock = threading.Lock()
        self._clients: list[_Client] = []
        self.clients_dropped = 0
        self.clients_total = 0
        self.stopping = False
        self.ended = False
        self._timeline: deque[dict[str, Any]] = deque(maxlen=timeline)
        self._state: dict[str, Any] = {
            "presence": None,
            "detection": None,
            "recognition": None,
            "transcript": None,
            "partial": None,
            "vad": None,
            "status": None,
            "brightness": None,
            "error": None,
        }
        self._page: bytes | None = None
        try:
            self._server = _Server((host, port), _Handler)
        except OSError as exc:
            raise ConfigError(
                f"cannot serve the dashboard on {host}:{port}: {exc.strerror}",
                "choose another sinks.web.port (0 picks a free one)",
            ) from None
        self._server.sink = self
        self.host = host
        self.port = int(self._server.server_address[1])
        self._serve_thread = threading.Thread(
            target=self._server.serve_forever, name="web-http", daemon=True
        )
        self._serve_thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        if host == "0.0.0.0":
            host = "127.0.0.1"
        return f"http://{host}:{self.port}/"

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._clients)

    def page(self) -> bytes:
        if self._page is None:
            try:
                self._page = PAGE.read_bytes()
            except OSError:
                raise ConfigError(
                    f"dashboard page {PAGE.name} is missing from the package",
                    "reinstall edgemm",
                ) from None
        return self._page

    # ------------------------------------------------------------------ state

    def state(self) -> dict[str, Any]:
        with self._lock:
            return self._state_locked()

    def _state_locked(self) -> dict[str, Any]:
        snap = self.snapshots.get() if self.snapshots is not None else None
        return {
            "device": self.device,
            **self._state,
            "timeline": list(self._timeline),
            "snapshot": self.snapshots is not None,
            "snapshot_n": snap.n if snap else 0,
            "ended": self.ended,
            "clients": len(self._clients),
            "clients_dropped": self.clients_dropped,
        }

    def write(self, ev: Event) -> None:
        d = ev.to_dict()
        with self._lock:
            st = self._state
            if ev.type == "status":
                st["status"] = d
            else:
                self._timeline.append(d)
                if ev.type == "presence":
                    st["presence"] = d
                elif ev.type in DETECTION_TYPES:
                    st["detection"] = d
                    if ev.type == "recognition":
                        st["recognition"] = d
                elif ev.type == "speech":
                    st["partial" if ev.label == "partial" else "transcript"] = d
                elif ev.type in ("vad", "brightness", "error"):
                    st[ev.type] = d
        self._broadcast(sse("ev", d))

    def _broadcast(self, msg: bytes) -> None:
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            if not c.offer(msg):
                self._drop(c)

    def _drop(self, c: _Client) -> None:
        with self._lock:
            if c not in self._clients:
                return
            self._clients.remove(c)
            self.clients_dropped += 1
        c.kick()
        log.warning(
            "dashboard client dropped: it stopped reading (%d so far)", self.clients_dropped
        )

    def _add_client(self, conn: socket.socket) -> _Client:
        c = _Client(conn, self.client_queue)
        with self._lock:  # the state and the first event after it are consistent
            c.offer(sse("state", self._state_locked()))
            self._clients.append(c)
            self.clients_total += 1
        return c

    def _remove_client(self, c: _Client) -> None:
        with self._lock:
            if c in self._clients:
                self._clients.remove(c)

    def stats(self) -> dict[str, Any]:
        return {"clients": self.clients, "clients_dropped": self.clients_dropped}

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """The event stream ended: tell the browsers, keep serving until shutdown()."""
        self.ended = True
        self._broadcast(sse("end", {"t": time.time()}))

    def shutdown(self) -> None:
        """Stop the server and disconnect every browser."""
        if self.stopping:
            return
        self.stopping = True
        with self._lock:
            clients = list(self._clients)
            self._clients.clear()
        for c in clients:
            c.kick()
        self._server.shutdown()
        self._server.server_close()
        self._serve_thread.join(5.0)


def network_sinks(
    cfg: Any, report: Any, snapshots: SnapshotBuffer | None, stages: Any = ()
) -> tuple[Sink | None, WebSink | None, MetricsSink | None]:
    """The MQTT, dashboard and metrics sinks ``cfg.sinks`` enables (servers already bound)."""
    import os

    sc = cfg.sinks
    mqtt = metrics = web = None
    if sc.metrics.enabled:
        if sc.metrics.port is None and not sc.web.enabled:
            raise ConfigError(
                "sinks.metrics.port is null (serve on the dashboard) but sinks.web is disabled",
                "set sinks.metrics.port (e.g. 9108) or enable sinks.web",
            )
        metrics = MetricsSink()
        if sc.metrics.port is not None:
            metrics.serve(sc.metrics.host, sc.metrics.port)
    if sc.mqtt.enabled:
        from .mqtt import MqttSink, event_labels_from_config, settings_from_config

        mqtt = MqttSink(
            settings_from_config(sc.mqtt),
            sc.mqtt.exclude,
            report=report,
            event_labels=event_labels_from_config(cfg, stages),
        )
    if sc.web.enabled:
        token = None
        if sc.web.token_env:
            token = os.environ.get(sc.web.token_env)
            if not token:
                raise ConfigError(
                    f"sinks.web.token_env names {sc.web.token_env}, which is not set or empty",
                    f"export {sc.web.token_env}=<a long random string>",
                )
        device = ""
        if sc.mqtt.device_id:
            device = sc.mqtt.device_id
        web = WebSink(
            sc.web.host,
            sc.web.port,
            token,
            snapshots=snapshots,
            metrics=metrics if sc.metrics.port is None else None,
            timeline=sc.web.timeline,
            client_queue=sc.web.client_queue,
            device=device,
        )
    return mqtt, web, metrics
