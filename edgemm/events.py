"""Events (schema v1) and the event bus.

The bus gives every subscriber its own bounded queue. ``publish`` never blocks: when a
subscriber's queue is full the oldest event is dropped and counted, so a slow or dead sink never
stalls recognition.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 1
EVENT_TYPES = (
    "presence",
    "wake_word",
    "vad",
    "speech",
    "intent",
    "gesture",
    "recognition",
    "status",
    "error",
    "level",
    "brightness",
)


@dataclass
class Event:
    type: str
    label: str
    t_start: float
    t_end: float
    score: float = 1.0
    source: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    t_emit: float = 0.0
    latency_ms: float = 0.0
    v: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": self.v,
            "seq": self.seq,
            "type": self.type,
            "label": self.label,
            "score": round(float(self.score), 4),
            "t_start": round(float(self.t_start), 3),
            "t_end": round(float(self.t_end), 3),
            "t_emit": round(float(self.t_emit), 3),
            "latency_ms": round(float(self.latency_ms), 2),
            "source": self.source,
            "data": self.data,
        }

    def to_json(self) -> str:
        return json.dumps(
            self.to_dict(), ensure_ascii=False, separators=(", ", ": "), default=_jsonable
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        return cls(
            type=d["type"],
            label=d["label"],
            t_start=d["t_start"],
            t_end=d["t_end"],
            score=d.get("score", 1.0),
            source=d.get("source", ""),
            data=d.get("data", {}),
            seq=d.get("seq", 0),
            t_emit=d.get("t_emit", 0.0),
            latency_ms=d.get("latency_ms", 0.0),
            v=d.get("v", SCHEMA_VERSION),
        )


def _jsonable(o: Any) -> Any:
    """numpy scalars and arrays in ``data`` become plain JSON."""
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


class Subscription:
    """A bounded, drop-oldest queue of events for one consumer."""

    def __init__(self, name: str, maxsize: int, types: frozenset[str] | None) -> None:
        self.name = name
        self.maxsize = maxsize
        self.types = types
        self.dropped = 0
        self.delivered = 0
        self._q: deque[Event] = deque()
        self._cond = threading.Condition()
        self.closed = False

    def _put(self, ev: Event) -> None:
        if self.types is not None and ev.type not in self.types:
            return
        with self._cond:
            if len(self._q) >= self.maxsize:
                self._q.popleft()
                self.dropped += 1
            self._q.append(ev)
            self._cond.notify()

    def get(self, timeout: float | None = None) -> Event | None:
        """Next event, or None on timeout or when the bus is closed and the queue is empty."""
        with self._cond:
            if not self._q and not self.closed:
                self._cond.wait(timeout)
            if not self._q:
                return None
            self.delivered += 1
            return self._q.popleft()

    def drain(self) -> list[Event]:
        with self._cond:
            out = list(self._q)
            self._q.clear()
            self.delivered += len(out)
            return out

    def __len__(self) -> int:
        return len(self._q)

    def __iter__(self) -> Iterator[Event]:
        while True:
            ev = self.get(timeout=0.2)
            if ev is None:
                if self.closed and not self._q:
                    return
                continue
            yield ev

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


class EventBus:
    """Publish/subscribe with per-subscriber bounded queues; ``seq`` is assigned here."""

    def __init__(self, default_queue_size: int = 1000) -> None:
        self.default_queue_size = default_queue_size
        self._subs: list[Subscription] = []
        self._lock = threading.Lock()
        self._seq = itertools.count(1)
        self.published = 0
        self.counts: dict[str, int] = {}

    def subscribe(
        self, name: str, maxsize: int | None = None, types: list[str] | None = None
    ) -> Subscription:
        sub = Subscription(
            name, maxsize or self.default_queue_size, frozenset(types) if types else None
        )
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)
        sub.close()

    def publish(self, ev: Event) -> Event:
        with self._lock:
            ev.seq = next(self._seq)
            self.published += 1
            self.counts[ev.type] = self.counts.get(ev.type, 0) + 1
            subs = tuple(self._subs)
        for s in subs:
            s._put(ev)
        return ev

    @property
    def dropped(self) -> int:
        return sum(s.dropped for s in self._subs)

    def subscriptions(self) -> list[Subscription]:
        with self._lock:
            return list(self._subs)

    def close(self) -> None:
        for s in self.subscriptions():
            s.close()


Callback = Callable[[Event], None]
