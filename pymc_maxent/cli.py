"""The ``pymc-maxent`` command line: ``demo``, ``fit`` and ``tiers``.

Bad input (a missing file or column, an unknown alternative, a CSV that is not choice data)
ends with one line on standard error, ``pymc-maxent: error: ...``, and exit code 2; the tables
go to standard output, the steps and progress bars to standard error.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

from pymc_maxent._version import __version__
from pymc_maxent.bayes import tier_table
from pymc_maxent.data import ChoiceData, load_travel_mode
from pymc_maxent.exceptions import PymcMaxentError
from pymc_maxent.report import write_report
from pymc_maxent.workflow import G_PRIOR, MAXENT, SAMPLERS, PanelSettings, Settings, run, run_panel

INPUT_ERRORS = (PymcMaxentError, OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError)
DEMO_MODELS = ("MNL-2", "MNL-1", "MXL-1", "MNL-2 g-prior", "MaxEnt")
FIT_MODELS = ("MNL-2", "MaxEnt")


class InputError(PymcMaxentError):
    """Bad command-line input that is not about the data (a file, an option)."""


# ---------------------------------------------------------------------------------- parser
def _add_columns(parser: argparse.ArgumentParser, required: bool) -> None:
    cols = parser.add_argument_group("CSV columns (long format: one row per situation x alternative)")
    cols.add_argument("--situation", required=required, metavar="COL", help="choice-situation id")
    cols.add_argument("--alternative", required=required, metavar="COL", help="alternative label")
    cols.add_argument("--chosen", required=required, metavar="COL",
                      help="1 for the chosen alternative, else 0")
    cols.add_argument("--attributes", required=required, nargs="+", metavar="COL", help="numeric attributes")
    cols.add_argument("--individual", metavar="COL", help="decision-maker id (panel data)")
    cols.add_argument("--occasion", metavar="COL", help="occasion within an individual's panel")
    cols.add_argument("--availability", metavar="COL",
                      help="1 if the alternative was available (a missing row also means unavailable)")
    cols.add_argument("--sep", default=",", help="field separator of the CSV (default ',')")


def _add_fitting(parser: argparse.ArgumentParser, *, models, draws: int, chains: int, output: str,
                 sampler: str) -> None:
    fit = parser.add_argument_group("models and sampling")
    fit.add_argument("--models", nargs="+", default=list(models), metavar="MODEL",
                     help="tiers (MNL-1 ... MXL-4, NL: the nested logit of --nests), MaxEnt (MNL-2's twin), "
                          "'MaxEnt <tier>' (a tier by "
                          "MaxEnt: at MXL-1 ... MXL-4 the MaxEnt mixed logit), or an MNL tier followed by "
                          "' g-prior' "
                          f"(default: {' '.join(repr(m) for m in models)}); the first tier drives the "
                          "comparison, elasticities and pricing")
    fit.add_argument("--reference", metavar="ALT", help="alternative without a constant (default: the last)")
    fit.add_argument("--random", action="append", metavar="DIST | ATTR=DIST",
                     help="mixing distribution of the mixed tiers' random coefficients: normal, lognormal "
                          "or neg_lognormal, for all of them or per attribute (repeatable)")
    fit.add_argument("--correlated", action="store_true", help="LKJ-correlated random coefficients")
    fit.add_argument("--nests", nargs="+", metavar="NEST=ALT,ALT",
                     help="nests of the nested logit NL (MNL-2's utility; added to --models if absent), "
                          "e.g. --nests public=bus,train; an alternative in no nest is a nest of its own")
    fit.add_argument("--space", choices=("preference", "wtp"), default="preference",
                     help="where the tiers' parameters live: preference space (coefficients, the default) "
                          "or willingness-to-pay space (the WTPs in units of --price, which it needs)")
    fit.add_argument("--draws", type=int, default=draws, help=f"posterior draws per chain (default {draws})")
    fit.add_argument("--tune", type=int, help="tuning steps per chain (default: as --draws)")
    fit.add_argument("--chains", type=int, default=chains, help=f"chains (default {chains})")
    fit.add_argument("--sampler", choices=SAMPLERS, default=sampler,
                     help=f"NUTS implementation (default {sampler})")
    fit.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    fit.add_argument("--test-fraction", type=float, default=0.25,
                     help="share of individuals held out for the held-out scores, 0 for none (default 0.25)")
    fit.add_argument("--cv", choices=("auto", "kfold", "loo", "none"), default="auto",
                     help="model-selection score: PSIS-LOO where reliable, else exact refits or K-fold "
                          "(auto, the default), K-fold for all, PSIS-LOO only, or the held-out score")
    fit.add_argument("--folds", type=int, default=5, help="K of the K-fold cross-validation (default 5)")
    fit.add_argument("--cv-draws", type=int, default=200, metavar="N",
                     help="each cross-validation refit samples one chain of N draws after N tuning "
                          "steps (default 200)")
    fit.add_argument("--output", default=output, metavar="DIR", help=f"report folder (default {output})")
    fit.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="sampler progress bars (default: when standard output is a terminal)")


def _add_pricing(parser: argparse.ArgumentParser, *, price=None, alternative=None) -> None:
    pricing = parser.add_argument_group("elasticities, willingness to pay and pricing")
    pricing.add_argument("--price", default=price, metavar="ATTR",
                         help="price attribute" + (f" (default {price})" if price else "; without it these "
                                                   "tables are skipped"))
    pricing.add_argument("--price-alternative", default=alternative, metavar="ALT",
                         help="alternative whose price is optimised"
                              + (f" (default {alternative})" if alternative else
                                 " (default: the first that is not the reference)"))
    pricing.add_argument("--price-bounds", nargs=2, type=float, default=(0.5, 2.0), metavar=("LO", "HI"),
                         help="price search range as multipliers of the observed prices (default 0.5 2.0)")


def build_parser() -> argparse.ArgumentParser:
    """The ``pymc-maxent`` argument parser (its ``--help`` texts are the CLI's documentation)."""
    parser = argparse.ArgumentParser(
        prog="pymc-maxent",
        description="Discrete-choice models in PyMC, from multinomial to mixed logit, and their "
                    "maximum-entropy (GME) twin: fit, compare, and write a report.")

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="the logit ladder and MaxEnt on the bundled TravelMode data, compared",
        description="Fit MNL-2, MNL-1, MXL-1, MNL-2 under the GME g-prior and MaxEnt to 75% of "
                    "TravelMode (Greene & Hensher; gc, ttme and income x air), print the comparison, "
                    "information, elasticity, pricing and model-selection tables, and write a report "
                    "folder (figures/*.png, fits/*.nc, tables/*.csv, summary.json).")
    # PyMC's own NUTS: on 158 situations nutpie's compile time outweighs its faster sampling (27 s vs 67 s)
    _add_fitting(demo, models=DEMO_MODELS, draws=500, chains=2, output="reports/demo", sampler="pymc")
    _add_pricing(demo, price="gc", alternative="air")
    panel = demo.add_argument_group("simulated panel (individual coefficients: MXL-1 by NUTS and by MaxEnt)")
    panel.add_argument("--panel", action=argparse.BooleanOptionalAction, default=True,
                       help="also fit MXL-1 both ways to a seeded simulated panel (price, quality; known "
                            "individual coefficients) and compare the individual coefficients (default: on)")
    panel.add_argument("--panel-individuals", type=int, default=60, metavar="N",
                       help="individuals of the panel, 10 situations each (default 60)")
    panel.add_argument("--panel-draws", type=int, default=200, metavar="N",
                       help="its posterior draws per chain, after as many tuning steps (default 200)")

    fit = commands.add_parser(
        "fit", help="fit tiers and/or MaxEnt to a long-format CSV and write a report",
        description="Fit the chosen tiers and MaxEnt to a long-format choice CSV (one row per choice "
                    "situation x alternative) and write the same report as `demo`.")
    fit.add_argument("csv", type=Path, help="the long-format CSV file")
    _add_columns(fit, required=True)
    _add_fitting(fit, models=FIT_MODELS, draws=1000, chains=4, output="reports/fit", sampler="nutpie")
    _add_pricing(fit)

    tiers = commands.add_parser(
        "tiers", help="the tier ladder with its parameter counts for a CSV (default: TravelMode)",
        description="Print the tier table: each tier's description and its parameter counts "
                    "(design-note formula, identified population-level and latent) on the data.")
    tiers.add_argument("csv", type=Path, nargs="?", help="long-format CSV (default: the bundled TravelMode)")
    _add_columns(tiers, required=False)
    return parser


