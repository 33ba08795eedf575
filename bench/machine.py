"""The machine and versions a benchmark ran on (for docs/benchmarks.md).

python -m bench.machine
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = [
    "aiogram",
    "aiohttp",
    "redis",
    "hiredis",
    "sqlalchemy",
    "asyncpg",
    "aiosqlite",
    "openai",
    "pydantic",
]


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return "unknown"


def server_version(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def rows() -> list[tuple[str, str]]:
    found = [
        ("date", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", f"{cpu_model()} ({os.cpu_count()} CPUs as seen by nproc)"),
        ("memory", memory()),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
    ]
    for package in PACKAGES:
        try:
            found.append((package, metadata.version(package)))
        except metadata.PackageNotFoundError:
            found.append((package, "not installed"))
    found.append(("Redis server", server_version(["redis-server", "--version"])))
    found.append(("PostgreSQL", server_version(["psql", "--version"])))
    return found


def main() -> None:
    print("| | |\n|---|---|")
    for name, value in rows():
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
