"""Live microphone capture with sounddevice (PortAudio), imported lazily.

The stream callback only copies into the :class:`AudioRing`, counts overflow flags and moves the
clock anchor: no allocation, no logging, no locks.
"""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any

from ..buffers import AudioRing
from ..clock import StreamClock
from ..errors import SourceError

PORTAUDIO_HINT = "install PortAudio with: sudo apt-get install libportaudio2"


def import_sounddevice() -> ModuleType:
    try:
        import sounddevice
    except OSError as exc:  # PortAudio shared library missing
        raise SourceError(f"sounddevice cannot load PortAudio ({exc})", PORTAUDIO_HINT) from None
    except ImportError:
        raise SourceError("sounddevice is not installed", "pip install sounddevice") from None
    return sounddevice


def input_devices(sd: ModuleType | None = None) -> list[dict[str, Any]]:
    sd = sd or import_sounddevice()
    return [
        {
            "index": i,
            "name": d["name"],
            "channels": d["max_input_channels"],
            "default_samplerate": d["default_samplerate"],
        }
        for i, d in enumerate(sd.query_devices())
        if d["max_input_channels"] > 0
    ]


def resolve_device(device: int | str | None, sd: ModuleType) -> int | None:
    """Index, name substring (case-insensitive), or None for the default input."""
    if device is None or isinstance(device, int):
        return device
    if device.isdigit():
        return int(device)
    devs = input_devices(sd)
    matches = [d for d in devs if device.lower() in d["name"].lower()]
    if not matches:
        names = ", ".join(repr(d["name"]) for d in devs) or "none"
        raise SourceError(
            f"no microphone matches {device!r}", f"inputs found: {names}; set audio.device"
        )
    return matches[0]["index"]


class MicSource:
    def __init__(
        self,
        ring: AudioRing,
        clock: StreamClock,
        device: int | str | None = None,
        sample_rate: int = 16000,
        block_ms: int = 20,
        sd: ModuleType | None = None,
    ) -> None:
        self.ring = ring
        self.clock = clock
        self.device = device
        self.sample_rate = sample_rate
        self.blocksize = sample_rate * block_ms // 1000
        self._sd = sd
        self._stream: Any = None
        self.overflows = 0
        self.callbacks = 0
        self._monotonic = time.monotonic

    def callback(self, indata: Any, frames: int, time_info: Any, status: Any) -> None:
        """PortAudio callback: copy, count, anchor. Runs on the audio thread."""
        if status and status.input_overflow:
            self.overflows += 1
        self.ring.write(indata)
        self.clock.anchor(self.ring.write_index, self._monotonic())
        self.callbacks += 1

    def start(self) -> None:
        sd = self._sd or import_sounddevice()
        dev = resolve_device(self.device, sd)
        try:
            self._stream = sd.InputStream(
                device=dev,
                channels=1,
                samplerate=self.sample_rate,
                dtype="int16",
                blocksize=self.blocksize,
                callback=self.callback,
            )
            self._stream.start()
        except Exception as exc:
            self._stream = None
            raise SourceError(
                f"microphone {self.device if self.device is not None else 'default'} cannot be opened "
                f"at {self.sample_rate} Hz mono ({exc})",
                "check audio.device (`edgemm devices` lists inputs) or set audio.enabled: false",
            ) from None

    @property
    def active(self) -> bool:
        return bool(self._stream is not None and self._stream.active)

    def stop(self) -> None:
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            finally:
                self._stream = None
