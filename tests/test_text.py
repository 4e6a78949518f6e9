"""Text intents: matching that tolerates small recognition errors, slots, decayed features."""

from __future__ import annotations

import math

import pytest

from edgemm.config import load_config
from edgemm.errors import ConfigError
from edgemm.stages.base import FeatureStore, Window
from edgemm.text import (
    IntentMatcher,
    IntentSpec,
    SlotSpec,
    char_similarity,
    decayed_scores,
    find_number,
    normalize,
    window_scores,
)

ROOMS = SlotSpec("room", "words", ("kitchen", "bedroom", "living room", "거실", "부엌"))
INTENTS = [
    IntentSpec(
        "lights_on",
        ("turn on the {room} light", "switch the lights on", "불 을 켜 주세요", "{room} 불 켜 줘"),
        slots=(ROOMS,),
    ),
    IntentSpec("weather", ("what is the weather like today", "오늘 날씨 어때요")),
    IntentSpec("greeting", ("hello there", "안녕하세요")),
    IntentSpec(
        "volume",
        ("set the volume to {level}", "볼륨 {level} 으로 해 줘"),
        slots=(SlotSpec("level", "number"),),
    ),
    IntentSpec("stop", keywords=("stop", "그만")),
]


@pytest.fixture(scope="module")
def matcher() -> IntentMatcher:
    return IntentMatcher(INTENTS, threshold=0.6)


@pytest.mark.parametrize(
    ("heard", "intent"),
    [
        ("turn on the kitchen lights", "lights_on"),  # plural
        ("turn of the kitchen light", "lights_on"),  # "on" heard as "of"
        ("what is the whether like today", "weather"),  # homophone
        ("hello their", "greeting"),
        ("오늘 날시 어때 요", "weather"),  # ㅆ heard as ㅅ, different spacing
        ("불을 켜 주새요", "lights_on"),  # ㅔ heard as ㅐ, particle joined
        ("안녕 하세요", "greeting"),  # split word
        ("볼륨 삼십 으로 해 줘", "volume"),
        ("please stop now", "stop"),
        ("이제 그만해", "stop"),
    ],
)
def test_one_recognition_error_still_finds_the_intent(
    matcher: IntentMatcher, heard: str, intent: str
) -> None:
    m = matcher.match(heard)
    assert m is not None and m.name == intent, matcher.scores(heard)
    others = {k: v for k, v in matcher.scores(heard).items() if k != intent}
    assert max(others.values()) < matcher.threshold <= m.score


@pytest.mark.parametrize("heard", ["and now the news", "오후 아홉 시 뉴스", "", "   "])
def test_unrelated_text_matches_nothing(matcher: IntentMatcher, heard: str) -> None:
    assert matcher.match(heard) is None


def test_slots_words_and_numbers(matcher: IntentMatcher) -> None:
    m = matcher.match("turn on the bedrom light")  # misspelt slot value → configured spelling
    assert m is not None and m.slots == {"room": "bedroom"} and m.score > 0.9
    m = matcher.match("turn on the living room light")
    assert m is not None and m.slots == {"room": "living room"}
    m = matcher.match("거실 불 켜 줘")
    assert m is not None and m.name == "lights_on" and m.slots == {"room": "거실"}
    for text, value in [
        ("set the volume to thirty five", 35),
        ("set the volume to 70", 70),
        ("set the volume to one hundred and five", 105),
        ("볼륨 삼십오 으로 해 줘", 35),
        ("볼륨 열다섯 으로 해 줘", 15),
    ]:
        m = matcher.match(text)
        assert m is not None and m.name == "volume" and m.slots == {"level": value}, text


def test_number_parser_edge_cases() -> None:
    assert find_number(["it", "is", "3.5", "degrees"]) == (3.5, 2, 3)
    assert find_number(["이", "방"]) is None  # a lone 이 is the word "this"
    assert find_number(["이십도"]) == (20.0, 0, 1)
    assert find_number(["천오백"]) == (1500.0, 0, 1)
    assert find_number(["twenty", "one", "pilots"]) == (21.0, 0, 2)
    assert find_number(["no", "numbers", "here"]) is None


def test_normalization_and_spacing() -> None:
    assert normalize("  Turn ON, the  Lights! ") == "turn on the lights"
    assert char_similarity("오늘 날씨 어때 요", "오늘날씨어때요") == 1.0
    assert char_similarity("turn on", "xyz") == 0.0


def test_from_config_and_validation(tmp_path) -> None:
    cfg = load_config(
        {
            "intents": {
                "threshold": 0.5,
                "define": {
                    "greeting": {"examples": ["hello"]},
                    "dim": {
                        "examples": ["dim to {pct} percent"],
                        "slots": {"pct": {"type": "number"}},
                    },
                },
            }
        }
    )
    m = IntentMatcher.from_config(cfg.intents.define, cfg.intents.threshold)
    assert m.names == ("greeting", "dim") and m.threshold == 0.5
    hit = m.match("dim to forty percent")
    assert hit is not None and hit.name == "dim" and hit.slots == {"pct": 40}
    with pytest.raises(ConfigError, match="intents.define.empty"):
        load_config({"intents": {"define": {"empty": {}}}})
    with pytest.raises(ConfigError, match="slots.room.words"):
        load_config({"intents": {"define": {"x": {"examples": ["a"], "slots": {"room": {}}}}}})
    with pytest.raises(ConfigError, match="undefined slot"):
        IntentMatcher([IntentSpec("x", ("go to {place}",))])


def test_decayed_window_scores() -> None:
    fs = FeatureStore()
    assert decayed_scores(fs, 5.0, 2.0) == {}
    fs.put("intent", 4.0, {"weather": 0.9, "greeting": 0.1})
    fs.put("intent", 10.0, {"weather": 0.2, "greeting": 0.8})
    d = decayed_scores(fs, 6.0, 2.0)  # the utterance that ended at 4 s, 2 s ago
    assert d["weather"] == pytest.approx(0.9 * math.exp(-1.0))
    w = window_scores(fs, Window(0, 9.5, 10.5), 2.0, names=("greeting", "weather", "stop"))
    assert list(w) == ["greeting", "weather", "stop"]
    assert w["greeting"] == pytest.approx(0.8 * math.exp(-0.25)) and w["stop"] == 0.0
    assert window_scores(fs, Window(0, 0.0, 3.0), 2.0) == {}  # nothing said before 3 s
