"""Live microphone capture with sounddevice (PortAudio), imported lazily.

The stream callback only copies into the :class:`AudioRing`, counts overflow flags and moves the
clock anchor: no allocation, no logging, no locks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from ..buffers import AudioRing
from ..clock import StreamClock
from ..errors import DeviceError

PORTAUDIO_HINT = "install PortAudio with: sudo apt-get install libportaudio2"


def import_sounddevice() -> ModuleType:
    try:
        import sounddevice
    except OSError as exc:  # PortAudio shared library missing
        raise DeviceError(f"sounddevice cannot load PortAudio ({exc})", PORTAUDIO_HINT) from None
    except ImportError:
        raise DeviceError("sounddevice is not installed", "pip install sounddevice") from None
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
        raise DeviceError(
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
        on_report: Callable[[str, str, dict[str, Any]], None] | None = None,
        stall_after_s: float = 2.0,
        backoff_max_s: float = 30.0,
    ) -> None:
        self.ring = ring
        self._report = on_report or (lambda *a: None)
        self.stall_after_s = stall_after_s
        self.backoff_max_s = backoff_max_s
        self.reconnects = 0
        self.gap_samples = 0  # silence written for time the microphone was gone
        self._watch_stop = threading.Event()
        self._watcher: threading.Thread | None = None
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
        """Open the stream (raises SourceError) and watch it: a stream that stops delivering
        audio is reported and reopened with backoff; the gap is filled with silence so sample
        indices stay on the wall clock."""
        self._open()
        self._watch_stop.clear()
        self._watcher = threading.Thread(target=self._watch, name="mic-watchdog", daemon=True)
        self._watcher.start()

    def _watch(self) -> None:
        last_n, last_change = self.callbacks, time.monotonic()
        backoff = 0.5
        while not self._watch_stop.wait(0.25):
            now = time.monotonic()
            if self.callbacks != last_n:
                last_n, last_change = self.callbacks, now
                continue
            if now - last_change < self.stall_after_s:
                continue
            self._report(
                "error",
                "microphone",
                {
                    "message": f"microphone {self._label} delivered no audio "
                    f"for {now - last_change:.1f} s; reopening (check the device; `edgemm devices`)",
                    "reconnects": self.reconnects,
                },
            )
            filled_until = last_change
            while not self._watch_stop.is_set():
                self._close()
                # keep sample indices on the wall clock: silence for the time without audio
                # (written while no stream is open, so the ring has one writer)
                now = time.monotonic()
                self._fill_gap(int((now - filled_until) * self.sample_rate))
                filled_until = now
                try:
                    self._open()
                except Exception:
                    if self._watch_stop.wait(backoff):
                        return
                    backoff = min(backoff * 2, self.backoff_max_s)
                    continue
                break
            if self._watch_stop.is_set():
                return
            gap = self.gap_samples
            self.reconnects += 1
            backoff = 0.5
            self._report(
                "status",
                "microphone",
                {
                    "event": "reconnected",
                    "reconnects": self.reconnects,
                    "gap_s_total": round(gap / self.sample_rate, 2),
                },
            )
            last_n, last_change = self.callbacks, time.monotonic()

    def _fill_gap(self, n: int) -> None:
        if n <= 0:
            return
        self.gap_samples += n
        zeros = np.zeros(min(n, self.ring.capacity), dtype=np.int16)
        self.ring.write_index += n - zeros.size  # the part that would be overwritten anyway
        self.ring.write(zeros)
        self.clock.anchor(self.ring.write_index, time.monotonic())

    @property
    def _label(self) -> str:
        return repr(self.device) if self.device is not None else "(default)"

    def _open(self) -> None:
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
            raise DeviceError(
                f"microphone {self.device if self.device is not None else 'default'} cannot be opened "
                f"at {self.sample_rate} Hz mono ({exc})",
                "check audio.device (`edgemm devices` lists inputs) or set audio.enabled: false",
            ) from None

    @property
    def active(self) -> bool:
        return bool(self._stream is not None and self._stream.active)

    def stop(self) -> None:
        self._watch_stop.set()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(2.0)
        self._close()

    def _close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            except Exception:  # a stream whose device vanished may fail to stop
                pass
            finally:
                self._stream = None
