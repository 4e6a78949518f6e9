"""Text intents: the third modality, from speech transcripts.

An intent has example phrases and/or keywords and optional slots (a number, or one word of a
list). :class:`IntentMatcher` scores a transcript against every intent with a similarity that
tolerates small speech-recognition errors and works for Korean (Hangul) as well as English:

* word level — a soft F-score where every word counts by its best fuzzy match (character
  bigram Dice) in the other phrase, so ``light`` still matches ``lights``;
* character level — Dice over character 2- and 3-grams of the phrase without spaces, with
  Hangul syllables decomposed into jamo, so ``오늘 날시 어때 요`` still matches ``오늘 날씨
  어때요`` (a wrong consonant and different spacing);
* keywords — an intent whose keyword occurs in the text (fuzzily) scores at least that match.

Slot values found in the text are swapped for the example's ``{slot}`` placeholder before
scoring, so ``turn on the {room} light`` matches ``turn on the kitchen light`` exactly.

For fusion, the speech stage stores the latest utterance's score vector in the feature store
under ``"intent"``; :func:`decayed_scores` reads it back for a window, decayed exponentially
with the time since the utterance ended.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .stages.base import FeatureStore, Window

FEATURE = "intent"
_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_NON_WORD = re.compile(r"[^\w\uE000-\uF8FF]+")
_TOKEN_MIN_SIM = 0.5  # word similarity below this counts as no match
_SLOT_MIN_SIM = 0.75


# ------------------------------------------------------------------------------ records


@dataclass(frozen=True)
class SlotSpec:
    """A slot: ``kind`` ``"number"`` (digits, English or Korean number words) or ``"words"``
    (one of ``words``, matched fuzzily; the value reported is the configured spelling)."""

    name: str
    kind: str = "words"
    words: tuple[str, ...] = ()


@dataclass(frozen=True)
class IntentSpec:
    name: str
    examples: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    slots: tuple[SlotSpec, ...] = ()


@dataclass(frozen=True)
class IntentMatch:
    name: str
    score: float
    slots: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------ text helpers


def normalize(text: str) -> str:
    """NFKC, lower case, punctuation to spaces, single spaces."""
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(_NON_WORD.sub(" ", text).split())


def _grams(s: str, sizes: Iterable[int]) -> frozenset[str]:
    padded = f"^{s}$"
    out: set[str] = set()
    for n in sizes:
        out.update(padded[i : i + n] for i in range(max(1, len(padded) - n + 1)))
    return frozenset(out)


def _dice(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    return 2.0 * len(a & b) / (len(a) + len(b))


def _jamo(s: str) -> str:
    """Hangul syllables → conjoining jamo (NFD); other scripts lose only their accents' form."""
    return unicodedata.normalize("NFD", s)


def word_similarity(a: str, b: str) -> float:
    """1.0 for equal words, else Dice over character bigrams (Hangul as jamo)."""
    if a == b:
        return 1.0
    return _dice(_grams(_jamo(a), (2,)), _grams(_jamo(b), (2,)))


def char_similarity(a: str, b: str) -> float:
    """Dice over character 2- and 3-grams of both texts without spaces (Hangul as jamo)."""
    ca, cb = _jamo(a.replace(" ", "")), _jamo(b.replace(" ", ""))
    if ca == cb:
        return 1.0
    return _dice(_grams(ca, (2, 3)), _grams(cb, (2, 3)))


def _soft_f(example: Sequence[str], text: Sequence[str]) -> float:
    if not example or not text:
        return 0.0

    def best(w: str, pool: Sequence[str]) -> float:
        s = max(word_similarity(w, p) for p in pool)
        return s if s >= _TOKEN_MIN_SIM else 0.0

    recall = sum(best(w, text) for w in example) / len(example)
    precision = sum(best(w, example) for w in text) / len(text)
    if recall + precision == 0.0:
        return 0.0
    # recall weighs more: people add words ("please") more often than they drop them
    return 5.0 * precision * recall / (4.0 * precision + recall)


# ------------------------------------------------------------------------------ numbers

