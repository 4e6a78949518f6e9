"""Vosk speech-to-text on the stream clock.

* :func:`resolve_model` / :func:`load_model` — ``stt.model`` is a manifest name (``vosk_ko``)
  or a Vosk model directory; a missing model is a :class:`~edgemm.errors.ModelError` that
  names the install command. ``vosk.Model(lang=...)`` is never used (it downloads).
* :func:`check_grammar` — which grammar words the model's vocabulary lacks (Vosk would drop
  them silently), and the model's unknown-word token.
* :class:`StreamRecognizer` — a KaldiRecognizer fed int16 hops by absolute sample index.
  Vosk's word times count the audio fed to the recognizer since it was created (``Reset()``
  does not restart them), so the wrapper keeps the few (recognizer sample → stream sample)
  breakpoints of the current utterance and maps every word onto the stream clock: a word
  spoken 7.2 s into a replayed file carries ``start`` ≈ 7.2 however much silence was skipped.

The compute objects here know nothing of the scheduler; :mod:`edgemm.stages.speech` drives
them from the audio ring.
"""

from __future__ import annotations

import bisect
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from .errors import ModelError

log = logging.getLogger(__name__)

UNK_TOKENS = ("[unk]", "<unk>", "<UNK>")
_INSTALL_HINT = "install vosk with: pip install 'vosk==0.3.45'"


class Recognizer(Protocol):
    """The part of ``vosk.KaldiRecognizer`` used here (a seam for fault injection)."""

    def AcceptWaveform(self, data: bytes) -> bool: ...  # noqa: N802 (Vosk's names)
    def Result(self) -> str: ...  # noqa: N802
    def PartialResult(self) -> str: ...  # noqa: N802
    def FinalResult(self) -> str: ...  # noqa: N802
    def Reset(self) -> None: ...  # noqa: N802


RecognizerFactory = Callable[[], Recognizer]


@dataclass(frozen=True)
class Word:
    word: str
    start: float  # stream clock, seconds
    end: float
    conf: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "word": self.word,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "conf": round(self.conf, 3),
        }


@dataclass(frozen=True)
class Transcript:
    """A recognized utterance (or partial) on the stream clock."""

    text: str
    words: tuple[Word, ...]
    t_start: float
    t_end: float
    final: bool

    @property
    def conf(self) -> float:
        return float(np.mean([w.conf for w in self.words])) if self.words else 1.0


# ------------------------------------------------------------------------------ models


def _vosk() -> Any:
    try:
        import vosk
    except ImportError:
        raise ModelError("speech-to-text needs the vosk package", _INSTALL_HINT) from None
    return vosk


def resolve_model(spec: str | Path) -> Path:
    """A Vosk model directory from a manifest name or a path; ModelError if it is missing."""
    s = str(spec)
    looks_like_path = "/" in s or "\\" in s or s.startswith(".") or s.startswith("~")
    if not looks_like_path:
        from .models import load_manifest, model_path

        if s in load_manifest():
            return model_path(s)  # raises ModelError with "edgemm models install <name>"
    p = Path(s).expanduser()
    if not p.is_dir():
        raise ModelError(
            f"Vosk model {s!r} not found (neither a manifest model nor a directory)",
            "set stt.model to a Vosk model directory, or install one with: "
            "edgemm models install vosk_ko",
        )
    if not (p / "am" / "final.mdl").is_file() and not (p / "final.mdl").is_file():
        raise ModelError(
            f"{p} is not a Vosk model directory (no am/final.mdl)",
            "point stt.model at the unpacked model folder",
        )
    return p


def load_model(spec: str | Path) -> Any:
    """Load a ``vosk.Model`` from a manifest name or directory (a few seconds, ~500 MB)."""
    path = resolve_model(spec)
    vosk = _vosk()
    if not log.isEnabledFor(logging.DEBUG):
        vosk.SetLogLevel(-1)  # Kaldi's own start-up chatter goes to stderr otherwise
    t0 = time.perf_counter()
    try:
        model = vosk.Model(model_path=str(path))
    except Exception as exc:  # vosk raises a bare Exception on a bad model
        raise ModelError(
            f"Vosk could not load the model at {path}: {exc}",
            "reinstall it (edgemm models install --force vosk_ko) or fix stt.model",
        ) from None
    log.info("stt: loaded Vosk model %s in %.1f s", path.name, time.perf_counter() - t0)
    return model


def _find_word(model: Any, word: str) -> int:
    return int(model.vosk_model_find_word(word))


def unk_token(model: Any) -> str | None:
    """The model's unknown-word token (``[unk]`` in most Vosk models, ``<UNK>`` in some)."""
    return next((t for t in UNK_TOKENS if _find_word(model, t) >= 0), None)


