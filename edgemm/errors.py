"""Error types. Every error the user can cause carries one line: what failed and how to fix it."""

from __future__ import annotations


class EdgemmError(Exception):
    """Base class: ``str(err)`` is the one-line message shown to the user."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(f"{message} ({hint})" if hint else message)


class ConfigError(EdgemmError):
    """Invalid configuration; the message names the key path and line."""

    exit_code = 2


class ModelError(EdgemmError):
    """A model file is missing, corrupt, or cannot run on the chosen backend."""

    exit_code = 3


class SourceError(EdgemmError):
    """An input file (WAV, video) cannot be opened or read: a usage error."""

    exit_code = 2


class DeviceError(SourceError):
    """A capture device (camera, microphone, PortAudio) is missing or cannot be opened."""

    exit_code = 4
