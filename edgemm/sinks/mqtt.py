"""MQTT sink: v1 events, availability, retained state and Home Assistant discovery.

Topics, under ``<prefix>/<device>/`` (defaults ``edgemm/<hostname>/``):

* ``events/<type>`` — every event as v1 JSON (not retained);
* ``available`` — ``online`` / ``offline``, retained; ``offline`` is also the last will, so the
  broker publishes it when the process dies without saying goodbye;
* ``state/presence`` — ``ON`` / ``OFF`` and ``state/transcript`` — the last final transcript,
  both retained so a subscriber that connects later sees the current state.

Home Assistant discovery (``<discovery_prefix>/<component>/<node>/<object>/config``, retained):
a ``binary_sensor`` for presence, a ``sensor`` for the last transcript, and an ``event`` entity
per event type whose labels are known (wake words, recognitions, gestures). Republished when
``<discovery_prefix>/status`` says ``online`` (Home Assistant restarted); removed with
:meth:`MqttSink.remove_discovery` or ``edgemm mqtt remove-discovery``.

The sink never blocks the bus: events go into a bounded offline buffer (drop-oldest, counted)
that a publisher thread drains in order while connected. paho reconnects with backoff. After a
reconnect the publisher first waits until paho has re-sent and the broker acknowledged what was
in flight when the connection dropped, then sends the buffer, so order survives the outage.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError
from ..events import Event
from .base import Sink

log = logging.getLogger(__name__)

Report = Callable[[str, str, dict[str, Any]], None]


@dataclass(frozen=True)
class MqttSettings:
    """Resolved connection settings (secrets read from the environment, never from files)."""

    host: str = "127.0.0.1"
    port: int = 1883
    username: str | None = None
    password: str | None = None
    prefix: str = "edgemm"
    device_id: str = "edgemm"
    client_id: str = ""
    qos: int = 1
    keepalive_s: int = 30
    tls: bool = False
    ca_file: str = ""
    tls_insecure: bool = False
    buffer_size: int = 1000
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    max_inflight: int = 20  # brokers reject QoS 2 beyond their receive quota (mosquitto: 20)
    discovery: bool = True
    discovery_prefix: str = "homeassistant"

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.device_id}"


def safe_id(text: str) -> str:
    """A topic- and Home-Assistant-safe identifier: [a-zA-Z0-9_-], never empty."""
    s = re.sub(r"[^a-zA-Z0-9_-]+", "_", text).strip("_")
    return s or "edgemm"


def _env(name: str, what: str) -> str | None:
    if not name:
        return None
    value = os.environ.get(name)
    if value is None:
        raise ConfigError(
            f"sinks.mqtt.{what} names the environment variable {name}, which is not set",
            f"export {name}=... before starting edgemm, or clear sinks.mqtt.{what}",
        )
    return value


def settings_from_config(c: Any) -> MqttSettings:
    """:class:`MqttSettings` from a ``sinks.mqtt`` config section and the environment."""
    host = _env(c.host_env, "host_env") or c.host
    port_s = _env(c.port_env, "port_env")
    try:
        port = int(port_s) if port_s else c.port
    except ValueError:
        raise ConfigError(
            f"environment variable {c.port_env}={port_s!r} is not a port number",
            "set it to an integer like 1883",
        ) from None
    if c.reconnect_min_s > c.reconnect_max_s:
        raise ConfigError(
            f"sinks.mqtt.reconnect_min_s ({c.reconnect_min_s}) exceeds reconnect_max_s "
            f"({c.reconnect_max_s})"
        )
    if c.ca_file and not os.path.isfile(c.ca_file):
        raise ConfigError(f"sinks.mqtt.ca_file {c.ca_file} not found", "fix the path")
    device = safe_id(c.device_id or socket.gethostname())
    return MqttSettings(
        host=host,
        port=port,
        username=_env(c.username_env, "username_env"),
        password=_env(c.password_env, "password_env"),
        prefix=c.prefix.strip("/") or "edgemm",
        device_id=device,
        client_id=c.client_id or f"edgemm-{device}",
        qos=c.qos,
        keepalive_s=c.keepalive_s,
        tls=c.tls or bool(c.ca_file),
        ca_file=c.ca_file,
        tls_insecure=c.tls_insecure,
        buffer_size=c.buffer_size,
        reconnect_min_s=c.reconnect_min_s,
        reconnect_max_s=c.reconnect_max_s,
        discovery=c.discovery,
        discovery_prefix=c.discovery_prefix.strip("/") or "homeassistant",
    )


# --------------------------------------------------------------------------- discovery


def discovery_messages(
    s: MqttSettings, event_labels: dict[str, list[str]] | None = None, version: str = ""
) -> dict[str, dict[str, Any]]:
    """Home Assistant discovery config topic → payload for this device."""
    node = safe_id(s.device_id)
    base = s.base
    device = {
        "identifiers": [f"edgemm_{node}"],
        "name": f"edgemm {s.device_id}",
        "manufacturer": "edgemm",
        "model": "edgemm recognition runtime",
        "sw_version": version,
    }
    common = {
        "availability_topic": f"{base}/available",
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": device,
        "origin": {"name": "edgemm", "sw_version": version},
    }
    dp = s.discovery_prefix
    out: dict[str, dict[str, Any]] = {
        f"{dp}/binary_sensor/{node}/presence/config": {
            **common,
            "name": "Presence",
            "unique_id": f"edgemm_{node}_presence",
            "object_id": f"edgemm_{node}_presence",
            "state_topic": f"{base}/state/presence",
            "payload_on": "ON",
            "payload_off": "OFF",
            "device_class": "occupancy",
        },
        f"{dp}/sensor/{node}/transcript/config": {
            **common,
            "name": "Last transcript",
            "unique_id": f"edgemm_{node}_transcript",
            "object_id": f"edgemm_{node}_transcript",
            "state_topic": f"{base}/state/transcript",
            "icon": "mdi:account-voice",
        },
    }
    names = {"wake_word": "Wake word", "recognition": "Recognition", "gesture": "Gesture"}
    for etype, labels in sorted((event_labels or {}).items()):
        if not labels:
            continue  # Home Assistant requires the event types up front
        out[f"{dp}/event/{node}/{safe_id(etype)}/config"] = {
            **common,
            "name": names.get(etype, etype.replace("_", " ").capitalize()),
            "unique_id": f"edgemm_{node}_{safe_id(etype)}",
            "object_id": f"edgemm_{node}_{safe_id(etype)}",
            "state_topic": f"{base}/events/{etype}",
            "event_types": sorted(set(labels)),
            "value_template": (
                '{"event_type": {{ value_json.label | tojson }}, '
                '"score": {{ value_json.score }}, "t_start": {{ value_json.t_start }}}'
            ),
        }
    return out


# --------------------------------------------------------------------------- the sink


class MqttSink(Sink):
    """Publishes events to an MQTT broker; see the module docstring for topics."""

    name = "mqtt"

    def __init__(
        self,
        settings: MqttSettings,
        exclude: list[str] | None = None,
        report: Report | None = None,
        event_labels: dict[str, list[str]] | None = None,
        client_factory: Callable[..., Any] | None = None,
    ) -> None:
        super().__init__(exclude)
        try:
            import paho.mqtt.client as mqtt
        except ImportError:
            raise ConfigError(
                "sinks.mqtt needs the paho-mqtt package", "pip install 'edgemm[mqtt]'"
            ) from None
        from .. import __version__

        self.s = settings
        self.report = report
        self.event_labels = event_labels or {}
        self.version = __version__
        self._mqtt = mqtt
        self._cond = threading.Condition()
        self._buf: deque[tuple[str, bytes, bool]] = deque()
        self._unacked: set[int] = set()
        self._early_acks: set[int] = set()
        self._connected = False
        self._draining = False  # waiting for re-sent in-flight messages after a reconnect
        self._closing = False
        self.connects = 0
        self.reconnects = 0
        self.disconnects = 0
        self.published = 0
        self.acked = 0
        self.overflow = 0
        self._overflow_reported = 0
        self._last_overflow_report = 0.0
        self.last_error = ""
        base = settings.base
        self.t_available = f"{base}/available"
        self.t_presence = f"{base}/state/presence"
        self.t_transcript = f"{base}/state/transcript"
        self.t_ha_status = f"{settings.discovery_prefix}/status"
        make = client_factory or mqtt.Client
        c = make(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=settings.client_id,
            protocol=mqtt.MQTTv311,
            # QoS 2 keeps its session so the broker can de-duplicate re-sent messages
            clean_session=settings.qos < 2,
        )
        if settings.username is not None:
            c.username_pw_set(settings.username, settings.password)
        if settings.tls:
            c.tls_set(
                ca_certs=settings.ca_file or None,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
            c.tls_insecure_set(settings.tls_insecure)
        c.will_set(self.t_available, "offline", qos=1, retain=True)
        c.reconnect_delay_set(settings.reconnect_min_s, settings.reconnect_max_s)  # type: ignore[arg-type]
        c.max_inflight_messages_set(settings.max_inflight)
        c.max_queued_messages_set(0)
        c.on_connect = self._on_connect
        c.on_connect_fail = self._on_connect_fail
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        self.client = c
        self._publisher: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def attach(self, bus: Any, queue_size: int | None = None) -> None:
        self.start()
        super().attach(bus, queue_size)

    def start(self) -> None:
        """Connect in the background (the broker may be down: paho retries with backoff)."""
        if self._publisher is not None:
            return
        self.client.connect_async(self.s.host, self.s.port, keepalive=self.s.keepalive_s)
        self.client.loop_start()
        self._publisher = threading.Thread(target=self._publish_loop, name="mqtt-pub", daemon=True)
        self._publisher.start()

    def close(self) -> None:
        """Deliver what is buffered (briefly, if connected), publish offline, disconnect."""
        deadline = time.monotonic() + 3.0
        with self._cond:
            while (self._buf or self._unacked) and self._connected and time.monotonic() < deadline:
                self._cond.wait(0.05)
            self._closing = True
            self._cond.notify_all()
        if self._publisher is not None:
            self._publisher.join(2.0)
        if self._connected:
            info = self.client.publish(self.t_available, "offline", qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(2.0)
        self.client.disconnect()
        self.client.loop_stop()

    # ------------------------------------------------------------------ stats

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def buffered(self) -> int:
        return len(self._buf)

    def stats(self) -> dict[str, Any]:
        return {
            "connected": self._connected,
            "reconnects": self.reconnects,
            "published": self.published,
            "buffered": len(self._buf),
            "overflow": self.overflow,
        }

    # ------------------------------------------------------------------ events → buffer

    def write(self, ev: Event) -> None:
        msgs: list[tuple[str, bytes, bool]] = [
            (f"{self.s.base}/events/{safe_id(ev.type)}", ev.to_json().encode(), False)
        ]
        if ev.type == "presence":
            on = bool(ev.data.get("present", ev.label != "absent"))
            msgs.append((self.t_presence, b"ON" if on else b"OFF", True))
        elif ev.type == "speech" and ev.label == "final" and ev.data.get("text"):
            msgs.append((self.t_transcript, str(ev.data["text"]).encode(), True))
        with self._cond:
            for m in msgs:
                if len(self._buf) >= self.s.buffer_size:
                    self._buf.popleft()
                    self.overflow += 1
                self._buf.append(m)
            self._cond.notify_all()
        self._maybe_report_overflow()

    def _maybe_report_overflow(self) -> None:
        if self.report is None or self.overflow == self._overflow_reported:
            return
        now = time.monotonic()
        if self._overflow_reported and now - self._last_overflow_report < 5.0:
            return
        self._overflow_reported = self.overflow
        self._last_overflow_report = now
        self.report(
            "error",
            "mqtt",
            {
                "message": f"MQTT offline buffer full ({self.s.buffer_size} messages): "
                f"{self.overflow} oldest dropped; raise sinks.mqtt.buffer_size",
                "overflow": self.overflow,
                "buffer_size": self.s.buffer_size,
            },
        )

    def _publish_loop(self) -> None:
        # paho calls our callbacks while holding its own locks, so paho is never called while
        # holding self._cond (lock order: paho's locks, then ours).
        mqtt = self._mqtt
        qos = self.s.qos
        while True:
            with self._cond:
                while not self._closing and not (
                    self._connected
                    and not self._draining
                    and self._buf
                    and len(self._unacked) < self.s.max_inflight
                ):
                    self._cond.wait(0.5)
                if self._closing:
                    return
                topic, payload, retain = self._buf[0]
            info = self.client.publish(topic, payload, qos=qos, retain=retain)
            rc = info.rc
            # NO_CONN with qos > 0: paho keeps the message and re-sends it after reconnecting
            taken = rc == mqtt.MQTT_ERR_SUCCESS or (rc == mqtt.MQTT_ERR_NO_CONN and qos > 0)
            with self._cond:
                if not taken:
                    self.last_error = mqtt.error_string(rc)
                    self._cond.wait(0.1)
                    continue
                if self._buf and self._buf[0][0] is topic and self._buf[0][1] is payload:
                    self._buf.popleft()  # (unless write() dropped it as overflow meanwhile)
                self.published += 1
                if qos > 0:
                    if info.mid in self._early_acks:  # acknowledged before we got here
                        self._early_acks.discard(info.mid)
                        self.acked += 1
                    else:
                        self._unacked.add(info.mid)

    # ------------------------------------------------------------------ paho callbacks

    def _on_connect(self, client: Any, _ud: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self.last_error = str(reason)
            log.warning("MQTT broker %s:%s refused: %s", self.s.host, self.s.port, reason)
            return
        self.last_error = ""
        client.publish(self.t_available, "online", qos=1, retain=True)
        if self.s.discovery:
            client.subscribe(self.t_ha_status, qos=1)
            self.publish_discovery()
        with self._cond:
            first = self.connects == 0
            self.connects += 1
            if not first:
                self.reconnects += 1
            self._connected = True
            self._draining = bool(self._unacked)
            self._cond.notify_all()
        if not first and self.report is not None:
            self.report(
                "status",
                "mqtt",
                {
                    "message": f"MQTT reconnected to {self.s.host}:{self.s.port}",
                    "reconnects": self.reconnects,
                    "buffered": len(self._buf),
                },
            )

    def _on_connect_fail(self, _c: Any, _ud: Any) -> None:
        """paho retries silently; say once per failure streak why the broker can't be reached."""
        if self.last_error.startswith("cannot connect"):
            return
        why = self._diagnose()
        self.last_error = f"cannot connect to {self.s.host}:{self.s.port}: {why}"
        hint = (
            "check sinks.mqtt.ca_file / tls"
            if "certificate" in why.lower()
            else "is the broker running?"
        )
        log.warning("MQTT %s (%s); retrying with backoff", self.last_error, hint)

    def _diagnose(self) -> str:
        """Open a plain (or TLS) connection once to learn what paho's retry loop swallows."""
        try:
            with socket.create_connection((self.s.host, self.s.port), timeout=2.0) as raw:
                if not self.s.tls:
                    return "the broker accepted TCP but not MQTT"
                ctx = ssl.create_default_context(cafile=self.s.ca_file or None)
                ctx.check_hostname = not self.s.tls_insecure
                with ctx.wrap_socket(raw, server_hostname=self.s.host):
                    return "TLS handshake succeeded; MQTT connect failed"
        except ssl.SSLError as exc:
            return f"TLS: {exc.reason or exc}".replace("_", " ").lower()
        except OSError as exc:
            return exc.strerror or str(exc)

    def _on_disconnect(self, _c: Any, _ud: Any, _flags: Any, reason: Any, _props: Any) -> None:
        with self._cond:
            was = self._connected
            self._connected = False
            self.disconnects += 1
            self._cond.notify_all()
        if was and not self._closing:
            self.last_error = str(reason)
            log.warning("MQTT connection lost (%s); buffering events", reason)
            if self.report is not None:
                self.report(
                    "error",
                    "mqtt",
                    {
                        "message": f"MQTT connection to {self.s.host}:{self.s.port} lost "
                        f"({reason}); buffering up to {self.s.buffer_size} messages",
                        "disconnects": self.disconnects,
                    },
                )

    def _on_publish(self, _c: Any, _ud: Any, mid: int, _reason: Any, _props: Any) -> None:
        with self._cond:
            if mid in self._unacked:
                self._unacked.discard(mid)
                self.acked += 1
                if not self._unacked:
                    self._draining = False
                self._cond.notify_all()
            elif self.s.qos > 0:
                if len(self._early_acks) > 4 * self.s.max_inflight:
                    self._early_acks.clear()  # acks of availability/discovery messages
                self._early_acks.add(mid)

    def _on_message(self, _c: Any, _ud: Any, msg: Any) -> None:
        if msg.topic == self.t_ha_status and msg.payload.strip().lower() == b"online":
            self.publish_discovery()

    # ------------------------------------------------------------------ discovery

    def publish_discovery(self) -> None:
        """(Re)publish the Home Assistant discovery configs, retained."""
        for topic, payload in discovery_messages(self.s, self.event_labels, self.version).items():
            self.client.publish(topic, json.dumps(payload), qos=1, retain=True)

    def remove_discovery(self) -> None:
        """Remove this device from Home Assistant (empty retained configs)."""
        remove_discovery_on(self.client, self.s, self.event_labels)


