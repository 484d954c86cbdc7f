#!/usr/bin/env python3
"""Run ../shared/peers/bench.py with a bounded wait for a quiet machine.

    python3 sipp_bench.py PEERS_DIR MAX_QUIET_WAIT_S  <bench.py arguments...>

bench.py waits up to 300 s before each run until other processes use < 0.15 cores. On a
machine shared with other builds that can take the whole budget of `cargo xtask bench`, so
this wrapper lowers that wait to MAX_QUIET_WAIT_S and otherwise runs bench.py unchanged.
Each result line still carries `quiet_wait_s` (-1: gave up waiting) and `cpu_foreign`, so
a noisy run is visible in the results.
"""
import sys


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    peers, max_wait = sys.argv[1], float(sys.argv[2])
    sys.path.insert(0, peers)
    import bench  # noqa: E402  (../shared/peers/bench.py)

    limit, need, _ = bench.wait_quiet.__defaults__
    bench.wait_quiet.__defaults__ = (limit, need, max_wait)
    sys.argv = [bench.__file__] + sys.argv[3:]
    bench.main()


if __name__ == "__main__":
    main()