# ---------------------------------------------------------------------------------- commands
def read_choice_csv(args: argparse.Namespace):
    """:class:`~pymc_maxent.ChoiceData` from the CSV and the column options."""
    path = _existing(args.csv)
    try:
        frame = pd.read_csv(path, sep=args.sep)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: not a readable CSV ({one_line(error)})") from error
    if frame.empty:
        raise InputError(f"{path}: no rows")
    return ChoiceData.from_long(frame, situation=args.situation, alternative=args.alternative,
                                chosen=args.chosen, attributes=args.attributes, individual=args.individual,
                                occasion=args.occasion, availability=args.availability)


def _existing(path: Path) -> Path:
    if not path.is_file():
        raise InputError(f"{path}: " + ("a folder, not a CSV file" if path.is_dir() else "no such file"))
    return path


def _random(specs: list[str] | None):
    if not specs:
        return "normal"
    if len(specs) == 1 and "=" not in specs[0]:
        return specs[0]
    pairs = {}
    for spec in specs:
        attribute, sep, dist = spec.partition("=")
        if not sep:
            raise InputError(f"--random {spec!r}: give one distribution for all, or ATTR=DIST for each")
        pairs[attribute] = dist
    return pairs


def _nests(specs: list[str] | None) -> dict | None:
    """``--nests NAME=ALT,ALT ...`` as a mapping of nest name to alternatives."""
    if not specs:
        return None
    nests = {}
    for spec in specs:
        name, sep, members = spec.partition("=")
        alternatives = [a.strip() for a in members.split(",") if a.strip()]
        if not sep or not name.strip() or not alternatives:
            raise InputError(f"--nests {spec!r}: give NEST=ALT,ALT (e.g. public=bus,train)")
        if name.strip() in nests:
            raise InputError(f"--nests: nest {name.strip()!r} given twice")
        nests[name.strip()] = alternatives
    return nests


