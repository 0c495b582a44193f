"""A report folder from an :class:`~pymc_maxent.workflow.Analysis`: figures as PNG, each fit as
netCDF, each table as CSV, and ``summary.json`` with the estimates, diagnostics and tables."""

from __future__ import annotations

import json
import math
import platform
from pathlib import Path

import numpy as np
import pandas as pd

from pymc_maxent._version import __version__
from pymc_maxent.workflow import Analysis, PanelAnalysis, convergence

SUMMARY = "summary.json"


def _plain(value):
    """A JSON-ready value: NumPy scalars as Python ones, non-finite floats as None."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def table_records(table: pd.DataFrame) -> dict:
    """``{row: {column: value}}`` with non-finite numbers as None (``null`` in JSON)."""
    return _plain(table.astype(object).where(table.notna(), None).to_dict(orient="index"))


def file_name(name: str) -> str:
    """A model or table name as a file name (``MNL-2 g-prior`` → ``MNL-2_g-prior``)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def versions() -> dict[str, str]:
    import arviz
    import pymc
    import pytensor
    import scipy

    return {"pymc_maxent": __version__, "pymc": pymc.__version__,
            "pytensor": pytensor.__version__, "arviz": arviz.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "pandas": pd.__version__, "python": platform.python_version()}


def summary(analysis: Analysis, files: dict[str, str] | None = None) -> dict:
    """The run as one JSON-ready dictionary."""
    s = analysis.settings
    models = {}
    for name, fit in analysis.fits.items():
        models[name] = {
            "estimator": fit.estimator,
            "estimates": table_records(analysis.tables[f"estimates_{name}"]),
            "convergence": _plain(convergence(fit)),
            "seconds": analysis.timings.get(name),
        }
    tables = {k: table_records(v) for k, v in analysis.tables.items() if not k.startswith("estimates_")}
    return _plain({
        "data": {**analysis.data.dims, "alternatives": list(map(str, analysis.data.alternatives)),
                 "attributes": list(map(str, analysis.data.attributes)),
                 "fitted_situations": analysis.train.n_situations,
                 "held_out_situations": 0 if analysis.test is None else analysis.test.n_situations},
        "settings": {"tiers": list(s.tiers), "maxent": s.maxent, "g_prior": list(s.g_prior),
                     "reference": s.reference, "price": s.price,
                     "price_alternative": s.price_alternative, "price_bounds": list(s.price_bounds),
                     "random": s.random, "correlated": s.correlated, "draws": s.draws,
                     "tune": s.tune if s.tune is not None else s.draws, "chains": s.chains,
                     "sampler": s.sampler, "seed": s.seed, "test_fraction": s.test_fraction,
                     "cv": s.cv, "folds": s.folds, "cv_draws": s.cv_draws},
        "models": models,
        "tables": tables,
        "timings_s": {**analysis.timings, **panel_timings(analysis.panel)},
        "panel": None if analysis.panel is None else panel_summary(analysis.panel),
        "files": files or {},
        "versions": versions(),
    })


def panel_timings(panel: PanelAnalysis | None) -> dict[str, float]:
    """The simulated panel's step times, named ``panel <step>``."""
    return {} if panel is None else {f"panel {k}": v for k, v in panel.timings.items()}


def panel_summary(panel: PanelAnalysis) -> dict:
    """The simulated panel's section of ``summary.json``: its size, the truth, both fits' population
    estimates and health, and the comparison tables."""
    s = panel.settings
    labels = list(map(str, panel.data.attributes))
    return {
        "data": {**panel.data.dims, "seed": s.seed, "draws": s.draws, "chains": s.chains,
                 "sampler": s.sampler},
        "truth": {k: dict(zip(labels, np.asarray(panel.truth[k]).tolist(), strict=True))
                  for k in ("mu", "sigma")},
        "models": {name: {"estimator": fit.estimator, "estimates": table_records(fit.estimates()),
                          "convergence": _plain(convergence(fit)), "seconds": panel.timings.get(name)}
                   for name, fit in panel.fits.items()},
        "tables": {k: table_records(v) for k, v in panel.tables.items()},
    }


def write_report(analysis: Analysis, folder) -> dict[str, str]:
    """Write the report folder; return ``{what: relative path}`` of every file written.

    Layout: ``summary.json``; ``figures/<name>.png``; ``fits/<model>.nc`` (each model and its fit,
    as :meth:`~pymc_maxent.ChoiceModel.save` writes it: ``ChoiceModel.load`` reads it back and
    predicts without refitting); ``tables/<name>.csv``; the simulated panel's tables as
    ``tables/panel_<name>.csv`` and its figure beside the others.
    """
    folder = Path(folder)
    for sub in ("figures", "fits", "tables"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    files = _write_figures_and_tables(analysis.figures, analysis.tables, folder)
    for name, model in analysis.models.items():
        path = Path("fits") / f"{file_name(name)}.nc"
        model.save(folder / path)
        files[f"fit {name}"] = str(path)
    if analysis.panel is not None:
        files |= _write_figures_and_tables(analysis.panel.figures, analysis.panel.tables, folder, "panel")
    files["summary"] = SUMMARY
    with open(folder / SUMMARY, "w") as fh:
        json.dump(summary(analysis, files), fh, indent=1, allow_nan=False)
    return files


def _write_figures_and_tables(figures: dict, tables: dict, folder: Path, prefix: str = "") -> dict[str, str]:
    files = {}
    for name, fig in figures.items():
        path = Path("figures") / f"{file_name(name)}.png"
        fig.savefig(folder / path, dpi=110, bbox_inches="tight")
        files[f"figure {name}"] = str(path)
    for name, table in tables.items():
        path = Path("tables") / f"{prefix + '_' if prefix else ''}{file_name(name)}.csv"
        table.to_csv(folder / path)
        files[f"table {prefix + ' ' if prefix else ''}{name}"] = str(path)
    return files
