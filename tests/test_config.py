from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgemm.config import Config, config_from_dict, load_config, parse_yaml, profiles
from edgemm.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def _load(text: str, tmp_path: Path) -> Config:
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return load_config(p)


def test_shipped_profiles_are_valid() -> None:
    assert {"default", "laptop", "pi", "kiosk"} <= set(profiles())
    for name in profiles():
        load_config(name)
    for p in sorted((ROOT / "configs").glob("*.yaml")):
        load_config(p)


def test_unknown_key_names_path_and_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as ei:
        _load("audio:\n  enabled: true\nvideo:\n  fsp: 30\n", tmp_path)
    msg = str(ei.value)
    assert "c.yaml:4" in msg and "video.fsp" in msg and "unknown key" in msg and "fps" in msg


def test_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as ei:
        _load("windows:\n  hop_s: 0.5\n  length_s: 1\n  hop_s: 0.25\n", tmp_path)
    msg = str(ei.value)
    assert "c.yaml:4" in msg and "duplicate key 'windows.hop_s'" in msg and "line 2" in msg


def test_wrong_type_names_key_and_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as ei:
        _load("runtime:\n  backend: auto\n  num_threads: two\n", tmp_path)
    msg = str(ei.value)
    assert "c.yaml:3" in msg and "runtime.num_threads" in msg and "integer" in msg


@pytest.mark.parametrize("word", ["on", "off", "yes", "no", "On", "NO"])
def test_yaml11_booleans_are_refused(tmp_path: Path, word: str) -> None:
    with pytest.raises(ConfigError) as ei:
        _load(f"audio:\n  enabled: {word}\n", tmp_path)
    assert "audio.enabled" in str(ei.value) and "true or false" in str(ei.value)


def test_yaml11_words_stay_strings_where_strings_are_expected(tmp_path: Path) -> None:
    cfg = _load("audio:\n  device: no\n", tmp_path)  # a device whose name contains "no"
    assert cfg.audio.device == "no"


def test_out_of_range_and_cross_field_checks(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"c.yaml:2: audio.sample_rate: 44100 is out of range"):
        _load("audio:\n  sample_rate: 44100\n", tmp_path)
    with pytest.raises(ConfigError, match="windows.hop_s"):
        _load("windows:\n  length_s: 0.5\n  hop_s: 1.0\n", tmp_path)


def test_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("audio:\n  device: 'Mikrofon \xe4'\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(bad)


def test_syntax_error_has_a_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"c.yaml:3: invalid YAML"):
        _load("audio:\n  enabled: true\n\tdevice: 1\n", tmp_path)


def test_no_code_evaluation_tags(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        _load("audio: !!python/object/apply:os.system ['true']\n", tmp_path)


def test_validate_command_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("video:\n  fps: 15\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text("video:\n  fps: 15\n  colour: red\n")
    exe = [sys.executable, "-m", "edgemm.cli", "validate"]
    r = subprocess.run([*exe, str(good)], capture_output=True, text=True)
    assert r.returncode == 0 and "ok" in r.stdout
    r = subprocess.run([*exe, str(good), str(bad)], capture_output=True, text=True)
    assert r.returncode == 2
    assert "bad.yaml:3: video.colour: unknown key" in r.stderr
    assert "Traceback" not in r.stderr


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
)
_values = st.recursive(
    _scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=8,
)
_keys = st.sampled_from(
    [
        "runtime",
        "audio",
        "video",
        "windows",
        "stages",
        "sinks",
        "status",
        "bus",
        "enabled",
        "device",
        "fps",
        "hop_s",
        "length_s",
        "energy_gate",
        "on_db",
        "x",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        _keys, st.one_of(_values, st.dictionaries(_keys, _values, max_size=4)), max_size=5
    )
)
def test_fuzzed_config_dicts_never_raise_anything_but_config_error(data: dict) -> None:
    try:
        config_from_dict(data)
    except ConfigError as exc:
        assert str(exc)


def test_parse_yaml_reports_lines() -> None:
    data, lines = parse_yaml("a:\n  b: 1\n  c:\n    - 2\n")
    assert data == {"a": {"b": 1, "c": [2]}}
    assert lines["a.b"] == 2 and lines["a.c[0]"] == 4


@pytest.mark.parametrize("profile", ["default", "laptop", "pi", "kiosk"])
def test_every_shipped_profile_runs_the_real_encoders(profile: str) -> None:
    st = load_config(profile).stages
    assert st.vad.enabled and st.wakeword.enabled and st.face.enabled, profile


def test_opencv_threads_are_set_when_the_pipeline_is_built() -> None:
    import cv2

    from edgemm.pipeline import build_stages

    off = {"stages": {"vad": {"enabled": False}, "wakeword": {"enabled": False},
                      "face": {"enabled": False}}, "fusion": {"enabled": False}}  # fmt: skip
    before = cv2.getNumThreads()
    try:
        cv2.setNumThreads(2)
        build_stages(load_config(off))
        assert cv2.getNumThreads() == 1  # the default: image ops stay in the stage's thread
        cv2.setNumThreads(2)
        build_stages(load_config({**off, "runtime": {"opencv_threads": 0}}))
        assert cv2.getNumThreads() == 2  # 0: OpenCV's own setting is left alone
    finally:
        cv2.setNumThreads(before)
