#!/usr/bin/env python3
"""Use edgemm from Python: replay the bundled demo session and print what it recognises.

python examples/api_example.py              # every event of the demo
python examples/api_example.py --live       # camera + microphone instead
"""

from __future__ import annotations

import argparse
from collections import Counter

from edgemm import Event, Pipeline, load_config
from edgemm.demo import demo_files


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--live", action="store_true", help="camera + microphone")
    ap.add_argument("--max-events", type=int, default=0, help="stop after this many (0: all)")
    args = ap.parse_args()

    # any profile or YAML file, with overrides as a dict
    cfg = load_config("default", overrides={"sinks": {"stdout": {"enabled": False}}})
    inputs = {}
    if not args.live:
        audio, video = demo_files()
        inputs = {"audio_file": audio, "video_file": video}

    counts: Counter[str] = Counter()

    def count(event: Event) -> None:  # runs in a thread of its own
        counts[event.type] += 1

    with Pipeline(cfg, **inputs) as pipeline:
        pipeline.subscribe(count)
        n = 0
        for event in pipeline.events(types=None):
            if event.type == "status":
                continue
            print(
                f"event {event.type:<11} {event.label:<16} {event.t_start:6.2f}s  {event.score:.2f}"
            )
            n += 1
            if args.max_events and n >= args.max_events:
                pipeline.stop()
                break
    print("callback saw", dict(counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