_EN_UNITS = {
    w: i
    for i, w in enumerate([
        "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
        "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
        "eighteen", "nineteen",
    ])
}  # fmt: skip
_EN_TENS = {
    w: 10 * i
    for i, w in enumerate(
        ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"], 2
    )
}
_EN_SCALES = {"hundred": 100, "thousand": 1000}
_KO_DIGITS = dict(
    zip("영공일이삼사오육륙칠팔구", (0, 0, 1, 2, 3, 4, 5, 6, 6, 7, 8, 9), strict=True)
)
_KO_UNITS = {"십": 10, "백": 100, "천": 1000}
_KO_NATIVE_TENS = {"열": 10, "스물": 20, "스무": 20, "서른": 30, "마흔": 40, "쉰": 50}
_KO_NATIVE_UNITS = {
    "하나": 1, "한": 1, "둘": 2, "두": 2, "셋": 3, "세": 3, "넷": 4, "네": 4, "다섯": 5,
    "여섯": 6, "일곱": 7, "여덟": 8, "아홉": 9,
}  # fmt: skip
_KO_COUNTERS = ("퍼센트", "번", "도", "분", "시", "초", "개", "명", "살", "층", "호", "단계")
_DIGITS = re.compile(r"^(\d+(?:\.\d+)?)")


def _strip_counter(tok: str) -> str:
    for c in _KO_COUNTERS:
        if tok.endswith(c) and len(tok) > len(c):
            return tok[: -len(c)]
    return tok


def _korean_number(tok: str) -> int | None:
    tok = _strip_counter(tok)
    if all(ch in _KO_DIGITS or ch in _KO_UNITS or ch == "만" for ch in tok):
        if len(tok) == 1 and tok in _KO_DIGITS:
            return None  # a lone syllable such as 이 or 오 is far more often a word
        total = section = cur = 0
        for ch in tok:
            if ch in _KO_DIGITS:
                cur = _KO_DIGITS[ch]
            elif ch in _KO_UNITS:
                section += (cur or 1) * _KO_UNITS[ch]
                cur = 0
            else:  # 만
                total += (section + cur or 1) * 10000
                section = cur = 0
        return total + section + cur
    for tens, tv in [*_KO_NATIVE_TENS.items(), ("", 0)]:
        if tok.startswith(tens):
            rest = tok[len(tens) :]
            if rest == "" and tv:
                return tv
            if rest in _KO_NATIVE_UNITS:
                return tv + _KO_NATIVE_UNITS[rest]
    return None


def find_number(tokens: Sequence[str]) -> tuple[float, int, int] | None:
    """The first number in ``tokens``: (value, first token, end token)."""
    for i, tok in enumerate(tokens):
        m = _DIGITS.match(tok)
        if m:
            v = float(m.group(1))
            return v, i, i + 1
        if tok in _EN_UNITS or tok in _EN_TENS:
            total = cur = 0
            j = i
            while j < len(tokens):
                w = tokens[j]
                if w in _EN_UNITS:
                    cur += _EN_UNITS[w]
                elif w in _EN_TENS:
                    cur += _EN_TENS[w]
                elif w in _EN_SCALES and cur:
                    if _EN_SCALES[w] == 1000:
                        total += cur * 1000
                        cur = 0
                    else:
                        cur *= 100
                elif w == "and" and j + 1 < len(tokens) and tokens[j + 1] in _EN_UNITS | _EN_TENS:
                    pass
                else:
                    break
                j += 1
            return float(total + cur), i, j
        ko = _korean_number(tok)
        if ko is not None:
            return float(ko), i, i + 1
    return None


def _number_value(v: float) -> int | float:
    return int(v) if v.is_integer() else v


# ------------------------------------------------------------------------------ matcher


@dataclass(frozen=True)
class _Example:
    tokens: tuple[str, ...]
    compact: str


