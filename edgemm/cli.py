"""Command line: edgemm run / replay / demo / devices / models / validate / bench."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Any

from . import __version__
from .config import load_config, profiles
from .errors import EdgemmError

log = logging.getLogger("edgemm")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        "-c",
        default="default",
        help=f"YAML file or profile name ({', '.join(profiles()) or 'default'})",
    )
    p.add_argument("--out", "-o", help="also write events as JSONL to this file")
    p.add_argument("--quiet", "-q", action="store_true", help="no human-readable events on stdout")


def _run_pipeline(pipe: Any, config_source: str | None = None) -> int:
    """Run until done; SIGINT/SIGTERM stop capture, drain the bus and exit 0; SIGHUP reloads
    ``config_source`` (see edgemm/reload.py)."""
    from .reload import install_sighup

    stopping = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if stopping.is_set():
            return
        stopping.set()
        log.info("signal %d: stopping", signum)
        pipe.scheduler.stop()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    restore_hup = install_sighup(pipe, config_source)
    try:
        pipe.run()
    finally:
        restore_hup()
        for s, h in old.items():
            signal.signal(s, h)
    log.info(
        "stopped: %d events published, %d dropped by slow subscribers",
        pipe.bus.published,
        pipe.bus.dropped,
    )
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from .pipeline import Pipeline, require_inputs

    require_inputs(args.audio, args.video)
    cfg = load_config(args.config)
    pipe = Pipeline(
        cfg,
        audio_file=args.audio,
        video_file=args.video,
        realtime=args.realtime,
        loops=args.loop,
        out=args.out,
        stdout=False if args.quiet else None,
    )
    return _run_pipeline(pipe, args.config)


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import demo_files
    from .pipeline import Pipeline

    audio, video = demo_files()
    cfg = load_config(args.config)
    print(
        f"edgemm demo: replaying the bundled demo session ({audio.name}, {video.name})", flush=True
    )
    pipe = Pipeline(
        cfg,
        audio_file=audio,
        video_file=video,
        realtime=not args.fast,
        out=args.out,
        stdout=False if args.quiet else None,
    )
    return _run_pipeline(pipe, args.config)


def cmd_run(args: argparse.Namespace) -> int:
    from .devices import find_inputs
    from .pipeline import Pipeline

    cfg = load_config(args.config)
    cams, mics, why = find_inputs(cfg)
    if (cfg.video.enabled and not cams) or (cfg.audio.enabled and not mics):
        if args.no_demo:
            print(f"edgemm: {why}", file=sys.stderr)
            return 4
        print(
            f"edgemm: {why}; running the bundled demo session instead "
            "(use --no-demo to fail instead)",
            flush=True,
        )
        args.fast = False
        return cmd_demo(args)
    pipe = Pipeline(cfg, out=args.out, stdout=False if args.quiet else None)
    return _run_pipeline(pipe, args.config)


def cmd_devices(args: argparse.Namespace) -> int:
    from .devices import list_cameras, list_microphones

    cams = list_cameras()
    print("cameras:")
    for c in cams:
        print(f"  {c['index']}: {c['path']}  {c.get('size', '')}")
    if not cams:
        print("  none found")
    print("microphones:")
    mics, err = list_microphones()
    for m in mics:
        print(
            f"  {m['index']}: {m['name']}  ({m['channels']} ch, {m['default_samplerate']:.0f} Hz)"
        )
    if err:
        print(f"  {err}")
    elif not mics:
        print("  none found")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    ok = True
    for path in args.configs:
        try:
            load_config(path)
            print(f"{path}: ok")
        except EdgemmError as exc:
            print(f"{exc}", file=sys.stderr)
            ok = False
    return 0 if ok else 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edgemm", description="Offline real-time multimodal recognition."
    )
    p.add_argument("--version", action="version", version=f"edgemm {__version__}")
    p.add_argument("--debug", action="store_true", help="debug logging and tracebacks")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser(
        "run", help="live camera + microphone (the demo session when none is present)"
    )
    _add_common(r)
    r.add_argument(
        "--no-demo", action="store_true", help="fail instead of falling back to the demo"
    )
    r.set_defaults(func=cmd_run, fast=False)

    rp = sub.add_parser("replay", help="replay a video and/or WAV file through the pipeline")
    rp.add_argument("--video", "-v", help="video file (mp4, avi, ...)")
    rp.add_argument("--audio", "-a", help="WAV file (converted to 16 kHz mono if needed)")
    rp.add_argument(
        "--loop",
        type=int,
        default=1,
        metavar="N",
        help="replay the files N times, the clock running on (soak and memory runs)",
    )
    mode = rp.add_mutually_exclusive_group()
    mode.add_argument(
        "--fast",
        dest="realtime",
        action="store_false",
        help="as fast as possible, every window, deterministic (default)",
    )
    mode.add_argument(
        "--realtime",
        dest="realtime",
        action="store_true",
        help="paced to the wall clock, like live capture",
    )
    _add_common(rp)
    rp.set_defaults(func=cmd_replay, realtime=False)

    d = sub.add_parser("demo", help="replay the bundled demo session")
    _add_common(d)
    d.add_argument("--fast", action="store_true", help="no pacing")
    d.set_defaults(func=cmd_demo)

    dv = sub.add_parser("devices", help="list cameras and microphones")
    dv.set_defaults(func=cmd_devices)

    v = sub.add_parser("validate", help="check config files without running")
    v.add_argument("configs", nargs="+", metavar="CONFIG")
    v.set_defaults(func=cmd_validate)

    try:
        from .models import register_cli
    except ImportError:
        pass
    else:
        register_cli(sub)
    try:
        from .bench import register_cli as register_bench
    except ImportError:
        pass
    else:
        register_bench(sub)
    from .sinks.mqtt import register_cli as register_mqtt

    register_mqtt(sub)
    from .doctor import register_cli as register_doctor
    from .service import register_cli as register_service

    register_doctor(sub)
    register_service(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except EdgemmError as exc:
        if args.debug:
            raise
        print(f"edgemm: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
