"""Human-readable event lines on stdout."""

from __future__ import annotations

import sys
from typing import TextIO

from ..events import Event
from .base import Sink


def format_event(ev: Event) -> str:
    head = f"[{ev.t_start:8.2f}–{ev.t_end:8.2f}s] {ev.type:<11} {ev.label:<22}"
    if ev.type == "status":
        d = ev.data
        return (
            f"{head} fps {d.get('fps_in', 0):.1f}/{d.get('fps_out', 0):.1f}  lag {d.get('lag_ms', 0):.0f} ms"
            f"  cpu {d.get('cpu_percent', 0):.0f}%  drops {d.get('frames_skipped', 0)}"
            f"  overruns {d.get('audio_overruns', 0)}"
        )
    extra = ""
    if ev.type == "error":
        extra = f"  {ev.data.get('message', '')}"
    elif ev.type == "speech":
        extra = f"  {ev.data.get('text', '')!r}"
    elif ev.data:
        keys = [k for k in ev.data if k not in ("landmarks", "words", "contributions")][:3]
        extra = "  " + " ".join(f"{k}={ev.data[k]}" for k in keys)
    return f"{head} score {ev.score:.2f}  ({ev.source}, {ev.latency_ms:.0f} ms){extra}"


class StdoutSink(Sink):
    name = "stdout"

    def __init__(self, exclude: list[str] | None = None, stream: TextIO | None = None) -> None:
        super().__init__(exclude)
        self.stream = stream or sys.stdout

    def write(self, ev: Event) -> None:
        print(format_event(ev), file=self.stream, flush=True)
