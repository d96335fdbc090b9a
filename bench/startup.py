"""Startup cost of ``datum``: median wall time of ``datum --help`` and ``datum project info``.

Usage: python bench/startup.py [--runs N]. Goal: ``--help`` < 0.3 s.
Also prints datumaro's own ``python -m datumaro --help`` in the same run, for scale.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time


def median_seconds(cmd: list[str], runs: int, cwd: str | None = None) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    datum = [sys.executable, "-m", "explain_plugin"]
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(datum + ["project", "create", "-o", tmp], check=True,
                       stdout=subprocess.DEVNULL)
        rows = [
            ("python -c pass", median_seconds([sys.executable, "-c", "pass"], args.runs)),
            ("datum --help", median_seconds(datum + ["--help"], args.runs)),
            ("datum project info (empty project)",
             median_seconds(datum + ["project", "info", "-p", tmp], args.runs)),
            ("datumaro's own: python -m datumaro --help",
             median_seconds([sys.executable, "-m", "datumaro", "--help"], args.runs)),
        ]
    print(f"median of {args.runs} runs")
    for name, seconds in rows:
        print(f"{name:45s} {seconds:7.3f} s")
    help_s = rows[1][1]
    print(f"datum --help goal < 0.3 s: {'met' if help_s < 0.3 else 'NOT met'}")


if __name__ == "__main__":
    main()
