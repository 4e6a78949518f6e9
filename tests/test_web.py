"""The web dashboard: HTTP routes, token, SSE back-pressure, snapshot, and a real chromium."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import pytest
from browser import Chromium, chromium_path

from edgemm import Pipeline
from edgemm.errors import ConfigError, ModelError
from edgemm.events import Event, EventBus
from edgemm.sinks.web import WebSink
from edgemm.stages.base import FeatureStore, Frame
from edgemm.stages.snapshot import FACE_COLOR, SnapshotBuffer, SnapshotStage

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(os.environ.get("EDGEMM_TEST_ARTIFACTS", ROOT / "tests" / "artifacts"))


@pytest.fixture(scope="module")
def face_session(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 s: a coffee cup, then the astronaut's face from 2 s; a 1 kHz beep 3–5 s."""
    from make_session import make_session

    out = tmp_path_factory.mktemp("face")
    spec = {
        "duration": 8.0,
        "fps": 15,
        "size": [640, 480],
        "seed": 5,
        "noise_db": -60,
        "video": [
            {"t0": 0.0, "t1": 2.0, "image": "coffee"},
            {"t0": 2.0, "t1": 8.0, "image": "astronaut", "scale": 0.9},
        ],
        "audio": [{"t": 3.0, "beep": 1000, "dur": 2.0, "db": -12}],
    }
    make_session(spec, out, "video.avi")
    return out


def _cfg(**web: object) -> dict:
    return {
        "sinks": {"stdout": {"enabled": False}, "web": {"enabled": True, "port": 0, **web}},
    }


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def test_dashboard_routes_after_a_replay(beep_session: Path) -> None:
    with Pipeline(
        _cfg(), audio_file=beep_session / "audio.wav", video_file=beep_session / "video.avi"
    ) as p:
        assert p.web is not None and p.web.host == "127.0.0.1"
        events = list(p.events())
        code, body, hdr = _get(p.web.url)
        assert code == 200 and hdr["Content-Type"].startswith("text/html")
        assert b'id="timeline"' in body
        code, body, _ = _get(p.web.url + "state")
        state = json.loads(body)
        assert state["ended"] is True
        timeline = [(e["type"], e["label"]) for e in state["timeline"]]
        expected = [(e.type, e.label) for e in events if e.type != "status"]
        assert timeline == expected and ("vad", "speech_start") in timeline
        assert state["status"]["data"]["counters"]["frames_in"] == 180
        code, jpeg, hdr = _get(p.web.url + "snapshot.jpg")
        assert code == 200 and hdr["Content-Type"] == "image/jpeg"
        img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (360, 480, 3)  # 640x480 scaled to the snapshot width
        assert img.mean() > 200  # the last frames are white
        assert float(hdr["X-Stream-Time"]) > 5.0
        assert _get(p.web.url + "nope")[0] == 404
        assert _get(p.web.url + "metrics")[0] == 404  # metrics not enabled
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", p.web.port), timeout=1).close()


