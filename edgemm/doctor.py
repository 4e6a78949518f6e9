"""``edgemm doctor``: checks the machine for what edgemm needs, one line per finding.

Each finding is ``OK``, ``WARN`` or ``FAIL`` with what was checked and, when something is
wrong, the command or setting that fixes it. The exit code is 1 when any check fails.

Checks: Python; the numpy / OpenCV / TFLite backend stack (opencv-python >= 4.12 needs
numpy >= 2, tflite-runtime needs numpy < 2, Pi OS's apt picamera2 needs numpy < 2); PortAudio
and microphones; cameras (``/dev/video*``, permissions, the ``video`` group; CSI cameras
through picamera2); the model cache and its sha256 hashes; CPU features the TFLite kernels
use (NEON / ASIMD on ARM, AVX2 / FMA on x86); free disk at the model cache; free memory.
"""

from __future__ import annotations

import argparse
import glob
import grp
import importlib
import importlib.metadata
import os
import platform
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import psutil

from .config import Config, load_config, profiles

Level = Literal["OK", "WARN", "FAIL"]
MB = 1 << 20


@dataclass(frozen=True)
class Finding:
    level: Level
    what: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        fix = f"  -> {self.fix}" if self.fix and self.level != "OK" else ""
        return f"{self.level:<4} {self.what}: {self.detail}{fix}"


def _version_tuple(v: str | None) -> tuple[int, ...]:
    out: list[int] = []
    for part in (v or "").split("."):
        digits = "".join(c for c in part if c.isdigit())
        if not digits:
            break
        out.append(int(digits))
        if len(out) == 3:
            break
    return tuple(out)


def _dist_version(*names: str) -> str | None:
    for n in names:
        try:
            return importlib.metadata.version(n)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


# --------------------------------------------------------------------------- the Python stack


def check_python() -> Finding:
    v = platform.python_version()
    where = f"{v} ({platform.machine()}, {sys.prefix})"
    return Finding("OK", "python", where)  # the package itself requires >= 3.11


def stack_findings(
    numpy_version: str,
    opencv_version: str | None,
    tflite_runtime_version: str | None,
    picamera2: bool,
    backend: str = "auto",
) -> list[Finding]:
    """Version rules measured on both stacks (pure: versions in, findings out)."""
    out: list[Finding] = []
    np2 = _version_tuple(numpy_version) >= (2,)
    out.append(Finding("OK", "numpy", numpy_version))
    if opencv_version is None:
        out.append(Finding("FAIL", "opencv", "not installed", "pip install 'opencv-python<4.12'"))
    elif _version_tuple(opencv_version) >= (4, 12) and not np2:
        out.append(
            Finding(
                "FAIL",
                "opencv",
                f"opencv-python {opencv_version} needs numpy >= 2 but numpy is {numpy_version}",
                "pip install 'opencv-python-headless<4.12' (numpy-1 stack) or upgrade numpy",
            )
        )
    else:
        out.append(Finding("OK", "opencv", opencv_version))
    if tflite_runtime_version is not None and np2:
        level: Level = "FAIL" if backend == "tflite-runtime" else "WARN"
        out.append(
            Finding(
                level,
                "tflite-runtime",
                f"tflite-runtime {tflite_runtime_version} is built for numpy < 2 and cannot "
                f"load with numpy {numpy_version}",
                "use runtime.backend: litert (pip install ai-edge-litert), or the numpy-1 "
                "stack: pip install 'numpy<2' 'opencv-python-headless<4.12'",
            )
        )
    if picamera2 and np2:
        out.append(
            Finding(
                "WARN",
                "picamera2",
                f"Pi OS's apt picamera2 is built for numpy < 2 but this venv has numpy "
                f"{numpy_version}",
                "pip install 'numpy<2' 'opencv-python-headless<4.12' in this venv",
            )
        )
    return out


def check_stack(cfg: Config) -> list[Finding]:
    import numpy

    from .runtime import available_backends

    wants_picam = cfg.video.enabled and cfg.video.backend == "picamera2"
    out = stack_findings(
        numpy.__version__,
        _dist_version("opencv-python", "opencv-python-headless", "opencv-contrib-python"),
        _dist_version("tflite-runtime"),
        wants_picam,
        cfg.runtime.backend,
    )
    try:
        import cv2

        cv = cv2.__version__
    except Exception as exc:  # an ABI mismatch shows up here
        out.append(
            Finding(
                "FAIL",
                "opencv",
                f"cv2 does not import: {' '.join(str(exc).split())[:100]}",
                "pip install --force-reinstall 'opencv-python-headless<4.12' (numpy 1) "
                "or 'opencv-python>=4.12' (numpy 2)",
            )
        )
    else:
        out.append(Finding("OK", "opencv import", f"cv2 {cv}"))
    found = available_backends()
    want = cfg.runtime.backend
    if not found:
        out.append(
            Finding(
                "FAIL",
                "tflite backend",
                "neither ai-edge-litert nor tflite-runtime imports",
                "pip install ai-edge-litert",
            )
        )
    elif want != "auto" and want not in found:
        out.append(
            Finding(
                "FAIL",
                "tflite backend",
                f"runtime.backend is {want!r} but only {', '.join(found)} imports",
                "set runtime.backend: auto, or install the backend",
            )
        )
    else:
        chosen = found[0] if want == "auto" else want
        out.append(Finding("OK", "tflite backend", f"{chosen} (available: {', '.join(found)})"))
    return out


