"""A sink consumes its own bounded bus subscription in its own thread."""

from __future__ import annotations

import logging
import threading

from ..events import Event, EventBus, Subscription

log = logging.getLogger(__name__)


class Sink:
    name = "sink"

    def __init__(self, exclude: list[str] | None = None) -> None:
        self.exclude = frozenset(exclude or ())
        self.sub: Subscription | None = None
        self._thread: threading.Thread | None = None
        self.written = 0
        self.failures = 0

    def attach(self, bus: EventBus, queue_size: int | None = None) -> None:
        self.sub = bus.subscribe(self.name, queue_size)
        self._thread = threading.Thread(target=self._run, name=f"sink-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self.sub is not None
        for ev in self.sub:
            if ev.type in self.exclude:
                continue
            try:
                self.write(ev)
                self.written += 1
            except Exception as exc:  # a broken sink must not take the pipeline down
                self.failures += 1
                if self.failures == 1 or self.failures % 100 == 0:
                    log.error(
                        "sink %s failed to write (%d failures): %s", self.name, self.failures, exc
                    )
        self.close()

    def write(self, ev: Event) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Flush and release; called once after the subscription is closed and drained."""

    def join(self, timeout: float = 5.0) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
