"""The notebooks are committed stripped, execute without error, and the documentation site builds
with warnings as errors (offline), rendering each notebook with its figures and the API reference.

The notebooks are executed once per session (under ``PYMC_MAXENT_FAST=1``), by a fixture that the
per-notebook tests and the build share, so that the tests hold in any order and on any worker.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
TIMEOUT = 600  # per cell, as in docs/conf.py
API_NAMES = ("build_model", "fit_maxent", "ChoiceModel", "PosteriorFit", "elasticities",
             "posterior_information_gain", "fit_minibatch", "fit_maxent_dask", "plot_posterior_vs_maxent",
             "MaxEntResult", "Revenue", "write_report", "Fit", "simulation_based_calibration",
             "maxent_coverage", "plot_rank_histogram")

pytestmark = pytest.mark.slow


@dataclass
class Executed:
    """Where the executed copies are, and the error of each notebook that failed."""

    folder: Path
    errors: dict[str, str] = field(default_factory=dict)


def _execute(path: Path, target: Path) -> str | None:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK_DIR)}})
    try:
        client.execute()
    except CellExecutionError as error:
        nbformat.write(nbformat.read(path, as_version=4), target)  # rendered unexecuted
        return str(error)[-4000:]
    errors = [out for cell in nb.cells if cell.cell_type == "code"
              for out in cell.outputs if out.output_type == "error"]
    nbformat.write(nb, target)
    return f"{[(e.ename, e.evalue) for e in errors]}" if errors else None


@pytest.fixture(scope="session")
def executed(tmp_path_factory) -> Executed:
    """Every notebook executed once, in a quick pass."""
    out = Executed(tmp_path_factory.mktemp("executed_notebooks"))
    warning_filters = [os.environ.get("PYTHONWARNINGS"), "ignore:IProgress not found"]
    env = {"PYMC_MAXENT_FAST": "1", "PYTHONWARNINGS": ",".join(filter(None, warning_filters)),
           "MPLBACKEND": "module://matplotlib_inline.backend_inline"}  # as docs/conf.py
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernels inherit the environment
    try:
        for path in NOTEBOOKS:
            error = _execute(path, out.folder / path.name)
            if error:
                out.errors[path.name] = error
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return out


def test_notebooks_are_stripped():
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        dirty = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
                 and (cell.get("outputs") or cell.get("execution_count") is not None)]
        assert not dirty, f"{path.name}: cells {dirty} hold outputs or execution counts; strip them"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path, executed):
    assert path.name not in executed.errors, f"{path.name} failed:\n{executed.errors[path.name]}"


def test_docs_build(tmp_path_factory, executed):
    out = tmp_path_factory.mktemp("docs") / "html"
    env = os.environ | {"PYMC_MAXENT_FAST": "1", "PYMC_MAXENT_EXECUTED_NOTEBOOKS": str(executed.folder)}
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", str(ROOT / "docs"), str(out)],
        env=env, capture_output=True, text=True, timeout=3 * TIMEOUT,
    )
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stderr[-8000:]}\n{proc.stdout[-2000:]}"

    for path in NOTEBOOKS:
        page = out / "notebooks" / f"{path.stem}.html"
        assert page.is_file(), f"no page for {path.name}"
        if path.name in executed.errors:
            continue
        images = re.findall(r'<img[^>]+src="([^"]+\.png)"', page.read_text(encoding="utf-8"))
        assert images, f"{page.name} embeds no figure"
        assert all((page.parent / src).is_file() for src in images), f"{page.name}: missing image files"

    api = (out / "api.html").read_text(encoding="utf-8")
    for name in API_NAMES:
        assert name in api, f"the API page does not list {name}"
    generated = out / "api" / "generated"
    assert (generated / "pymc_maxent.fit_maxent.html").is_file()
    assert (generated / "pymc_maxent.diagnostics.elasticities.html").is_file()
    theory = (out / "theory.html").read_text(encoding="utf-8")
    assert theory.count('class="eqno"') >= 10, "the theory page lost its numbered equations"
    for page in ("index", "installation", "notebooks", "performance", "calibration"):
        assert (out / f"{page}.html").is_file()
    cli = (out / "cli.html").read_text(encoding="utf-8")  # the --help texts, generated at build time
    for command in ("demo", "fit", "tiers"):
        assert f"usage: pymc-maxent {command}" in cli, f"the CLI page lacks `pymc-maxent {command} --help`"
    assert not executed.errors, f"the site builds, but without the outputs of {sorted(executed.errors)}"