def models_setting(models) -> dict:
    """``--models`` words as the typed settings: ``tiers``, ``maxent`` and ``g_prior``."""
    twins = [m for m in models if m.startswith(f"{MAXENT} ")]
    tiers = [m for m in models if m != MAXENT and m not in twins and not m.endswith(G_PRIOR)]
    return {"tiers": tiers, "maxent": MAXENT in models,
            "g_prior": [m.removesuffix(G_PRIOR) for m in models if m.endswith(G_PRIOR)],
            "maxent_tiers": [m.removeprefix(f"{MAXENT} ") for m in twins]}


def settings_from(args: argparse.Namespace):
    # the samplers draw their bars on standard output
    progress = sys.stdout.isatty() if args.progress is None else args.progress
    setting = models_setting(args.models)
    nests = _nests(args.nests)
    if nests and "NL" not in setting["tiers"]:
        setting["tiers"].append("NL")
    return Settings(**setting, nests=nests, space=args.space, reference=args.reference, price=args.price,
                    price_alternative=args.price_alternative, price_bounds=tuple(args.price_bounds),
                    random=_random(args.random), correlated=args.correlated, draws=args.draws,
                    tune=args.tune, chains=args.chains, sampler=args.sampler, seed=args.seed,
                    test_fraction=args.test_fraction, cv=args.cv, folds=args.folds,
                    cv_draws=args.cv_draws, progress=progress)


def print_table(title: str, table: pd.DataFrame | str, digits: int = 4) -> None:
    text = table if isinstance(table, str) else table.round(digits).to_string()
    print(f"== {title}\n{text}\n", flush=True)


TABLE_TITLES = {
    "comparison": "posterior ({focus}) vs MaxEnt; difference_sd: the difference in posterior SDs",
    "comparison_g_prior": "posterior ({focus} under the GME g-prior) vs MaxEnt",
    "parameter_information": "{focus}: information gain KL(posterior || prior) per parameter",
    "choice_information": "information gain on the choice probabilities, KL(predicted || uniform) per "
                          "situation",
    "elasticities": "{focus}: aggregate elasticities of demand (rows) to {price} (columns), posterior mean",
    "elasticities_sd": "{focus}: their posterior SDs",
    "elasticities_maxent": "MaxEnt: aggregate elasticities to {price}",
    "elasticities_maxent_sd": "MaxEnt: their delta-method standard errors",
    "wtp": "willingness to pay ({price} units per unit of attribute)",
    "pricing": "revenue-maximising {price} (multiplier of the observed prices) and expected revenue",
    "selection": "model selection, best first by elpd (criterion: PSIS-LOO where every Pareto k is good, "
                 "else exact refits or K-fold CV by individual; weight only where every criterion is the "
                 "same; held-out log score and hit rate on the held-out individuals)",
}