# --------------------------------------------------------------------------- devices


def check_audio(cfg: Config, sd: Any = None) -> list[Finding]:
    """PortAudio through sounddevice, and the input devices it lists."""
    need = cfg.audio.enabled
    miss: Level = "FAIL" if need else "WARN"
    if sd is None:
        try:
            sd = importlib.import_module("sounddevice")
        except OSError as exc:
            return [
                Finding(
                    miss,
                    "portaudio",
                    f"sounddevice cannot load PortAudio ({exc})",
                    "sudo apt-get install -y libportaudio2",
                )
            ]
        except ImportError:
            return [
                Finding(
                    miss, "portaudio", "sounddevice is not installed", "pip install sounddevice"
                )
            ]
    out = [Finding("OK", "portaudio", f"sounddevice {getattr(sd, '__version__', '?')}")]
    try:
        devs = sd.query_devices()
    except Exception as exc:
        return [
            *out,
            Finding(
                "WARN",
                "microphones",
                f"cannot query audio devices ({' '.join(str(exc).split())[:80]})",
                "check that PipeWire/PulseAudio runs for this user, or ALSA is reachable",
            ),
        ]
    mics = [d["name"] for d in devs if d.get("max_input_channels", 0) > 0]
    if mics:
        out.append(Finding("OK", "microphones", f"{len(mics)}: " + ", ".join(mics[:4])))
    else:
        out.append(
            Finding(
                "WARN",
                "microphones",
                "no audio input device found",
                "plug in a USB microphone; `edgemm devices` lists inputs "
                "(edgemm run falls back to the demo session)",
            )
        )
    if os.path.isdir("/dev/snd") and not os.access("/dev/snd", os.R_OK | os.X_OK):
        out.append(
            Finding(
                "WARN",
                "audio permissions",
                "/dev/snd is not readable",
                "sudo usermod -aG audio $USER, then log in again",
            )
        )
    return out


def _in_group(name: str) -> bool:
    try:
        gid = grp.getgrnam(name).gr_gid
    except KeyError:
        return False
    return gid in os.getgroups() or os.getgid() == gid


def check_cameras(
    cfg: Config, pattern: str = "/dev/video*", picamera2: Any = None
) -> list[Finding]:
    out: list[Finding] = []
    if cfg.video.enabled and cfg.video.backend == "picamera2":
        from .sources.picamera import import_picamera2, list_csi_cameras

        try:
            mod = picamera2 if picamera2 is not None else import_picamera2()
        except Exception as exc:
            return [Finding("FAIL", "picamera2", str(exc))]
        cams = list_csi_cameras(mod)
        if cams:
            names = ", ".join(f"{c['index']}: {c['model']}" for c in cams)
            out.append(Finding("OK", "csi cameras", names))
        else:
            out.append(
                Finding(
                    "FAIL",
                    "csi cameras",
                    "libcamera finds no camera",
                    "check the ribbon cable, then `rpicam-hello --list-cameras`",
                )
            )
        return out
    nodes = sorted(p for p in glob.glob(pattern) if p[len(pattern) - 1 :].isdigit())
    if not nodes:
        return [
            Finding(
                "WARN",
                "cameras",
                f"no camera device ({pattern})",
                "plug in a USB camera (a CSI camera needs video.backend: picamera2); "
                "edgemm run falls back to the demo session",
            )
        ]
    denied = [p for p in nodes if not os.access(p, os.R_OK | os.W_OK)]
    if denied:
        fix = (
            "sudo usermod -aG video $USER, then log in again"
            if not _in_group("video")
            else f"check the permissions of {denied[0]}"
        )
        out.append(Finding("FAIL", "camera permissions", f"cannot open {', '.join(denied)}", fix))
    ok = [p for p in nodes if p not in denied]
    if ok:
        out.append(Finding("OK", "cameras", ", ".join(ok)))
    return out


# --------------------------------------------------------------------------- models


def check_models(cfg: Config) -> list[Finding]:
    from .errors import ModelError
    from .models import load_manifest, models_dir, verify

    try:
        manifest = load_manifest()
        wanted = [n for n, e in manifest.items() if e.default]
        if cfg.stt.enabled and cfg.stt.model and cfg.stt.model in manifest:
            wanted.append(cfg.stt.model)
        results = verify(wanted)
    except ModelError as exc:
        return [Finding("FAIL", "models", str(exc))]
    root = models_dir()
    missing = [n for n, s in results if s == "missing"]
    corrupt = [n for n, s in results if s == "corrupt"]
    out: list[Finding] = []
    if missing:
        out.append(
            Finding(
                "FAIL",
                "models",
                f"{len(missing)} not installed in {root}: {', '.join(missing)}",
                f"edgemm models install {' '.join(missing)}",
            )
        )
    if corrupt:
        out.append(
            Finding(
                "FAIL",
                "model hashes",
                f"sha256 mismatch: {', '.join(corrupt)}",
                f"edgemm models install --force {' '.join(corrupt)}",
            )
        )
    if not missing and not corrupt:
        out.append(Finding("OK", "models", f"{len(results)} verified (sha256) in {root}"))
    return out


