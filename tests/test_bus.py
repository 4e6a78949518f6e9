from __future__ import annotations

import json
import threading
import time

from edgemm.events import Event, EventBus


def _ev(i: int, type: str = "vad") -> Event:
    return Event(
        type=type, label="speech_start", t_start=i * 0.1, t_end=i * 0.1 + 0.08, source="test"
    )


def test_event_json_has_the_v1_schema() -> None:
    ev = EventBus().publish(_ev(3))
    d = json.loads(ev.to_json())
    assert list(d) == [
        "v",
        "seq",
        "type",
        "label",
        "score",
        "t_start",
        "t_end",
        "t_emit",
        "latency_ms",
        "source",
        "data",
    ]
    assert d["v"] == 1 and d["seq"] == 1 and d["t_start"] == 0.3


def test_a_subscriber_that_never_reads_does_not_block_and_its_drops_are_counted() -> None:
    bus = EventBus()
    stuck = bus.subscribe("stuck", maxsize=10)
    live = bus.subscribe("live", maxsize=10_000)
    got: list[int] = []

    def reader() -> None:
        for ev in live:
            got.append(ev.seq)

    t = threading.Thread(target=reader)
    t.start()
    t0 = time.monotonic()
    for i in range(5000):
        bus.publish(_ev(i))
    publish_time = time.monotonic() - t0
    bus.close()
    t.join(5)
    assert len(stuck) == 10
    assert stuck.dropped == 4990
    assert [e.seq for e in stuck.drain()] == list(range(4991, 5001))  # newest kept
    assert got == list(range(1, 5001))
    assert bus.dropped == 4990
    assert publish_time < 5.0  # sanity bound only: publishing never waits on the stuck reader


def test_type_filter_and_counts() -> None:
    bus = EventBus()
    only = bus.subscribe("errors", types=["error"])
    bus.publish(_ev(1))
    bus.publish(_ev(2, "error"))
    assert [e.type for e in only.drain()] == ["error"]
    assert bus.counts == {"vad": 1, "error": 1}
