"""Audio stages: wake words and voice activity, driven once per audio hop by the scheduler.

Both stages feed each hop to their encoder (:mod:`edgemm.encoders.audio`), publish events on
the stream clock (``t = sample index / ctx.sample_rate``) and leave per-hop features in
``ctx.features`` for the fusion stage. If a hop does not follow the previous one (the scheduler
never skips audio, but a restarted source may), the encoders are reset and start afresh.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..encoders.audio import (
    HEAD_EMBEDDINGS,
    HOP_SAMPLES,
    MicroWakeWordDetector,
    SpeechEmbedder,
    SpeechSegmenter,
    VoiceActivityDetector,
    WakeWordDetection,
    WakeWordDetector,
)
from ..errors import ConfigError
from .base import StageContext

WAKE_ENGINES = ("openwakeword", "micro")


class WakeWordStage:
    """Wake-word detection: emits ``wake_word`` events and per-hop features.

    ``engine="openwakeword"`` (default) runs mel → speech embedding → one head per model and
    puts ``embedding`` (the 96-float vector) and ``wakeword`` (``{model: score}``) into
    ``ctx.features`` at the end time of the audio each embedding saw. ``engine="micro"`` runs
    microWakeWord's int8 streaming models instead (less CPU) and puts only ``wakeword``.

    ``threshold``: one value for all models or ``{model: value}``; unset models (or ``None``)
    get 0.5 for openWakeWord heads and each microWakeWord model's own cutoff.

    A ``wake_word`` event's ``t_start``/``t_end`` are the 16 hops (1.28 s) of audio whose
    embeddings the head saw, ending at the newest audio in its input (each embedding also
    reaches 0.7 s further back). With ``engine="micro"`` ``t_end`` is the end of the hop that
    fired.
    """

    def __init__(
        self,
        models: list[str | Path],
        threshold: float | dict[str, float] | None = None,
        refractory_s: float = 2.0,
        backend: str = "auto",
        num_threads: int = 1,
        engine: str = "openwakeword",
        name: str = "wakeword",
    ) -> None:
        if engine not in WAKE_ENGINES:
            raise ConfigError(
                f"unknown wake-word engine {engine!r}", f"use one of: {', '.join(WAKE_ENGINES)}"
            )
        self.name = name
        self.engine = engine
        self.embedder: SpeechEmbedder | None = None
        self.detector: WakeWordDetector | None = None
        self.micro: MicroWakeWordDetector | None = None
        if engine == "openwakeword":
            self.embedder = SpeechEmbedder(backend=backend, num_threads=num_threads)
            self.detector = WakeWordDetector(
                models,
                0.5 if threshold is None else threshold,
                refractory_s,
                prefill=self.embedder.silence_embedding,
                backend=backend,
                num_threads=num_threads,
            )
            self.names = self.detector.names
            self.thresholds = self.detector.thresholds
        else:
            self.micro = MicroWakeWordDetector(
                models, threshold, refractory_s, backend, num_threads
            )
            self.names = self.micro.names
            self.thresholds = self.micro.thresholds
        self._origin = 0
        self._next: int | None = None
        self.detections = 0

    def _continuity(self, start: int) -> None:
        if self._next == start:
            return
        if self.embedder is not None and self.detector is not None:
            self.embedder.reset()
            self.detector.reset()
        if self.micro is not None:
            self.micro.reset()
        self._origin = start

    def process_audio(self, hop: np.ndarray, start: int, ctx: StageContext) -> None:
        self._continuity(start)
        self._next = start + hop.shape[0]
        if self.embedder is not None and self.detector is not None:
            self._openwakeword(hop, ctx)
        elif self.micro is not None:
            self._micro(hop, ctx)

    def _openwakeword(self, hop: np.ndarray, ctx: StageContext) -> None:
        assert self.embedder is not None and self.detector is not None
        embeddings = self.embedder.feed(hop)
        first = self.embedder.hops - embeddings.shape[0]
        sr = ctx.sample_rate
        for i, e in enumerate(embeddings):
            fired = self.detector.push(e)
            t_end = (self._origin + SpeechEmbedder.span(first + i)[1]) / sr
            ctx.features.put("embedding", t_end, e.copy())
            ctx.features.put(
                "wakeword", t_end, dict(zip(self.names, self.detector.scores.tolist(), strict=True))
            )
            for d in fired:
                self._emit(d, t_end, ctx)

    def _micro(self, hop: np.ndarray, ctx: StageContext) -> None:
        assert self.micro is not None
        fired = self.micro.feed(hop)
        t_end = (self._next or 0) / ctx.sample_rate
        ctx.features.put(
            "wakeword", t_end, dict(zip(self.names, self.micro.scores.tolist(), strict=True))
        )
        for d in fired:
            self._emit(d, t_end, ctx)

    def _emit(self, d: WakeWordDetection, t_end: float, ctx: StageContext) -> None:
        self.detections += 1
        ctx.emit(
            "wake_word",
            d.name,
            t_end - HEAD_EMBEDDINGS * HOP_SAMPLES / ctx.sample_rate,
            t_end,
            score=d.score,
            data={"threshold": d.threshold},
            source="audio.wakeword",
        )


class VadStage:
    """Voice activity: ``vad`` events ``speech_start`` / ``speech_end`` and a per-hop ``vad``
    feature (the speech probability, at the hop's end time).

    ``speech_start`` is dated at the onset (``t_start == t_end``); ``speech_end`` spans the
    whole segment. Decisions wait ``min_speech_s`` / ``min_silence_s`` (the hangover).
    """

    def __init__(
        self,
        threshold: float = 0.5,
        min_speech_s: float = 0.25,
        min_silence_s: float = 0.5,
        backend: str = "silero",
        neg_threshold: float | None = None,
        name: str = "vad",
    ) -> None:
        self.name = name
        self.vad = VoiceActivityDetector(backend)
        self.segmenter = SpeechSegmenter(threshold, min_speech_s, min_silence_s, neg_threshold)
        self._next: int | None = None
        self._hop_start = 0

    def process_audio(self, hop: np.ndarray, start: int, ctx: StageContext) -> None:
        if self._next != start:
            self.vad.reset()
            self.segmenter.reset()
            self._hop_start = start
        self._next = start + hop.shape[0]
        sr = ctx.sample_rate
        for p in self.vad.feed(hop):
            t0 = self._hop_start / sr
            self._hop_start += self.vad.hop_samples
            t1 = self._hop_start / sr
            prob = float(p)
            ctx.features.put("vad", t1, prob)
            change = self.segmenter.push(prob, t0, t1)
            if change is not None:
                ctx.emit(
                    "vad",
                    change.label,
                    change.t_start,
                    change.t_end,
                    score=change.score,
                    source="audio.vad",
                )
