"""Typed, strict YAML configuration.

Unknown keys, duplicate keys, wrong types and out-of-range values are errors that name the key
path and the line. YAML 1.1 booleans (``on``, ``off``, ``yes``, ``no``) are not booleans here:
an unquoted ``on`` where a boolean is expected is an error that says to write ``true``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from .errors import ConfigError

_PKG = Path(__file__).resolve().parent
# Profiles live in the top-level configs/ folder (editable installs, source checkouts); a wheel
# carries a copy under edgemm/data/configs.
CONFIG_DIRS = (_PKG.parent / "configs", _PKG / "data" / "configs")


def _f(default: Any, *, min: float | None = None, max: float | None = None, doc: str = "") -> Any:
    """A field with range metadata (mutable defaults are copied per instance)."""
    meta = {"min": min, "max": max, "doc": doc}
    if isinstance(default, list | dict):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class RuntimeConfig:
    backend: Literal["auto", "litert", "tflite-runtime"] = "auto"
    num_threads: int = _f(1, min=1, max=8)
    # OpenCV's worker pool for image operations (resize, warps, colour conversion). 1 runs
    # them in the stage's own thread: the pool's hand-offs measured ~12 % of the process CPU
    # of a replay for 320x240 crops. 0 leaves OpenCV's default.
    opencv_threads: int = _f(1, min=0, max=8)


@dataclass(frozen=True)
class AudioConfig:
    enabled: bool = True
    device: int | str | None = None  # index, name substring, or null for the default input
    sample_rate: int = _f(16000, min=16000, max=16000, doc="the encoders need 16 kHz")
    block_ms: int = _f(20, min=5, max=200)
    ring_s: float = _f(30.0, min=2.0, max=600.0)


@dataclass(frozen=True)
class VideoConfig:
    enabled: bool = True
    backend: Literal["opencv", "picamera2"] = "opencv"  # picamera2: CSI cameras (libcamera)
    device: int | str = 0  # camera index, device path, file or URL
    width: int = _f(640, min=64, max=4096)
    height: int = _f(480, min=48, max=4096)
    fps: float = _f(30.0, min=1.0, max=120.0)
    ring_frames: int = _f(4, min=1, max=120)
    reconnect_after_s: float = _f(2.0, min=0.1, max=300.0)
    backoff_max_s: float = _f(30.0, min=0.1, max=3600.0)


@dataclass(frozen=True)
class WindowConfig:
    length_s: float = _f(1.0, min=0.08, max=30.0)
    hop_s: float = _f(0.5, min=0.08, max=30.0)
    video_lateness_s: float = _f(0.15, min=0.0, max=5.0)
    max_lag_s: float = _f(1.0, min=0.1, max=60.0, doc="live: windows older than this are skipped")


@dataclass(frozen=True)
class EnergyGateConfig:
    enabled: bool = True
    on_db: float = _f(-35.0, min=-120.0, max=0.0)
    off_db: float = _f(-45.0, min=-120.0, max=0.0)
    hangover_s: float = _f(0.3, min=0.0, max=10.0)


@dataclass(frozen=True)
class BrightnessConfig:
    enabled: bool = True
    bright: float = _f(170.0, min=0.0, max=255.0)
    dark: float = _f(90.0, min=0.0, max=255.0)
    max_fps: float = _f(30.0, min=0.1, max=120.0)


@dataclass(frozen=True)
class WakeWordConfig:
    enabled: bool = False
    engine: Literal["openwakeword", "micro"] = "openwakeword"
    models: list[str] = _f(["hey_jarvis"])  # manifest names (micro: micro_hey_jarvis, ...) or paths
    threshold: float | None = _f(
        None, min=0.0, max=1.0, doc="null: 0.5, or each micro model's cutoff"
    )
    thresholds: dict[str, float] = _f({})  # per-model overrides
    refractory_s: float = _f(2.0, min=0.0, max=60.0)
    num_threads: int | None = _f(None, min=1, max=8)


@dataclass(frozen=True)
class VadConfig:
    enabled: bool = False
    backend: Literal["silero", "micro"] = "silero"  # micro: TFLite Micro, more CPU, later ends
    threshold: float = _f(0.5, min=0.0, max=1.0)
    min_speech_s: float = _f(0.25, min=0.0, max=10.0)
    min_silence_s: float = _f(0.5, min=0.0, max=10.0)


@dataclass(frozen=True)
class FaceConfig:
    enabled: bool = False
    min_score: float = _f(0.5, min=0.0, max=1.0)
    max_fps: float = _f(15.0, min=0.1, max=120.0)
    every_k: int = _f(1, min=1, max=100)
    # > 1: the detector runs on every n-th processed frame only; in between the face mesh
    # follows the largest face from its own landmarks (needs mesh). New faces are then seen up
    # to n frames later.
    detect_every: int = _f(1, min=1, max=100)
    on_s: float = _f(0.2, min=0.0, max=10.0)
    off_s: float = _f(0.5, min=0.0, max=30.0)
    mesh: bool = True  # the mesh's face flag confirms detections and adds mouth-open/frontalness
    model: str = "face_detection_short_range"  # or face_detection_short_range_wi8, or a path
    mesh_model: str = "face_landmark"  # or face_landmark_wi8, or a path
    min_presence: float = _f(0.5, min=0.0, max=1.0)
    num_threads: int | None = _f(None, min=1, max=8)


@dataclass(frozen=True)
class HandsConfig:
    enabled: bool = False
    min_score: float = _f(0.5, min=0.0, max=1.0)
    min_presence: float = _f(0.5, min=0.0, max=1.0)
    every_k: int = _f(2, min=1, max=100)
    max_fps: float = _f(15.0, min=0.1, max=120.0)
    max_hands: int = _f(2, min=1, max=4)
    # > 1: palm detection (the costly model) on every n-th processed frame only while fewer
    # than max_hands are tracked (at once when a tracked hand is lost); new hands seen later
    detect_every: int = _f(1, min=1, max=100)
    hold_frames: int = _f(3, min=1, max=100)
    mirrored: bool = False  # true when the camera image is a selfie (mirror) view
    num_threads: int | None = _f(None, min=1, max=8)


@dataclass(frozen=True)
class StagesConfig:
    energy_gate: EnergyGateConfig = field(default_factory=EnergyGateConfig)
    brightness: BrightnessConfig = field(default_factory=BrightnessConfig)
    wakeword: WakeWordConfig = field(default_factory=WakeWordConfig)
    vad: VadConfig = field(default_factory=VadConfig)
    face: FaceConfig = field(default_factory=FaceConfig)
    hands: HandsConfig = field(default_factory=HandsConfig)


@dataclass(frozen=True)
class SttConfig:
    """Vosk speech-to-text (a lane of its own); see edgemm/stages/speech.py."""

    enabled: bool = False
    model: str | None = None  # a manifest name (vosk_ko) or a Vosk model directory
    mode: Literal["free", "grammar"] = "free"
    phrases: list[str] = _f([])  # grammar mode: the phrases the recognizer may hear
    gate: Literal["auto", "vad", "energy", "off"] = "auto"
    vad_threshold: float = _f(0.5, min=0.0, max=1.0)
    gate_on_db: float = _f(-40.0, min=-120.0, max=0.0)
    preroll_s: float = _f(0.3, min=0.0, max=2.0)
    hangover_s: float = _f(0.5, min=0.08, max=5.0, doc="silence that ends a gated utterance")
    max_utterance_s: float = _f(15.0, min=1.0, max=120.0)
    partials: bool = True
    partial_interval_s: float = _f(0.5, min=0.08, max=10.0)
    max_backlog_s: float = _f(2.0, min=0.1, max=600.0)
    report_interval_s: float = _f(5.0, min=0.1, max=3600.0)


@dataclass(frozen=True)
class SlotConfig:
    type: Literal["words", "number"] = "words"
    words: list[str] = _f([])


@dataclass(frozen=True)
class IntentConfig:
    examples: list[str] = _f([])  # "{slot}" marks where a slot value goes
    keywords: list[str] = _f([])
    slots: dict[str, SlotConfig] = _f({})


@dataclass(frozen=True)
class IntentsConfig:
    """Text intents matched on final transcripts; see edgemm/text.py."""

    threshold: float = _f(0.6, min=0.0, max=1.0)
    on_partials: bool = False
    decay_s: float = _f(3.0, min=0.01, max=600.0)
    define: dict[str, IntentConfig] = _f({})


@dataclass(frozen=True)
class FusionClassConfig:
    """A class for weighted_sum: the cue values it expects per modality (see edgemm/fusion.py)."""

    audio: dict[str, float] = _f({})  # cues: speech, wake, wake_<model>
    vision: dict[str, float] = _f({})  # cues: face, mouth, gesture_<name>
    text: dict[str, float] = _f({})  # cues: intent, intent_<name>


@dataclass(frozen=True)
class FusionRuleConfig:
    label: str = "idle"  # the class this rule names
    when: list[str] = _f([])  # conditions that must all hold, e.g. "wake >= 0.5"


@dataclass(frozen=True)
class FusionConfig:
    """Per-window fusion into recognitions; see edgemm/fusion.py."""

    enabled: bool = False
    method: Literal["concat", "weighted_sum", "rules"] = "concat"
    model: str = "fusion_default"  # concat: a head name in models/ or a .tflite path
    classes: dict[str, FusionClassConfig] = _f({})  # weighted_sum; empty: the kiosk classes
    weights: dict[str, float] = _f({"audio": 0.5, "vision": 0.5, "text": 0.0})
    rules: list[FusionRuleConfig] = _f([])  # rules; empty: the kiosk rules
    default_class: str = "idle"  # rules: the class when no rule holds; never announced
    smoothing: Literal["ema", "k_of_n", "none"] = "ema"
    ema_alpha: float = _f(0.7, min=0.01, max=1.0, doc="weight of the newest window")
    k: int = _f(2, min=1, max=100)
    n: int = _f(3, min=1, max=100)
    threshold: float = _f(0.5, min=0.0, max=1.0)
    thresholds: dict[str, float] = _f({})
    hysteresis: float = _f(0.1, min=0.0, max=1.0)
    refractory_s: float = _f(2.0, min=0.0, max=600.0)


@dataclass(frozen=True)
class StdoutSinkConfig:
    enabled: bool = True
    exclude: list[str] = _f(["status"])


@dataclass(frozen=True)
class JsonlSinkConfig:
    enabled: bool = False
    path: str = "events.jsonl"
    exclude: list[str] = _f([])


@dataclass(frozen=True)
class MqttSinkConfig:
    """MQTT publishing; secrets only through the environment variables named here."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = _f(1883, min=1, max=65535)
    host_env: str = ""  # name of an environment variable that overrides host
    port_env: str = ""  # name of an environment variable that overrides port
    username_env: str = ""  # name of the environment variable holding the user name
    password_env: str = ""  # name of the environment variable holding the password
    prefix: str = "edgemm"
    device_id: str = ""  # default: this machine's host name
    client_id: str = ""  # default: edgemm-<device_id>
    qos: int = _f(1, min=0, max=2)
    keepalive_s: int = _f(30, min=5, max=3600)
    tls: bool = False
    ca_file: str = ""  # CA bundle for TLS (default: the system store)
    tls_insecure: bool = False  # skip host name verification (testing only)
    buffer_size: int = _f(1000, min=1, max=1_000_000, doc="events held while disconnected")
    reconnect_min_s: float = _f(0.5, min=0.1, max=60.0)
    reconnect_max_s: float = _f(30.0, min=0.1, max=3600.0)
    exclude: list[str] = _f(["status"])
    discovery: bool = True  # Home Assistant MQTT discovery
    discovery_prefix: str = "homeassistant"


