"""systemd unit (rendered, checked by systemd-analyze, installed into a temporary home), the
kiosk profile, and config reload (SIGHUP / Pipeline.reload) during a live run."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import stat
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from fakes import FakeSoundDevice

from edgemm import Pipeline, load_config
from edgemm.cli import main
from edgemm.errors import ConfigError
from edgemm.events import Event
from edgemm.reload import LIVE_KEYS, changed_keys, flatten, install_sighup
from edgemm.service import (
    edgemm_executable,
    ensure_env_file,
    install,
    render_unit,
    uninstall,
    unit_spec,
)

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def _keys(unit: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in unit.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            k, v = line.split("=", 1)
            out[k] = v
    return out


def _verify(path: Path, user: bool, tmp_path: Path) -> None:
    rt = tmp_path / "runtime"
    rt.mkdir(mode=0o700, exist_ok=True)
    env = {**os.environ, "XDG_RUNTIME_DIR": str(rt)}
    cmd = [SYSTEMD_ANALYZE, *(["--user"] if user else []), "verify", str(path)]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    ours = [ln for ln in (r.stderr + r.stdout).splitlines() if path.name in ln or str(path) in ln]
    assert r.returncode == 0 and not ours, r.stderr


@pytest.mark.parametrize("user", [False, True])
def test_unit_renders_the_service_contract(user: bool, tmp_path: Path) -> None:
    spec = unit_spec("kiosk", user_mode=user, workdir=tmp_path, env_file=tmp_path / "s.env")
    unit = render_unit(spec)
    k = _keys(unit)
    exe = str(edgemm_executable())
    assert k["ExecStart"] == f"{exe} run --config kiosk --no-demo"
    assert Path(exe).is_file() and os.access(exe, os.X_OK)
    assert k["Restart"] == "always" and int(k["RestartSec"]) > 0
    assert k["WorkingDirectory"] == str(tmp_path)
    assert k["EnvironmentFile"] == f"-{tmp_path / 's.env'}"
    assert k["KillSignal"] == "SIGINT" and int(k["TimeoutStopSec"]) >= 10
    assert k["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert k["WantedBy"] == ("default.target" if user else "multi-user.target")
    assert ("User" in k) is (not user)
    if SYSTEMD_ANALYZE is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd)")
    path = tmp_path / "edgemm-test.service"
    path.write_text(unit)
    _verify(path, user, tmp_path)


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a unit whose ExecStart does not exist is rejected."""
    spec = unit_spec("default", user_mode=False, executable=tmp_path / "no" / "edgemm")
    path = tmp_path / "broken.service"
    path.write_text(render_unit(spec))
    with pytest.raises(AssertionError):
        _verify(path, False, tmp_path)


def test_paths_with_spaces_are_quoted(tmp_path: Path) -> None:
    cfg = tmp_path / "my configs" / "kiosk 100%.yaml"
    cfg.parent.mkdir()
    shutil.copy(Path(__file__).parent.parent / "configs" / "kiosk.yaml", cfg)
    spec = unit_spec(str(cfg), user_mode=False, workdir=tmp_path)
    k = _keys(render_unit(spec))
    assert k["ExecStart"].endswith(f'--config "{str(cfg).replace("%", "%%")}" --no-demo')
    if SYSTEMD_ANALYZE is not None:
        path = tmp_path / "q.service"
        path.write_text(render_unit(spec))
        _verify(path, False, tmp_path)


