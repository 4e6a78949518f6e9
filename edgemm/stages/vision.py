"""Vision stages: face presence (with optional face mesh) and hand gestures.

* :class:`FaceStage` — BlazeFace on every frame it is given (up to ``max_fps``); ``presence``
  events (label ``face``, source ``vision.face``) when the number of faces changes and the new
  state has held for ``on_s`` (appearing, or a different count) or ``off_s`` (gone); per-frame
  features under ``"face"``. With ``mesh`` the largest face also gets the face mesh, whose
  face flag must confirm it (this rejects close-ups of face parts the detector alone fires on)
  and which adds ``mouth_open`` and a mesh-based ``frontalness``.
* :class:`HandStage` — palm detection + hand landmarks with tracking on every ``every_k``-th
  frame; ``gesture`` events (label the gesture, source ``vision.hands``) once a gesture has been
  seen on the same hand for ``hold_frames`` processed frames, again only after it changed;
  per-frame features under ``"gesture"``.

Models are loaded on first use, on the thread that runs the stage (or by calling ``load()``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..encoders.face import FaceDetection, FaceDetector, FaceMesh, landmark_box, mesh_roi
from ..encoders.gestures import GestureRules, classify_gesture
from ..encoders.hands import Hand, HandTracker
from ..encoders.vision import RotatedRect
from ..errors import ConfigError
from .base import Frame, StageContext


class FaceStage:
    name = "face"

    def __init__(
        self,
        min_score: float = 0.5,
        on_s: float = 0.2,
        off_s: float = 0.5,
        mesh: bool = False,
        max_fps: float = 15.0,
        every_k: int = 1,
        backend: str = "auto",
        num_threads: int = 1,
        min_presence: float = 0.5,
        detector_model: str | Path | None = None,
        mesh_model: str | Path | None = None,
        detect_every: int = 1,
    ) -> None:
        if detect_every > 1 and not mesh:
            raise ConfigError(
                "stages.face.detect_every > 1 tracks faces with the face mesh",
                "set stages.face.mesh: true, or detect_every: 1",
            )
        self.detect_every = detect_every
        self.min_score = min_score
        self.on_s = on_s
        self.off_s = off_s
        self.mesh = mesh
        self.max_fps = max_fps
        self.every_k = every_k
        self.backend = backend
        self.num_threads = num_threads
        self.min_presence = min_presence
        self._paths = (detector_model, mesh_model)
        self.detector: FaceDetector | None = None
        self.face_mesh: FaceMesh | None = None
        self.count = 0  # published state
        self._pending: int | None = None
        self._pending_since = 0.0
        # tracking (detect_every > 1): the next frame's mesh ROI, frames since the detector ran,
        # and what that detection saw besides the tracked face
        self._track: RotatedRect | None = None
        self._since_detect = 0
        self._last: dict[str, Any] = {}
        self._other_boxes: list[list[float]] = []
        self.detector_runs = 0
        self.tracked_frames = 0

    def load(self) -> None:
        if self.detector is None:
            self.detector = FaceDetector(
                self.min_score,
                model=self._paths[0],
                backend=self.backend,
                num_threads=self.num_threads,
            )
        if self.mesh and self.face_mesh is None:
            self.face_mesh = FaceMesh(
                self.min_presence,
                model=self._paths[1],
                backend=self.backend,
                num_threads=self.num_threads,
            )

    def process_frame(self, frame: Frame, ctx: StageContext) -> None:
        if self.detector is None:
            self.load()
        assert self.detector is not None
        image = frame.image
        features = self._tracked(image) if self._track is not None else None
        if features is None:
            faces = self.detector.detect(image)
            self.detector_runs += 1
            features = self._features(image, faces)
        ctx.features.put("face", frame.t, features)
        self._update(features["count"], features["score"], frame.t, ctx)

    def _tracked(self, image: Any) -> dict[str, Any] | None:
        """Between detections (``detect_every`` > 1) the face mesh follows the largest face
        from its own previous landmarks, as MediaPipe's face mesh does, and the detector is
        skipped. None when it is time to detect again or the mesh lost the face."""
        assert self.face_mesh is not None and self._track is not None
        if self._since_detect + 1 >= self.detect_every:
            return None
        m = self.face_mesh.process_roi(image, self._track)
        if m is None:
            self._track = None
            return None
        self._since_detect += 1
        self.tracked_frames += 1
        box = landmark_box(m.landmarks)
        self._track = mesh_roi(m.landmarks, box)
        h, w = image.shape[:2]
        x1, y1, x2, y2 = box
        feats = dict(self._last)  # the count and score of the last detection
        feats["mouth_open"] = m.mouth_open
        feats["frontalness"] = m.frontalness
        feats["area"] = (x2 - x1) * (y2 - y1) / float(w * h)
        feats["cx"] = (x1 + x2) / 2.0 / w
        feats["cy"] = (y1 + y2) / 2.0 / h
        feats["boxes"] = [[round(v, 1) for v in (x1, y1, x2, y2)], *self._other_boxes]
        return feats

    def _features(self, image: Any, faces: list[FaceDetection]) -> dict[str, Any]:
        self._track = None
        h, w = image.shape[:2]
        feats: dict[str, Any] = {
            "count": len(faces),
            "area": 0.0,
            "cx": 0.0,
            "cy": 0.0,
            "score": 0.0,
            "frontalness": 0.0,
            "mouth_open": 0.0,
        }
        if not faces:
            return feats
        largest = max(faces, key=lambda f: f.area)
        if self.face_mesh is not None:
            m = self.face_mesh.process(image, largest)
            if m is None:  # the mesh's face flag rejects it
                faces = [f for f in faces if f is not largest]
                feats["count"] = len(faces)
                if not faces:
                    return feats
                largest = max(faces, key=lambda f: f.area)
            else:
                feats["mouth_open"] = m.mouth_open
                feats["frontalness"] = m.frontalness
                if self.detect_every > 1:
                    self._track = mesh_roi(m.landmarks)
                    self._since_detect = 0
        if self.face_mesh is None or feats["frontalness"] == 0.0:
            feats["frontalness"] = largest.frontalness
        cx, cy = largest.center
        feats["boxes"] = [[round(float(v), 1) for v in f.box] for f in faces]
        feats["area"] = largest.area / float(w * h)
        feats["cx"] = cx / w
        feats["cy"] = cy / h
        feats["score"] = largest.score
        if self._track is not None:
            self._last = feats
            self._other_boxes = [
                b for f, b in zip(faces, feats["boxes"], strict=True) if f is not largest
            ]
        return feats

    def on_video_lost(self, t: float, ctx: StageContext) -> None:
        """No frames any more (camera gone): presence cannot be known; report it as off."""
        self._track = None  # the next frame may show anything: detect first
        self._pending = None
        if self.count:
            self.count = 0
            ctx.emit(
                "presence",
                "face",
                t,
                t,
                score=0.0,
                data={"present": False, "count": 0, "reason": "camera_lost"},
                source="vision.face",
            )

    def _update(self, observed: int, score: float, t: float, ctx: StageContext) -> None:
        if observed == self.count:
            self._pending = None
            return
        if observed != self._pending:  # a run of a new state starts
            self._pending = observed
            self._pending_since = t
        hold = self.off_s if observed == 0 else self.on_s
        if t - self._pending_since + 1e-9 < hold:
            return
        self.count = observed
        self._pending = None
        ctx.emit(
            "presence",
            "face",
            self._pending_since,
            t,
            score=score if observed else 1.0,
            data={"present": observed > 0, "count": observed},
            source="vision.face",
        )


class HandStage:
    name = "hands"

    def __init__(
        self,
        every_k: int = 2,
        max_fps: float = 15.0,
        min_score: float = 0.5,
        min_presence: float = 0.5,
        max_hands: int = 2,
        hold_frames: int = 3,
        mirrored: bool = False,
        backend: str = "auto",
        num_threads: int = 1,
        rules: GestureRules | None = None,
        palm_model: str | Path | None = None,
        landmark_model: str | Path | None = None,
        detect_every: int = 1,
    ) -> None:
        self.detect_every = detect_every
        self.every_k = every_k
        self.max_fps = max_fps
        self.min_score = min_score
        self.min_presence = min_presence
        self.max_hands = max_hands
        self.hold_frames = hold_frames
        self.mirrored = mirrored
        self.backend = backend
        self.num_threads = num_threads
        self.rules = rules or GestureRules()
        self._paths = (palm_model, landmark_model)
        self.tracker: HandTracker | None = None
        # per hand side: (candidate gesture, frames seen, since t, already emitted)
        self._runs: dict[str, tuple[str | None, int, float, bool]] = {}

    def load(self) -> None:
        if self.tracker is None:
            self.tracker = HandTracker(
                self.max_hands,
                self.min_score,
                self.min_presence,
                self.mirrored,
                palm_model=self._paths[0],
                landmark_model=self._paths[1],
                backend=self.backend,
                num_threads=self.num_threads,
                detect_every=self.detect_every,
            )

    def process_frame(self, frame: Frame, ctx: StageContext) -> None:
        if self.tracker is None:
            self.load()
        assert self.tracker is not None
        hands = self.tracker.process(frame.image)
        self.observe(hands, frame.t, ctx, frame.image.shape[1], frame.image.shape[0])

    def observe(
        self, hands: list[Hand], t: float, ctx: StageContext, width: int, height: int
    ) -> None:
        """Gesture debouncing and features for one processed frame's hands."""
        seen: dict[str, tuple[str | None, Hand]] = {}
        for hand in hands:
            if hand.handedness not in seen:
                seen[hand.handedness] = (classify_gesture(hand.landmarks, self.rules), hand)
        for side in ("left", "right"):
            gesture = seen[side][0] if side in seen else None
            prev, n, since, emitted = self._runs.get(side, (None, 0, t, False))
            if gesture != prev:
                prev, n, since, emitted = gesture, 0, t, False
            n += 1
            if gesture is not None and not emitted and n >= self.hold_frames:
                hand = seen[side][1]
                ctx.emit(
                    "gesture",
                    gesture,
                    since,
                    t,
                    score=hand.presence,
                    data={"hand": side},
                    source="vision.hands",
                )
                emitted = True
            self._runs[side] = (prev, n, since, emitted)
        ctx.features.put(
            "gesture",
            t,
            {
                "count": len(hands),
                "hands": [
                    {
                        "hand": h.handedness,
                        "gesture": g,
                        "presence": h.presence,
                        "cx": float(h.landmarks[:, 0].mean()) / width,
                        "cy": float(h.landmarks[:, 1].mean()) / height,
                    }
                    for g, h in seen.values()
                ],
            },
        )
