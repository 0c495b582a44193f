"""B7: how long the test suite takes. ``make test`` (the whole suite, as ``.ci/run`` runs it)
with empty compile caches, as on a fresh clone, and ``make test-fast`` (the everyday subset)
with the caches that run filled.

Cold: a fresh PyTensor ``base_compiledir`` (its numba cache included) and ``NUMBA_CACHE_DIR`` in
a temporary folder; warm: the same folders again. Each run is a subprocess of the Makefile's
own pytest command; the slowest tests are pytest's ``--durations`` lines.

Run: ``.venv/bin/python benchmarks/bench_tests.py [--fast-only]``.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITES = {"make test (cold caches)": [], "make test-fast (warm caches)": ["-m", "not slow"]}


def environment(cache: Path) -> dict:
    env = dict(os.environ)
    env["PYTENSOR_FLAGS"] = f"base_compiledir={cache / 'pytensor'}"
    env["NUMBA_CACHE_DIR"] = str(cache / "numba")
    return env


def run_suite(env: dict, marker: list[str]) -> tuple[float, str, list[str]]:
    command = [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadfile", "-q", *marker]
    start = time.perf_counter()
    out = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    lines = out.stdout.splitlines()
    summary = next((line for line in reversed(lines) if re.search(r"\d+ (passed|failed)", line)), "?")
    slowest = [line for line in lines if re.match(r"\s*\d+\.\d+s (call|setup|teardown)", line)][:5]
    return wall, summary.strip("= "), slowest


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast-only", action="store_true", help="only make test-fast, warm caches "
                        "(this machine's own)")
    args = parser.parse_args(argv)
    print(f"B7 test suite wall time; load {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs at the start")
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        for name, marker in SUITES.items():
            if args.fast_only and marker == []:
                continue
            wall, summary, slowest = run_suite(dict(os.environ) if args.fast_only else environment(cache),
                                               marker)
            print(f"{name}: {wall / 60:.1f} min ({summary})")
            for line in slowest:
                print("    " + line.strip())


if __name__ == "__main__":
    main()