# --------------------------------------------------------------------------- host


def cpu_features(cpuinfo: str) -> set[str]:
    """CPU feature flags from /proc/cpuinfo text (``flags`` on x86, ``Features`` on ARM)."""
    feats: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            feats.update(value.split())
    return feats


def check_cpu(cpuinfo_path: str = "/proc/cpuinfo", machine: str | None = None) -> Finding:
    machine = machine or platform.machine()
    try:
        feats = cpu_features(Path(cpuinfo_path).read_text(errors="replace"))
    except OSError:
        return Finding("WARN", "cpu", f"{machine}: {cpuinfo_path} is not readable")
    cores = os.cpu_count() or 1
    arm = machine.startswith(("arm", "aarch64")) or "asimd" in feats or "neon" in feats
    if arm:
        simd = sorted(feats & {"neon", "asimd", "asimddp", "fphp", "asimdhp"})
        if "neon" in feats or "asimd" in feats:
            return Finding("OK", "cpu", f"{machine}, {cores} cores, SIMD: {' '.join(simd)}")
        return Finding(
            "WARN", "cpu", f"{machine}: no NEON/ASIMD", "TFLite runs without SIMD: expect it slow"
        )
    simd = sorted(feats & {"sse4_2", "avx", "avx2", "fma", "avx512f"})
    if "avx2" in feats:
        return Finding("OK", "cpu", f"{machine}, {cores} cores, SIMD: {' '.join(simd)}")
    return Finding(
        "WARN",
        "cpu",
        f"{machine}, {cores} cores: no AVX2 ({' '.join(simd) or 'no SIMD flags'})",
        "XNNPACK falls back to slower kernels; lower video.fps or stages.face.max_fps",
    )


def check_disk(path: Path, warn_mb: int = 1024, fail_mb: int = 200) -> Finding:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    free = shutil.disk_usage(p).free
    detail = f"{free / MB:.0f} MB free at {p}"
    if free < fail_mb * MB:
        return Finding("FAIL", "disk", detail, "free space: models need up to ~300 MB (vosk_ko)")
    if free < warn_mb * MB:
        return Finding("WARN", "disk", detail, "keep >= 1 GB free for models and event logs")
    return Finding("OK", "disk", detail)


def check_memory(cfg: Config, available: int | None = None) -> Finding:
    avail = psutil.virtual_memory().available if available is None else available
    need = 300 + (600 if cfg.stt.enabled else 0)  # Vosk adds about 500 MB RSS
    detail = f"{avail / MB:.0f} MB available (this config needs about {need} MB)"
    if avail < need * MB // 2:
        return Finding("FAIL", "memory", detail, "close other programs or disable stt")
    if avail < need * MB:
        return Finding(
            "WARN", "memory", detail, "add swap (sudo dphys-swapfile) or disable heavy stages"
        )
    return Finding("OK", "memory", detail)


# --------------------------------------------------------------------------- all


def run_checks(cfg: Config, sd: Any = None) -> list[Finding]:
    """Every check, in a fixed order; a check that crashes becomes a WARN line."""
    from .models import models_dir

    checks: list[tuple[str, Callable[[], Finding | list[Finding]]]] = [
        ("python", check_python),
        ("stack", lambda: check_stack(cfg)),
        ("audio", lambda: check_audio(cfg, sd)),
        ("cameras", lambda: check_cameras(cfg)),
        ("models", lambda: check_models(cfg)),
        ("cpu", check_cpu),
        ("disk", lambda: check_disk(models_dir())),
        ("memory", lambda: check_memory(cfg)),
    ]
    out: list[Finding] = []
    for name, fn in checks:
        try:
            r = fn()
        except Exception as exc:  # a doctor must report, not crash
            r = Finding("WARN", name, f"check failed: {type(exc).__name__}: {exc}")
        out.extend(r if isinstance(r, list) else [r])
    return out


def _cmd_doctor(args: argparse.Namespace) -> int:
    from .errors import ConfigError

    try:
        cfg = load_config(args.config)
        findings = [Finding("OK", "config", f"{args.config} is valid")]
    except ConfigError as exc:
        findings = [Finding("FAIL", "config", str(exc))]
        cfg = load_config(None)
    findings += run_checks(cfg)
    for f in findings:
        print(f.line(), flush=True)
    fails = sum(f.level == "FAIL" for f in findings)
    warns = sum(f.level == "WARN" for f in findings)
    print(f"{len(findings)} checks: {fails} failed, {warns} warnings")
    return 1 if fails else 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "doctor", help="check devices, models, backends and the host; exit 1 on failures"
    )
    p.add_argument(
        "--config",
        "-c",
        default="default",
        help=f"YAML file or profile name ({', '.join(profiles()) or 'default'})",
    )
    p.set_defaults(func=_cmd_doctor)
