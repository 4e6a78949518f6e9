"""Fusion: per-window features from every modality → class scores → recognitions.

* :class:`FeatureAssembler` turns what the stages left in the feature store during one window
  into one float32 vector with a fixed layout of named slices (``audio``, ``vision``,
  ``text``). A modality that produced nothing leaves its slice at zero with its ``present``
  flags at 0, so a head trained with all modalities still runs on a camera-only kiosk.
* Three ways from features to class scores (``fusion.method``):

  - :class:`ConcatHead` — the whole vector, normalised with the training statistics, through a
    small MLP exported as full-int8 TFLite (``models/fusion_default.tflite`` plus its sidecar
    YAML with labels, layout, statistics and the recipe that made it);
  - :class:`WeightedSum` — each modality scores every class by how well its cues (``speech``,
    ``wake``, ``face``, ``intent_<name>``, ...) match the class's profile; the class scores are
    ``F = Σ wᵢ·fᵢ`` with the weights from config;
  - :class:`RuleSet` — ordered declarative rules such as ``wake >= 0.5 and face >= 0.5``; the
    first rule that holds names the class.

* :class:`Decider` smooths the scores over windows (EMA or k-of-n), applies per-class
  thresholds with hysteresis, and a refractory period per class; it says when a recognition
  starts.

Everything here is arrays in, decisions out; :mod:`edgemm.stages.fusion` wires it to the
scheduler.
"""

from __future__ import annotations

import math
import re
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from .encoders.gestures import GESTURES
from .errors import ConfigError, ModelError
from .stages.base import FeatureStore, Window

EMBEDDING_DIM = 96
MODALITIES = ("audio", "vision", "text")
DEFAULT_CLASSES = (
    "idle",
    "person_present",
    "person_speaking",
    "speech_without_person",
    "wake_with_person",
    "wake_without_person",
)

_PKG = Path(__file__).resolve().parent
# The committed head lives in the repository's models/ folder; a wheel carries a copy in
# edgemm/data/models. Both are searched, repository first.
MODEL_DIRS = (_PKG.parent / "models", _PKG / "data" / "models")
DEFAULT_MODEL = "fusion_default"


# ------------------------------------------------------------------------------ layout


