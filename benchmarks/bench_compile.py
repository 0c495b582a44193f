"""B5: compilation. ``pymc-maxent demo`` with empty compile caches (cold) and again with the
caches it filled (warm), step by step; and ``fit_maxent`` on TravelMode after import in a
fresh process (warm caches) and repeated in the same process.

Cold: a fresh PyTensor ``base_compiledir`` (its numba cache included) and ``NUMBA_CACHE_DIR``
in a temporary folder, so nothing compiled before is found; warm: the same folders again.
Each run is a subprocess: the wall time includes the interpreter, imports and writing the
report. Step times are the demo's own (``summary.json``: each fit from building the model to
its diagnostics, then the analysis).

Run: ``.venv/bin/python benchmarks/bench_compile.py [--skip-demo]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

MAXENT_SCRIPT = """
import time
start = time.perf_counter()
import pymc_maxent as pmx
imported = time.perf_counter()
data = pmx.load_travel_mode()
t = time.perf_counter(); pmx.fit_maxent(data); first = time.perf_counter() - t
repeats = []
for _ in range(5):
    t = time.perf_counter(); pmx.fit_maxent(data); repeats.append(time.perf_counter() - t)
print(imported - start, first, min(repeats))
"""


def environment(cache: Path) -> dict:
    env = dict(os.environ)
    env["PYTENSOR_FLAGS"] = f"base_compiledir={cache / 'pytensor'}"
    env["NUMBA_CACHE_DIR"] = str(cache / "numba")
    return env


def run_demo(cache: Path, output: Path) -> tuple[float, dict]:
    command = [sys.executable, "-m", "pymc_maxent.demo", "--output", str(output), "--no-progress"]
    start = time.perf_counter()
    subprocess.run(command, env=environment(cache), check=True, capture_output=True)
    wall = time.perf_counter() - start
    return wall, json.loads((output / "summary.json").read_text())["timings_s"]


def run_maxent(cache: Path) -> list[float]:
    out = subprocess.run([sys.executable, "-c", MAXENT_SCRIPT], env=environment(cache), check=True,
                         capture_output=True, text=True)
    return [float(x) for x in out.stdout.split()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-demo", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        if not args.skip_demo:
            runs = {}
            for label in ("cold", "warm"):
                runs[label] = run_demo(cache, Path(tmp) / label)
                print(label, round(runs[label][0], 1), file=sys.stderr, flush=True)
            table = pd.DataFrame({label: {**timings, "total wall (subprocess)": wall}
                                  for label, (wall, timings) in runs.items()}).round(1)
            table["cold/warm"] = (table["cold"] / table["warm"]).round(2)
            load = os.getloadavg()[0]
            print(f"B5 pymc-maxent demo, seconds per step; load {load:.2f} on {os.cpu_count()} CPUs")
            print(table.to_string())
        else:
            run_maxent(cache)  # fills the caches
        imported, first, repeat = run_maxent(cache)
        print(f"fit_maxent on TravelMode, warm caches: import {imported:.2f} s; first fit in a fresh process "
              f"{first:.3f} s; repeated fit of the same structure {repeat * 1000:.0f} ms")


if __name__ == "__main__":
    main()