@dataclass(frozen=True)
class WebSinkConfig:
    """Live dashboard (HTML + Server-Sent Events) and, optionally, /metrics on the same port."""

    enabled: bool = False
    host: str = "127.0.0.1"  # 0.0.0.0 opens it to the network: set token_env then
    port: int = _f(8080, min=0, max=65535, doc="0 picks a free port")
    token_env: str = ""  # name of an environment variable holding a bearer token
    snapshot: bool = True
    snapshot_fps: float = _f(2.0, min=0.1, max=10.0)
    snapshot_width: int = _f(480, min=64, max=1920)
    timeline: int = _f(50, min=1, max=1000, doc="events kept for new page loads")
    client_queue: int = _f(200, min=1, max=100_000, doc="events buffered per SSE client")


@dataclass(frozen=True)
class MetricsSinkConfig:
    """Prometheus /metrics: on the dashboard's server (port null) or a port of its own."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int | None = _f(None, min=0, max=65535)


@dataclass(frozen=True)
class SinksConfig:
    stdout: StdoutSinkConfig = field(default_factory=StdoutSinkConfig)
    jsonl: JsonlSinkConfig = field(default_factory=JsonlSinkConfig)
    mqtt: MqttSinkConfig = field(default_factory=MqttSinkConfig)
    web: WebSinkConfig = field(default_factory=WebSinkConfig)
    metrics: MetricsSinkConfig = field(default_factory=MetricsSinkConfig)


@dataclass(frozen=True)
class StatusConfig:
    interval_s: float = _f(1.0, min=0.1, max=3600.0)


@dataclass(frozen=True)
class BusConfig:
    queue_size: int = _f(1000, min=1, max=1_000_000)


@dataclass(frozen=True)
class Config:
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    windows: WindowConfig = field(default_factory=WindowConfig)
    stages: StagesConfig = field(default_factory=StagesConfig)
    sinks: SinksConfig = field(default_factory=SinksConfig)
    status: StatusConfig = field(default_factory=StatusConfig)
    bus: BusConfig = field(default_factory=BusConfig)
    stt: SttConfig = field(default_factory=SttConfig)
    intents: IntentsConfig = field(default_factory=IntentsConfig)
    fusion: FusionConfig = field(default_factory=FusionConfig)

    @property
    def hop_samples(self) -> int:
        return 1280 * self.audio.sample_rate // 16000


# --------------------------------------------------------------------------- YAML loading


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without YAML 1.1 booleans and with duplicate-key detection."""


_StrictLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:bool"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.copy().items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    __import__("re").compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)

_YAML11_BOOLS = {"on", "off", "yes", "no", "y", "n"}


def _to_python(
    node: yaml.Node, loader: _StrictLoader, path: str, lines: dict[str, int], src: str
) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for knode, vnode in node.value:
            key = loader.construct_object(knode, deep=True)
            if not isinstance(key, str):
                raise ConfigError(
                    f"{src}:{knode.start_mark.line + 1}: key {key!r} at {path or 'top level'} must be a string"
                )
            sub = f"{path}.{key}" if path else key
            if key in out:
                raise ConfigError(
                    f"{src}:{knode.start_mark.line + 1}: duplicate key '{sub}' "
                    f"(first set on line {lines[sub]})",
                    "remove one of them",
                )
            out[key] = _to_python(vnode, loader, sub, lines, src)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(n, loader, f"{path}[{i}]", lines, src) for i, n in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def parse_yaml(text: str, src: str = "<config>") -> tuple[dict[str, Any], dict[str, int]]:
    """Parse YAML strictly; returns the data and a map key-path → line number."""
    loader = _StrictLoader(text)
    try:
        node = loader.get_single_node()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"{src}:{mark.line + 1}" if mark else src
        raise ConfigError(
            f"{where}: invalid YAML: {exc.problem}", "fix the syntax on that line"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{src}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    lines: dict[str, int] = {}
    if node is None:
        return {}, lines
    data = _to_python(node, loader, "", lines, src)
    if not isinstance(data, dict):
        raise ConfigError(
            f"{src}:1: the config must be a mapping of sections (runtime:, audio:, ...)"
        )
    return data, lines


# --------------------------------------------------------------------------- typed building


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(
            "null" if a is type(None) else _type_name(a) for a in typing.get_args(tp)
        )
    if origin is list:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return f"mapping of name to {_type_name(typing.get_args(tp)[1])}"
    if dataclasses.is_dataclass(tp):
        return "mapping"
    return {bool: "boolean", int: "integer", float: "number", str: "string"}.get(tp, str(tp))


class _Ctx:
    def __init__(self, lines: dict[str, int], src: str) -> None:
        self.lines = lines
        self.src = src

    def err(self, path: str, msg: str, hint: str | None = None) -> ConfigError:
        line = self.lines.get(path)
        if line is None:  # fall back to the nearest parent we know
            p = path
            while p and line is None:
                p = p.rsplit(".", 1)[0] if "." in p else ""
                line = self.lines.get(p)
        where = f"{self.src}:{line}" if line else self.src
        return ConfigError(f"{where}: {path}: {msg}", hint)


def _coerce(tp: Any, value: Any, path: str, ctx: _Ctx, meta: dict[str, Any]) -> Any:
    origin = typing.get_origin(tp)
    if origin in (types.UnionType, typing.Union):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, path, ctx, meta)
            except ConfigError:
                continue
        raise ctx.err(path, f"expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ctx.err(path, f"{value!r} is not one of {', '.join(map(repr, choices))}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ctx.err(path, f"expected a list, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_coerce(item, v, f"{path}[{i}]", ctx, {}) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ctx.err(path, f"expected a mapping, got {value!r}")
        _, vt = typing.get_args(tp)
        return {k: _coerce(vt, v, f"{path}.{k}", ctx, {}) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise ctx.err(path, f"expected a mapping, got {value!r}")
        return _build(tp, value, path, ctx)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _YAML11_BOOLS:
            raise ctx.err(path, f"{value!r} is not a boolean here", "write true or false")
        raise ctx.err(path, f"expected a boolean (true/false), got {value!r}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ctx.err(path, f"expected an integer, got {value!r}")
        return _check_range(value, path, ctx, meta)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ctx.err(path, f"expected a number, got {value!r}")
        if value != value or value in (float("inf"), float("-inf")):
            raise ctx.err(path, f"expected a finite number, got {value!r}")
        return _check_range(float(value), path, ctx, meta)
    if tp is str:
        if not isinstance(value, str):
            raise ctx.err(path, f"expected a string, got {value!r}", "quote the value")
        return value
    raise TypeError(f"unsupported config type {tp!r} at {path}")  # a schema bug, not user error


def _check_range(value: float, path: str, ctx: _Ctx, meta: dict[str, Any]) -> Any:
    lo, hi = meta.get("min"), meta.get("max")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        rng = f"{lo}" if lo == hi else f"{lo}..{hi}"
        why = f" ({meta['doc']})" if meta.get("doc") else ""
        raise ctx.err(path, f"{value!r} is out of range {rng}{why}")
    return value


def _build(cls: type, data: dict[str, Any], path: str, ctx: _Ctx) -> Any:
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        sub = f"{path}.{key}" if path else str(key)
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ctx.err(sub, "unknown key", f"known keys here: {known}")
        kwargs[key] = _coerce(hints[key], value, sub, ctx, dict(fields[key].metadata))
    return cls(**kwargs)


def _validate(cfg: Config, ctx: _Ctx) -> None:
    if cfg.windows.hop_s > cfg.windows.length_s:
        raise ctx.err(
            "windows.hop_s",
            f"{cfg.windows.hop_s} is longer than windows.length_s ({cfg.windows.length_s})",
        )
    eg = cfg.stages.energy_gate
    if eg.off_db > eg.on_db:
        raise ctx.err(
            "stages.energy_gate.off_db", f"{eg.off_db} must not exceed on_db ({eg.on_db})"
        )
    if not cfg.audio.enabled and not cfg.video.enabled:
        raise ctx.err(
            "audio.enabled", "audio and video are both disabled", "enable at least one input"
        )
    if cfg.stt.enabled and cfg.stt.mode == "grammar" and not cfg.stt.phrases:
        raise ctx.err("stt.phrases", "grammar mode needs at least one phrase", "or mode: free")
    for name, it in cfg.intents.define.items():
        if not it.examples and not it.keywords:
            raise ctx.err(f"intents.define.{name}", "needs examples or keywords")
        for slot, sc in it.slots.items():
            if sc.type == "words" and not sc.words:
                raise ctx.err(f"intents.define.{name}.slots.{slot}.words", "is empty")


def config_from_dict(
    data: dict[str, Any], src: str = "<dict>", lines: dict[str, int] | None = None
) -> Config:
    ctx = _Ctx(lines or {}, src)
    if not isinstance(data, dict):
        raise ConfigError(f"{src}: the config must be a mapping of sections")
    cfg = _build(Config, data, "", ctx)
    _validate(cfg, ctx)
    return cfg


def load_config(
    source: str | Path | dict[str, Any] | None = None, overrides: dict[str, Any] | None = None
) -> Config:
    """Load a config from a YAML file, a profile name (``pi``, ``laptop``...), a dict, or defaults."""
    if isinstance(source, dict):
        data, lines, src = source, {}, "<dict>"
    elif source is None:
        data, lines, src = {}, {}, "<defaults>"
    else:
        path = resolve_config_path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(
                f"cannot read config {path}: {exc.strerror}", "check the path"
            ) from None
        except UnicodeDecodeError:
            raise ConfigError(f"config {path} is not UTF-8 text") from None
        data, lines = parse_yaml(text, str(path))
        src = str(path)
    if overrides:
        data = _merge(data, overrides)
    return config_from_dict(data, src, lines)


def resolve_config_path(source: str | Path) -> Path:
    p = Path(source)
    if p.is_file() or p.suffix in (".yaml", ".yml") or "/" in str(source):
        if not p.exists():
            raise ConfigError(f"config file {p} not found", f"profiles: {', '.join(profiles())}")
        return p
    for d in CONFIG_DIRS:
        named = d / f"{source}.yaml"
        if named.is_file():
            return named
    raise ConfigError(
        f"config {source!r} is neither a file nor a profile", f"profiles: {', '.join(profiles())}"
    )


def profiles() -> list[str]:
    return sorted({p.stem for d in CONFIG_DIRS for p in d.glob("*.yaml")})


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)