def test_token_is_required_when_configured(
    beep_session: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EDGEMM_TEST_TOKEN", "s3cret-token")
    with Pipeline(_cfg(token_env="EDGEMM_TEST_TOKEN"), audio_file=beep_session / "audio.wav") as p:
        url = p.web.url
        code, _, hdr = _get(url + "state")
        assert code == 401 and hdr["WWW-Authenticate"].startswith("Bearer")
        assert _get(url + "state", {"Authorization": "Bearer wrong"})[0] == 401
        assert _get(url + "state?token=s3cret-toke")[0] == 401
        assert _get(url + "state", {"Authorization": "Bearer s3cret-token"})[0] == 200
        assert _get(url + "state?token=s3cret-token")[0] == 200
    monkeypatch.delenv("EDGEMM_TEST_TOKEN")
    with pytest.raises(ConfigError, match="EDGEMM_TEST_TOKEN"):
        Pipeline(_cfg(token_env="EDGEMM_TEST_TOKEN"), audio_file=beep_session / "audio.wav")


def test_busy_port_is_a_config_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(ConfigError, match="sinks.web.port"):
            WebSink("127.0.0.1", s.getsockname()[1])


def _read_sse(sock: socket.socket, until: bytes, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    buf = b""
    while until not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return buf


def test_stuck_sse_client_is_dropped_and_others_keep_streaming() -> None:
    web = WebSink("127.0.0.1", 0, client_queue=20)
    bus = EventBus(100_000)
    web.attach(bus)
    try:
        stuck = socket.create_connection(("127.0.0.1", web.port))
        stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stuck.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")  # and never read again
        deadline = time.monotonic() + 10
        while web.clients < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        big = "x" * 20_000
        n = 0
        while web.clients_dropped == 0 and time.monotonic() < deadline:
            bus.publish(Event("speech", "final", n, n + 1, data={"text": big}))
            n += 1
            if n % 50 == 0:
                time.sleep(0.01)
        assert web.clients_dropped == 1, "a client that never reads must be dropped"
        assert web.clients == 0
        stuck.close()
        # a healthy client still gets the state and new events
        ok = socket.create_connection(("127.0.0.1", web.port))
        ok.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        head = _read_sse(ok, b"event: state")
        assert b"200" in head.split(b"\r\n", 1)[0]
        while web.clients < 1:
            time.sleep(0.01)
        bus.publish(Event("wake_word", "hey_jarvis", 1.0, 2.0, score=0.9))
        body = _read_sse(ok, b"hey_jarvis")
        assert b"event: ev" in body and b'"label":"hey_jarvis"' in body
        ok.close()
    finally:
        bus.close()
        web.join()
        web.shutdown()


class _Ctx:
    """The stage context's feature store, as the scheduler hands it to a video stage."""

    sample_rate = 16000
    hop_samples = 1280

    def __init__(self) -> None:
        self.features = FeatureStore()

    def emit(self, *a: object, **k: object) -> None:
        raise AssertionError("the snapshot stage emits nothing")


def test_snapshot_draws_the_face_box_from_the_real_face_stage() -> None:
    from make_session import load_image

    from edgemm.stages.vision import FaceStage

    img = cv2.resize(load_image("astronaut"), (640, 640))
    frame = Frame(img, 1.0, 30)
    ctx = _Ctx()
    face = FaceStage(mesh=False)
    try:
        face.process_frame(frame, ctx)
    except ModelError as exc:
        pytest.skip(f"face model not installed: {exc}")
    feats = ctx.features.latest("face")[1]
    assert feats["count"] == 1
    buf = SnapshotBuffer()
    SnapshotStage(buf, width=320).process_frame(frame, ctx)
    snap = buf.get()
    assert snap is not None and snap.faces == 1 and snap.t == 1.0
    out = cv2.imdecode(np.frombuffer(snap.jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert out.shape == (320, 320, 3)
    green = np.all(np.abs(out.astype(int) - FACE_COLOR) < 60, axis=2)
    ys, xs = np.nonzero(green)
    assert len(xs) > 100, "no face box drawn"
    # the box surrounds the detected face centre
    cx, cy = feats["cx"] * 320, feats["cy"] * 320
    assert xs.min() < cx < xs.max() and ys.min() < cy < ys.max()
    assert img.sum() == cv2.resize(load_image("astronaut"), (640, 640)).sum()  # frame untouched


@pytest.mark.skipif(
    chromium_path() is None, reason="chromium is not installed (apt-get install chromium)"
)
def test_dashboard_in_headless_chromium(face_session: Path, tmp_path: Path) -> None:
    cfg = _cfg()
    cfg["stages"] = {"face": {"enabled": True, "mesh": False}}
    try:
        p = Pipeline(
            cfg,
            audio_file=face_session / "audio.wav",
            video_file=face_session / "video.avi",
            realtime=True,
        )
    except ModelError as exc:
        pytest.skip(f"face model not installed: {exc}")
    with p, Chromium.launch(tmp_path) as browser:
        browser.navigate(p.web.url)
        assert browser.evaluate("document.title").startswith("edgemm")
        browser.wait_for("document.getElementById('conn').textContent === 'live'")
        assert p.web.clients == 1
        assert browser.evaluate("document.querySelectorAll('#timeline li').length") == 0
        p.start()  # events now reach the page only over SSE
        rows = 'document.querySelector(\'#timeline li[data-type="%s"][data-label="%s"]\')'
        browser.wait_for(rows % ("presence", "face") + " !== null")
        browser.wait_for(rows % ("vad", "speech_start") + " !== null")
        assert browser.evaluate("document.getElementById('ptext').textContent") == "Someone is here"
        browser.wait_for("!document.getElementById('snap').hidden")
        browser.wait_for("document.getElementById('fps').textContent !== '–'")
        time.sleep(0.6)  # one more snapshot with the face box
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = browser.screenshot(ARTIFACTS / "dashboard.png")
        png = cv2.imread(str(shot))
        assert png is not None and png.shape[:2] == (800, 1280)
        assert png.std() > 10  # not a blank page
        p.wait(30)
        browser.wait_for("document.getElementById('conn').textContent === 'stream ended'")
        seqs = browser.evaluate(
            "[...document.querySelectorAll('#timeline li')].map(li => +li.dataset.seq)"
        )
        assert seqs == sorted(seqs, reverse=True) and len(seqs) == len(set(seqs))


def _post(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=b"", method="POST", headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_reload_button_endpoint_applies_the_changed_config_file(
    beep_session: Path, tmp_path: Path
) -> None:
    conf = tmp_path / "live.yaml"
    text = (
        "sinks:\n  stdout: {enabled: false}\n  web: {enabled: true, port: 0}\n"
        "stages:\n  energy_gate: {enabled: true, on_db: -35}\n"
    )
    conf.write_text(text)
    with Pipeline(conf, audio_file=beep_session / "audio.wav") as p:
        list(p.events())
        url = p.web.url + "reload"
        assert _post(url)[0] == 400  # the custom header keeps plain cross-site forms out
        code, body = _post(url, {"X-Edgemm-Action": "reload"})
        assert code == 200 and body["unchanged"] is True
        conf.write_text(text.replace("on_db: -35", "on_db: -20").replace("port: 0", "port: 1"))
        code, body = _post(url, {"X-Edgemm-Action": "reload"})
        assert code == 200
        assert "stages.energy_gate.on_db" in body["applied"]
        assert "sinks.web.port" in body["restart_needed"]
        assert p.cfg.stages.energy_gate.on_db == -20
        conf.write_text("stages:\n  energy_gate: {enabled: maybe}\n")
        code, body = _post(url, {"X-Edgemm-Action": "reload"})
        assert code == 422 and "energy_gate.enabled" in body["error"]
        assert p.cfg.stages.energy_gate.on_db == -20  # a bad file changes nothing
