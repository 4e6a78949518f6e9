"""Rule-based gestures on hand landmark arrays built from a simple hand skeleton.

The skeleton is a right hand, palm towards the camera, in palm-length units: joint positions
come from segment lengths and per-joint flexion (fingers fold towards the camera, z negative,
as in MediaPipe's landmark frame). Each pose is checked upright and after in-plane rotation,
a turn of the hand about the vertical axis, scaling and translation, and each gesture has a
near-miss that must not be reported as it.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgemm.encoders.gestures import (
    CURLED,
    EXTENDED,
    GESTURES,
    classify_gesture,
    finger_states,
)

# Knuckle (MCP) positions, splay (degrees, + towards the pinky side) and segment lengths.
_MCP = {
    "index": (-0.35, -0.95),
    "middle": (0.0, -1.0),
    "ring": (0.3, -0.95),
    "pinky": (0.55, -0.85),
}
_SPLAY = {"index": -8.0, "middle": 0.0, "ring": 7.0, "pinky": 15.0}
_LEN = {
    "index": (0.45, 0.27, 0.2),
    "middle": (0.5, 0.3, 0.22),
    "ring": (0.46, 0.28, 0.2),
    "pinky": (0.36, 0.21, 0.18),
}
_STRAIGHT = (5.0, 5.0, 3.0)  # relaxed, not perfectly straight
_CURL = (75.0, 100.0, 60.0)  # MCP, PIP, DIP flexion of a curled finger
_THUMB_CMC = np.array([-0.28, -0.25, 0.0])
_THUMB_LEN = (0.33, 0.28, 0.22)


def _finger(name: str, curled: bool) -> list[np.ndarray]:
    x, y = _MCP[name]
    p = np.array([x, y, 0.0])
    pts = [p]
    splay = math.radians(_SPLAY[name])
    flex = 0.0
    for length, bend in zip(_LEN[name], _CURL if curled else _STRAIGHT, strict=True):
        flex += math.radians(bend)
        d = np.array(
            [math.sin(splay) * math.cos(flex), -math.cos(splay) * math.cos(flex), -math.sin(flex)]
        )
        p = p + length * d
        pts.append(p)
    return pts


def _thumb(pose: str) -> list[np.ndarray]:
    """'out' (spread, as in an open palm), 'side' (90° from the palm axis, as in thumbs up
    once the hand is turned), 'tucked' (folded across the palm, as in a fist)."""
    if pose == "tucked":
        angles, dz = (-40.0, 10.0, 60.0), -0.12
    else:
        a = -45.0 if pose == "out" else -90.0
        angles, dz = (a, a + 3.0, a + 5.0), 0.0
    p = _THUMB_CMC.copy()
    pts = [p]
    for length, ang in zip(_THUMB_LEN, angles, strict=True):
        t = math.radians(ang)
        d = np.array([math.sin(t), -math.cos(t), dz])
        p = p + length * d / np.linalg.norm(d)
        pts.append(p)
    return pts


def hand(thumb: str, index: bool, middle: bool, ring: bool, pinky: bool) -> np.ndarray:
    """(21, 3) landmarks; the booleans say which long fingers are extended."""
    lm = [np.zeros(3)]
    lm += _thumb(thumb)
    for name, ext in (("index", index), ("middle", middle), ("ring", ring), ("pinky", pinky)):
        lm += _finger(name, not ext)
    return np.array(lm)


def transform(
    lm: np.ndarray,
    roll_deg: float = 0.0,
    yaw_deg: float = 0.0,
    scale: float = 1.0,
    shift: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Turn about the vertical axis (yaw), rotate in the image plane (roll, clockwise on
    screen), scale and move; z scales with x and y as in MediaPipe's landmarks."""
    a = math.radians(yaw_deg)
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    b = math.radians(roll_deg)
    rz = np.array([[math.cos(b), -math.sin(b), 0], [math.sin(b), math.cos(b), 0], [0, 0, 1]])
    out = lm @ ry.T @ rz.T * scale
    out[:, 0] += shift[0]
    out[:, 1] += shift[1]
    return out


POSES = {
    "open_palm": hand("out", True, True, True, True),
    "fist": hand("tucked", False, False, False, False),
    # The thumb sticks out sideways from a fist; rolled by 90° (clockwise) it points up.
    "thumbs_up": transform(hand("side", False, False, False, False), roll_deg=90.0),
    "pointing": hand("tucked", True, False, False, False),
    "victory": hand("tucked", True, True, False, False),
}

VARIANTS = [
    {},
    {"roll_deg": 25.0},
    {"roll_deg": -35.0},
    {"yaw_deg": 30.0},
    {"scale": 0.2, "shift": (40.0, 60.0)},
    {"scale": 180.0, "shift": (320.0, 240.0), "roll_deg": 15.0},
]


def test_every_gesture_has_a_pose() -> None:
    assert set(POSES) == set(GESTURES)


@pytest.mark.parametrize(
    "variant", VARIANTS, ids=lambda v: ",".join(f"{k}={x}" for k, x in v.items()) or "upright"
)
@pytest.mark.parametrize("gesture", GESTURES)
def test_gesture_recognized(gesture: str, variant: dict) -> None:
    lm = transform(POSES[gesture], **variant)
    assert classify_gesture(lm) == gesture
    assert classify_gesture(lm[:, :2]) == gesture  # without z as well


def test_finger_states_of_fist_and_palm() -> None:
    assert finger_states(POSES["open_palm"]) == (EXTENDED,) * 5
    assert finger_states(POSES["fist"]) == (CURLED,) * 5


@pytest.mark.parametrize(
    ("gesture", "near_miss"),
    [
        ("open_palm", hand("out", True, True, False, True)),  # ring finger folded
        ("fist", hand("out", False, False, False, False)),  # thumb spread out
        ("thumbs_up", transform(hand("side", False, False, False, False), roll_deg=-90.0)),  # down
        ("thumbs_up", hand("side", False, False, False, False)),  # thumb pointing sideways
        ("pointing", hand("tucked", True, True, False, False)),  # two fingers: victory
        ("victory", hand("tucked", True, True, True, False)),  # three fingers
    ],
    ids=[
        "palm-ring-folded",
        "fist-thumb-out",
        "thumbs-down",
        "thumb-sideways",
        "two-fingers",
        "three-fingers",
    ],
)
def test_near_miss_is_not_the_gesture(gesture: str, near_miss: np.ndarray) -> None:
    for variant in VARIANTS[:3]:
        assert classify_gesture(transform(near_miss, **variant)) != gesture


def test_three_fingers_is_no_gesture() -> None:
    assert classify_gesture(hand("tucked", True, True, True, False)) is None


def test_degenerate_input() -> None:
    assert classify_gesture(np.zeros((21, 3))) is None
    with pytest.raises(ValueError):
        finger_states(np.zeros((20, 3)))