class IntentMatcher:
    """Scores transcripts against configured intents; ``match`` returns the best one."""

    def __init__(self, intents: Sequence[IntentSpec], threshold: float = 0.6) -> None:
        self.intents = tuple(intents)
        self.names = tuple(i.name for i in self.intents)
        self.threshold = threshold
        self._marks: dict[str, dict[str, str]] = {}
        self._examples: dict[str, tuple[_Example, ...]] = {}
        self._keywords: dict[str, tuple[str, ...]] = {}
        for it in self.intents:
            marks = {s.name: chr(0xE000 + k) for k, s in enumerate(it.slots)}
            self._marks[it.name] = marks
            exs = []
            for ex in it.examples:
                unknown = set(_PLACEHOLDER.findall(ex)) - set(marks)
                if unknown:
                    from .errors import ConfigError

                    raise ConfigError(
                        f"intent {it.name!r}: example {ex!r} uses undefined slot(s) "
                        f"{', '.join(sorted(unknown))}",
                        f"define them under intents.define.{it.name}.slots",
                    )
                text = normalize(_PLACEHOLDER.sub(lambda m, mk=marks: f" {mk[m.group(1)]} ", ex))
                exs.append(_Example(tuple(text.split()), text))
            self._examples[it.name] = tuple(exs)
            self._keywords[it.name] = tuple(normalize(k) for k in it.keywords if normalize(k))

    @classmethod
    def from_config(cls, intents: Mapping[str, Any], threshold: float = 0.6) -> IntentMatcher:
        """From ``cfg.intents.define`` (name → object with examples, keywords, slots)."""
        specs = [
            IntentSpec(
                name,
                tuple(ic.examples),
                tuple(ic.keywords),
                tuple(SlotSpec(sn, sc.type, tuple(sc.words)) for sn, sc in ic.slots.items()),
            )
            for name, ic in intents.items()
        ]
        return cls(specs, threshold)

    def _slots(self, it: IntentSpec, tokens: list[str]) -> tuple[dict[str, Any], list[str]]:
        """Find slot values; return them and the tokens with each value replaced by its mark."""
        found: dict[str, Any] = {}
        marks = self._marks[it.name]
        for slot in it.slots:
            if slot.kind == "number":
                hit = find_number(tokens)
                if hit is not None:
                    v, i, j = hit
                    found[slot.name] = _number_value(v)
                    tokens = [*tokens[:i], marks[slot.name], *tokens[j:]]
                continue
            best: tuple[float, str, int, int] | None = None
            for word in slot.words:
                wt = normalize(word).split()
                n = len(wt)
                for i in range(len(tokens) - n + 1):
                    s = word_similarity(" ".join(wt), " ".join(tokens[i : i + n]))
                    if s >= _SLOT_MIN_SIM and (best is None or s > best[0]):
                        best = (s, word, i, i + n)
            if best is not None:
                _, word, i, j = best
                found[slot.name] = word
                tokens = [*tokens[:i], marks[slot.name], *tokens[j:]]
        return found, tokens

    def _keyword_score(self, name: str, tokens: list[str]) -> float:
        compact = "".join(tokens)
        score = 0.0
        for kw in self._keywords[name]:
            if kw.replace(" ", "") in compact:
                return 1.0
            kt = kw.split()
            n = len(kt)
            for i in range(len(tokens) - n + 1):
                score = max(score, word_similarity(kw, " ".join(tokens[i : i + n])))
        return score if score >= _SLOT_MIN_SIM else 0.0

    def analyse(self, text: str) -> tuple[dict[str, float], dict[str, dict[str, Any]]]:
        """Scores in [0, 1] for every intent, and the slots found for each."""
        base = normalize(text).split()
        scores: dict[str, float] = {}
        slots: dict[str, dict[str, Any]] = {}
        for it in self.intents:
            found, tokens = self._slots(it, base) if it.slots else ({}, base)
            joined = " ".join(tokens)
            s = 0.0
            for ex in self._examples[it.name]:
                s = max(
                    s, 0.5 * _soft_f(ex.tokens, tokens) + 0.5 * char_similarity(ex.compact, joined)
                )
            if self._keywords[it.name]:
                s = max(s, self._keyword_score(it.name, tokens))
            scores[it.name] = round(s, 4)
            slots[it.name] = found
        return scores, slots

    def scores(self, text: str) -> dict[str, float]:
        return self.analyse(text)[0]

    def match(self, text: str) -> IntentMatch | None:
        """The best intent at or above the threshold, with its slots; None if none is."""
        if not self.intents or not text.strip():
            return None
        scores, slots = self.analyse(text)
        name = max(scores, key=lambda n: scores[n])
        if scores[name] < self.threshold:
            return None
        return IntentMatch(name, scores[name], slots[name])


# ------------------------------------------------------------------------------ fusion features


def decayed_scores(
    features: FeatureStore, t: float, decay_s: float, name: str = FEATURE
) -> dict[str, float]:
    """The latest utterance's intent scores (ended at or before ``t``), times
    ``exp(-(t - t_end) / decay_s)``; empty when no utterance has ended yet."""
    item = features.latest(name, before=t + 1e-9)
    if item is None:
        return {}
    t_end, scores = item
    w = math.exp(-max(0.0, t - t_end) / decay_s)
    return {k: v * w for k, v in scores.items()}


def window_scores(
    features: FeatureStore, window: Window, decay_s: float, names: Sequence[str] = ()
) -> dict[str, float]:
    """Per-window text features: :func:`decayed_scores` at the window's end. With ``names``,
    every name is present (0.0 when absent), in that order."""
    d = decayed_scores(features, window.t_end, decay_s)
    if not names:
        return d
    return {n: d.get(n, 0.0) for n in names}
