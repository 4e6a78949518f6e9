"""edgemm doctor, run for real on this machine (no camera, no microphone: WARN lines), plus
the version rules and the /proc/cpuinfo parser on recorded inputs."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from edgemm import load_config
from edgemm.cli import main
from edgemm.doctor import (
    Finding,
    check_cameras,
    check_cpu,
    check_disk,
    check_memory,
    check_models,
    cpu_features,
    run_checks,
    stack_findings,
)

LINE = re.compile(r"^(OK  |WARN|FAIL) [a-z0-9 -]+: .+")

# /proc/cpuinfo excerpts as the kernel prints them (Raspberry Pi 4 64-bit, Pi 3 32-bit)
PI4_AARCH64 = """processor	: 0
BogoMIPS	: 108.00
Features	: fp asimd evtstrm crc32 cpuid
CPU implementer	: 0x41
CPU part	: 0xd08
"""
PI3_ARMV7 = """processor	: 0
model name	: ARMv7 Processor rev 4 (v7l)
Features	: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm crc32
"""


def test_doctor_runs_for_real_one_line_per_finding(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["doctor"])
    out = capsys.readouterr().out.splitlines()
    findings, summary = out[:-1], out[-1]
    assert all(LINE.match(ln) for ln in findings), findings
    whats = {ln[5:].split(":")[0] for ln in findings}
    assert {
        "python",
        "numpy",
        "opencv",
        "tflite backend",
        "models",
        "cpu",
        "disk",
        "memory",
    } <= whats
    assert any(w in whats for w in ("portaudio", "microphones"))
    assert any(w.startswith("camera") or w == "cameras" for w in whats)
    fails = [ln for ln in findings if ln.startswith("FAIL")]
    assert code == (1 if fails else 0)
    assert summary.startswith(f"{len(findings)} checks: {len(fails)} failed")
    # every WARN/FAIL names a fix
    assert all("  -> " in ln for ln in findings if not ln.startswith("OK"))


def test_doctor_on_this_machine_warns_about_missing_devices() -> None:
    cfg = load_config("default")
    found = run_checks(cfg)
    cams = [f for f in found if f.what.startswith("camera")]
    if not Path("/dev/video0").exists():
        assert cams and cams[0].level == "WARN" and "video.backend: picamera2" in cams[0].fix
    assert all(isinstance(f, Finding) for f in found)


def test_missing_and_corrupt_models_fail_with_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EDGEMM_MODELS", str(tmp_path / "empty"))
    (f,) = check_models(load_config("default"))
    assert f.level == "FAIL" and "edgemm models install" in f.fix and "hey_jarvis" in f.fix
    assert main(["doctor"]) == 1
    assert "FAIL models:" in capsys.readouterr().out
    # a flipped byte in a real model file is caught by its sha256
    from edgemm.models import load_manifest, models_dir

    monkeypatch.delenv("EDGEMM_MODELS")
    real = models_dir() / load_manifest()["hey_jarvis"].file
    if not real.is_file():
        pytest.skip("hey_jarvis is not installed (edgemm models install)")
    cache = tmp_path / "cache"
    cache.mkdir()
    for e in load_manifest().values():
        src = models_dir() / e.file
        if e.default and src.is_file():
            (cache / e.file).symlink_to(src)
    (cache / real.name).unlink()
    data = bytearray(real.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (cache / real.name).write_bytes(bytes(data))
    monkeypatch.setenv("EDGEMM_MODELS", str(cache))
    bad = [f for f in check_models(load_config("default")) if f.what == "model hashes"]
    assert bad and bad[0].level == "FAIL" and "hey_jarvis" in bad[0].detail
    assert bad[0].fix.startswith("edgemm models install --force") and "hey_jarvis" in bad[0].fix
    # the kiosk profile also needs its speech model
    kiosk = check_models(load_config("kiosk"))
    if not (models_dir() / "vosk_ko").exists():
        assert any("vosk_ko" in f.detail for f in kiosk)


@pytest.mark.parametrize(
    ("numpy", "opencv", "tflite", "picam", "backend", "expect"),
    [
        ("2.4.6", "5.0.0.93", None, False, "auto", {}),
        ("1.26.4", "4.11.0.86", "2.14.0", True, "tflite-runtime", {}),
        ("1.26.4", "4.12.0.88", None, False, "auto", {"opencv": "FAIL"}),
        ("2.1.0", "4.12.0.88", "2.14.0", False, "auto", {"tflite-runtime": "WARN"}),
        ("2.1.0", "4.12.0.88", "2.14.0", False, "tflite-runtime", {"tflite-runtime": "FAIL"}),
        ("2.0.0", "4.10.0.84", None, True, "litert", {"picamera2": "WARN"}),
    ],
)
def test_stack_rules(
    numpy: str, opencv: str, tflite: str | None, picam: bool, backend: str, expect: dict
) -> None:
    found = stack_findings(numpy, opencv, tflite, picam, backend)
    bad = {f.what: f.level for f in found if f.level != "OK"}
    assert bad == expect
    for f in found:
        if f.level != "OK":
            assert f.fix  # each names the pip command or setting


def test_the_real_stack_here_is_consistent() -> None:
    from edgemm.doctor import check_stack

    found = check_stack(load_config("default"))
    assert not [f for f in found if f.level == "FAIL"], [f.line() for f in found]


def test_cpu_features_from_cpuinfo(tmp_path: Path) -> None:
    assert "asimd" in cpu_features(PI4_AARCH64)
    assert "neon" in cpu_features(PI3_ARMV7)
    p = tmp_path / "cpuinfo"
    p.write_text(PI4_AARCH64)
    f = check_cpu(str(p), "aarch64")
    assert f.level == "OK" and "asimd" in f.detail
    p.write_text(PI3_ARMV7)
    assert check_cpu(str(p), "armv7l").level == "OK"
    p.write_text("processor\t: 0\nflags\t\t: fpu sse sse2 sse4_2\n")
    f = check_cpu(str(p), "x86_64")
    assert f.level == "WARN" and "AVX2" in f.detail and f.fix
    here = check_cpu()
    assert here.level in ("OK", "WARN") and here.detail


def test_disk_and_memory_thresholds(tmp_path: Path) -> None:
    free_mb = shutil.disk_usage(tmp_path).free / 2**20
    assert check_disk(tmp_path / "not" / "yet").level in ("OK", "WARN")  # nearest parent
    assert check_disk(tmp_path, fail_mb=int(free_mb) + 10).level == "FAIL"
    assert check_disk(tmp_path, warn_mb=int(free_mb) + 10, fail_mb=1).level == "WARN"
    kiosk = load_config("kiosk")
    assert check_memory(kiosk, available=8 << 30).level == "OK"
    assert check_memory(kiosk, available=700 << 20).level == "WARN"  # Vosk needs ~500 MB more
    assert check_memory(load_config("default"), available=700 << 20).level == "OK"
    assert check_memory(kiosk, available=100 << 20).level == "FAIL"


def test_camera_permissions_and_csi_cameras(tmp_path: Path) -> None:
    cfg = load_config("default")
    (tmp_path / "video0").touch(mode=0o600)
    assert check_cameras(cfg, str(tmp_path / "video*"))[0].level == "OK"
    from test_picamera import FakePicamera2Module

    picam = load_config({"video": {"backend": "picamera2"}})
    (f,) = check_cameras(picam, picamera2=FakePicamera2Module())
    assert f.level == "OK" and "imx708" in f.detail
    try:
        import picamera2  # noqa: F401
    except ImportError:
        (f,) = check_cameras(picam)
        assert f.level == "FAIL" and "python3-picamera2" in f.detail
