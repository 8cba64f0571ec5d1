"""`python -m core.messaging.sender`: one tick (or a loop) of the sender alone."""

from __future__ import annotations

import time

from core import clock
from core.messaging.providers import (
    make_provider,
)
from core.messaging.sender.dispatch import run


def main(argv: list[str] | None = None) -> None:
    """`python -m core.messaging.sender [--now ISO] [--loop SECONDS]`: one tick (or a loop) of the
    sender alone; the worker runs the same job. Prints the counts as JSON."""
    import argparse
    import json

    from core.db import make_engine

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--now", help="ISO-8601 instant (default: the clock)")
    parser.add_argument("--loop", type=float, default=0.0, help="keep ticking every N seconds")
    parser.add_argument("--drain", action="store_true", help="tick until nothing is due")
    args = parser.parse_args(argv)
    engine = make_engine()
    provider = make_provider()
    try:
        while True:
            now = clock.parse_instant(args.now) if args.now else clock.now()
            counts = run(engine, now, provider=provider)
            print(json.dumps(counts), flush=True)
            if args.drain and counts.get("claimed"):
                continue
            if not args.loop:
                break
            time.sleep(args.loop)
    finally:
        provider.close()
        if args.drain:
            print(json.dumps({"peak_rss_mb": round(peak_rss_mb(), 1)}), flush=True)


def peak_rss_mb() -> float:
    """This process's own peak RSS. VmHWM, not ru_maxrss: after fork+exec Linux carries the
    parent's peak into the child's ru_maxrss, so a worker started by a big process would report
    that process's memory."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
