"""Run the benchmarks and write their results: `python -m bench [NAME ...] [--quick] [--list]`.

Each benchmark is a module of this package (one per speed target of an issue) with:

    TITLE: str                           one line: what is measured against what
    run(*, quick: bool) -> dict          the measurements; must hold "goal" (text) and "goal_met" (bool)
    markdown(result: dict) -> str        the human-readable body of bench/results/<name>.md

The runner adds the machine's facts and the time of the run, writes bench/results/<name>.json and
bench/results/<name>.md, and prints one summary line per benchmark. It exits with status 1 when a
benchmark fails to run, not when a goal is missed (a miss is a finding, written into the result).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.common import machine_facts, machine_markdown

# One module per issue target; add yours here.
BENCHMARKS = [
    "profile_vs_pandas",  # issue 3, Speed: profile of 1M rows x 50 columns, >= 5x faster than pandas
    "preview_latency",  # issue 3, Speed: preview page request on a 10M-row version, p95 < 200 ms
    "upload_memory",  # issue 3, Speed: upload + conversion of a 1 GB CSV, peak memory < 1 GB
    "training_overhead",  # issue 4, Speed: the same training loop via Studio vs plain, <= 1.10x wall time
    "training_dispatch",  # issue 4, Speed: enqueue -> child process training, p50 and p95 over 20 jobs
    "tracking_vs_mlflow",  # issue 4, Speed: vs MLflow 3: >= 20k points/s, chart, search p95 <= 100 ms
    "notebook_start",  # issue 6, Speed: notebook server start to ready, p50 of 5 starts; idle server RSS
    "hpo_dispatch",  # issue 5, Speed: trials/hour, Studio with 2 workers >= 0.8x in-process Optuna, 2 threads
    "hpo_search",  # issue 5, Quality: TPE vs random (3 seeds); ASHA/hyperband <= 50% epochs to same best
]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})"
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: checks that it runs, measures nothing"
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "--results-dir", type=Path, default=RESULTS_DIR, help="where to write <name>.json and <name>.md"
    )
    args = parser.parse_args(argv)

    if args.list:
        for name in BENCHMARKS:
            print(f"{name}: {importlib.import_module(f'bench.{name}').TITLE}")
        return 0
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; choose from {BENCHMARKS}")
    names = args.names or BENCHMARKS
    # A quick run measures nothing worth keeping: it never overwrites the committed results.
    results_dir = (
        args.results_dir / "quick" if args.quick and args.results_dir == RESULTS_DIR else args.results_dir
    )
    results_dir.mkdir(parents=True, exist_ok=True)

    summary: list[str] = []
    failed = False
    for name in names:
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        try:  # one broken benchmark must not keep the others from running
            module = importlib.import_module(f"bench.{name}")
            print(f"== {name}: {module.TITLE}", flush=True)
            result = module.run(quick=args.quick)
        except Exception:
            traceback.print_exc()
            summary.append(f"{name}: FAILED to run (see the traceback above)")
            failed = True
            continue
        record = {
            "name": name,
            "title": module.TITLE,
            "quick": args.quick,
            "started_at": started_at.isoformat(timespec="seconds"),
            "duration_s": round(time.perf_counter() - started, 1),
            "machine": machine_facts(),
            **result,
        }
        (results_dir / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
        (results_dir / f"{name}.md").write_text(_markdown(module, record))
        verdict = "goal met" if record["goal_met"] else "GOAL MISSED"
        summary.append(f"{name}: {record.get('headline', '')} [{verdict}: {record['goal']}]")
        print(f"   wrote {results_dir / name}.json and .md ({record['duration_s']} s)", flush=True)

    print("\nSummary")
    for line in summary:
        print(f"  {line}")
    return 1 if failed else 0


def _markdown(module, record: dict) -> str:
    header = (
        f"# {record['title']}\n\n"
        f"Run {record['started_at']} in {record['duration_s']} s"
        f"{' (quick: sizes too small to mean anything)' if record['quick'] else ''}.\n\n"
        f"**Goal:** {record['goal']} — **{'met' if record['goal_met'] else 'missed'}**. "
        f"{record.get('headline', '')}\n\n"
        f"{machine_markdown(record['machine'])}\n\n"
    )
    return header + module.markdown(record).rstrip() + "\n"


if __name__ == "__main__":
    sys.exit(main())
