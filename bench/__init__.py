"""Benchmarks for Mluv.Me (see bench/README.md).

`python -m bench --quick` checks that every benchmark runs; `python -m bench.report` runs
them all in full and writes docs/benchmarks.md.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BENCHMARKS = (
    "throughput",
    "round_trips",
    "backlog",
    "slow_redis",
    "voice_latency",
    "streaming",
    "cold_stats",
)
"""The benchmark modules, in the order they run and are reported."""


def run_benchmark(
    name: str, *, quick: bool, json_path: Path | None = None, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """One benchmark in a process of its own (its counters patch redis-py for that process)."""
    command = [sys.executable, "-m", f"bench.{name}"]
    if quick:
        command.append("--quick")
    if json_path is not None:
        command += ["--json", str(json_path)]
    return subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
