"""The speech stage: Vosk speech-to-text in its own lane, gated by voice activity, plus intents.

:class:`SpeechStage` is an audio stage with ``lane = "speech"``: the scheduler runs it in a
worker thread of its own, in hop order, from the audio ring. Per hop it

* decides whether the hop is speech — the VAD stage's ``"vad"`` probability in
  ``ctx.features`` when present, else the energy gate's ``"level"`` (dBFS), else the hop's own
  RMS level;
* with gating on (``stt.gate`` other than ``off``) feeds only speech to the recognizer: an
  utterance opens on the first speech hop (preceded by ``preroll_s`` of the audio before it so
  the first word is not cut), and closes after ``hangover_s`` without speech, or after
  ``max_utterance_s``; the recognizer is then reset, so silence costs almost nothing. With
  gating off every hop is fed and Vosk's own endpointer closes utterances;
* emits ``speech`` events — ``partial`` (at most every ``partial_interval_s``, only when the
  text changed) and ``final`` with ``words`` [{word, start, end, conf}] on the stream clock;
* matches final transcripts against the configured intents: ``intent`` events, and the
  utterance's score vector in ``ctx.features["intent"]`` at its end time (see
  :func:`edgemm.text.window_scores` for the decayed per-window vector);
* bounds its backlog: when ``ctx.lag_s`` exceeds ``max_backlog_s`` it skips non-speech hops
  (and the trailing silence of utterances) and reports an ``error`` event with the lag, at
  most every ``report_interval_s``, then a ``status`` event once it has caught up. The audio
  itself stays in the scheduler's bounded ring; audio lost to a ring overrun is counted there.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..config import Config, SttConfig
from ..errors import ConfigError
from ..speech import (
    RecognizerFactory,
    StreamRecognizer,
    Transcript,
    check_grammar,
    grammar_json,
    load_model,
    recognizer_factory,
    unk_token,
)
from ..text import FEATURE as INTENT_FEATURE
from ..text import IntentMatcher
from .base import StageContext
from .builtin import rms_dbfs

log = logging.getLogger(__name__)

SOURCE = "speech.vosk"


@dataclass
class SpeechStats:
    hops_fed: int = 0
    hops_gated: int = 0  # silence never fed to the recognizer
    hops_skipped_backlog: int = 0  # non-speech hops skipped because the lane was behind
    utterances: int = 0
    finals: int = 0
    partials: int = 0
    intents: int = 0
    backlog_reports: int = 0
    max_lag_s: float = 0.0


class SpeechStage:
    """Streaming Vosk recognition on the stream clock (see the module docstring)."""

    lane = "speech"

    def __init__(
        self,
        factory: RecognizerFactory,
        settings: SttConfig | None = None,
        *,
        intents: IntentMatcher | None = None,
        intents_on_partials: bool = False,
        name: str = "stt",
    ) -> None:
        self.name = name
        self.settings = s = settings or SttConfig(enabled=True)
        self.gating = s.gate != "off"
        self.intents = intents
        self.intents_on_partials = intents_on_partials
        self.rec = StreamRecognizer(factory(), 16000)
        self.stats = SpeechStats()
        self.missing_words: list[str] = []  # grammar words the model does not know
        self._in_utt = False
        self._utt_t0 = 0.0
        self._last_speech_t = -math.inf
        self._last_partial_t = -math.inf
        self._partial_text = ""
        self._partial_intent: str | None = None
        self._behind = False
        self._last_report_t = -math.inf
        self._warned_no_vad = False
        # pre-roll ring of the last few non-fed hops, allocated on the first hop
        self._pre: np.ndarray | None = None
        self._pre_start: list[int] = []
        self._pre_n = 0
        self._pre_head = 0

    # ------------------------------------------------------------------ per hop

    def process_audio(self, hop: np.ndarray, start: int, ctx: StageContext) -> None:
        s = self.settings
        sr = ctx.sample_rate
        if self._pre is None:
            self.rec.sample_rate = sr
            n = math.ceil(s.preroll_s * sr / hop.shape[0]) if s.preroll_s > 0 else 0
            self._pre = np.zeros((n, hop.shape[0]), dtype=np.int16)
            self._pre_start = [0] * n
        t0, t1 = start / sr, (start + hop.shape[0]) / sr
        self._track_backlog(_live_lag(ctx), t1, ctx)
        behind = self._behind
        speech = self._is_speech(hop, t0, t1, ctx) if (self.gating or behind) else True

        if not self.gating:
            if speech:
                self._feed(hop, start, t1, ctx)
                return
            self.stats.hops_skipped_backlog += 1
            if self.rec.active:  # the audio is about to jump: close what we have
                self._end(ctx)
            return

        if not self._in_utt:
            if not speech:
                self._remember(hop, start)
                self.stats.hops_gated += 1
                return
            self._in_utt = True
            self._utt_t0 = t0
            self.stats.utterances += 1
            self._replay_preroll(start, t1, ctx)
        if speech:
            self._last_speech_t = t1
            self._feed(hop, start, t1, ctx)
        elif behind or t1 - self._last_speech_t >= s.hangover_s:
            self._end(ctx)
            self._remember(hop, start)
            if behind:
                self.stats.hops_skipped_backlog += 1
            else:
                self.stats.hops_gated += 1
            return
        else:
            self._feed(hop, start, t1, ctx)  # trailing silence helps the decoder settle
        if self._in_utt and t1 - self._utt_t0 >= s.max_utterance_s:
            self._end(ctx)

    def finish(self, ctx: StageContext) -> None:
        """End of stream: close the open utterance."""
        self._end(ctx)

    # ------------------------------------------------------------------ helpers

    def _is_speech(self, hop: np.ndarray, t0: float, t1: float, ctx: StageContext) -> bool:
        s = self.settings
        feats = ctx.features
        if s.gate in ("auto", "vad", "off"):
            probs = feats.between("vad", t0 + 1e-6, t1 + 1e-6)
            if probs:
                return max(p for _, p in probs) >= s.vad_threshold
            if s.gate == "vad" and not self._warned_no_vad:
                self._warned_no_vad = True
                log.warning(
                    "stt: gate 'vad' but no VAD feature (enable stages.vad); "
                    "using the audio level instead"
                )
        levels = feats.between("level", t0 + 1e-6, t1 + 1e-6)
        db = levels[-1][1] if levels else rms_dbfs(hop)
        return db >= s.gate_on_db

    def _remember(self, hop: np.ndarray, start: int) -> None:
        pre = self._pre
        if pre is None or pre.shape[0] == 0:
            return
        pre[self._pre_head] = hop
        self._pre_start[self._pre_head] = start
        self._pre_head = (self._pre_head + 1) % pre.shape[0]
        self._pre_n = min(self._pre_n + 1, pre.shape[0])

    def _replay_preroll(self, start: int, t1: float, ctx: StageContext) -> None:
        """Feed the remembered hops that lead without a gap up to ``start``, oldest first."""
        pre = self._pre
        if pre is None or self._pre_n == 0:
            return
        k, hop = pre.shape
        newest_first = [(self._pre_head - 1 - i) % k for i in range(self._pre_n)]
        take: list[int] = []
        expect = start - hop
        for i in newest_first:
            if self._pre_start[i] != expect:
                break
            take.append(i)
            expect -= hop
        for i in reversed(take):
            self._feed(pre[i], self._pre_start[i], t1, ctx, partials=False)
        self._pre_n = 0

    def _feed(
        self, hop: np.ndarray, start: int, t1: float, ctx: StageContext, partials: bool = True
    ) -> None:
        self.stats.hops_fed += 1
        tr = self.rec.feed(hop, start)
        if tr is not None:
            self._final(tr, ctx)
        elif partials and self.settings.partials:
            if t1 - self._last_partial_t >= self.settings.partial_interval_s:
                self._last_partial_t = t1
                p = self.rec.partial()
                if p is not None and p.text != self._partial_text:
                    self._partial_text = p.text
                    self.stats.partials += 1
                    ctx.emit(
                        "speech",
                        "partial",
                        p.t_start,
                        p.t_end,
                        data={"text": p.text},
                        source=SOURCE,
                    )
                    if self.intents is not None and self.intents_on_partials:
                        self._intent(p, ctx, partial=True)

    def _end(self, ctx: StageContext) -> None:
        tr = self.rec.finish()
        if tr is not None:
            self._final(tr, ctx)
        self._in_utt = False
        self._last_speech_t = -math.inf
        self._partial_text = ""
        self._partial_intent = None

    def _final(self, tr: Transcript, ctx: StageContext) -> None:
        self.stats.finals += 1
        self._partial_text = ""
        ctx.emit(
            "speech",
            "final",
            tr.t_start,
            tr.t_end,
            score=tr.conf,
            data={"text": tr.text, "words": [w.to_dict() for w in tr.words]},
            source=SOURCE,
        )
        if self.intents is not None:
            self._intent(tr, ctx, partial=False)
        self._partial_intent = None

    def _intent(self, tr: Transcript, ctx: StageContext, partial: bool) -> None:
        assert self.intents is not None
        scores, slots = self.intents.analyse(tr.text)
        if not partial:
            ctx.features.put(INTENT_FEATURE, tr.t_end, scores)
        if not scores:
            return
        best = max(scores, key=lambda n: scores[n])
        if scores[best] < self.intents.threshold:
            return
        if partial:
            if best == self._partial_intent:
                return
            self._partial_intent = best
        self.stats.intents += 1
        data: dict[str, Any] = {"text": tr.text, "slots": slots[best]}
        if partial:
            data["partial"] = True
        ctx.emit("intent", best, tr.t_start, tr.t_end, score=scores[best], data=data)

    def _track_backlog(self, lag: float, t1: float, ctx: StageContext) -> None:
        s = self.settings
        self.stats.max_lag_s = max(self.stats.max_lag_s, lag)
        if lag > s.max_backlog_s:
            if not self._behind or t1 - self._last_report_t >= s.report_interval_s:
                self._last_report_t = t1
                self.stats.backlog_reports += 1
                ctx.emit(
                    "error",
                    self.name,
                    t1,
                    t1,
                    data={
                        "message": f"speech recognition is {lag:.1f} s behind the audio "
                        f"(stt.max_backlog_s = {s.max_backlog_s:g}); skipping non-speech audio",
                        "lag_s": round(lag, 2),
                        "skipped_hops": self.stats.hops_skipped_backlog,
                    },
                    source=self.name,
                )
            self._behind = True
        elif self._behind and lag <= s.max_backlog_s / 2:
            self._behind = False
            ctx.emit(
                "status",
                self.name,
                t1,
                t1,
                data={
                    "message": "speech recognition caught up",
                    "lag_s": round(lag, 2),
                    "skipped_hops": self.stats.hops_skipped_backlog,
                },
                source=self.name,
            )

    def status(self) -> dict[str, Any]:
        return asdict(self.stats)


def _live_lag(ctx: StageContext) -> float:
    """How far behind the lane is in live mode; the scheduler reports 0 in deterministic fast
    replay, where the lane trails the main thread by up to a window by design."""
    return 0.0 if getattr(ctx, "fast", False) else float(getattr(ctx, "lag_s", 0.0))


# ------------------------------------------------------------------------------ from config


def build_speech_stage(
    cfg: Config,
    model: Any = None,
    factory: RecognizerFactory | None = None,
    wrap: Callable[[RecognizerFactory], RecognizerFactory] | None = None,
) -> SpeechStage | None:
    """The speech stage ``cfg`` asks for, or None (with one log line) when STT is off.

    ``model`` is a preloaded ``vosk.Model`` (else ``stt.model`` is loaded); ``factory``
    replaces the recognizer entirely and ``wrap`` decorates the real one (test seams).
    """
    stt = cfg.stt
    if not stt.enabled:
        return None
    if not cfg.audio.enabled:
        log.info("STT off: audio input is disabled")
        return None
    missing: list[str] = []
    if factory is None:
        if model is None:
            if not stt.model:
                log.warning(
                    "STT off: stt.enabled is true but stt.model is not set "
                    "(a manifest name such as vosk_ko, or a Vosk model directory)"
                )
                return None
            model = load_model(stt.model)
        grammar = None
        if stt.mode == "grammar":
            kept, missing = check_grammar(model, stt.phrases)
            if missing:
                log.warning(
                    "stt: %d grammar word(s) are not in the model's vocabulary and can never "
                    "be heard: %s; they were left out of their phrases (fix stt.phrases)",
                    len(missing),
                    ", ".join(repr(w) for w in missing),
                )
            if not kept:
                raise ConfigError(
                    "stt.phrases: none of the grammar words are in the model's vocabulary",
                    "use words the model knows, or mode: free",
                )
            grammar = grammar_json(kept, unk_token(model))
        factory = recognizer_factory(model, cfg.audio.sample_rate, grammar)
    if wrap is not None:
        factory = wrap(factory)
    matcher = (
        IntentMatcher.from_config(cfg.intents.define, cfg.intents.threshold)
        if cfg.intents.define
        else None
    )
    stage = SpeechStage(factory, stt, intents=matcher, intents_on_partials=cfg.intents.on_partials)
    stage.missing_words = missing
    log.info(
        "STT on: %s mode%s, gate %s, %d intent(s)",
        stt.mode,
        f" ({len(stt.phrases)} phrases)" if stt.mode == "grammar" else "",
        stt.gate,
        len(matcher.intents) if matcher else 0,
    )
    return stage