def print_analysis(analysis) -> None:
    s = analysis.settings
    print_table("tier ladder (parameter counts on these data)", analysis.tables["tiers"])
    for name, fit in analysis.fits.items():
        head = f"{name}: {analysis.timings[name]:.1f} s"
        if name == "MaxEnt":
            head += f"\n{fit!r}"
        print_table(head, analysis.tables[f"estimates_{name}"])
    for key, title in TABLE_TITLES.items():
        if key in analysis.tables:
            print_table(title.format(focus=s.focus, price=s.price), analysis.tables[key], 3)
    if analysis.panel is not None:
        print_panel(analysis.panel)


PANEL_TITLES = {
    "individuals": "simulated panel, individual coefficients beta_i of MXL-1: MaxEnt against the posterior "
                   "means (correlation over individuals; rmse_sd: RMSE of the difference in posterior SDs; "
                   "*_sd: SD of the estimates over individuals) and each against the true beta_i "
                   "(truth_rmse_sd: RMSE of the error in the estimator's own SDs)",
    "population": "simulated panel, population: posterior mu and sigma against MaxEnt's learnt mixing "
                  "distribution, and the truth",
}


def print_panel(panel) -> None:
    """The simulated panel's section of the demo's output."""
    s = panel.settings
    head = (f"simulated panel: {s.n_individuals} individuals x {s.n_situations} situations, 3 products, "
            f"price and quality, MXL-1 (seed {s.seed})")
    for name, fit in panel.fits.items():
        head += f"\n{name}: {panel.timings[name]:.1f} s, " + ", ".join(
            f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in fit.convergence().items())
    print(head + "\n", flush=True)
    for key, title in PANEL_TITLES.items():
        print_table(title, panel.tables[key], 3)


def panel_settings_from(args: argparse.Namespace, settings):
    """The demo's simulated-panel settings (None with ``--no-panel``)."""
    if not args.panel:
        return None
    return PanelSettings(n_individuals=args.panel_individuals, draws=args.panel_draws, chains=settings.chains,
                         sampler=settings.sampler, seed=settings.seed, progress=settings.progress)


def run_analysis(data, args: argparse.Namespace, intro: str, *, panel: bool = False) -> int:
    settings = settings_from(args)
    panel_settings = panel_settings_from(args, settings) if panel else None
    pd.set_option("display.width", 160)
    pd.set_option("display.max_columns", 30)
    start = time.perf_counter()
    print(intro + "\n", flush=True)
    analysis = run(data, settings)
    if panel_settings is not None:
        analysis.panel = run_panel(panel_settings)
    print_analysis(analysis)
    files = write_report(analysis, args.output)
    counts = {kind: sum(k.startswith(kind) for k in files) for kind in ("figure", "fit", "table")}
    print(f"report: {args.output}/ ({len(files)} files: summary.json, {counts['figure']} figures, "
          f"{counts['fit']} fits, {counts['table']} tables); {time.perf_counter() - start:.0f} s in all")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    data = load_travel_mode()
    share = 1 - args.test_fraction
    return run_analysis(data, args,
                        f"TravelMode: {data.dims}; models fitted on {share:.0%} of the individuals",
                        panel=True)


def cmd_fit(args: argparse.Namespace) -> int:
    data = read_choice_csv(args)
    return run_analysis(data, args, f"{args.csv}: {data.dims}")


def cmd_tiers(args: argparse.Namespace) -> int:
    if args.csv is None:
        data, source = load_travel_mode(), "TravelMode"
    else:
        _existing(args.csv)
        needed = ("situation", "alternative", "chosen", "attributes")
        missing = [f"--{o}" for o in needed if not getattr(args, o)]
        if missing:
            raise InputError(f"tiers {args.csv}: give the columns {', '.join(missing)}")
        data, source = read_choice_csv(args), str(args.csv)
    pd.set_option("display.width", 200)
    print_table(f"tier ladder on {source}: {data.dims}", tier_table(data))
    return 0


COMMANDS = {"demo": cmd_demo, "fit": cmd_fit, "tiers": cmd_tiers}


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"pymc-maxent: {category.__name__}: {one_line(message)}", file=file or sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``pymc-maxent``; returns the exit code."""
    args = build_parser().parse_args(argv)
    shown, warnings.showwarning = warnings.showwarning, _show_warning  # one line each
    try:
        return COMMANDS[args.command](args)
    except BrokenPipeError:  # `pymc-maxent tiers | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (no flush error at exit)
        return 0
    except INPUT_ERRORS as error:
        print(f"pymc-maxent {args.command}: error: {one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("pymc-maxent: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.showwarning = shown  # main() called from Python leaves the warnings as it found them


if __name__ == "__main__":
    sys.exit(main())
