"""The ``pymc-maxent`` command line: the demo and fit reports, the tier table, and bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from pymc_maxent.cli import main
from pymc_maxent.data import load_travel_mode
from pymc_maxent.diagnostics import split_by_individual
from pymc_maxent.maxent import fit_maxent
from pymc_maxent.model import ChoiceModel
from pymc_maxent.simulate import simulate_choices, simulate_priced_panel

SCRIPT = Path(sys.executable).with_name("pymc-maxent")
PNG = b"\x89PNG\r\n\x1a\n"


def _strict_json(path: Path) -> dict:
    def reject(constant):
        raise AssertionError(f"{path} holds {constant}")

    return json.loads(path.read_text(), parse_constant=reject)


def _numbers(tree) -> list[float]:
    if isinstance(tree, dict):
        return [x for v in tree.values() for x in _numbers(v)]
    if isinstance(tree, list):
        return [x for v in tree for x in _numbers(v)]
    return [tree] if isinstance(tree, int | float) and not isinstance(tree, bool) else []


def _check_files(folder: Path, summary: dict) -> None:
    for what, rel in summary["files"].items():
        path = folder / rel
        assert path.is_file() and path.stat().st_size > 0, what
        if rel.endswith(".png"):
            assert path.read_bytes()[:8] == PNG, what


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The README's main job, through the installed console script, at a small size."""
    out = tmp_path_factory.mktemp("demo") / "report"
    proc = subprocess.run(
        [str(SCRIPT), "demo", "--draws", "200", "--models", "MNL-2", "MXL-1", "MaxEnt", "--output", str(out),
         "--no-progress"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


@pytest.mark.slow
def test_demo_prints_the_tables(demo):
    _, proc = demo
    for title in ("posterior (MNL-2) vs MaxEnt", "model selection", "revenue-maximising gc",
                  "aggregate elasticities", "KL(posterior || prior)"):
        assert title in proc.stdout
    assert "Traceback" not in proc.stderr


@pytest.mark.slow
def test_demo_report_is_complete_and_finite(demo):
    out, _ = demo
    summary = _strict_json(out / "summary.json")
    _check_files(out, summary)
    assert {Path(f).name for f in summary["files"].values() if f.endswith(".png")} == {
        "posterior_vs_maxent.png", "elasticities.png", "information_gain.png", "revenue_curve.png",
        "individual_coefficients.png"}
    assert set(summary["models"]) == {"MNL-2", "MXL-1", "MaxEnt"}
    for name, model in summary["models"].items():
        values = _numbers(model["estimates"])
        assert values and np.isfinite(values).all(), name
    assert summary["models"]["MaxEnt"]["convergence"]["converged"] is True
    assert summary["models"]["MNL-2"]["convergence"]["max_r_hat"] < 1.05, "rerun with more draws"
    selection = summary["tables"]["selection"]
    assert set(selection) == {"MNL-2", "MXL-1", "MaxEnt"}
    for row in selection.values():
        assert np.isfinite([row["loglik"], row["heldout_log_score"], row["heldout_hit_rate"]]).all()
    pricing = summary["tables"]["pricing"]
    for row in pricing.values():
        assert row["converged"] and row["revenue"] >= row["revenue_status_quo"] - 1e-6


def _printed_table(stdout: str, title: str) -> pd.DataFrame:
    """The table printed under the ``== title`` line (index, then one column per header word)."""
    block = stdout.split(f"== {title}", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    header, rows = block[0].split(), [line.split() for line in block[2:]]
    return pd.DataFrame([r[1:] for r in rows], index=[r[0] for r in rows], columns=header).astype(float)


@pytest.mark.slow
def test_demo_compares_individual_coefficients_on_a_simulated_panel(demo):
    """MXL-1 by NUTS and by MaxEnt on the seeded panel: their beta_i agree (correlation > 0.8 for
    both coefficients, as printed and in summary.json), both track the true beta_i, the table and
    the truth in the report are those of the simulator."""
    out, proc = demo
    summary = _strict_json(out / "summary.json")
    panel = summary["panel"]
    printed = _printed_table(proc.stdout, "simulated panel, individual coefficients beta_i of MXL-1")
    reported = pd.DataFrame(panel["tables"]["individuals"]).T.astype(float)
    assert list(printed.index) == list(reported.index) == ["price", "quality"]
    np.testing.assert_allclose(printed["correlation"], reported["correlation"], atol=5e-4)
    assert (reported["correlation"] > 0.8).all(), reported
    for estimator in ("bayes", "maxent"):
        assert (reported[f"{estimator}_truth_correlation"] > 0.5).all(), reported
        assert (reported[f"{estimator}_truth_rmse_sd"].between(0.5, 2.0)).all(), reported
    csv = pd.read_csv(out / "tables" / "panel_individuals.csv", index_col=0)
    np.testing.assert_allclose(csv["correlation"], reported["correlation"], rtol=1e-12)
    settings = panel["data"]
    n_situations = settings["situation"] // settings["individual"]
    _, truth = simulate_priced_panel(settings["individual"], n_situations, seed=settings["seed"])
    assert panel["truth"]["mu"] == dict(zip(["price", "quality"], truth["mu"].tolist(), strict=True))
    population = panel["tables"]["population"]
    assert population["sigma[price]"]["truth"] == pytest.approx(truth["sigma"][0], rel=1e-12)
    for name, row in population.items():  # the posterior's 94% interval covers the truth
        assert row["bayes_lower"] < row["truth"] < row["bayes_upper"], name
    assert panel["models"]["MaxEnt MXL-1"]["convergence"]["n_converged"] == settings["individual"]
    assert summary["timings_s"]["panel MXL-1"] > 0


@pytest.mark.slow
def test_demo_maxent_matches_a_direct_fit(demo):
    """The report's MaxEnt numbers are those of fit_maxent on the same 75% split, in the JSON and the
    netCDF."""
    out, _ = demo
    train, _ = split_by_individual(load_travel_mode(), test_fraction=0.25, seed=1)
    fit = fit_maxent(train)
    direct = fit.estimates()  # centred on the bias-corrected estimate; GME's own is fit.beta
    estimates = _strict_json(out / "summary.json")["models"]["MaxEnt"]["estimates"]
    reported = pd.Series({k: v["estimate"] for k, v in estimates.items()})
    np.testing.assert_allclose(reported[direct.index], direct["estimate"], rtol=1e-8)
    tree = xr.open_datatree(out / "fits" / "MaxEnt.nc")
    np.testing.assert_allclose(tree["maxent"]["beta"].sel(coefficient="gc"),
                               fit.summary().loc["beta[gc]", "estimate"], rtol=1e-8)
    loaded = ChoiceModel.load(out / "fits" / "MaxEnt.nc").fit_result
    np.testing.assert_allclose(loaded.estimates()["estimate"], direct["estimate"], rtol=1e-8)
    posterior = ChoiceModel.load(out / "fits" / "MNL-2.nc").fit_result
    assert posterior.posterior["beta"].sizes == {"chain": 2, "draw": 200, "coefficient": 3}
    assert np.isfinite(posterior.idata["log_likelihood"]["chosen"]).all()
    assert posterior.data.n_situations == train.n_situations


@pytest.fixture(scope="module")
def choice_csv(tmp_path_factory):
    """A panel with unbalanced choice sets as a long CSV: unavailable rows kept with availability 0
    and empty attributes."""
    data, truth = simulate_choices("MNL-2", n_individuals=150, n_situations=4, unavailable=0.2, seed=5)
    s, j = np.indices(data.available.shape)
    frame = pd.DataFrame({
        "trip": data.situations[s.ravel()], "mode": data.alternatives[j.ravel()],
        "person": data.individuals[data.individual[s.ravel()]],
        "picked": (data.chosen[s.ravel()] == j.ravel()).astype(int),
        "open": data.available.ravel().astype(int),
        "x0": data.X[..., 0].ravel(), "x1": data.X[..., 1].ravel(),
    })
    frame.loc[frame["open"] == 0, ["x0", "x1"]] = np.nan
    path = tmp_path_factory.mktemp("csv") / "choices.csv"
    frame.sample(frac=1.0, random_state=0).to_csv(path, index=False)  # row order must not matter
    return path, truth, data


COLUMNS = ["--situation", "trip", "--alternative", "mode", "--chosen", "picked", "--attributes", "x0", "x1",
           "--individual", "person", "--availability", "open"]


@pytest.mark.slow
def test_fit_recovers_the_truth_from_a_csv(choice_csv, tmp_path, capsys):
    path, truth, data = choice_csv
    out = tmp_path / "report"
    code = main(["fit", str(path), *COLUMNS, "--reference", "alt2", "--price", "x0", "--draws", "300",
                 "--chains", "2", "--sampler", "pymc", "--test-fraction", "0", "--output", str(out)])
    assert code == 0
    assert "model selection" in capsys.readouterr().out
    summary = _strict_json(out / "summary.json")
    _check_files(out, summary)
    assert summary["data"]["situation"] == data.n_situations and summary["data"]["held_out_situations"] == 0
    estimates = summary["models"]["MNL-2"]["estimates"]
    for k, name in enumerate(["x0", "x1"]):  # 94% interval covers the truth, posterior sd small
        row = estimates[f"beta[{name}]"]
        assert row["lower"] < truth["beta"][k] < row["upper"] and row["sd"] < 0.15, (name, row)
    for k, alt in enumerate(["alt0", "alt1"]):
        row = estimates[f"alpha[{alt}]"]
        assert row["lower"] < truth["alpha"][k] < row["upper"], (alt, row)
    assert "heldout_log_score" not in summary["tables"]["selection"]["MaxEnt"]


@pytest.mark.slow
def test_fit_ranks_the_nested_logit_and_fits_wtp_space(choice_csv, tmp_path):
    """``--nests`` adds NL beside the tiers asked; ``--space wtp`` puts the Bayesian tiers in WTP
    space (x0 the price): the selection table ranks MNL-2, NL and MXL-1 side by side."""
    path, _, _ = choice_csv
    out = tmp_path / "report"
    code = main(["fit", str(path), *COLUMNS, "--models", "MNL-2", "MXL-1", "--nests", "pair=alt0,alt1",
                 "--price", "x0", "--space", "wtp", "--draws", "40", "--chains", "1", "--sampler", "pymc",
                 "--test-fraction", "0", "--cv", "loo", "--output", str(out)])
    assert code == 0
    summary = _strict_json(out / "summary.json")
    selection = summary["tables"]["selection"]
    assert set(selection) == {"MNL-2", "MXL-1", "NL"}
    assert selection["NL"]["parameters"] == selection["MNL-2"]["parameters"] + 1
    assert "lambda[pair]" in summary["models"]["NL"]["estimates"]
    assert {"scale", "wtp[x1]", "beta[x0]"} <= set(summary["models"]["MNL-2"]["estimates"])
    assert "scale" in ChoiceModel.load(out / "fits" / "MXL-1.nc").model.coords["random_coefficient"]


def test_models_words_name_each_fit():
    from pymc_maxent.cli import models_setting

    assert models_setting(["MXL-1", "MaxEnt", "MaxEnt MXL-1", "MNL-2 g-prior", "MaxEnt MNL-3"]) == {
        "tiers": ["MXL-1"], "maxent": True, "g_prior": ["MNL-2"], "maxent_tiers": ["MXL-1", "MNL-3"]}


def test_fit_gives_a_maxent_row_for_each_tier_asked(choice_csv, tmp_path):
    """``--models "MaxEnt MNL-2" "MaxEnt MXL-1"``: both tiers by MaxEnt (the second the MaxEnt mixed
    logit), each its own row of the model-selection table, saved, and equal to a direct fit."""
    path, _, data = choice_csv
    out = tmp_path / "report"
    code = main(["fit", str(path), *COLUMNS, "--models", "MaxEnt MNL-2", "MaxEnt MXL-1",
                 "--test-fraction", "0", "--folds", "3", "--output", str(out)])
    assert code == 0
    summary = _strict_json(out / "summary.json")
    selection = summary["tables"]["selection"]
    assert set(selection) == {"MaxEnt MNL-2", "MaxEnt MXL-1"}
    assert {row["criterion"] for row in selection.values()} == {"kfold"}
    assert selection["MaxEnt MXL-1"]["latent"] == 2 * data.n_individuals  # a δ_i per individual and x
    direct = fit_maxent(data, tier="MXL-1", reference="alt2").estimates()
    mixed = summary["models"]["MaxEnt MXL-1"]["estimates"]
    for name in ("mu[x0]", "mu[x1]", "sigma[x0]", "sigma[x1]"):
        np.testing.assert_allclose(mixed[name]["estimate"], direct.loc[name, "estimate"], rtol=1e-6)
    again = ChoiceModel.load(out / "fits" / "MaxEnt_MXL-1.nc").fit_result
    assert again.n_converged == data.n_individuals


def test_tiers_counts_parameters_of_a_csv(choice_csv, capsys):
    path, _, data = choice_csv
    assert main(["tiers", str(path), *COLUMNS]) == 0
    text = capsys.readouterr().out
    table = {line.split()[0]: line.split()[-3:] for line in text.splitlines() if line[:3] in ("MNL", "MXL")}
    J, K, N = data.n_alternatives, data.n_attributes, data.n_individuals
    assert table["MNL-2"] == [str(J - 1 + K), "0", str(J - 1 + K)]
    assert table["MXL-1"] == [str(J - 1 + 2 * K), str(N * K), str(J - 1 + 2 * K + N * K)]


BAD = {
    "missing file": (lambda tmp: tmp / "nope.csv", [], "nope.csv: no such file"),
    "missing column": (None, ["--attributes", "x0", "price"], "price"),
    "unknown reference": (None, ["--reference", "plane"], "plane"),
    "unknown model": (None, ["--models", "MNL-9"], "MNL-9"),
    "unknown price": (None, ["--price", "cost"], "cost"),
    "not numeric": ("trip,mode,picked,x0,x1\n1,a,1,1,2\n1,b,0,oops,1\n2,a,0,1,1\n2,b,1,2,2\n", [], "x0"),
    "two chosen": ("trip,mode,picked,x0,x1\n1,a,1,1,2\n1,b,1,2,1\n2,a,0,1,1\n2,b,1,2,2\n", [], "picked"),
    "empty file": ("", [], "not a readable CSV"),
    "nests without =": (None, ["--nests", "public"], "--nests 'public': give NEST=ALT,ALT"),
    "nest of an unknown alternative": (None, ["--nests", "pair=alt0,boat"], "unknown alternative 'boat'"),
    "wtp space without a price": (None, ["--space", "wtp"], "space='wtp' needs the price"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_and_exit_code_2(case, choice_csv, tmp_path, capsys):
    content, extra, expected = BAD[case]
    if content is None:
        path = choice_csv[0]
    elif callable(content):
        path = content(tmp_path)
    else:
        path = tmp_path / "bad.csv"
        path.write_text(content)
    columns = COLUMNS[:-4] if isinstance(content, str) else COLUMNS  # the small CSVs have no panel columns
    code = main(["fit", str(path), *columns, *extra, "--draws", "20", "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and err.startswith("pymc-maxent fit: error: ") and expected in err, err
    assert not (tmp_path / "out").exists()


def test_console_script_exit_code_and_help():
    proc = subprocess.run([str(SCRIPT), "tiers", "missing.csv", "--situation", "s"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "pymc-maxent tiers: error: missing.csv: no such file"
    for command in ("demo", "fit", "tiers"):
        proc = subprocess.run([str(SCRIPT), command, "--help"], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0 and f"usage: pymc-maxent {command}" in proc.stdout