def remove_discovery_on(
    client: Any, s: MqttSettings, event_labels: dict[str, list[str]] | None = None
) -> list[str]:
    """Publish empty retained payloads on every discovery topic of the device."""
    labels = dict(event_labels or {})
    for etype in ("wake_word", "recognition", "gesture", "intent"):
        labels.setdefault(etype, ["_"])  # remove entities a previous config may have made
    topics = list(discovery_messages(s, labels))
    infos = [client.publish(t, b"", qos=1, retain=True) for t in topics]
    for info in infos:
        with contextlib.suppress(RuntimeError, ValueError):
            info.wait_for_publish(5.0)
    return topics


def remove_discovery(s: MqttSettings, timeout: float = 10.0) -> list[str]:
    """Connect, remove the device's Home Assistant entities and its retained state, disconnect."""
    import paho.mqtt.client as mqtt

    c = mqtt.Client(
        callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"{s.client_id}-admin",
    )
    if s.username is not None:
        c.username_pw_set(s.username, s.password)
    if s.tls:
        c.tls_set(ca_certs=s.ca_file or None)
        c.tls_insecure_set(s.tls_insecure)
    try:
        c.connect(s.host, s.port, keepalive=s.keepalive_s)
    except OSError as exc:
        raise ConfigError(
            f"cannot connect to the MQTT broker at {s.host}:{s.port}: {exc}",
            "check sinks.mqtt.host/port and that the broker runs",
        ) from None
    c.loop_start()
    try:
        topics = remove_discovery_on(c, s)
        base = s.base
        for t in (f"{base}/state/presence", f"{base}/state/transcript", f"{base}/available"):
            c.publish(t, b"", qos=1, retain=True).wait_for_publish(timeout)
            topics.append(t)
    finally:
        c.disconnect()
        c.loop_stop()
    return topics


