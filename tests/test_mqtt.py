"""MQTT sink against a real mosquitto broker on loopback (skipped when mosquitto is missing)."""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("paho.mqtt.client", reason="paho-mqtt is not installed (pip install '.[mqtt]')")
import paho.mqtt.client as mqtt  # noqa: E402

from edgemm import Pipeline  # noqa: E402
from edgemm.errors import ConfigError  # noqa: E402
from edgemm.events import Event, EventBus  # noqa: E402
from edgemm.sinks.mqtt import (  # noqa: E402
    MqttSettings,
    MqttSink,
    discovery_messages,
    settings_from_config,
)
from edgemm.sources.audiofile import write_wav  # noqa: E402

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None
)
pytestmark = pytest.mark.skipif(
    MOSQUITTO is None, reason="mosquitto is not installed (apt-get install mosquitto)"
)
ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """A mosquitto process on 127.0.0.1 that can be stopped and restarted on the same port."""

    def __init__(self, workdir: Path, extra: str = "") -> None:
        self.port = _free_port()
        self.dir = workdir
        (workdir / "db").mkdir(exist_ok=True)
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"user {getpass.getuser()}\n"  # as root, do not switch to a user who cannot write here
            "persistence true\n"
            f"persistence_location {workdir / 'db'}/\n"
            "max_queued_messages 10000\n" + (extra or "allow_anonymous true\n")
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.dir / "mosquitto.log", "ab")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=log, stderr=log)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((self.dir / "mosquitto.log").read_text()) from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(10)
        self.proc = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


class Subscriber:
    """Records (topic, payload, retain) for topics under the given filters."""

    def __init__(
        self, port: int, topics: tuple[str, ...] = ("edgemm/#",), client_id: str = "", qos: int = 1
    ) -> None:
        self.msgs: list[tuple[str, bytes, bool]] = []
        self.cond = threading.Condition()
        persistent = bool(client_id)
        self.c = mqtt.Client(
            callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=not persistent,
        )
        self.c.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]
        self.subscribed = threading.Event()

        def on_connect(c: Any, *_: Any) -> None:
            c.subscribe([(t, qos) for t in topics])

        def on_subscribe(*_: Any) -> None:
            self.subscribed.set()

        def on_message(_c: Any, _u: Any, m: Any) -> None:
            with self.cond:
                self.msgs.append((m.topic, bytes(m.payload), bool(m.retain)))
                self.cond.notify_all()

        self.c.on_connect = on_connect
        self.c.on_subscribe = on_subscribe
        self.c.on_message = on_message
        self.c.connect_async("127.0.0.1", port)
        self.c.loop_start()
        assert self.subscribed.wait(10), "subscriber could not subscribe"

    def wait(
        self, pred: Callable[[list[tuple[str, bytes, bool]]], bool], timeout: float = 20.0
    ) -> list:
        with self.cond:
            ok = self.cond.wait_for(lambda: pred(self.msgs), timeout)
            msgs = list(self.msgs)
        assert ok, f"timed out; got {[(t, p[:60]) for t, p, _ in msgs][-20:]}"
        return msgs

    def on(self, topic: str) -> list[bytes]:
        with self.cond:
            return [p for t, p, _ in self.msgs if t == topic]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def _settings(port: int, **kw: Any) -> MqttSettings:
    base = dict(
        host="127.0.0.1",
        port=port,
        device_id="testdev",
        client_id="edgemm-testdev",
        reconnect_min_s=0.1,
        reconnect_max_s=0.5,
    )
    base.update(kw)
    return MqttSettings(**base)  # type: ignore[arg-type]


def _events_on(sub: Subscriber, etype: str = "") -> list[dict]:
    with sub.cond:
        return [
            json.loads(p)
            for t, p, _ in sub.msgs
            if t.startswith("edgemm/testdev/events/") and (not etype or t.endswith("/" + etype))
        ]


# --------------------------------------------------------------------------- topics


def test_replayed_events_arrive_on_their_topics(broker: Broker, beep_session: Path) -> None:
    sub = Subscriber(broker.port)
    cfg = {
        "sinks": {
            "stdout": {"enabled": False},
            "mqtt": {
                "enabled": True,
                "port": broker.port,
                "device_id": "testdev",
                "exclude": [],
                "discovery": False,
            },
        }
    }
    with Pipeline(
        cfg, audio_file=beep_session / "audio.wav", video_file=beep_session / "video.avi"
    ) as p:
        events = list(p.events())
    sent = [e.to_dict() for e in events]
    got = sub.wait(lambda m: len([t for t, _, _ in m if "/events/" in t]) >= len(sent))
    received = [(t, json.loads(pl)) for t, pl, _ in got if "/events/" in t]
    assert [d for _, d in received] == sent
    for topic, d in received:
        assert topic == f"edgemm/testdev/events/{d['type']}"
        assert d["v"] == 1 and set(d) >= {"seq", "type", "label", "t_start", "t_end", "data"}
    assert {d["type"] for d in sent} >= {"vad", "brightness", "status"}
    avail = sub.wait(lambda m: sub.on("edgemm/testdev/available")[-1:] == [b"offline"])
    assert [p for t, p, _ in avail if t.endswith("/available")] == [b"online", b"offline"]
    sub.close()


