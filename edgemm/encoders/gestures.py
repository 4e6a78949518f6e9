"""Rule-based static hand gestures from 21 hand landmarks.

Each finger is judged *extended*, *curled* or unclear from its joint bend angles and from
whether its tip lies beyond its middle joint as seen from the wrist; lengths are relative to
the palm (wrist → middle-finger knuckle), so the rules do not depend on the hand's size,
position or in-plane rotation. Only ``thumbs_up`` looks at the image's "up" direction.

Landmark order (MediaPipe): 0 wrist; thumb 1-4 (CMC, MCP, IP, tip); index 5-8, middle 9-12,
ring 13-16, pinky 17-20 (MCP, PIP, DIP, tip). Coordinates are (x, y[, z]) with y down; z, when
given, is in the same units as x (as :class:`edgemm.encoders.hands.Hand` provides it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

GESTURES = ("open_palm", "fist", "thumbs_up", "pointing", "victory")
FINGERS = ("thumb", "index", "middle", "ring", "pinky")

EXTENDED, UNCLEAR, CURLED = 1, 0, -1

WRIST = 0
THUMB = (1, 2, 3, 4)
LONG_FINGERS = ((5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))
PALM = (0, 5, 9, 13, 17)


@dataclass(frozen=True)
class GestureRules:
    """Thresholds (degrees, or fractions of the palm length)."""

    straight_deg: float = 50.0  # a finger whose PIP+DIP bends stay below this is straight
    curled_deg: float = 100.0  # ... above this is curled
    thumb_straight_deg: float = 45.0
    thumb_out: float = 0.7  # thumb tip this far from the palm centre counts as out
    thumb_in: float = 0.55  # ... closer than this counts as tucked
    thumb_up_deg: float = 50.0  # max angle between the thumb and the image's up direction


def _bend(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
    """Angle in degrees between segments a→b and b→c (0 = straight)."""
    u, v = b - a, c - b
    nu, nv = float(np.linalg.norm(u)), float(np.linalg.norm(v))
    if nu < 1e-9 or nv < 1e-9:
        return 0.0
    cos = float(np.dot(u, v)) / (nu * nv)
    return float(np.degrees(np.arccos(max(-1.0, min(1.0, cos)))))


def finger_states(landmarks: np.ndarray, rules: GestureRules | None = None) -> tuple[int, ...]:
    """(thumb, index, middle, ring, pinky), each EXTENDED (1), UNCLEAR (0) or CURLED (-1)."""
    r = rules or GestureRules()
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape[0] != 21 or lm.shape[1] not in (2, 3):
        raise ValueError(f"expected (21, 2) or (21, 3) landmarks, got {lm.shape}")
    wrist = lm[WRIST]
    palm = float(np.linalg.norm(lm[9] - wrist))
    if palm < 1e-6:
        return (UNCLEAR,) * 5
    states = [_thumb_state(lm, palm, r)]
    for mcp, pip, dip, tip in LONG_FINGERS:
        bend = _bend(lm[mcp], lm[pip], lm[dip]) + _bend(lm[pip], lm[dip], lm[tip])
        beyond = np.linalg.norm(lm[tip] - wrist) > np.linalg.norm(lm[pip] - wrist)
        if bend < r.straight_deg and beyond:
            states.append(EXTENDED)
        elif bend > r.curled_deg or not beyond:
            states.append(CURLED)
        else:
            states.append(UNCLEAR)
    return tuple(states)


def _thumb_state(lm: np.ndarray, palm: float, r: GestureRules) -> int:
    cmc, mcp, ip, tip = (lm[i] for i in THUMB)
    bend = _bend(cmc, mcp, ip) + _bend(mcp, ip, tip)
    centre = lm[list(PALM)].mean(axis=0)
    reach = float(np.linalg.norm(tip - centre)) / palm
    if bend < r.thumb_straight_deg and reach > r.thumb_out:
        return EXTENDED
    if reach < r.thumb_in or bend > 2 * r.thumb_straight_deg:
        return CURLED
    return UNCLEAR


def thumb_points_up(landmarks: np.ndarray, max_deg: float) -> bool:
    """Whether the thumb (MCP → tip) points up in the image within ``max_deg``."""
    d = np.asarray(landmarks[4][:2], np.float64) - np.asarray(landmarks[2][:2], np.float64)
    n = float(np.hypot(d[0], d[1]))
    if n < 1e-9:
        return False
    return float(np.degrees(np.arccos(max(-1.0, min(1.0, -d[1] / n))))) <= max_deg


def classify_gesture(landmarks: np.ndarray, rules: GestureRules | None = None) -> str | None:
    """One of :data:`GESTURES`, or None when the hand shows none of them clearly."""
    r = rules or GestureRules()
    thumb, index, middle, ring, pinky = finger_states(landmarks, r)
    fingers = (index, middle, ring, pinky)
    if thumb == EXTENDED and all(f == EXTENDED for f in fingers):
        return "open_palm"
    if all(f == CURLED for f in fingers):
        if thumb == CURLED:
            return "fist"
        if thumb == EXTENDED and thumb_points_up(landmarks, r.thumb_up_deg):
            return "thumbs_up"
        return None
    if ring == CURLED and pinky == CURLED and index == EXTENDED:
        if middle == EXTENDED and thumb != EXTENDED:
            return "victory"
        if middle == CURLED:
            return "pointing"
    return None
