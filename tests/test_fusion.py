"""Fusion: feature assembly, the three methods, decisions, the committed head, the demo."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgemm.config import load_config
from edgemm.errors import ConfigError, ModelError
from edgemm.fusion import (
    DEFAULT_CLASSES,
    ConcatHead,
    Decider,
    DeciderSettings,
    FeatureAssembler,
    FeatureLayout,
    RuleSet,
    WeightedSum,
    cues,
    resolve_head,
)
from edgemm.stages.base import FeatureStore, Window
from edgemm.stages.fusion import build_fusion_stage

HELDOUT = Path(__file__).parent / "data" / "fusion_heldout.npz"
LAYOUT = FeatureLayout(wake_models=("hey_jarvis",), intents=("lights_on",))
W = Window(0, 10.0, 11.0)


def _face(count: int = 1, mouth: float = 0.1) -> dict[str, float]:
    return {
        "count": count,
        "area": 0.1 * count,
        "cx": 0.5,
        "cy": 0.4,
        "score": 0.9 if count else 0.0,
        "frontalness": 0.8 if count else 0.0,
        "mouth_open": mouth if count else 0.0,
    }


def _vector(
    speech: float = 0.0, wake: float = 0.0, face: float = 0.0, intent: float = 0.0
) -> np.ndarray:
    """A hand-built feature vector with the given cue values."""
    v = np.zeros(LAYOUT.size, np.float32)
    n = LAYOUT.names
    v[n.index("audio.present_vad")] = v[n.index("audio.present_wake")] = 1.0
    v[n.index("audio.vad_max")] = speech
    v[n.index("audio.vad_mean")] = speech * 0.8
    v[n.index("audio.wake.hey_jarvis")] = wake
    v[n.index("vision.present_face")] = 1.0
    v[n.index("vision.face_frac")] = face
    v[n.index("text.present")] = 1.0 if intent else 0.0
    v[n.index("text.intent.lights_on")] = intent
    return v


# ------------------------------------------------------------------------------ layout/assembly


def test_layout_has_named_contiguous_slices() -> None:
    assert len(set(LAYOUT.names)) == LAYOUT.size
    s = LAYOUT.slices
    assert s["audio"].start == 0 and s["audio"].stop == s["vision"].start
    assert s["vision"].stop == s["text"].start and s["text"].stop == LAYOUT.size
    assert all(n.startswith(m + ".") for m in s for n in LAYOUT.names[s[m]])
    assert FeatureLayout.from_dict(LAYOUT.to_dict()) == LAYOUT


def test_missing_modalities_give_zeros_not_a_crash() -> None:
    asm = FeatureAssembler(LAYOUT)
    v = asm.assemble(FeatureStore(), W)
    assert v.shape == (LAYOUT.size,) and not v.any()
    store = FeatureStore()
    for k in range(10):  # vision only: a camera-only kiosk
        store.put("face", 10.0 + k / 10, _face(1 if k < 6 else 0, mouth=0.2 + 0.02 * k))
    v = asm.assemble(store, W)
    assert not v[LAYOUT.slices["audio"]].any() and not v[LAYOUT.slices["text"]].any()
    n = LAYOUT.names
    assert v[n.index("vision.present_face")] == 1.0
    assert v[n.index("vision.face_frac")] == pytest.approx(0.6)
    mouths = np.array([0.2 + 0.02 * k for k in range(6)])
    assert v[n.index("vision.mouth_mean")] == pytest.approx(mouths.mean(), abs=1e-6)
    assert v[n.index("vision.mouth_var")] == pytest.approx(mouths.var(), abs=1e-6)


def test_assembler_reads_every_modality_inside_the_window() -> None:
    store = FeatureStore()
    rng = np.random.default_rng(0)
    embs = rng.normal(size=(12, 96)).astype(np.float32)
    for k, e in enumerate(embs):  # hops 9.6 .. 10.48: the first five fall before the window
        t = 9.6 + 0.08 * k
        store.put("embedding", t, e)
        store.put("vad", t, 0.1 * k)
        store.put("wakeword", t, {"hey_jarvis": 0.05 * k, "alexa": 0.9})
    store.put("gesture", 10.2, {"count": 1, "hands": [{"gesture": "open_palm"}]})
    store.put("gesture", 10.4, {"count": 0, "hands": []})
    store.put("intent", 9.0, {"lights_on": 0.9, "other": 0.5})  # utterance ended 2 s before
    v = FeatureAssembler(LAYOUT, intent_decay_s=2.0).assemble(store, W)
    n = LAYOUT.names
    inside = embs[5:]
    emb0 = n.index("audio.emb_mean.0")
    np.testing.assert_allclose(v[emb0 : emb0 + 96], inside.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(
        v[n.index("audio.emb_max.0") : n.index("audio.emb_max.0") + 96], inside.max(axis=0)
    )
    assert v[n.index("audio.vad_max")] == pytest.approx(1.1)
    assert v[n.index("audio.wake.hey_jarvis")] == pytest.approx(0.55)
    assert v[n.index("vision.gesture.open_palm")] == pytest.approx(0.5)
    assert v[n.index("vision.present_face")] == 0.0 and v[n.index("vision.present_hands")] == 1.0
    assert v[n.index("text.intent.lights_on")] == pytest.approx(0.9 * np.exp(-1.0), rel=1e-5)


# ------------------------------------------------------------------------------ weighted_sum


@pytest.mark.parametrize(
    ("cue", "expected"),
    [
        ({}, "idle"),
        ({"face": 1.0}, "person_present"),
        ({"face": 1.0, "speech": 1.0}, "person_speaking"),
        ({"speech": 0.95}, "speech_without_person"),
        ({"face": 0.9, "speech": 1.0, "wake": 0.97}, "wake_with_person"),
        ({"speech": 1.0, "wake": 0.8}, "wake_without_person"),
    ],
)
def test_weighted_sum_on_hand_built_vectors(cue: dict[str, float], expected: str) -> None:
    ws = WeightedSum(LAYOUT, {"audio": 0.5, "vision": 0.5})
    sc = ws.scores(_vector(**cue))
    assert ws.classes[int(np.argmax(sc.probs))] == expected
    total = sum(sc.contributions.values())
    np.testing.assert_allclose(total, sc.probs, atol=1e-6)  # F = Σ wᵢ·fᵢ, nothing else


def test_weighted_sum_weights_decide_between_modalities() -> None:
    # a face but no speech, while the wake head fires: audio says wake, vision says present
    v = _vector(face=1.0, wake=0.9, speech=0.0)
    audio_led = WeightedSum(LAYOUT, {"audio": 0.9, "vision": 0.1})
    vision_led = WeightedSum(LAYOUT, {"audio": 0.0, "vision": 1.0})
    assert audio_led.classes[int(np.argmax(audio_led.scores(v).probs))] == "wake_with_person"
    sc = vision_led.scores(v)
    assert not sc.contributions["audio"].any()
    assert sc.probs[vision_led.classes.index("person_present")] == pytest.approx(1.0)


def test_weighted_sum_rejects_bad_weights_and_cues() -> None:
    from edgemm.fusion import ClassProfile

    with pytest.raises(ConfigError, match="unknown modality"):
        WeightedSum(LAYOUT, {"smell": 1.0})
    with pytest.raises(ConfigError, match="all weights are 0"):
        WeightedSum(LAYOUT, {"audio": 0.0})
    with pytest.raises(ConfigError, match="unknown cue 'faces'"):
        WeightedSum(LAYOUT, {"vision": 1.0}, [ClassProfile("x", vision={"faces": 1})])


# ------------------------------------------------------------------------------ rules


def test_rules_first_match_wins_on_hand_built_vectors() -> None:
    rs = RuleSet(LAYOUT)
    pick = {
        "idle": _vector(speech=0.2),
        "person_present": _vector(face=0.8),
        "person_speaking": _vector(face=0.8, speech=0.9),
        "speech_without_person": _vector(face=0.2, speech=0.9),
        "wake_with_person": _vector(face=0.8, speech=0.9, wake=0.6),
        "wake_without_person": _vector(wake=0.6),
    }
    for expected, v in pick.items():
        sc = rs.scores(v)
        k = int(np.argmax(sc.probs))
        assert rs.classes[k] == expected and sc.probs[k] == 1.0
    sc = rs.scores(pick["wake_with_person"])
    k = rs.classes.index("wake_with_person")
    assert sc.contributions["audio"][k] == pytest.approx(0.5)
    assert sc.contributions["vision"][k] == pytest.approx(0.5)


def test_custom_rules_with_text_and_errors() -> None:
    rs = RuleSet(
        LAYOUT,
        [("lights", ("intent_lights_on >= 0.6", "face > 0.5")), ("noise", ("speech>=0.5",))],
        default="quiet",
    )
    assert rs.classes == ("quiet", "lights", "noise")
    assert rs.classes[int(np.argmax(rs.scores(_vector(face=1, intent=0.7)).probs))] == "lights"
    assert rs.classes[int(np.argmax(rs.scores(_vector(face=1, intent=0.5)).probs))] == "quiet"
    with pytest.raises(ConfigError, match="cannot read condition"):
        RuleSet(LAYOUT, [("x", ("face is big",))])
    with pytest.raises(ConfigError, match="unknown cue 'mouse'"):
        RuleSet(LAYOUT, [("x", ("mouse > 1",))])


def test_cues_read_the_named_features() -> None:
    c = cues(_vector(speech=0.7, wake=0.3, face=0.6, intent=0.4), LAYOUT)
    assert c["audio"]["speech"] == pytest.approx(0.7)
    assert c["audio"]["wake"] == c["audio"]["wake_hey_jarvis"] == pytest.approx(0.3)
    assert c["vision"]["face"] == pytest.approx(0.6)
    assert c["text"]["intent"] == pytest.approx(0.4)


# ------------------------------------------------------------------------------ decisions


def _run(decider: Decider, seq: list[str]) -> list[tuple[str, float]]:
    out = []
    for k, name in enumerate(seq):
        p = np.full(len(decider.classes), 0.02, np.float32)
        p[decider.classes.index(name)] = 0.9
        d = decider.update(p, k * 0.5, k * 0.5 + 1.0)
        if d is not None:
            out.append((d.cls, d.t_start))
    return out


def test_ema_smoothing_ignores_a_one_window_blip() -> None:
    d = Decider(DEFAULT_CLASSES, DeciderSettings(smoothing="ema", ema_alpha=0.4))
    seq = ["idle"] * 3 + ["person_present"] + ["idle"] * 3 + ["person_present"] * 4
    assert _run(d, seq) == [("person_present", 4.0)]


def test_k_of_n_and_refractory() -> None:
    s = DeciderSettings(smoothing="k_of_n", k=2, n=3, refractory_s=3.5)
    d = Decider(DEFAULT_CLASSES, s)
    seq = ["idle", "person_speaking", "idle", "person_speaking", "person_speaking"]
    seq += ["idle"] * 3 + ["person_speaking"] * 3  # back 3 s later: refractory, not announced
    seq += ["idle"] * 6 + ["person_speaking"] * 3  # back after a long pause: announced
    got = _run(d, seq)
    assert got == [("person_speaking", 1.5), ("person_speaking", 9.0)]


def test_hysteresis_keeps_the_active_class_until_another_clearly_leads() -> None:
    d = Decider(
        ("idle", "a", "b"), DeciderSettings(smoothing="none", threshold=0.5, hysteresis=0.15)
    )
    assert d.update(np.array([0.1, 0.8, 0.1], np.float32), 0, 1) is not None
    assert d.update(np.array([0.0, 0.45, 0.55], np.float32), 0.5, 1.5) is None  # a holds
    assert d.classes[d.active] == "a"
    got = d.update(np.array([0.0, 0.3, 0.7], np.float32), 1.0, 2.0)
    assert got is not None and got.cls == "b"


def test_quiet_class_is_never_announced() -> None:
    d = Decider(DEFAULT_CLASSES, DeciderSettings(smoothing="none"))
    assert _run(d, ["idle", "person_present", "idle"]) == [("person_present", 0.5)]


# ------------------------------------------------------------------------------ config


def test_fusion_config_builds_each_method() -> None:
    base = {"stages": {"wakeword": {"enabled": True}}}
    for method in ("weighted_sum", "rules", "concat"):
        cfg = load_config({**base, "fusion": {"enabled": True, "method": method}})
        st = build_fusion_stage(cfg)
        assert st.head.method == method
        assert set(st.classes) == set(DEFAULT_CLASSES)
    cfg = load_config(
        {
            "fusion": {
                "enabled": True,
                "method": "rules",
                "rules": [{"label": "someone", "when": ["face >= 0.5"]}],
                "thresholds": {"someone": 0.7},
            }
        }
    )
    st = build_fusion_stage(cfg)
    assert st.classes == ("idle", "someone")
    assert st.decider.th[1] == pytest.approx(0.7)


def test_fusion_config_errors() -> None:
    with pytest.raises(ConfigError, match="fusion.method"):
        load_config({"fusion": {"method": "average"}})
    with pytest.raises(ConfigError, match="larger than fusion.n"):
        build_fusion_stage(load_config({"fusion": {"method": "rules", "k": 4, "n": 3}}))
    with pytest.raises(ConfigError, match="thresholds.nobody: no such class"):
        build_fusion_stage(
            load_config({"fusion": {"method": "rules", "thresholds": {"nobody": 0.5}}})
        )


def test_missing_head_fails_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found") as e:
        ConcatHead(tmp_path / "nope.tflite")
    assert "\n" not in str(e.value)
    (tmp_path / "h.tflite").write_bytes(Path(resolve_head("fusion_default")).read_bytes())
    with pytest.raises(ModelError, match="sidecar h.yaml is missing"):
        ConcatHead(tmp_path / "h.tflite")


# ------------------------------------------------------------------------------ the committed head


@pytest.fixture(scope="module")
def head() -> ConcatHead:
    return ConcatHead("fusion_default")


def test_committed_head_is_full_int8_with_its_sidecar(head: ConcatHead) -> None:
    assert head.classes == DEFAULT_CLASSES
    assert head.model.inputs[0].dtype == np.int8 and head.model.outputs[0].dtype == np.int8
    assert head.model.inputs[0].shape == (1, head.layout.size)
    assert head.layout.wake_models == ("hey_jarvis",)
    p = head.probs(np.zeros(head.layout.size, np.float32))
    assert p.shape == (len(DEFAULT_CLASSES),) and abs(float(p.sum()) - 1.0) < 0.05
    assert resolve_head("fusion_default").with_suffix(".yaml").is_file()
    meta = head.meta
    assert "train_fusion.py" in meta["recipe"]["command"]


def test_committed_head_on_heldout_features(head: ConcatHead) -> None:
    """Held-out windows (voices, faces and timings never trained on), extracted through the
    real encoders: the int8 head agrees with the float head and classifies them well."""
    from edgemm.runtime import TFLiteModel

    d = np.load(HELDOUT)
    flt = TFLiteModel(resolve_head("fusion_default").with_name("fusion_default_float.tflite"))
    x, y, amb = d["x"], d["y"], d["ambiguous"]
    z = np.zeros((1, x.shape[1]), np.float32)
    q, f = [], []
    for row in x:
        q.append(int(np.argmax(head.probs(row))))
        head.normalise(row, z[0])
        f.append(int(np.argmax(flt.run(z)[0][0])))
    q_arr, f_arr = np.array(q), np.array(f)
    assert (q_arr == f_arr).mean() >= 0.98
    clear = ~amb
    f1 = []
    for c in range(len(DEFAULT_CLASSES)):
        tp = np.sum((q_arr == c) & (y == c) & clear)
        prec = tp / max(1, np.sum((q_arr == c) & clear))
        rec = tp / max(1, np.sum((y == c) & clear))
        f1.append(2 * prec * rec / max(prec + rec, 1e-9))
    assert np.mean(f1) >= 0.90, f1


# ------------------------------------------------------------------------------ the demo


def _demo_recognitions(method: str) -> tuple[list, dict]:
    from edgemm import Pipeline
    from edgemm.demo import demo_files, demo_labels

    audio, video = demo_files()
    cfg = load_config(
        "default",
        {
            "stages": {
                "face": {"enabled": True},
                "wakeword": {"enabled": True},
                "vad": {"enabled": True},
            },
            "fusion": {"enabled": True, "method": method},
        },
    )
    p = Pipeline(cfg, audio_file=audio, video_file=video, stdout=False)
    evs = [e for e in p.events(["recognition"])]
    return evs, json.loads(demo_labels().read_text())


@pytest.mark.slow
@pytest.mark.parametrize("method", ["concat", "rules"])
def test_demo_recognitions_at_the_right_times(method: str) -> None:
    evs, labels = _demo_recognitions(method)
    assert evs and all(e.data["method"] == method for e in evs)
    assert all(set(e.data["contributions"]) == {"audio", "vision", "text"} for e in evs)
    faces = [(s["t0"], s["t1"]) for s in labels["video"] if s["face"]]
    speech = [(a["t_start"], a["t_end"], a["say"]) for a in labels["audio"]]

    def with_face(e: object) -> bool:
        return any(a <= e.t_start and e.t_end <= b + 0.5 for a, b in faces)  # type: ignore[attr-defined]

    wakes = [e for e in evs if e.label == "wake_with_person"]
    for _t0, t1, say in speech:
        if say != "hey jarvis":
            continue
        assert any(e.t_start <= t1 + 0.4 and t1 < e.t_end + 0.2 for e in wakes), (t1, evs)
    assert len(wakes) == 2
    speaking = [e for e in evs if e.label == "person_speaking"]
    for t0, t1, say in speech:
        if say in ("what is the weather like today", "turn on the lights please"):
            assert any(e.t_start < t1 and t0 < e.t_end for e in speaking), (say, evs)
    assert not [e for e in evs if e.label == "speech_without_person" and with_face(e)]
    assert not [e for e in evs if e.label.endswith("without_person") and e.t_start >= 13.5]


def test_record_session_key_labels() -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))
    from record_session import KeyLabels

    k = KeyLabels()
    for key, t in [("f", 1.0), ("w", 2.0), ("w", 2.8), ("s", 4.0), ("s", 5.5), ("f", 6.0)]:
        k.key(key, t)
    k.key("s\n", 7.0)
    got = k.finish(8.0)
    assert got["video"] == [
        {"t0": 0.0, "t1": 1.0, "face": False},
        {"t0": 1.0, "t1": 6.0, "face": True},
        {"t0": 6.0, "t1": 8.0, "face": False},
    ]
    assert [(a["t_start"], a["t_end"], a["say"]) for a in got["audio"]] == [
        (2.0, 2.8, "hey jarvis"),
        (4.0, 5.5, ""),
        (7.0, 8.0, ""),
    ]


def test_package_copy_of_the_head_matches_models_folder() -> None:
    """The wheel carries edgemm/data/models/; train_fusion.py refreshes it with models/."""
    root = Path(__file__).resolve().parent.parent
    for name in ("fusion_default.tflite", "fusion_default.yaml"):
        assert (root / "models" / name).read_bytes() == (
            root / "edgemm" / "data" / "models" / name
        ).read_bytes(), name