def test_presence_and_transcript_state_is_retained(broker: Broker) -> None:
    first = Subscriber(broker.port, ("edgemm/testdev/state/#",))
    bus = EventBus()
    sink = MqttSink(_settings(broker.port, discovery=False))
    sink.attach(bus)
    bus.publish(Event("presence", "face", 1.0, 1.2, data={"present": True, "count": 1}))
    bus.publish(Event("speech", "partial", 2.0, 2.5, data={"text": "turn on"}))
    bus.publish(Event("speech", "final", 2.0, 3.0, data={"text": "turn on the lights"}))
    bus.publish(Event("presence", "face", 4.0, 4.6, data={"present": False, "count": 0}))
    first.wait(lambda m: len(m) >= 3)
    assert first.on("edgemm/testdev/state/presence") == [b"ON", b"OFF"]
    assert first.on("edgemm/testdev/state/transcript") == [b"turn on the lights"]
    first.close()
    bus.close()
    sink.join()
    # a subscriber arriving later gets the retained state
    late = Subscriber(broker.port, ("edgemm/testdev/#",))
    msgs = late.wait(lambda m: len(m) >= 3)
    retained = {t: p for t, p, r in msgs if r}
    assert retained["edgemm/testdev/state/presence"] == b"OFF"
    assert retained["edgemm/testdev/state/transcript"] == b"turn on the lights"
    assert retained["edgemm/testdev/available"] == b"offline"
    late.close()


# --------------------------------------------------------------------------- last will


def test_availability_goes_offline_via_last_will_when_killed(
    broker: Broker, tmp_path: Path
) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    wav = tmp_path / "long.wav"
    write_wav(wav, (rng.standard_normal(16000 * 60) * 100).astype(np.int16), 16000)
    cfg = tmp_path / "mqtt.yaml"
    cfg.write_text(
        "sinks:\n  stdout:\n    enabled: false\n  mqtt:\n    enabled: true\n"
        f"    port: {broker.port}\n    device_id: testdev\n    discovery: false\n"
    )
    sub = Subscriber(broker.port, ("edgemm/testdev/available",))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from edgemm.cli import main; sys.exit(main(sys.argv[1:]))",
            "replay",
            "--config",
            str(cfg),
            "--audio",
            str(wav),
            "--realtime",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        sub.wait(lambda m: [p for _, p, _ in m][-1:] == [b"online"], timeout=30)
        assert proc.poll() is None
        proc.kill()  # no chance to say goodbye: the broker publishes the will
        proc.wait(10)
        sub.wait(lambda m: [p for _, p, _ in m][-1:] == [b"offline"], timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    sub.close()


# --------------------------------------------------------------------------- discovery

REQUIRED = {
    "binary_sensor": {"state_topic", "payload_on", "payload_off", "device_class"},
    "sensor": {"state_topic"},
    "event": {"state_topic", "event_types", "value_template"},
}
COMMON = {"name", "unique_id", "device", "availability_topic", "payload_available"}


def test_home_assistant_discovery_published_republished_and_removed(broker: Broker) -> None:
    labels = {"wake_word": ["hey_jarvis", "alexa"], "recognition": ["wave", "greet"]}
    sub = Subscriber(broker.port, ("homeassistant/#",))
    bus = EventBus()
    sink = MqttSink(_settings(broker.port), event_labels=labels)
    sink.attach(bus)
    expected = discovery_messages(sink.s, labels)
    assert len(expected) == 4
    msgs = sub.wait(lambda m: len({t for t, p, _ in m if t.endswith("/config")}) >= 4)
    configs = {t: json.loads(p) for t, p, _ in msgs if t.endswith("/config")}
    assert set(configs) == set(expected)
    unique = set()
    for topic, cfg in configs.items():
        prefix, component, node, obj, _ = topic.split("/")
        assert prefix == "homeassistant" and node == "testdev"
        assert set(cfg) >= COMMON and REQUIRED[component] <= set(cfg), (topic, cfg)
        assert cfg["availability_topic"] == "edgemm/testdev/available"
        assert cfg["device"]["identifiers"] == ["edgemm_testdev"]
        assert cfg["state_topic"].startswith("edgemm/testdev/")
        unique.add(cfg["unique_id"])
    assert len(unique) == 4
    ww = configs["homeassistant/event/testdev/wake_word/config"]
    assert ww["event_types"] == ["alexa", "hey_jarvis"]
    assert ww["state_topic"] == "edgemm/testdev/events/wake_word"
    presence = configs["homeassistant/binary_sensor/testdev/presence/config"]
    assert presence["state_topic"] == "edgemm/testdev/state/presence"
    assert (presence["payload_on"], presence["payload_off"]) == ("ON", "OFF")
    # Home Assistant restarts: it says online, the configs come again
    n = len(msgs)
    sub.c.publish("homeassistant/status", "online", qos=1)
    sub.wait(lambda m: len([t for t, _, _ in m[n:] if t.endswith("/config")]) >= 4)
    # removal on request: empty retained configs; a new subscriber sees nothing retained
    sink.remove_discovery()
    sub.wait(lambda m: sum(1 for t, p, _ in m if t.endswith("/config") and p == b"") >= 4)
    bus.close()
    sink.join()
    sub.close()
    fresh = Subscriber(broker.port, ("homeassistant/#",))
    time.sleep(0.5)
    assert [t for t, p, _ in fresh.msgs if p] == []
    fresh.close()


def test_remove_discovery_command_clears_retained_topics(broker: Broker, tmp_path: Path) -> None:
    sink = MqttSink(_settings(broker.port), event_labels={"wake_word": ["alexa"]})
    bus = EventBus()
    sink.attach(bus)
    bus.publish(Event("presence", "face", 1.0, 1.2, data={"present": True, "count": 1}))
    probe = Subscriber(broker.port, ("homeassistant/#", "edgemm/testdev/state/#"))
    probe.wait(lambda m: len(m) >= 4)
    probe.close()
    bus.close()
    sink.join()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"sinks:\n  mqtt:\n    port: {broker.port}\n    device_id: testdev\n")
    from edgemm.cli import main

    assert main(["mqtt", "remove-discovery", "--config", str(cfg)]) == 0
    fresh = Subscriber(broker.port, ("homeassistant/#", "edgemm/#"))
    time.sleep(0.5)
    assert [t for t, p, _ in fresh.msgs if p] == []
    fresh.close()


