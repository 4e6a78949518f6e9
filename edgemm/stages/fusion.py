"""The fusion window stage: features → class scores → ``recognition`` events.

Once per window it assembles the feature vector (:class:`edgemm.fusion.FeatureAssembler`),
scores it with the configured method, and lets the :class:`edgemm.fusion.Decider` say when a
recognition starts. A ``recognition`` event (label the class, score the smoothed score) spans
the window that started it and carries ``contributions`` — each modality's share of the
class's score — and ``method``. The last vector and scores stay readable as ``last_vector``
and ``last_scores`` (for tools and the dashboard).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..fusion import (
    MODALITIES,
    ConcatHead,
    Decider,
    DeciderSettings,
    FeatureAssembler,
    FeatureLayout,
    RuleSet,
    Scores,
    WeightedSum,
)
from .base import StageContext, Window


class FusionStage:
    name = "fusion"

    def __init__(
        self,
        method: ConcatHead | WeightedSum | RuleSet,
        layout: FeatureLayout,
        decider: DeciderSettings,
        intent_decay_s: float = 3.0,
        quiet: str | None = "idle",
    ) -> None:
        self.head = method
        self.assembler = FeatureAssembler(layout, intent_decay_s)
        self.classes = tuple(method.classes)
        self.decider = Decider(self.classes, decider, quiet if quiet in self.classes else None)
        self.last_vector: np.ndarray = self.assembler.vec
        self.last_scores: Scores | None = None
        self.recognitions = 0

    def process_window(self, window: Window, ctx: StageContext) -> None:
        vec = self.assembler.assemble(ctx.features, window)
        sc = self.head.scores(vec, explain=False)
        self.last_scores = sc
        d = self.decider.update(sc.probs, window.t_start, window.t_end)
        if d is None:
            return
        k = self.classes.index(d.cls)
        if not sc.contributions:
            sc = self.head.scores(vec, explain=True)
        contributions = {m: round(float(sc.contributions[m][k]), 4) for m in MODALITIES}
        self.recognitions += 1
        data: dict[str, Any] = {
            "contributions": contributions,
            "method": self.head.method,
            "probability": round(float(sc.probs[k]), 4),
        }
        ctx.emit(
            "recognition",
            d.cls,
            d.t_start,
            d.t_end,
            score=round(d.score, 4),
            data=data,
            source=f"fusion.{self.head.method}",
        )


def build_fusion_stage(cfg: Any) -> FusionStage:
    """The fusion stage for a :class:`edgemm.config.Config` (its ``fusion`` section)."""
    from ..errors import ConfigError
    from ..fusion import DEFAULT_PROFILES, DEFAULT_RULES, ClassProfile

    fc = cfg.fusion
    if fc.k > fc.n:
        raise ConfigError(f"fusion.k ({fc.k}) is larger than fusion.n ({fc.n})")
    settings = DeciderSettings(
        smoothing=fc.smoothing,
        ema_alpha=fc.ema_alpha,
        k=fc.k,
        n=fc.n,
        threshold=fc.threshold,
        thresholds=dict(fc.thresholds),
        hysteresis=fc.hysteresis,
        refractory_s=fc.refractory_s,
    )
    ww = cfg.stages.wakeword
    wake = tuple(Path(str(m)).stem for m in ww.models) if ww.enabled else ()
    layout = FeatureLayout(wake_models=wake, intents=tuple(cfg.intents.define))
    method: ConcatHead | WeightedSum | RuleSet
    if fc.method == "concat":
        method = ConcatHead(fc.model, backend=cfg.runtime.backend)
        layout = method.layout
    elif fc.method == "weighted_sum":
        profiles = (
            tuple(
                ClassProfile(name, dict(c.audio), dict(c.vision), dict(c.text))
                for name, c in fc.classes.items()
            )
            if fc.classes
            else DEFAULT_PROFILES
        )
        method = WeightedSum(layout, fc.weights, profiles)
    else:
        rules = tuple((r.label, tuple(r.when)) for r in fc.rules) if fc.rules else DEFAULT_RULES
        method = RuleSet(layout, rules, default=fc.default_class)
    for c in fc.thresholds:
        if c not in method.classes:
            raise ConfigError(
                f"fusion.thresholds.{c}: no such class", f"classes: {', '.join(method.classes)}"
            )
    return FusionStage(method, layout, settings, cfg.intents.decay_s, quiet=fc.default_class)
