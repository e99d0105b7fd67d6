"""Helpers every benchmark shares: machine facts, timing summaries, Markdown tables."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("duckdb", "pandas", "pyarrow", "numpy", "plotly", "Django")


def machine_facts() -> dict[str, Any]:
    """Describe the machine a result came from: cores, memory, CPU, Python and package versions."""
    try:
        usable_cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable_cores = os.cpu_count()
    facts: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "usable_cores": usable_cores,
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {},
    }
    for package in PACKAGES:
        try:
            facts["packages"][package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            facts["packages"][package] = None
    try:
        facts["load_average_at_start"] = [round(value, 2) for value in os.getloadavg()]
    except OSError:
        facts["load_average_at_start"] = None
    return facts


def _cpu_model() -> str | None:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or None


def _memory_gib() -> float | None:
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    return None


def summarize(seconds: list[float], cpu_seconds: list[float] | None = None) -> dict[str, Any]:
    """Return the runs with their min and median (wall-clock), and the median CPU time if given."""
    summary: dict[str, Any] = {
        "runs_s": [round(value, 4) for value in seconds],
        "min_s": round(min(seconds), 4),
        "median_s": round(statistics.median(seconds), 4),
    }
    if cpu_seconds:
        # CPU time of the whole process, all threads: what the work costs, whatever else the machine runs.
        summary["median_cpu_s"] = round(statistics.median(cpu_seconds), 4)
    return summary


def timed(function: Callable[[], Any]) -> tuple[float, float, Any]:
    """Return the wall-clock seconds, the process's CPU seconds and the value of `function()`."""
    started, started_cpu = time.perf_counter(), time.process_time()
    value = function()
    return time.perf_counter() - started, time.process_time() - started_cpu, value


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def machine_markdown(machine: dict[str, Any]) -> str:
    packages = ", ".join(f"{name} {version}" for name, version in machine["packages"].items() if version)
    return (
        f"- machine: {machine['usable_cores']} usable cores ({machine['cpu_model']}), "
        f"{machine['memory_gib']} GiB RAM, {machine['platform']}\n"
        f"- Python {machine['python']}; {packages}\n"
        f"- load average at start: {machine['load_average_at_start']}"
    )
