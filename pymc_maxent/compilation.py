"""How the package's graphs become functions: compiled, or interpreted when the problem is small.

Compiling a graph (PyTensor's rewrites, then numba) takes seconds per function, twenty or more
with a cold numba cache, and pays back only over many calls on large arrays. A small problem's
graphs are linked instead by PyTensor's Python linker, without rewrites and without C thunks:
a tenth of a second, and each call costs milliseconds. The graphs are the same definitions
either way; the two agree to rounding (about 1e-12), not to the last bit.
"""

from __future__ import annotations

import pytensor
from pytensor.compile.mode import Mode

#: Problems of at most this many ``situation × alternative`` cells are interpreted.
INTERPRETED_CELLS = 4096
INTERPRETED_MODE = Mode(linker="py", optimizer=None)


def is_small(n_situations: int, n_alternatives: int) -> bool:
    """Whether a problem of this size is interpreted (:data:`INTERPRETED_CELLS`)."""
    return n_situations * n_alternatives <= INTERPRETED_CELLS


def interpreted_function(inputs, outputs, **kwargs):
    """``pytensor.function`` under :data:`INTERPRETED_MODE`; the inner graphs of composite ops
    (log-sum-exp) are interpreted too (no C compiler is asked for)."""
    with pytensor.config.change_flags(cxx=""):
        return pytensor.function(inputs, outputs, mode=INTERPRETED_MODE, **kwargs)