# --------------------------------------------------------------------------- outages


def _wait(pred: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _seqs(sub: Subscriber) -> list[int]:
    return [d["seq"] for d in _events_on(sub)]


def test_broker_restart_mid_stream_loses_nothing_and_keeps_order(broker: Broker) -> None:
    """Events keep coming while the broker stops and restarts: each arrives once, in order."""
    sub = Subscriber(broker.port, ("edgemm/testdev/events/#",), client_id="probe", qos=2)
    reports: list[tuple[str, str, dict]] = []
    bus = EventBus(100_000)
    sink = MqttSink(
        _settings(broker.port, qos=2, buffer_size=5000, discovery=False),
        report=lambda *a: reports.append(a),
    )
    sink.attach(bus)
    total = 600
    stop = threading.Event()

    def produce() -> None:
        for i in range(total):
            bus.publish(Event("gesture", "fist", i * 0.01, i * 0.01 + 0.01, data={"i": i}))
            time.sleep(0.004)
        stop.set()

    _wait(lambda: sink.connected)
    t = threading.Thread(target=produce)
    t.start()
    _wait(lambda: len(_seqs(sub)) >= 100)
    broker.stop()
    _wait(lambda: not sink.connected)
    time.sleep(0.5)  # events pile up in the offline buffer meanwhile
    assert sink.buffered > 0
    broker.start()
    t.join()
    sub.wait(lambda m: len(m) >= total, timeout=30)
    time.sleep(0.3)
    assert _seqs(sub) == list(range(1, total + 1))
    assert sink.reconnects >= 1 and sink.overflow == 0
    labels = [(typ, lab) for typ, lab, _ in reports]
    assert ("error", "mqtt") in labels and ("status", "mqtt") in labels
    bus.close()
    sink.join()
    sub.close()


def test_offline_buffer_overflow_is_counted_and_newest_kept(broker: Broker) -> None:
    sub = Subscriber(broker.port, ("edgemm/testdev/events/#",), client_id="probe2", qos=2)
    reports: list[tuple[str, str, dict]] = []
    bus = EventBus(100_000)
    sink = MqttSink(
        _settings(broker.port, qos=2, buffer_size=50, discovery=False),
        report=lambda *a: reports.append(a),
    )
    sink.attach(bus)
    _wait(lambda: sink.connected)
    for i in range(20):
        bus.publish(Event("wake_word", "alexa", i, i + 1))
    sub.wait(lambda m: len(m) >= 20)
    broker.stop()
    _wait(lambda: not sink.connected)
    for i in range(80):  # 30 more than the buffer holds
        bus.publish(Event("wake_word", "alexa", 100 + i, 101 + i))
    _wait(lambda: sink.overflow == 30)
    assert sink.buffered == 50
    broker.start()
    sub.wait(lambda m: len(m) >= 70, timeout=30)
    time.sleep(0.3)
    assert _seqs(sub) == list(range(1, 21)) + list(range(51, 101))
    overflow = [d for typ, lab, d in reports if typ == "error" and "overflow" in d]
    assert overflow and overflow[-1]["overflow"] >= 1 and "buffer_size" in overflow[-1]["message"]
    bus.close()
    sink.join()
    sub.close()


def test_broker_down_at_start_then_up(broker: Broker) -> None:
    sub = Subscriber(broker.port, ("edgemm/testdev/events/#",), client_id="probe3", qos=2)
    broker.stop()  # the subscriber's session survives in the broker's persistence
    bus = EventBus()
    sink = MqttSink(_settings(broker.port, qos=2, discovery=False))
    sink.attach(bus)
    for i in range(10):
        bus.publish(Event("vad", "speech_start", i, i + 0.1))
    time.sleep(0.5)
    assert not sink.connected and sink.buffered == 10 and sink.published == 0
    broker.start()
    sub.wait(lambda m: len(m) >= 10)
    time.sleep(0.3)
    assert _seqs(sub) == list(range(1, 11))
    assert sink.connects == 1 and sink.reconnects == 0
    bus.close()
    sink.join()
    sub.close()


# --------------------------------------------------------------------------- credentials


def test_credentials_come_from_named_environment_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pw = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    if not os.path.exists(pw):
        pytest.skip("mosquitto_passwd is not installed")
    pwfile = tmp_path / "passwd"
    subprocess.run([pw, "-b", "-c", str(pwfile), "edge", "pa55word"], check=True)
    pwfile.chmod(0o600)
    b = Broker(tmp_path, extra=f"allow_anonymous false\npassword_file {pwfile}\n")
    b.start()
    try:
        from edgemm.config import load_config

        section = {"port": b.port, "username_env": "T_MQTT_USER", "password_env": "T_MQTT_PASS"}
        cfg = load_config({"sinks": {"mqtt": section}})
        with pytest.raises(ConfigError, match="T_MQTT_USER"):
            settings_from_config(cfg.sinks.mqtt)
        monkeypatch.setenv("T_MQTT_USER", "edge")
        monkeypatch.setenv("T_MQTT_PASS", "wrong")
        s = settings_from_config(cfg.sinks.mqtt)
        refused = MqttSink(s)
        refused.start()
        time.sleep(1.0)
        assert not refused.connected and "authori" in refused.last_error.lower()
        refused.close()
        monkeypatch.setenv("T_MQTT_PASS", "pa55word")
        ok = MqttSink(settings_from_config(cfg.sinks.mqtt))
        ok.start()
        _wait(lambda: ok.connected)
        ok.close()
    finally:
        b.stop()


def _make_ca_and_server_cert(d: Path, name: str) -> tuple[Path, Path, Path]:
    """A throw-away CA and a server certificate for 127.0.0.1 signed by it (openssl)."""
    ca_key, ca, key, csr, crt = (
        d / f"{name}{s}" for s in ("-ca.key", "-ca.pem", ".key", ".csr", ".pem")
    )
    ext = d / f"{name}.ext"
    ext.write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n")
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        f"/CN={name} test CA",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        str(key),
        "-out",
        str(csr),
    )
    run(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(ca),
        "-CAkey",
        str(ca_key),
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        str(ext),
        "-out",
        str(crt),
    )
    return ca, crt, key


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_tls_broker_accepts_the_right_ca_and_refuses_another(tmp_path: Path) -> None:
    ca, crt, key = _make_ca_and_server_cert(tmp_path, "good")
    other_ca, _, _ = _make_ca_and_server_cert(tmp_path, "other")
    b = Broker(
        tmp_path, extra=f"allow_anonymous true\ncafile {ca}\ncertfile {crt}\nkeyfile {key}\n"
    )
    b.start()
    try:
        s = MqttSettings(
            port=b.port, device_id="tlsdev", tls=True, ca_file=str(ca), discovery=False
        )
        ok = MqttSink(s)
        bus = EventBus()
        ok.attach(bus)
        _wait(lambda: ok.connected)
        bus.publish(Event("wake_word", "hey_jarvis", 1.0, 2.0, score=0.9))
        _wait(lambda: ok.stats()["published"] >= 1)
        bus.close()
        ok.join(10)
        wrong = MqttSink(
            MqttSettings(
                port=b.port, device_id="tlsdev2", tls=True, ca_file=str(other_ca), discovery=False
            )
        )
        wrong.start()
        time.sleep(1.5)
        assert not wrong.connected
        assert "certificate verify failed" in wrong.last_error, wrong.last_error
        wrong.close()
    finally:
        b.stop()