def event_labels_from_config(cfg: Any, stages: Any = ()) -> dict[str, list[str]]:
    """Labels each event type can carry, as far as config and stages tell (HA event entities)."""
    out: dict[str, list[str]] = {}
    st = cfg.stages
    ww = getattr(st, "wakeword", None)
    if ww is not None and ww.enabled:
        out["wake_word"] = list(ww.models)
    hands = getattr(st, "hands", None)
    if hands is not None and hands.enabled:
        from ..encoders.gestures import GESTURES

        out["gesture"] = list(GESTURES)
    for stage in stages:
        classes = getattr(stage, "classes", None)
        if getattr(stage, "name", "") == "fusion" and classes:
            out["recognition"] = [str(c) for c in classes]
    return out


def register_cli(sub: Any) -> None:
    """``edgemm mqtt remove-discovery`` (hooked into the CLI like ``models``)."""
    p = sub.add_parser("mqtt", help="MQTT / Home Assistant helpers")
    msub = p.add_subparsers(dest="mqtt_command", metavar="ACTION")
    r = msub.add_parser(
        "remove-discovery",
        help="remove this device's Home Assistant entities and retained state from the broker",
    )
    r.add_argument("--config", "-c", default="default", help="YAML file or profile name")
    r.set_defaults(func=_cmd_remove_discovery)


def _cmd_remove_discovery(args: Any) -> int:
    from ..config import load_config

    cfg = load_config(args.config)
    s = settings_from_config(cfg.sinks.mqtt)
    topics = remove_discovery(s)
    print(f"removed {len(topics)} retained topics of device {s.device_id} on {s.host}:{s.port}")
    return 0
