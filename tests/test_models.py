"""Model manifest, installer and verifier: real files, real archives, a real loopback server."""

from __future__ import annotations

import argparse
import hashlib
import http.server
import re
import shutil
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import numpy as np
import pytest

import edgemm
from edgemm import models
from edgemm.errors import ModelError
from edgemm.models import (
    ModelEntry,
    artifact_sha256,
    install,
    load_manifest,
    model_path,
    models_dir,
    register_cli,
    verify,
)
from edgemm.runtime import TFLiteModel, interpreter_class

REPO = Path(__file__).resolve().parent.parent
FIXED_NAMES = {
    "melspectrogram", "embedding_model", "hey_jarvis", "alexa", "hey_mycroft", "hey_rhasspy",
    "okay_nabu", "face_detection_short_range", "face_landmark", "palm_detection_lite",
    "hand_landmark_lite",
}  # fmt: skip

MANIFEST = load_manifest()
DEFAULTS = [e for e in MANIFEST.values() if e.default]
REAL_CACHE = models_dir()  # taken before any test points EDGEMM_MODELS elsewhere


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty model cache of this test's own."""
    root = tmp_path / "models"
    monkeypatch.setenv("EDGEMM_MODELS", str(root))
    return root


def _installed(name: str) -> Path:
    """A default model from the real cache (installed before the tests run)."""
    path = REAL_CACHE / MANIFEST[name].file
    assert path.is_file() and artifact_sha256(path) == MANIFEST[name].sha256, (
        f"{name} is not installed intact in {REAL_CACHE}; run: edgemm models install"
    )
    return path


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="edgemm")
    register_cli(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


# --------------------------------------------------------------------------------------------
# manifest


def test_manifest_schema() -> None:
    assert set(MANIFEST) >= FIXED_NAMES
    assert {e.name for e in DEFAULTS} >= FIXED_NAMES
    for entry in MANIFEST.values():
        assert re.fullmatch(r"[0-9a-f]{64}", entry.sha256), entry.name
        assert entry.license and entry.size > 0 and entry.description, entry.name
        assert Path(entry.file).stem == entry.name
        src = entry.source
        if src.wheel:
            assert re.fullmatch(r"[a-z0-9-]+==[0-9.]+", src.wheel) and src.path, entry.name
            assert src.wheel_sha256 and re.fullmatch(r"[0-9a-f]{64}", src.wheel_sha256), src.wheel
        elif src.bundled:  # shipped in the package, made by a committed tool
            assert src.recipe and "tools/" in src.recipe, entry.name
            assert (Path(edgemm.__file__).parent / "data" / "models" / src.bundled).is_file()
        else:
            assert src.url, entry.name
        if entry.kind == "tflite":
            assert entry.inputs and entry.outputs, entry.name
            assert (src.inner or src.bundled or "").endswith(".tflite")
    micro = [e for e in MANIFEST.values() if e.name.startswith("micro_")]
    assert micro and all(0 < e.params["probability_cutoff"] < 1 for e in micro)


def test_manifest_default_lookup_is_the_repository_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EDGEMM_MANIFEST", raising=False)
    assert models.manifest_path() == REPO / "models" / "manifest.yaml"
    packaged = REPO / "edgemm" / "data" / "manifest.yaml"
    if packaged.exists():  # the wheel's copy must not drift from the canonical file
        assert packaged.read_bytes() == (REPO / "models" / "manifest.yaml").read_bytes()


def _write_manifest(path: Path, body: str) -> Path:
    path.write_text("version: 1\nmodels:\n" + body)
    return path


def test_manifest_rejects_duplicate_keys_and_bad_entries(tmp_path: Path) -> None:
    good = "    file: a.tflite\n    kind: tflite\n    license: MIT\n    size: 3\n    source: {url: x}\n"
    sha = '    sha256: "' + "0" * 64 + '"\n'
    with pytest.raises(ModelError, match=r"line \d+: .*duplicate key 'a'"):
        load_manifest(
            _write_manifest(tmp_path / "dup.yaml", "  a:\n" + good + sha + "  a:\n" + good + sha)
        )
    with pytest.raises(
        ModelError, match="model .a.: sha256 must be a quoted string of 64.*fix that entry"
    ):
        load_manifest(_write_manifest(tmp_path / "sha.yaml", "  a:\n" + good + "    sha256: abc\n"))
    with pytest.raises(ModelError, match="model 'a': missing key.*license"):
        load_manifest(
            _write_manifest(
                tmp_path / "lic.yaml", "  a:\n" + good.replace("    license: MIT\n", "") + sha
            )
        )
    with pytest.raises(ModelError, match="model 'a': unknown key.*colour"):
        load_manifest(
            _write_manifest(tmp_path / "key.yaml", "  a:\n" + good + sha + "    colour: red\n")
        )
    with pytest.raises(ModelError, match="must be pinned as package==version"):
        bad = good.replace("{url: x}", "{wheel: mediapipe, path: a.tflite}")
        load_manifest(_write_manifest(tmp_path / "pin.yaml", "  a:\n" + bad + sha))
    assert set(load_manifest(_write_manifest(tmp_path / "ok.yaml", "  a:\n" + good + sha))) == {"a"}


def test_models_dir_follows_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("EDGEMM_MODELS", str(tmp_path))
    assert models_dir() == tmp_path
    monkeypatch.delenv("EDGEMM_MODELS")
    assert models_dir() == Path.home() / ".cache" / "edgemm" / "models"


# --------------------------------------------------------------------------------------------
# missing, corrupt, truncated


def test_missing_model_names_the_install_command(cache: Path) -> None:
    with pytest.raises(ModelError) as err:
        model_path("hey_jarvis")
    assert str(err.value) == (
        f"model 'hey_jarvis' is not installed (expected {cache / 'hey_jarvis.tflite'}) "
        "(install it with: edgemm models install hey_jarvis)"
    )
    with pytest.raises(ModelError, match="unknown model 'hey_nobody'.*edgemm models list"):
        model_path("hey_nobody")


def test_corrupt_model_is_detected(cache: Path) -> None:
    cache.mkdir()
    real = _installed("hey_jarvis").read_bytes()
    target = cache / "hey_jarvis.tflite"
    # garbage of exactly the right size: only the hash can tell
    target.write_bytes(np.random.default_rng(0).integers(0, 256, len(real), np.uint8).tobytes())
    with pytest.raises(
        ModelError, match=r"corrupt \(sha256 mismatch\).*install --force hey_jarvis"
    ):
        model_path("hey_jarvis")
    assert model_path("hey_jarvis", verify=False) == target
    assert dict(verify(["hey_jarvis", "alexa"])) == {"hey_jarvis": "corrupt", "alexa": "missing"}

    target.write_bytes(real)
    assert model_path("hey_jarvis") == target  # verified (and cached) as intact
    with open(target, "r+b") as fh:  # damaged after the first check in this process
        fh.truncate(len(real) // 2)
    with pytest.raises(ModelError, match="corrupt"):
        model_path("hey_jarvis")


def test_truncated_file_fails_to_load_with_a_fix(cache: Path) -> None:
    cache.mkdir()
    target = cache / "hey_jarvis.tflite"
    target.write_bytes(_installed("hey_jarvis").read_bytes()[:5000])
    with pytest.raises(ModelError) as err:
        TFLiteModel(target)
    text = str(err.value)
    assert "hey_jarvis.tflite" in text and "edgemm models install --force hey_jarvis" in text


def test_cli_verify_exit_codes(cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache.mkdir()
    shutil.copyfile(_installed("alexa"), cache / "alexa.tflite")
    assert _run_cli(["models", "verify", "alexa"]) == 0
    assert capsys.readouterr().out == "alexa: ok\n"
    assert _run_cli(["models", "verify", "alexa", "okay_nabu"]) == 1
    out = capsys.readouterr()
    assert "okay_nabu: missing" in out.out and "install --force okay_nabu" in out.err
    assert _run_cli(["models", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    alexa = next(ln for ln in lines if ln.startswith("alexa "))
    assert " yes " in alexa and "pyopen-wakeword==1.1.0:" in alexa
    assert " no " in next(ln for ln in lines if ln.startswith("okay_nabu "))


# --------------------------------------------------------------------------------------------
# URL sources over a loopback HTTP server


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def http_dir(tmp_path: Path) -> Iterator[tuple[Path, str, list[str]]]:
    """Serve a directory on 127.0.0.1; yields (directory, base URL, requested paths)."""
    root = tmp_path / "www"
    root.mkdir()
    requests: list[str] = []

    class Handler(_QuietHandler):
        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(Handler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_url_install_file_and_directory_members(
    http_dir: tuple[Path, str, list[str]],
    cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    www, base, requests = http_dir
    tflite = _installed("hey_rhasspy").read_bytes()
    tree = {
        "README": b"tiny test model\n",
        "am/final.mdl": bytes(range(256)) * 40,
        "conf/model.conf": b"--beam=10\n",
    }
    with zipfile.ZipFile(www / "bundle.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bundle/net/tiny.tflite", tflite)
        zf.writestr("bundle/tiny-stt/", b"")  # explicit directory entry, as zip tools write
        for rel, data in tree.items():
            zf.writestr(f"bundle/tiny-stt/{rel}", data)
        zf.writestr("bundle/other.txt", b"not extracted")
    zip_sha = _sha((www / "bundle.zip").read_bytes())
    (www / "plain.tflite").write_bytes(tflite)

    staged = tmp_path / "expected-tree"
    for rel, data in tree.items():
        (staged / rel).parent.mkdir(parents=True, exist_ok=True)
        (staged / rel).write_bytes(data)
    tree_sha = artifact_sha256(staged)
    assert tree_sha == _sha(
        "".join(f"{_sha(tree[k])}  {k}\n" for k in sorted(tree)).encode()
    )  # the documented directory hash

    manifest = tmp_path / "manifest.yaml"
    manifest.write_text(
        f"""version: 1
models:
  tiny:
    file: tiny.tflite
    kind: tflite
    license: Apache-2.0
    size: {len(tflite)}
    sha256: "{_sha(tflite)}"
    source: {{url: "{base}/bundle.zip", sha256: "{zip_sha}", member: bundle/net/tiny.tflite}}
    inputs: [{{shape: [1, 16, 96], dtype: float32}}]
    outputs: [{{shape: [1, 1], dtype: float32}}]
  tiny_stt:
    file: tiny_stt
    kind: vosk
    license: Apache-2.0
    size: {sum(map(len, tree.values()))}
    sha256: "{tree_sha}"
    source: {{url: "{base}/bundle.zip", member: bundle/tiny-stt/}}
  plain:
    file: plain.tflite
    kind: tflite
    license: Apache-2.0
    size: {len(tflite)}
    sha256: "{_sha(tflite)}"
    source: {{url: "{base}/plain.tflite"}}
"""
    )
    monkeypatch.setenv("EDGEMM_MANIFEST", str(manifest))
    messages: list[str] = []
    paths = install(["tiny", "tiny_stt", "plain"], progress=messages.append)
    assert paths == [cache / "tiny.tflite", cache / "tiny_stt", cache / "plain.tflite"]
    assert requests.count("/bundle.zip") == 1  # two models, one download
    assert (cache / "tiny.tflite").read_bytes() == tflite
    assert {
        p.relative_to(cache / "tiny_stt").as_posix()
        for p in (cache / "tiny_stt").rglob("*")
        if p.is_file()
    } == set(tree)
    assert (cache / "tiny_stt" / "am" / "final.mdl").read_bytes() == tree["am/final.mdl"]
    assert [p.name for p in cache.iterdir() if p.name.startswith(".")] == []  # no temp left over
    assert verify() == [("tiny", "ok"), ("tiny_stt", "ok"), ("plain", "ok")]
    model = TFLiteModel(model_path("tiny"))
    assert model.run(np.zeros((1, 16, 96), np.float32))[0].shape == (1, 1)

    # a second install keeps intact models and downloads nothing
    n = len(requests)
    install(["tiny", "tiny_stt"], progress=messages.append)
    assert len(requests) == n and "tiny_stt: already installed" in messages

    # a damaged file inside the directory is found, and --force repairs it
    (cache / "tiny_stt" / "conf" / "model.conf").write_bytes(b"--beam=99\n")
    assert dict(verify(["tiny_stt"])) == {"tiny_stt": "corrupt"}
    with pytest.raises(ModelError, match="corrupt.*install --force tiny_stt"):
        model_path("tiny_stt")
    assert _run_cli(["models", "install", "--force", "tiny_stt"]) == 0
    assert dict(verify(["tiny_stt"])) == {"tiny_stt": "ok"}
    assert (cache / "tiny_stt" / "conf" / "model.conf").read_bytes() == b"--beam=10\n"
    assert sorted(p.name for p in cache.iterdir()) == ["plain.tflite", "tiny.tflite", "tiny_stt"]


def test_url_install_refuses_changed_or_missing_content(
    http_dir: tuple[Path, str, list[str]],
    cache: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    www, base, _ = http_dir
    with zipfile.ZipFile(www / "b.zip", "w") as zf:
        zf.writestr("x/model.tflite", b"0123456789")
    manifest = tmp_path / "manifest.yaml"
    entry = (
        '    kind: tflite\n    license: MIT\n    size: 10\n    sha256: "{sha}"\n    source: {src}\n'
    )
    body = (
        "  wrongsha:\n    file: wrongsha.tflite\n"
        + entry.format(sha="1" * 64, src=f'{{url: "{base}/b.zip", member: x/model.tflite}}')
        + "  nomember:\n    file: nomember.tflite\n"
        + entry.format(
            sha=_sha(b"0123456789"), src=f'{{url: "{base}/b.zip", member: x/other.tflite}}'
        )
        + "  notfound:\n    file: notfound.tflite\n"
        + entry.format(sha="1" * 64, src=f'{{url: "{base}/missing.zip"}}')
    )
    _write_manifest(manifest, body)
    monkeypatch.setenv("EDGEMM_MANIFEST", str(manifest))
    quiet = partial(install, progress=lambda _msg: None)
    with pytest.raises(
        ModelError,
        match=r"model 'wrongsha' from .*b.zip#x/model.tflite has sha256 [0-9a-f]{64}, expected 1{64}",
    ):
        quiet(["wrongsha"])
    with pytest.raises(ModelError, match=r"#x/other.tflite not found in download"):
        quiet(["nomember"])
    with pytest.raises(
        ModelError, match=r"cannot download .*/missing.zip: .*edgemm models install notfound"
    ):
        quiet(["notfound"])
    assert not (cache / "wrongsha.tflite").exists()
    assert [p.name for p in cache.iterdir()] == []


# --------------------------------------------------------------------------------------------
# real wheels from the package index


def _index_reachable() -> bool:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", "pymicro-wakeword", "--disable-pip-version-check"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    return proc.returncode == 0 and "2.5.0" in proc.stdout


@pytest.fixture(scope="session")
def index_online() -> None:
    if not _index_reachable():
        pytest.skip("the package index is unreachable; wheel downloads cannot be tested")


@pytest.mark.slow
@pytest.mark.usefixtures("index_online")
def test_real_wheel_install_into_empty_cache(
    cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run_cli(["models", "install", "micro_hey_jarvis", "micro_alexa"]) == 0
    out = capsys.readouterr().out
    assert out.count("downloading pymicro-wakeword==2.5.0") == 1  # grouped: one download
    for name in ("micro_hey_jarvis", "micro_alexa"):
        path = model_path(name)
        assert path == cache / f"{name}.tflite"
        assert _sha(path.read_bytes()) == MANIFEST[name].sha256
    assert sorted(p.name for p in cache.iterdir()) == [
        "micro_alexa.tflite",
        "micro_hey_jarvis.tflite",
    ]
    model = TFLiteModel(cache / "micro_hey_jarvis.tflite")
    assert model.inputs[0].dtype == np.int8 and model.inputs[0].shape == (1, 3, 40)


@pytest.mark.slow
@pytest.mark.usefixtures("index_online")
def test_real_wheel_with_wrong_member_path(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = (REPO / "models" / "manifest.yaml").read_text()
    text = text.replace(
        "path: pymicro_wakeword/models/alexa.tflite", "path: pymicro_wakeword/models/nope.tflite"
    )
    (tmp_path / "m.yaml").write_text(text)
    monkeypatch.setenv("EDGEMM_MANIFEST", str(tmp_path / "m.yaml"))
    with pytest.raises(
        ModelError,
        match=r"pymicro-wakeword==2.5.0:pymicro_wakeword/models/nope.tflite not found in pymicro_wakeword-2.5.0-.*\.whl",
    ):
        install(["micro_alexa"], progress=lambda _msg: None)


def test_default_set_is_installed_and_intact() -> None:
    """The real cache holds the default set (installed by the setup step before the tests)."""
    results = verify([e.name for e in DEFAULTS])
    assert results == [(e.name, "ok") for e in DEFAULTS], "run: edgemm models install"


def _concrete(entry: ModelEntry) -> list[tuple[int, ...]] | None:
    """Input shapes to resize to for models with dynamic dimensions, from the manifest."""
    if all(-1 not in t.shape for t in entry.inputs):
        return None
    if entry.name == "melspectrogram":  # 8 frames: window + 7 hops
        return [(1, entry.params["window"] + 7 * entry.params["hop"])]
    return [tuple(1 if d == -1 else d for d in t.shape) for t in entry.inputs]


@pytest.mark.parametrize("entry", DEFAULTS, ids=lambda e: e.name)
def test_default_model_loads_and_matches_signature(entry: ModelEntry) -> None:
    path = model_path(entry.name)
    shapes = _concrete(entry)
    if shapes is None:
        model = TFLiteModel(path)
        inputs = [(t.name, t.shape, t.dtype) for t in model.inputs]
        feeds = [np.zeros(t.shape, t.dtype) for t in model.inputs]
        outs = model.run(*feeds)
        outputs = [(t.name, t.shape, t.dtype) for t in model.outputs]
    else:  # dynamic input length: resize on a fresh interpreter before allocating
        interp = interpreter_class("auto")(model_path=str(path), num_threads=1)
        for i, shape in enumerate(shapes):
            interp.resize_tensor_input(interp.get_input_details()[i]["index"], list(shape))
        interp.allocate_tensors()
        inputs = [
            (d["name"], tuple(d["shape"]), np.dtype(d["dtype"])) for d in interp.get_input_details()
        ]
        for d in interp.get_input_details():
            interp.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
        interp.invoke()
        details = interp.get_output_details()
        outs = [interp.get_tensor(d["index"]) for d in details]
        outputs = [(d["name"], tuple(d["shape"]), np.dtype(d["dtype"])) for d in details]
    for got, spec in zip(inputs + outputs, entry.inputs + entry.outputs, strict=True):
        assert got[0] == spec.name
        assert spec.matches(got[1]), (got, spec)
        assert got[2] == np.dtype(spec.dtype)
    assert all(np.isfinite(o).all() for o in outs)
    if entry.name == "melspectrogram":
        assert outputs[0][1] == (1, 1, 8, 32)


def test_bundled_model_installs_from_the_package_and_is_verified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edgemm.models import install, model_path

    monkeypatch.setenv("EDGEMM_MODELS", str(tmp_path))
    (path,) = install(["face_detection_short_range_wi8"], progress=lambda _m: None)
    assert path.parent == tmp_path and model_path("face_detection_short_range_wi8") == path
    path.write_bytes(b"\x00" * path.stat().st_size)
    with pytest.raises(ModelError, match="corrupt"):
        model_path("face_detection_short_range_wi8")
    install(["face_detection_short_range_wi8"], force=True, progress=lambda _m: None)
    assert model_path("face_detection_short_range_wi8") == path