def check_grammar(model: Any, phrases: Sequence[str]) -> tuple[list[str], list[str]]:
    """(phrases with only known words, the missing words in first-seen order)."""
    missing: list[str] = []
    kept: list[str] = []
    for ph in phrases:
        words = ph.split()
        known = [w for w in words if _find_word(model, w) >= 0]
        missing.extend(w for w in words if w not in known and w not in missing)
        if known:
            kept.append(" ".join(known))
    return kept, missing


def grammar_json(phrases: Sequence[str], unk: str | None) -> str:
    """The grammar Vosk's recognizer takes: a JSON list of phrases plus the unknown token."""
    return json.dumps([*phrases, *([unk] if unk else [])], ensure_ascii=False)


def recognizer_factory(
    model: Any, sample_rate: int, grammar: str | None = None
) -> RecognizerFactory:
    """A factory of word-timed KaldiRecognizers (free dictation, or with a grammar)."""
    vosk = _vosk()

    def make() -> Recognizer:
        rec = (
            vosk.KaldiRecognizer(model, float(sample_rate), grammar)
            if grammar is not None
            else vosk.KaldiRecognizer(model, float(sample_rate))
        )
        rec.SetWords(True)
        return rec

    return make


# ------------------------------------------------------------------------------ streaming


class StreamRecognizer:
    """A recognizer fed hops by absolute sample index; results come out on the stream clock.

    ``feed`` returns a final transcript when Vosk's own endpointer closes an utterance;
    ``finish`` forces one (and resets the recognizer). Hops need not be contiguous: each jump
    adds a breakpoint to the sample map, so times stay right across skipped silence.
    """

    def __init__(
        self, recognizer: Recognizer, sample_rate: int, drop_words: Sequence[str] = UNK_TOKENS
    ) -> None:
        self.rec = recognizer
        self.sample_rate = sample_rate
        self.drop = frozenset(drop_words)
        self._fed = 0  # samples fed since the recognizer was created (Vosk's time base)
        self._next_abs: int | None = None
        self._rec_marks: list[int] = []  # recognizer sample where a contiguous run begins
        self._abs_marks: list[int] = []  # the stream sample it corresponds to
        self.utt_start: int | None = None  # stream sample of the utterance's first sample
        self.utterances = 0

    @property
    def active(self) -> bool:
        """Audio has been fed since the last final result."""
        return self.utt_start is not None

    def feed(self, hop: np.ndarray, start: int) -> Transcript | None:
        if self._next_abs != start or not self._rec_marks:
            self._rec_marks.append(self._fed)
            self._abs_marks.append(start)
        if self.utt_start is None:
            self.utt_start = start
        self._fed += hop.shape[0]
        self._next_abs = start + hop.shape[0]
        if self.rec.AcceptWaveform(hop.tobytes()):
            return self._result(self.rec.Result(), final=True)
        return None

    def partial(self) -> Transcript | None:
        if self.utt_start is None:
            return None
        d = json.loads(self.rec.PartialResult())
        words = [w for w in d.get("partial", "").split() if w not in self.drop]
        if not words:
            return None
        t0 = self.utt_start / self.sample_rate
        t1 = (self._next_abs or self.utt_start) / self.sample_rate
        return Transcript(" ".join(words), (), t0, t1, final=False)

    def finish(self) -> Transcript | None:
        """Close the utterance: Vosk's final result, then a reset for the next one."""
        if self.utt_start is None:
            return None
        out = self._result(self.rec.FinalResult(), final=True)
        self.rec.Reset()
        self.utt_start = None
        return out

    def _keep_last_mark(self) -> None:
        # later words lie after the last breakpoint, so older ones can go (bounded memory)
        if len(self._rec_marks) > 1:
            del self._rec_marks[:-1]
            del self._abs_marks[:-1]

    def to_stream(self, t_rec: float) -> float:
        """Map a recognizer time (seconds since creation) to the stream clock."""
        s = int(round(t_rec * self.sample_rate))
        i = max(0, bisect.bisect_right(self._rec_marks, s) - 1)
        if not self._rec_marks:
            return t_rec
        return (self._abs_marks[i] + s - self._rec_marks[i]) / self.sample_rate

    def _result(self, raw: str, final: bool) -> Transcript | None:
        d = json.loads(raw)
        utt_start = self.utt_start
        self.utt_start = None if final else utt_start
        words = tuple(
            Word(w["word"], self.to_stream(w["start"]), self.to_stream(w["end"]), w["conf"])
            for w in d.get("result", ())
            if w.get("word") not in self.drop
        )
        if final:
            self._keep_last_mark()
        text_words = [w for w in d.get("text", "").split() if w not in self.drop]
        if not text_words:
            return None
        self.utterances += 1
        if words:
            t0, t1 = words[0].start, words[-1].end
        else:
            t0 = (utt_start or 0) / self.sample_rate
            t1 = (self._next_abs or 0) / self.sample_rate
        return Transcript(" ".join(text_words), words, t0, t1, final)