def test_install_user_unit_and_secrets_file_then_uninstall(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.chdir(tmp_path)
    name = "edgemm-test-unit"
    assert main(["service", "install", "--user", "--config", "kiosk", "--name", name]) == 0
    out = capsys.readouterr().out
    unit = tmp_path / "cfg" / "systemd" / "user" / f"{name}.service"
    env = tmp_path / "cfg" / "edgemm" / f"{name}.env"
    assert f"wrote {unit}" in out and "loginctl enable-linger" in out
    assert "systemctl --user daemon-reload" in out
    k = _keys(unit.read_text())
    assert k["EnvironmentFile"] == f"-{env}" and k["WorkingDirectory"] == str(tmp_path)
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    # an existing secrets file that is too open is tightened, never rewritten
    env.write_text("EDGEMM_MQTT_PASS=s3cret\n")
    env.chmod(0o644)
    assert "tightened to 0600" in ensure_env_file(env)
    assert stat.S_IMODE(env.stat().st_mode) == 0o600 and "s3cret" in env.read_text()
    # --print renders the same unit without touching the file
    assert (
        main(["service", "install", "--user", "--config", "kiosk", "--name", name, "--print"]) == 0
    )
    assert capsys.readouterr().out == unit.read_text()
    assert main(["service", "uninstall", "--user", "--name", name, "--no-systemctl"]) == 0
    assert not unit.exists() and env.exists()
    assert main(["service", "uninstall", "--user", "--name", name, "--no-systemctl"]) == 1


def test_system_unit_directory_without_permission_names_the_fix(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        locked = tmp_path / "ro"
        locked.mkdir()
        path, _ = install(
            unit_spec("default", user_mode=False, env_file=tmp_path / "e.env"), locked
        )
        assert path.is_file()
        removed, _ = uninstall("edgemm", False, locked, systemctl=False)
        assert removed == path and not path.exists()
        return
    from edgemm.service import ServiceError  # pragma: no cover - non-root runs

    with pytest.raises(ServiceError, match="--user"):  # pragma: no cover
        install(unit_spec("default", user_mode=False, env_file=tmp_path / "e.env"), Path("/etc"))


# --------------------------------------------------------------------------- kiosk profile


def test_kiosk_profile_validates_and_runs_without_the_korean_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = load_config("kiosk")
    assert cfg.stt.enabled and cfg.stt.mode == "grammar" and cfg.stt.model == "vosk_ko"
    assert cfg.stages.wakeword.enabled and cfg.stages.face.enabled and cfg.sinks.web.enabled
    assert set(cfg.intents.define) >= {"greeting", "lights_on", "lights_off"}
    # a cache with every model except vosk_ko: the pipeline builds, with STT off and the fix
    from edgemm.models import models_dir

    real = models_dir()
    cache = tmp_path / "models"
    cache.mkdir()
    for f in real.iterdir():
        if f.name != "vosk_ko" and f.is_file():
            (cache / f.name).symlink_to(f)
    monkeypatch.setenv("EDGEMM_MODELS", str(cache))
    wav = tmp_path / "quiet.wav"
    _write_wav(wav, np.zeros(16000, np.int16))
    over = {"sinks": {"web": {"enabled": False}, "jsonl": {"enabled": False}}}
    with caplog.at_level(logging.WARNING, logger="edgemm"):
        try:
            p = Pipeline(load_config("kiosk", over), audio_file=wav, stdout=False)
        except Exception as exc:  # a default model this machine lacks is not this test's topic
            if "vosk" in str(exc):
                raise
            pytest.skip(f"default models not installed: {exc}")
    assert any("edgemm models install vosk_ko" in r.getMessage() for r in caplog.records)
    assert not [st for st in p.scheduler.lanes.get("speech", _Empty()).stages]
    p.run()
    assert p.error is None


class _Empty:
    stages: list[object] = []


def _write_wav(path: Path, x: np.ndarray) -> None:
    import wave

    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(x.astype("<i2").tobytes())


# --------------------------------------------------------------------------- config reload


def _pulses(seconds: float = 1.0, beep_s: float = 0.4) -> np.ndarray:
    """One period of the live test signal: a -10 dBFS 1 kHz tone, then -70 dBFS noise."""
    sr = 16000
    n = int(seconds * sr)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 32768 * 10 ** (-70 / 20), n)
    k = int(beep_s * sr)
    x[:k] += 32768 * 10 ** (-10 / 20) * np.sqrt(2) * np.sin(2 * np.pi * 1000 * np.arange(k) / sr)
    return np.clip(x, -32768, 32767).astype(np.int16)


def test_flatten_and_classification() -> None:
    a = load_config("kiosk")
    b = load_config("kiosk", {"stages": {"face": {"off_s": 3.0}}, "audio": {"block_ms": 40}})
    assert set(changed_keys(a, b)) == {"stages.face.off_s", "audio.block_ms"}
    keys = set(flatten(a))
    assert keys >= LIVE_KEYS  # every live key exists in the schema
    assert "audio.device" in keys and "audio.device" not in LIVE_KEYS


def test_reload_mid_run_changes_a_threshold_without_losing_audio(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Live run (fake PortAudio stream at the device seam): the energy gate fires once per
    second on a tone; a reload raises its threshold above the tone, so it stops firing; no hop
    is lost across two reloads (the API one and a SIGHUP one)."""
    period = _pulses()
    sd = FakeSoundDevice(np.tile(period, 3))
    cfg = {
        "video": {"enabled": False},
        "stages": {"energy_gate": {"enabled": True, "on_db": -35.0, "off_db": -45.0}},
        "status": {"interval_s": 0.5},
    }
    events: list[Event] = []
    p = Pipeline(load_config(cfg), stdout=False, sounddevice_module=sd)
    p.subscribe(events.append)
    p.start()
    time.sleep(2.6)
    after_jsonl = tmp_path / "after.jsonl"
    new = {
        **cfg,
        "stages": {"energy_gate": {"enabled": True, "on_db": -5.0, "off_db": -45.0}},
        "audio": {"block_ms": 40},  # needs a restart: named, not applied
        "sinks": {"jsonl": {"enabled": True, "path": str(after_jsonl)}},
    }
    with caplog.at_level(logging.INFO, logger="edgemm"):
        res = p.reload(new)
    t_reload = p.clock.now()
    assert "stages.energy_gate.on_db" in res.applied and "sinks.jsonl.path" in res.applied
    assert res.restart_needed == ("audio.block_ms",)
    gate = p.scheduler.audio_stages[0]
    assert gate.on_db == -5.0 and p.cfg.stages.energy_gate.on_db == -5.0
    assert p.cfg.audio.block_ms == 20  # kept at the running value
    assert any("restart needed for audio.block_ms" in r.getMessage() for r in caplog.records)
    assert p.reload_queue.applied == 1  # applied by the scheduler thread, between hops

    # the same through SIGHUP and a file: back to the low threshold
    yaml_file = tmp_path / "live.yaml"
    yaml_file.write_text(
        "video: {enabled: false}\nstatus: {interval_s: 0.5}\n"
        "stages: {energy_gate: {enabled: true, on_db: -36.0, off_db: -45.0}}\n"
    )
    restore = install_sighup(p, str(yaml_file))
    try:
        time.sleep(2.0)
        t_hup = p.clock.now()
        os.kill(os.getpid(), signal.SIGHUP)
        deadline = time.monotonic() + 5
        while gate.on_db != -36.0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert gate.on_db == -36.0
        time.sleep(2.0)
    finally:
        restore()
    p.stop()
    assert p.error is None
    starts = [e.t_start for e in events if e.type == "vad" and e.label == "speech_start"]
    before = [t for t in starts if t < t_reload - 0.2]
    between = [t for t in starts if t_reload + 0.1 < t < t_hup - 0.1]
    after = [t for t in starts if t > t_hup + 1.0]
    assert len(before) >= 2 and not between and after
    reloads = [e for e in events if e.type == "status" and e.label == "reload"]
    assert len(reloads) == 2 and reloads[0].data["restart_needed"] == ["audio.block_ms"]
    assert reloads[1].data["restart_needed"] == []  # the file left block_ms at its value
    # no audio lost: every hop written by the stream was processed, in order
    c = p.scheduler.counters
    assert c.audio_overruns == 0 and c.audio_lost_samples == 0
    assert c.audio_hops >= (p.clock.now() - 0.5) / 0.08 - 3
    # the level feature has one entry per hop: consecutive, none missing around the reloads
    ts = np.array([t for t, _ in p.scheduler.features.between("level", 0.0, 1e9)])
    assert len(ts) > 50 and ts[0] < t_reload - 1.0 and ts[-1] > t_hup + 1.0
    assert np.allclose(np.diff(ts), 0.08)
    # the JSONL sink added by the first reload got the events after it
    lines = after_jsonl.read_text().splitlines()
    assert lines and all('"type"' in ln for ln in lines)


def test_invalid_reload_keeps_the_running_config(tmp_path: Path) -> None:
    p = Pipeline(load_config({"video": {"enabled": False}}), audio_file=_silence(tmp_path))
    before = p.cfg
    with pytest.raises(ConfigError, match="on_db"):
        p.reload({"stages": {"energy_gate": {"on_db": "loud"}}})
    assert p.cfg is before
    res = p.reload({"video": {"enabled": False}})
    assert res.unchanged


def _silence(tmp_path: Path) -> Path:
    wav = tmp_path / "s.wav"
    _write_wav(wav, np.zeros(8000, np.int16))
    return wav
