"""Run every benchmark; exit non-zero if any of them breaks.

    python -m bench --quick    # a few seconds each: what CI runs
    python -m bench            # full measurements (python -m bench.report also writes them up)

A missed target is reported but does not fail the run; a benchmark that crashes does.
"""

from __future__ import annotations

import argparse
import sys
import time

from bench import BENCHMARKS, run_benchmark


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="a few seconds per benchmark")
    args = parser.parse_args()
    failed = []
    for name in BENCHMARKS:
        started = time.monotonic()
        done = run_benchmark(name, quick=args.quick)
        took = time.monotonic() - started
        status = "ok" if done.returncode == 0 else f"FAILED (exit {done.returncode})"
        print(f"## bench.{name}: {status}, {took:.1f} s\n", flush=True)
        print(done.stdout)
        if done.returncode != 0:
            failed.append(name)
            print(done.stderr[-4000:])
    if failed:
        print(f"broken benchmarks: {', '.join(failed)}")
        return 1
    print(f"all {len(BENCHMARKS)} benchmarks ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
