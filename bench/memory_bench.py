"""Peak memory and disk of ``datum explain ... rise`` on one huge image.

    python bench/memory_bench.py [--side 10000] [-s 200]

Builds the known-answer sample project and a SIDE x SIDE PNG in a temp folder, runs
the real ``datum`` in a subprocess and prints its peak RSS (the kernel's ru_maxrss of
the child) and the size of every file written. The issue's goal: peak < 1 GB at 10000.
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=10000)
    parser.add_argument("-s", "--samples", default="200")
    args = parser.parse_args()

    from explain_plugin.samples import known_project

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        project = known_project.build(tmp / "p")
        image = np.full((args.side, args.side, 3), 60, np.uint8)
        image[: args.side // 2, args.side // 2:] = 230
        path = tmp / "huge.png"
        cv2.imwrite(str(path), image)
        del image
        out = tmp / "out"
        datum = Path(sys.executable).parent / "datum"
        started = time.perf_counter()
        proc = subprocess.run([str(datum), "explain", "-p", str(project), "-m", "classifier",
                               "-o", str(out), "-t", str(path), "rise", "-s", args.samples],
                              capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if proc.returncode:
            sys.exit(proc.stderr)
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"{args.side}x{args.side} PNG, rise -s {args.samples}: peak RSS {peak_mb:.0f} MB, "
              f"{seconds:.1f} s (shared 2-core machine)")
        for f in sorted(out.iterdir()):
            print(f"  {f.name}: {f.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