@dataclass(frozen=True)
class FeatureLayout:
    """The fixed order of the feature vector: names, and a slice per modality."""

    wake_models: tuple[str, ...] = ("hey_jarvis",)
    intents: tuple[str, ...] = ()
    gestures: tuple[str, ...] = GESTURES
    names: tuple[str, ...] = field(init=False)
    slices: dict[str, slice] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        audio = [
            "audio.present_embedding",
            "audio.present_vad",
            "audio.present_wake",
            *(f"audio.emb_mean.{i}" for i in range(EMBEDDING_DIM)),
            *(f"audio.emb_max.{i}" for i in range(EMBEDDING_DIM)),
            "audio.vad_mean",
            "audio.vad_max",
            *(f"audio.wake.{m}" for m in self.wake_models),
        ]
        vision = [
            "vision.present_face",
            "vision.present_hands",
            "vision.face_frac",
            "vision.face_count",
            "vision.area_max",
            "vision.cx",
            "vision.cy",
            "vision.frontalness",
            "vision.mouth_mean",
            "vision.mouth_var",
            *(f"vision.gesture.{g}" for g in self.gestures),
        ]
        text = ["text.present", *(f"text.intent.{n}" for n in self.intents)]
        names = (*audio, *vision, *text)
        a, v = len(audio), len(vision)
        object.__setattr__(self, "names", names)
        object.__setattr__(
            self,
            "slices",
            {"audio": slice(0, a), "vision": slice(a, a + v), "text": slice(a + v, len(names))},
        )

    @property
    def size(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "wake_models": list(self.wake_models),
            "intents": list(self.intents),
            "gestures": list(self.gestures),
            "size": self.size,
            "slices": {k: [s.start, s.stop] for k, s in self.slices.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FeatureLayout:
        lay = cls(
            tuple(d.get("wake_models", ())),
            tuple(d.get("intents", ())),
            tuple(d.get("gestures", GESTURES)),
        )
        if "size" in d and int(d["size"]) != lay.size:
            raise ModelError(
                f"fusion layout size {d['size']} does not match its lists ({lay.size})",
                "retrain the head with tools/train_fusion.py",
            )
        return lay


class FeatureAssembler:
    """Builds the window's feature vector from the feature store (into a reused buffer).

    Reads ``embedding`` (96 floats per hop), ``vad`` (speech probability per hop),
    ``wakeword`` (``{model: score}`` per hop), ``face`` (a dict per processed frame),
    ``gesture`` (a dict per processed frame) and ``intent`` (via :mod:`edgemm.text`).
    """

    def __init__(self, layout: FeatureLayout, intent_decay_s: float = 3.0) -> None:
        self.layout = layout
        self.decay_s = intent_decay_s
        self.vec = np.zeros(layout.size, dtype=np.float32)
        self._emb = np.empty((32, EMBEDDING_DIM), np.float32)  # one window's embeddings
        n = layout.names
        self._i_emb_mean = n.index("audio.emb_mean.0")
        self._i_emb_max = n.index("audio.emb_max.0")
        self._i_vad = n.index("audio.vad_mean")
        self._i_wake = {m: n.index(f"audio.wake.{m}") for m in layout.wake_models}
        self._i_vision = layout.slices["vision"].start
        self._i_gest = {g: n.index(f"vision.gesture.{g}") for g in layout.gestures}
        self._i_text = layout.slices["text"].start
        self._i_intent = {k: n.index(f"text.intent.{k}") for k in layout.intents}

    def assemble(self, features: FeatureStore, window: Window) -> np.ndarray:
        """The vector for ``window`` (a view of an internal buffer, valid until the next call)."""
        v = self.vec
        v[:] = 0.0
        t0, t1 = window.t_start, window.t_end
        emb = features.between("embedding", t0, t1)
        if emb:
            n = len(emb)
            if n > self._emb.shape[0]:
                self._emb = np.empty((2 * n, EMBEDDING_DIM), np.float32)
            e = self._emb[:n]
            for k, (_, x) in enumerate(emb):
                e[k] = x
            v[0] = 1.0
            mean = v[self._i_emb_mean : self._i_emb_mean + EMBEDDING_DIM]
            np.add.reduce(e, axis=0, out=mean)
            mean *= np.float32(1.0 / n)
            np.maximum.reduce(e, axis=0, out=v[self._i_emb_max : self._i_emb_max + EMBEDDING_DIM])
        vad = features.between("vad", t0, t1)
        if vad:
            p = [x for _, x in vad]
            v[1] = 1.0
            v[self._i_vad] = sum(p) / len(p)
            v[self._i_vad + 1] = max(p)
        wake = features.between("wakeword", t0, t1)
        if wake:
            v[2] = 1.0
            for _, scores in wake:
                for m, i in self._i_wake.items():
                    s = scores.get(m)
                    if s is not None and s > v[i]:
                        v[i] = s
        self._vision(v, features.between("face", t0, t1), features.between("gesture", t0, t1))
        self._text(v, features, window)
        return v

    def _vision(self, v: np.ndarray, faces: list[Any], gestures: list[Any]) -> None:
        i = self._i_vision
        if faces:
            n = len(faces)
            with_face = [f for _, f in faces if f["count"] > 0]
            v[i] = 1.0
            v[i + 2] = len(with_face) / n
            if with_face:
                m = len(with_face)
                count = area = cx = cy = front = mouth = mouth2 = 0.0
                for f in with_face:
                    count = max(count, f["count"])
                    area = max(area, f["area"])
                    cx += f["cx"]
                    cy += f["cy"]
                    front += f["frontalness"]
                    mouth += f["mouth_open"]
                    mouth2 += f["mouth_open"] * f["mouth_open"]
                mean = mouth / m
                v[i + 3] = min(3.0, count) / 3.0
                v[i + 4] = area
                v[i + 5] = cx / m
                v[i + 6] = cy / m
                v[i + 7] = front / m
                v[i + 8] = mean
                v[i + 9] = max(0.0, mouth2 / m - mean * mean)
        if gestures:
            v[i + 1] = 1.0
            w = 1.0 / len(gestures)
            for _, g in gestures:
                for h in g.get("hands", ()):
                    j = self._i_gest.get(h.get("gesture"))
                    if j is not None:
                        v[j] += w

    def _text(self, v: np.ndarray, features: FeatureStore, window: Window) -> None:
        item = features.latest("intent", before=window.t_end + 1e-9)
        if item is None:
            return
        v[self._i_text] = 1.0
        t_end, scores = item
        w = math.exp(-max(0.0, window.t_end - t_end) / self.decay_s)
        for k, i in self._i_intent.items():
            v[i] = float(scores.get(k, 0.0)) * w


class CueReader:
    """Interpretable per-modality cues in [0, 1] from a feature vector (for weighted_sum and
    rules): audio ``speech`` (max VAD probability), ``wake`` (max wake-word score) and
    ``wake_<model>``; vision ``face`` (fraction of frames with a face), ``mouth``,
    ``gesture_<name>``; text ``intent`` (best intent) and ``intent_<name>``."""

    def __init__(self, layout: FeatureLayout) -> None:
        n = layout.names
        self._plain = {
            "audio": [("speech", n.index("audio.vad_max"))]
            + [(f"wake_{m}", n.index(f"audio.wake.{m}")) for m in layout.wake_models],
            "vision": [
                ("face", n.index("vision.face_frac")),
                ("mouth", n.index("vision.mouth_mean")),
            ]
            + [(f"gesture_{g}", n.index(f"vision.gesture.{g}")) for g in layout.gestures],
            "text": [(f"intent_{k}", n.index(f"text.intent.{k}")) for k in layout.intents],
        }
        self._best = {
            "audio": ("wake", [n.index(f"audio.wake.{m}") for m in layout.wake_models]),
            "text": ("intent", [n.index(f"text.intent.{k}") for k in layout.intents]),
        }

    def __call__(self, vec: np.ndarray) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for m, items in self._plain.items():
            d = {name: float(vec[i]) for name, i in items}
            if m in self._best:
                name, idx = self._best[m]
                d[name] = max((float(vec[i]) for i in idx), default=0.0)
            out[m] = d
        return out


def cues(vec: np.ndarray, layout: FeatureLayout) -> dict[str, dict[str, float]]:
    """The cues of one vector (see :class:`CueReader`, which is faster for many)."""
    return CueReader(layout)(vec)


# ------------------------------------------------------------------------------ methods


@dataclass
class Scores:
    """One window's class scores and each modality's share of them (``contrib[m][c]``)."""

    probs: np.ndarray
    contributions: dict[str, np.ndarray]


class ConcatHead:
    """The learned head: normalise, run the full-int8 TFLite MLP, read class probabilities."""

    method = "concat"

    def __init__(self, model: str | Path = DEFAULT_MODEL, backend: str = "auto") -> None:
        from .runtime import TFLiteModel

        self.path = resolve_head(model)
        meta = load_head_meta(self.path)
        self.meta = meta
        self.classes: tuple[str, ...] = tuple(meta["labels"])
        self.layout = FeatureLayout.from_dict(meta["layout"])
        norm = meta["normalisation"]
        self.mean = np.asarray(norm["mean"], dtype=np.float32)
        self.inv_std = (1.0 / np.asarray(norm["std"], dtype=np.float32)).astype(np.float32)
        self.clip = float(norm.get("clip", 8.0))
        if self.mean.shape != (self.layout.size,) or self.inv_std.shape != (self.layout.size,):
            raise ModelError(
                f"fusion head {self.path.name}: normalisation has the wrong size",
                "retrain it with tools/train_fusion.py",
            )
        self.model = TFLiteModel(self.path, backend=backend, name="fusion")
        shape = self.model.inputs[0].shape
        if shape[-1] != self.layout.size or self.model.outputs[0].shape[-1] != len(self.classes):
            raise ModelError(
                f"fusion head {self.path.name} takes {shape} and gives "
                f"{self.model.outputs[0].shape}, its sidecar says {self.layout.size} features "
                f"and {len(self.classes)} classes",
                "retrain it with tools/train_fusion.py",
            )
        self._x = np.zeros((1, self.layout.size), dtype=np.float32)
        tin, tout = self.model.inputs[0], self.model.outputs[0]
        self._q = np.zeros((1, self.layout.size), dtype=tin.dtype) if tin.quantized else None
        self._in_q = (
            (np.float32(1.0 / tin.scale), np.float32(tin.zero_point)) if tin.quantized else None
        )
        self._out_q = (np.float32(tout.scale), tout.zero_point) if tout.quantized else None
        self._p = np.zeros(len(self.classes), dtype=np.float32)

    def normalise(self, vec: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        out = np.empty_like(vec, dtype=np.float32) if out is None else out
        np.subtract(vec, self.mean, out=out)
        np.multiply(out, self.inv_std, out=out)
        np.clip(out, -self.clip, self.clip, out=out)
        return out

    def probs(self, vec: np.ndarray) -> np.ndarray:
        """Class probabilities (a new array). The int8 input is quantized here, in place, the
        same way as :func:`edgemm.runtime.quantize` (round half to even, saturate)."""
        x = self.normalise(vec, self._x[0])
        m = self.model
        if self._q is not None and self._in_q is not None:
            inv, zp = self._in_q
            x *= inv
            np.rint(x, out=x)
            x += zp
            np.clip(
                x,
                -128.0 if self._q.dtype == np.int8 else 0.0,
                127.0 if self._q.dtype == np.int8 else 255.0,
                out=x,
            )
            np.copyto(self._q[0], x, casting="unsafe")
            m.set_input(0, self._q)
        else:
            m.set_input(0, self._x)
        m.invoke()
        if self._out_q is not None:
            scale, zp = self._out_q
            q = m.output(0, raw=True)[0]
            np.copyto(self._p, q)
            self._p -= np.float32(zp)
            self._p *= scale
            return self._p.copy()
        return m.output(0)[0].copy()

    def scores(self, vec: np.ndarray, explain: bool = False) -> Scores:
        p = self.probs(vec)
        contrib: dict[str, np.ndarray] = {}
        if explain:
            # a modality's contribution: how much the probabilities drop without it
            for m in MODALITIES:
                sl = self.layout.slices[m]
                if not np.any(vec[sl]):
                    contrib[m] = np.zeros_like(p)
                    continue
                saved = vec[sl].copy()
                vec[sl] = 0.0
                contrib[m] = p - self.probs(vec)
                vec[sl] = saved
        return Scores(p, contrib)


@dataclass(frozen=True)
class ClassProfile:
    """What a class looks like, modality by modality: expected cue values in [0, 1]."""

    name: str
    audio: Mapping[str, float] = field(default_factory=dict)
    vision: Mapping[str, float] = field(default_factory=dict)
    text: Mapping[str, float] = field(default_factory=dict)


DEFAULT_PROFILES = (
    ClassProfile("idle", {"speech": 0, "wake": 0}, {"face": 0}),
    ClassProfile("person_present", {"speech": 0, "wake": 0}, {"face": 1}),
    ClassProfile("person_speaking", {"speech": 1, "wake": 0}, {"face": 1}),
    ClassProfile("speech_without_person", {"speech": 1, "wake": 0}, {"face": 0}),
    ClassProfile("wake_with_person", {"wake": 1}, {"face": 1}),
    ClassProfile("wake_without_person", {"wake": 1}, {"face": 0}),
)


class WeightedSum:
    """``F = Σ wᵢ·fᵢ``: modality ``i`` scores class ``c`` with ``fᵢ[c] = 1 − mean |cue −
    expected|`` over the cues the class's profile names for it (0.5, neutral, when it names
    none). Scores are divided by the sum of the weights, so they stay in [0, 1]."""

    method = "weighted_sum"

    def __init__(
        self,
        layout: FeatureLayout,
        weights: Mapping[str, float],
        profiles: Sequence[ClassProfile] = DEFAULT_PROFILES,
    ) -> None:
        self.layout = layout
        self.profiles = tuple(profiles)
        self.classes = tuple(p.name for p in self.profiles)
        unknown = set(weights) - set(MODALITIES)
        if unknown:
            raise ConfigError(
                f"fusion.weights: unknown modality {sorted(unknown)[0]!r}",
                f"use {', '.join(MODALITIES)}",
            )
        self.weights = {m: float(weights.get(m, 0.0)) for m in MODALITIES}
        total = sum(self.weights.values())
        if total <= 0:
            raise ConfigError("fusion.weights: all weights are 0", "give one modality weight > 0")
        self._norm = 1.0 / total
        self._cues = CueReader(layout)
        known = self._cues(np.zeros(layout.size, np.float32))
        for p in self.profiles:
            for m in MODALITIES:
                for cue in getattr(p, m):
                    if cue not in known[m]:
                        raise ConfigError(
                            f"fusion.classes.{p.name}.{m}: unknown cue {cue!r}",
                            f"known: {', '.join(sorted(known[m]))}",
                        )

    def scores(self, vec: np.ndarray, explain: bool = True) -> Scores:
        c = self._cues(vec)
        contrib: dict[str, np.ndarray] = {}
        total = np.zeros(len(self.classes), dtype=np.float32)
        for m in MODALITIES:
            f = np.empty(len(self.classes), dtype=np.float32)
            for k, p in enumerate(self.profiles):
                exp = getattr(p, m)
                if exp:
                    f[k] = 1.0 - sum(abs(c[m][q] - float(e)) for q, e in exp.items()) / len(exp)
                else:
                    f[k] = 0.5
            share = (self.weights[m] * self._norm) * f
            contrib[m] = share
            total += share
        return Scores(total, contrib)


_COND = re.compile(r"^\s*([A-Za-z_][\w]*)\s*(>=|<=|>|<)\s*([-+]?[0-9]*\.?[0-9]+)\s*$")
_OPS = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    "<": lambda a, b: a < b,
}


@dataclass(frozen=True)
class Condition:
    modality: str
    cue: str
    op: str
    value: float

    def holds(self, c: Mapping[str, Mapping[str, float]]) -> bool:
        return bool(_OPS[self.op](c[self.modality][self.cue], self.value))


@dataclass(frozen=True)
class Rule:
    """``cls`` when every condition holds (``all``), e.g. ``("wake >= 0.5", "face >= 0.5")``."""

    cls: str
    all: tuple[Condition, ...]


DEFAULT_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("wake_with_person", ("wake >= 0.5", "face >= 0.5")),
    ("wake_without_person", ("wake >= 0.5",)),
    ("person_speaking", ("speech >= 0.5", "face >= 0.5")),
    ("speech_without_person", ("speech >= 0.5",)),
    ("person_present", ("face >= 0.5",)),
)


class RuleSet:
    """Ordered rules; the first that holds gives its class score 1, else ``default`` wins.
    Contributions: for the chosen class, each modality's share of the conditions that held."""

    method = "rules"

    def __init__(
        self,
        layout: FeatureLayout,
        rules: Sequence[tuple[str, Sequence[str]]] = DEFAULT_RULES,
        default: str = "idle",
        classes: Sequence[str] = (),
    ) -> None:
        self.layout = layout
        self._cues = CueReader(layout)
        known = self._cues(np.zeros(layout.size, np.float32))
        where = {cue: m for m in MODALITIES for cue in known[m]}
        parsed = []
        for i, (cls, conds) in enumerate(rules):
            cs = []
            for text in conds:
                mt = _COND.match(text)
                if mt is None:
                    raise ConfigError(
                        f"fusion.rules[{i}]: cannot read condition {text!r}",
                        "write it as: cue >= number (ops: >=, <=, >, <)",
                    )
                cue, op, val = mt.groups()
                if cue not in where:
                    raise ConfigError(
                        f"fusion.rules[{i}]: unknown cue {cue!r}",
                        f"known: {', '.join(sorted(where))}",
                    )
                cs.append(Condition(where[cue], cue, op, float(val)))
            if not cs:
                raise ConfigError(f"fusion.rules[{i}] ({cls}) has no conditions")
            parsed.append(Rule(cls, tuple(cs)))
        self.rules = tuple(parsed)
        order = [default, *classes, *(r.cls for r in self.rules)]
        self.classes = tuple(dict.fromkeys(order))
        self.default = default
        self._index = {c: i for i, c in enumerate(self.classes)}

    def scores(self, vec: np.ndarray, explain: bool = True) -> Scores:
        c = self._cues(vec)
        p = np.zeros(len(self.classes), dtype=np.float32)
        contrib = {m: np.zeros(len(self.classes), dtype=np.float32) for m in MODALITIES}
        for r in self.rules:
            if all(cond.holds(c) for cond in r.all):
                k = self._index[r.cls]
                p[k] = 1.0
                for cond in r.all:
                    contrib[cond.modality][k] += 1.0 / len(r.all)
                return Scores(p, contrib)
        p[self._index[self.default]] = 1.0
        return Scores(p, contrib)


# ------------------------------------------------------------------------------ decisions


@dataclass(frozen=True)
class DeciderSettings:
    smoothing: str = "ema"  # ema | k_of_n | none
    ema_alpha: float = 0.6  # weight of the newest window
    k: int = 2
    n: int = 3
    threshold: float = 0.5
    thresholds: Mapping[str, float] = field(default_factory=dict)
    hysteresis: float = 0.1
    refractory_s: float = 2.0


@dataclass(frozen=True)
class Decision:
    """A recognition that starts with this window."""

    cls: str
    score: float
    t_start: float
    t_end: float


class Decider:
    """Smoothing, per-class thresholds, hysteresis and refractory over successive windows.

    Each window: smooth the scores (EMA, or k-of-n where a class's score is the fraction of
    the last ``n`` windows it won, counted once it reaches ``k``). The active class changes to
    the best class when its smoothed score reaches its threshold; the active class keeps its
    place while its score stays above threshold − hysteresis and no other class leads it by
    more than the hysteresis. A change to a class other than
    ``quiet`` starts a recognition, unless the same class started one within ``refractory_s``.
    """

    def __init__(
        self, classes: Sequence[str], settings: DeciderSettings, quiet: str | None = "idle"
    ) -> None:
        if settings.smoothing not in ("ema", "k_of_n", "none"):
            raise ConfigError(
                f"fusion.smoothing: unknown {settings.smoothing!r}", "use ema, k_of_n or none"
            )
        self.classes = tuple(classes)
        self.s = settings
        self.quiet = quiet
        self.th = np.array(
            [settings.thresholds.get(c, settings.threshold) for c in self.classes], np.float32
        )
        self.smoothed = np.zeros(len(self.classes), dtype=np.float32)
        self._wins: deque[int] = deque(maxlen=max(1, settings.n))
        self._first = True
        self.active: int | None = None
        self.active_since = 0.0
        self._last_start: dict[int, float] = {}

    def reset(self) -> None:
        self.smoothed[:] = 0.0
        self._wins.clear()
        self._first = True
        self.active = None
        self._last_start.clear()

    def _smooth(self, p: np.ndarray) -> np.ndarray:
        s = self.s
        if s.smoothing == "none":
            self.smoothed[:] = p
        elif s.smoothing == "ema":
            if self._first:
                self.smoothed[:] = p
            else:
                a = np.float32(s.ema_alpha)
                self.smoothed *= 1.0 - a
                self.smoothed += a * p
        else:
            self._wins.append(int(np.argmax(p)))
            self.smoothed[:] = 0.0
            for w in self._wins:
                self.smoothed[w] += 1.0
            self.smoothed /= len(self._wins)
            self.smoothed[self.smoothed * len(self._wins) < s.k] = 0.0
        self._first = False
        return self.smoothed

    def update(self, probs: np.ndarray, t_start: float, t_end: float) -> Decision | None:
        sm = self._smooth(probs)
        best = int(np.argmax(sm))
        cur = self.active
        h = self.s.hysteresis
        if cur is not None and cur != best and sm[cur] >= self.th[cur] - h:
            if sm[best] < sm[cur] + h:
                return None  # the active class holds until another one clearly leads
        if best == cur or sm[best] < self.th[best]:
            if cur is not None and sm[cur] < self.th[cur] - h:
                self.active = None
            return None
        self.active = best
        self.active_since = t_start
        name = self.classes[best]
        if name == self.quiet:
            return None
        last = self._last_start.get(best)
        if last is not None and t_start - last < self.s.refractory_s:
            return None
        self._last_start[best] = t_start
        return Decision(name, float(sm[best]), t_start, t_end)


# ------------------------------------------------------------------------------ head files


def resolve_head(model: str | Path) -> Path:
    """A head by path (``.tflite`` with a ``.yaml`` beside it) or by name in models/."""
    p = Path(model)
    if p.suffix == ".tflite" or "/" in str(model) or p.is_file():
        if not p.is_file():
            raise ModelError(
                f"fusion head {p} not found",
                "train one with: python tools/train_fusion.py --recipe tools/fusion_sessions.py",
            )
        return p
    for d in MODEL_DIRS:
        cand = d / f"{model}.tflite"
        if cand.is_file():
            return cand
    raise ModelError(
        f"fusion head {model!r} not found in models/",
        "set fusion.model to a .tflite path, or train one with tools/train_fusion.py",
    )


def load_head_meta(path: Path) -> dict[str, Any]:
    side = path.with_suffix(".yaml")
    try:
        meta = yaml.safe_load(side.read_text(encoding="utf-8"))
    except OSError:
        raise ModelError(
            f"fusion head sidecar {side.name} is missing",
            f"keep {side.name} next to {path.name} (tools/train_fusion.py writes both)",
        ) from None
    except yaml.YAMLError as exc:
        raise ModelError(f"fusion head sidecar {side.name} is not valid YAML: {exc}") from None
    for key in ("labels", "layout", "normalisation"):
        if not isinstance(meta, dict) or key not in meta:
            raise ModelError(
                f"fusion head sidecar {side.name} lacks {key!r}",
                "retrain it with tools/train_fusion.py",
            )
    return meta
