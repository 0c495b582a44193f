"""Sphinx configuration of the pymc-maxent documentation (offline build, warnings as errors in CI).

The notebooks live in ``../notebooks`` (committed without outputs). At build time they are
copied into ``docs/notebooks/`` (gitignored) and executed by myst-nb, unless the environment
variable ``PYMC_MAXENT_EXECUTED_NOTEBOOKS`` names a folder of already-executed copies (the test
suite executes them once and hands them over), which are rendered as they are. Set
``PYMC_MAXENT_FAST=1`` for the notebooks' short settings; the kernel inherits the environment.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pymc_maxent

DOCS = Path(__file__).resolve().parent
NOTEBOOKS = DOCS.parent / "notebooks"
RENDERED = DOCS / "notebooks"
EXECUTED = os.environ.get("PYMC_MAXENT_EXECUTED_NOTEBOOKS")


def _copy_notebooks() -> list[str]:
    """Fresh copies of the notebooks in ``docs/notebooks/``; returns their names."""
    source = Path(EXECUTED) if EXECUTED else NOTEBOOKS
    names = sorted(p.name for p in NOTEBOOKS.glob("*.ipynb"))
    if EXECUTED:
        missing = [n for n in names if not (source / n).is_file()]
        if missing:
            raise FileNotFoundError(f"PYMC_MAXENT_EXECUTED_NOTEBOOKS={EXECUTED} lacks {missing}")
    shutil.rmtree(RENDERED, ignore_errors=True)
    RENDERED.mkdir()
    for name in names:
        shutil.copyfile(source / name, RENDERED / name)
    return names


NOTEBOOK_NAMES = _copy_notebooks()


def _cli_help() -> None:
    """``pymc-maxent <command> --help`` as text files for docs/cli.md, so the page cannot drift."""
    from pymc_maxent.cli import build_parser

    target = DOCS / "_generated"
    target.mkdir(exist_ok=True)
    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal width
    try:
        parser = build_parser()
        (target / "cli.txt").write_text(parser.format_help())
        commands = next(a for a in parser._actions if a.dest == "command").choices
        for name, sub in commands.items():
            (target / f"cli-{name}.txt").write_text(sub.format_help())
    finally:
        if columns is None:
            os.environ.pop("COLUMNS")
        else:
            os.environ["COLUMNS"] = columns


_cli_help()

# -- project -----------------------------------------------------------------------------------
project = "pymc-maxent"
author = "the pymc-maxent developers"
copyright = "2026, the pymc-maxent developers"
version = release = pymc_maxent.__version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
]
# .rst first: autosummary writes its (reST) stubs with the first suffix
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
exclude_patterns = ["_build", "README.md", "jupyter_execute", "**/.ipynb_checkpoints"]

# -- MyST and notebooks ------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
nb_execution_mode = "off" if EXECUTED else "force"
# The kernel inherits the environment: figures as inline PNGs even where MPLBACKEND=Agg, and no
# tqdm "IProgress not found" warning (with a local path) on the pages; tests/test_docs.py does the same.
_warnings = [os.environ.get("PYTHONWARNINGS"), "ignore:IProgress not found"]
KERNEL_ENV = {
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    "PYTHONWARNINGS": ",".join(filter(None, _warnings)),
}
if not EXECUTED:
    os.environ.update(KERNEL_ENV)
nb_execution_timeout = 600
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

# -- API reference -----------------------------------------------------------------------------
autosummary_generate = True
autodoc_typehints = "none"  # numpydoc's Parameters sections carry the types
templates_path = ["_templates"]  # a class page documents its own members, not those inherited (dict's)
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# -- HTML --------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = "pymc-maxent"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_show_sourcelink = False


def _gallery_without_notebooks(app, docname, source):
    """Until the notebooks land, the gallery says so instead of an empty glob (a warning)."""
    if docname == "notebooks" and not NOTEBOOK_NAMES:
        head, _, _ = source[0].partition("```{toctree}")
        source[0] = head + ":::{note}\nNo notebooks in `notebooks/` yet.\n:::\n"


def setup(app):
    app.connect("source-read", _gallery_without_notebooks)
