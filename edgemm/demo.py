"""The bundled demo session (made by ``tools/make_session.py --demo``)."""

from __future__ import annotations

from pathlib import Path

from .errors import SourceError

DEMO_DIR = Path(__file__).resolve().parent / "data" / "demo"


def demo_files() -> tuple[Path, Path]:
    audio, video = DEMO_DIR / "audio.wav", DEMO_DIR / "video.mp4"
    for p in (audio, video):
        if not p.is_file():
            raise SourceError(
                f"demo file {p.name} is missing from the package",
                "regenerate it with: python tools/make_session.py --demo edgemm/data/demo",
            )
    return audio, video


def demo_labels() -> Path:
    return DEMO_DIR / "labels.json"
