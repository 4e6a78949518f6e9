"""``edgemm service install | uninstall``: run edgemm under systemd.

The unit runs ``edgemm run --config C --no-demo`` from the venv edgemm is installed in, restarts
it whenever it exits (``Restart=always``; without a camera or microphone ``--no-demo`` makes it
exit 4 and retry instead of replaying the demo), stops it with SIGINT so it drains the event
bus and flushes its sinks within ``TimeoutStopSec``, and reloads the config on
``systemctl reload`` (SIGHUP, see :mod:`edgemm.reload`). Secrets (MQTT password, dashboard
token) go in an environment file readable by its owner only (0600); the config names the
variables (``sinks.mqtt.password_env``, ``sinks.web.token_env``).

``--user`` installs into ``~/.config/systemd/user``: the service then runs in the user's
session next to PipeWire, which owns the microphone on Raspberry Pi OS Bookworm. ``loginctl
enable-linger`` starts that session at boot without a login. A system unit
(``/etc/systemd/system``) runs as the installing user with the ``video`` and ``audio`` groups;
it reaches ALSA devices directly but not a user's PipeWire.
"""

from __future__ import annotations

import argparse
import getpass
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .config import resolve_config_path
from .errors import EdgemmError

ENV_TEMPLATE = """\
# Secrets for the edgemm service, one NAME=value per line (this file must stay mode 0600).
# The config names the variables it reads, for example:
#   sinks.mqtt.username_env: EDGEMM_MQTT_USER   ->  EDGEMM_MQTT_USER=kiosk
#   sinks.mqtt.password_env: EDGEMM_MQTT_PASS   ->  EDGEMM_MQTT_PASS=...
#   sinks.web.token_env: EDGEMM_WEB_TOKEN       ->  EDGEMM_WEB_TOKEN=...
"""


class ServiceError(EdgemmError):
    """The unit cannot be written or removed."""


@dataclass(frozen=True)
class UnitSpec:
    name: str
    user_mode: bool
    exec_start: tuple[str, ...]
    workdir: Path
    env_file: Path
    config: str
    user: str = ""  # system units: the account the service runs as
    restart_sec: int = 5
    stop_timeout_s: int = 20

    @property
    def file_name(self) -> str:
        return f"{self.name}.service"


def _quote(arg: str) -> str:
    """Quote one ExecStart word for systemd (spaces, quotes, backslashes, ``$`` and ``%``)."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if arg and not any(c in arg for c in " \t\"\\'"):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def edgemm_executable() -> Path:
    """The ``edgemm`` script of the running interpreter's environment (the venv)."""
    here = Path(sys.executable).parent / "edgemm"
    if here.is_file():
        return here.absolute()
    found = shutil.which("edgemm")
    if found:
        return Path(found).absolute()
    raise ServiceError(
        "cannot find the edgemm executable next to this Python",
        "install edgemm into the venv first: .venv/bin/pip install -e .",
    )


def _config_arg(config: str) -> str:
    """An absolute path for a config file; a profile name stays a name."""
    p = resolve_config_path(config)
    is_file_arg = Path(config).suffix in (".yaml", ".yml") or "/" in config
    return str(p.absolute()) if is_file_arg else config


def config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def unit_dir(user_mode: bool) -> Path:
    return config_home() / "systemd" / "user" if user_mode else Path("/etc/systemd/system")


def default_env_file(user_mode: bool, name: str = "edgemm") -> Path:
    return (
        config_home() / "edgemm" / f"{name}.env" if user_mode else Path(f"/etc/edgemm/{name}.env")
    )


def unit_spec(
    config: str = "default",
    user_mode: bool = True,
    name: str = "edgemm",
    workdir: Path | None = None,
    env_file: Path | None = None,
    executable: Path | None = None,
    extra_args: Sequence[str] = (),
) -> UnitSpec:
    exe = executable or edgemm_executable()
    cfg = _config_arg(config)
    return UnitSpec(
        name=name,
        user_mode=user_mode,
        exec_start=(str(exe), "run", "--config", cfg, "--no-demo", *extra_args),
        workdir=(workdir or Path.cwd()).absolute(),
        env_file=(env_file or default_env_file(user_mode, name)).absolute(),
        config=cfg,
        user="" if user_mode else (os.environ.get("SUDO_USER") or getpass.getuser()),
    )


def render_unit(spec: UnitSpec) -> str:
    lines = [
        "[Unit]",
        f"Description=edgemm offline multimodal recognition ({spec.config})",
        "After=network-online.target sound.target" if not spec.user_mode else "After=sound.target",
    ]
    if not spec.user_mode:
        lines.append("Wants=network-online.target")
    lines += [
        "StartLimitIntervalSec=0",
        "",
        "[Service]",
        "Type=simple",
        f"WorkingDirectory={_quote(str(spec.workdir))}",
        f"EnvironmentFile=-{spec.env_file}",
        "Environment=PYTHONUNBUFFERED=1",
        "ExecStart=" + " ".join(_quote(a) for a in spec.exec_start),
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=always",
        f"RestartSec={spec.restart_sec}",
        # SIGINT to the main process only: edgemm stops capture, drains the bus, flushes
        # its sinks; anything still running after TimeoutStopSec is killed
        "KillSignal=SIGINT",
        "KillMode=mixed",
        f"TimeoutStopSec={spec.stop_timeout_s}",
    ]
    if not spec.user_mode:
        lines += [f"User={spec.user}", "SupplementaryGroups=video audio"]
    lines += [
        "",
        "[Install]",
        f"WantedBy={'default.target' if spec.user_mode else 'multi-user.target'}",
        "",
    ]
    return "\n".join(lines)


