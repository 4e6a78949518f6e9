"""JSONL file sink: one v1 event per line, flushed per line, user-only permissions."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError
from ..events import Event
from .base import Sink


class JsonlSink(Sink):
    name = "jsonl"

    def __init__(
        self, path: str | Path, exclude: list[str] | None = None, append: bool = False
    ) -> None:
        super().__init__(exclude)
        self.path = Path(path)
        try:
            if self.path.parent and not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(
                self.path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC), 0o600
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot write events to {self.path}: {exc.strerror}",
                "choose another --out / sinks.jsonl.path",
            ) from None
        self._f = os.fdopen(fd, "w", encoding="utf-8", buffering=1)

    def write(self, ev: Event) -> None:
        self._f.write(ev.to_json() + "\n")
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._f.close()
