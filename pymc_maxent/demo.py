"""``python -m pymc_maxent.demo``: the same as ``pymc-maxent demo`` (see :mod:`pymc_maxent.cli`)."""

import sys

from pymc_maxent.cli import main

if __name__ == "__main__":
    sys.exit(main(["demo", *sys.argv[1:]]))