def ensure_env_file(path: Path) -> str:
    """Create the secrets file (0600) or tighten an existing one; returns what was done."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(ENV_TEMPLATE)
        return f"created {path} (mode 0600) for secrets"
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        os.chmod(path, 0o600)
        return f"{path} was mode {mode:04o}; tightened to 0600"
    return f"kept {path} (mode {mode:04o})"


def install(spec: UnitSpec, directory: Path | None = None) -> tuple[Path, list[str]]:
    """Write the unit and the secrets file; returns the unit path and notes for the user."""
    d = directory or unit_dir(spec.user_mode)
    path = d / spec.file_name
    try:
        d.mkdir(parents=True, exist_ok=True)
        notes = [ensure_env_file(spec.env_file)]
        tmp = path.with_suffix(".tmp")
        tmp.write_text(render_unit(spec), encoding="utf-8")
        os.chmod(tmp, 0o644)
        tmp.replace(path)
    except PermissionError as exc:
        raise ServiceError(
            f"cannot write {exc.filename}: permission denied",
            "use --user, or run as root (sudo .venv/bin/edgemm service install)",
        ) from None
    ctl = "systemctl --user" if spec.user_mode else "sudo systemctl"
    notes.append(
        f"start it now and at every boot: {ctl} daemon-reload && {ctl} enable --now {spec.name}"
    )
    notes.append(
        f"logs: journalctl {'--user ' if spec.user_mode else ''}-u {spec.name} -f; "
        f"reload the config: {ctl} reload {spec.name}"
    )
    if spec.user_mode:
        notes.append(
            "to run at boot without a login (PipeWire audio lives in the user session): "
            f"sudo loginctl enable-linger {getpass.getuser()}"
        )
    return path, notes


def _systemctl(user_mode: bool, *args: str) -> str | None:
    """Run systemctl; None on success, else a one-line reason."""
    exe = shutil.which("systemctl")
    if exe is None:
        return "systemctl not found"
    cmd = [exe, *(["--user"] if user_mode else []), *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return " ".join((r.stderr or r.stdout).split())[:160] or f"exit {r.returncode}"
    return None


def uninstall(
    name: str = "edgemm",
    user_mode: bool = True,
    directory: Path | None = None,
    systemctl: bool = True,
) -> tuple[Path | None, list[str]]:
    """Stop, disable and remove the unit (the secrets file is kept)."""
    path = (directory or unit_dir(user_mode)) / f"{name}.service"
    notes: list[str] = []
    if not path.exists():
        return None, [f"no unit at {path}"]
    if systemctl:
        err = _systemctl(user_mode, "disable", "--now", f"{name}.service")
        if err:
            notes.append(f"systemctl disable: {err}")
    try:
        path.unlink()
    except PermissionError:
        raise ServiceError(f"cannot remove {path}: permission denied", "run as root") from None
    if systemctl:
        _systemctl(user_mode, "daemon-reload")
    notes.append(f"removed {path}; secrets file kept at {default_env_file(user_mode, name)}")
    return path, notes


# --------------------------------------------------------------------------- CLI


def _cmd_install(args: argparse.Namespace) -> int:
    spec = unit_spec(
        args.config,
        user_mode=args.user,
        name=args.name,
        workdir=Path(args.workdir) if args.workdir else None,
        env_file=Path(args.env_file) if args.env_file else None,
    )
    if args.print:
        sys.stdout.write(render_unit(spec))
        return 0
    path, notes = install(spec, Path(args.unit_dir) if args.unit_dir else None)
    print(f"wrote {path}")
    for n in notes:
        print(f"  {n}")
    return 0


def _cmd_uninstall(args: argparse.Namespace) -> int:
    path, notes = uninstall(
        args.name,
        args.user,
        Path(args.unit_dir) if args.unit_dir else None,
        systemctl=not args.no_systemctl,
    )
    for n in notes:
        print(n)
    return 0 if path is not None else 1


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    svc = subparsers.add_parser("service", help="install or remove a systemd unit for edgemm run")
    sub = svc.add_subparsers(dest="service_command", metavar="{install,uninstall}", required=True)
    for cmd in ("install", "uninstall"):
        p = sub.add_parser(
            cmd,
            help="write the unit (and a 0600 secrets file)"
            if cmd == "install"
            else "stop, disable and remove the unit",
        )
        p.add_argument(
            "--user",
            action="store_true",
            help="a user unit (~/.config/systemd/user): PipeWire audio; see loginctl enable-linger",
        )
        p.add_argument("--name", default="edgemm", help="unit name (default: edgemm)")
        p.add_argument("--unit-dir", help="write/remove the unit here instead")
        if cmd == "install":
            p.add_argument("--config", "-c", default="default", help="YAML file or profile name")
            p.add_argument("--workdir", help="working directory (default: the current one)")
            p.add_argument("--env-file", help="secrets file (default: ~/.config/edgemm/NAME.env)")
            p.add_argument("--print", action="store_true", help="print the unit, install nothing")
            p.set_defaults(func=_cmd_install)
        else:
            p.add_argument("--no-systemctl", action="store_true", help="only remove the file")
            p.set_defaults(func=_cmd_uninstall)


__all__ = [
    "ServiceError",
    "UnitSpec",
    "default_env_file",
    "edgemm_executable",
    "install",
    "render_unit",
    "uninstall",
    "unit_dir",
    "unit_spec",
]
