"""One analysis from choice data to tables and figures: what ``pymc-maxent demo`` and
``pymc-maxent fit`` run, and what a notebook can run in one call.

The flow is the package's: data → held-out split → Bayesian tiers (:func:`~pymc_maxent.build_model`,
:func:`~pymc_maxent.sample`) and MaxEnt (:func:`~pymc_maxent.fit_maxent`) → the diagnostics
tables (estimates side by side, model selection, information gain, elasticities, willingness to
pay, revenue-maximising price) → figures. :func:`pymc_maxent.report.write_report` writes it all
to a folder.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pymc as pm

from pymc_maxent.arguments import optional_count, require_count
from pymc_maxent.data.choice_data import ChoiceData, label_position
from pymc_maxent.diagnostics import (
    KnownCoefficients,
    compare_estimates,
    compare_individuals,
    compare_information,
    elasticities,
    model_selection,
    optimal_prices,
    posterior_information_gain,
    revenue_curve,
    split_by_individual,
    willingness_to_pay,
)
from pymc_maxent.diagnostics.selection import CV
from pymc_maxent.exceptions import ChoiceDataError, SpecificationError, plain
from pymc_maxent.model import ChoiceModel
from pymc_maxent.plots import (
    plot_elasticity_heatmap,
    plot_individual_coefficients,
    plot_information_gain,
    plot_posterior_vs_maxent,
    plot_revenue_curve,
)
from pymc_maxent.simulate import simulate_priced_panel
from pymc_maxent.specification import NESTED_TIERS, TIERS, as_spec, resolve_nests, tier_table

#: The name of the MaxEnt fit in the tables.
MAXENT = "MaxEnt"
#: Suffix of the name of an MNL tier fitted under the Zellner g-prior (``build_model(..., g_prior="gme")``).
G_PRIOR = " g-prior"
SAMPLERS = ("nutpie", "pymc", "numpyro", "blackjax")


@dataclass
class Settings:
    """What to fit and how.

    Parameters
    ----------
    tiers : sequence of str
        Tiers fitted by NUTS (``"MNL-1"`` … ``"MXL-4"``, and ``"NL"``: the nested logit of
        ``nests`` on ``MNL-2``'s utility); the first is the one the analysis tables use
        (``focus``).
    maxent : bool
        Also fit MaxEnt (the twin of ``MNL-2``: attribute sums and alternative shares), named
        ``"MaxEnt"`` in the tables.
    g_prior : sequence of str
        MNL tiers also fitted under the Zellner g-prior that GME's noise term amounts to, named
        ``"<tier> g-prior"`` in the tables.
    maxent_tiers : sequence of str
        Tiers also fitted by MaxEnt (a mixed tier: the MaxEnt mixed logit, population then
        individuals), named ``"MaxEnt <tier>"`` in the tables, so the model-selection table has
        a MaxEnt row for every tier wanted.
    reference : alternative label, optional
        The alternative without a constant (default: the last).
    price : str, optional
        Price attribute: elasticities, willingness to pay and pricing need one.
    price_alternative : alternative label, optional
        Whose price is optimised (default: the first alternative other than ``reference``).
    price_bounds : (float, float)
        Search range of the price, as multipliers of the observed prices.
    nests : mapping, optional
        Nest name → alternatives of the nested logit ``"NL"``.
    space : {"preference", "wtp"}
        Where the Bayesian tiers' parameters live (``"wtp"`` needs ``price``); the g-prior and
        MaxEnt fits stay in preference space.
    random : str or dict
        Mixing distribution(s) of the mixed tiers' random coefficients.
    correlated : bool
        LKJ-correlated random coefficients.
    draws, tune, chains, sampler, seed : sampler settings (``tune`` defaults to ``draws``).
    test_fraction : float
        Share of individuals held out for the held-out scores (0: none).
    cv : {"auto", "kfold", "loo", "none"}
        How the model-selection table scores the fits (:func:`~pymc_maxent.diagnostics.model_selection`).
    folds : int
        K of its K-fold cross-validation.
    cv_draws : int, optional
        Each cross-validation refit of a posterior samples one chain of ``cv_draws`` draws after
        as many tuning steps (cheaper than the fit itself); None: the fit's own settings.
    progress : bool
        The samplers' progress bars.
    """

    tiers: Sequence[str] = ("MNL-2", "MXL-1")
    maxent: bool = True
    g_prior: Sequence[str] = ()
    maxent_tiers: Sequence[str] = ()
    reference: object = None
    price: str | None = None
    price_alternative: object = None
    price_bounds: tuple[float, float] = (0.5, 2.0)
    nests: Mapping | None = None
    space: str = "preference"
    random: str | dict[str, str] = "normal"
    correlated: bool = False
    draws: int = 500
    tune: int | None = None
    chains: int = 2
    sampler: str = "nutpie"
    seed: int = 1
    test_fraction: float = 0.25
    cv: str = "auto"
    folds: int = 5
    cv_draws: int | None = 200
    progress: bool = False

    def __post_init__(self):
        self.tiers, self.g_prior = tuple(self.tiers), tuple(self.g_prior)
        self.maxent_tiers = tuple(self.maxent_tiers)
        for tier in self.tiers + self.g_prior + self.maxent_tiers:
            if tier not in TIERS and not (tier in NESTED_TIERS and tier in self.tiers):
                raise SpecificationError(f"unknown tier {tier!r}: use one of {', '.join(TIERS)} "
                                         "(and NL, by NUTS)")
        if ("NL" in self.tiers) != bool(self.nests):
            raise SpecificationError("the nested logit NL and nests go together: give both or neither")
        if self.space not in ("preference", "wtp"):
            raise SpecificationError(f"space must be 'preference' or 'wtp'; got {self.space!r}")
        if self.space == "wtp" and self.price is None:
            raise SpecificationError("space='wtp' needs the price attribute (price=)")
        if len(set(self.maxent_tiers)) < len(self.maxent_tiers):
            raise SpecificationError(f"a tier named twice in maxent_tiers {list(self.maxent_tiers)}")
        for tier in self.g_prior:
            if not tier.startswith("MNL"):
                raise SpecificationError(f"g_prior {tier!r}: the g-prior is for the MNL tiers only")
        if len(set(self.tiers)) < len(self.tiers) or len(set(self.g_prior)) < len(self.g_prior):
            raise SpecificationError(f"a tier named twice in {list(self.tiers)} or {list(self.g_prior)}")
        if not (self.tiers or self.g_prior or self.maxent or self.maxent_tiers):
            raise SpecificationError("nothing to fit: give tiers, g_prior, maxent_tiers or maxent=True")
        if self.sampler not in SAMPLERS:
            raise SpecificationError(f"unknown sampler {self.sampler!r}: use one of {', '.join(SAMPLERS)}")
        self.draws = require_count(self.draws, "draws", minimum=10)
        self.chains = require_count(self.chains, "chains")
        self.tune = optional_count(self.tune, "tune", minimum=0)
        self.folds = require_count(self.folds, "folds", minimum=2)
        self.cv_draws = optional_count(self.cv_draws, "cv_draws", minimum=10)
        if self.cv not in CV:
            raise SpecificationError(f"cv={self.cv!r}: cv must be one of {', '.join(CV)}")
        if not 0 <= self.test_fraction < 1:
            raise SpecificationError(f"test_fraction={self.test_fraction}: must lie in [0, 1)")
        lo, hi = self.price_bounds
        if not 0 < lo < hi:
            raise SpecificationError(f"price_bounds={self.price_bounds}: need 0 < lower < upper")

    @property
    def names(self) -> list[str]:
        """The fits' names in the tables, in fitting order."""
        return [*self.tiers, *(t + G_PRIOR for t in self.g_prior), *([MAXENT] if self.maxent else []),
                *(f"{MAXENT} {t}" for t in self.maxent_tiers)]

    @property
    def focus(self) -> str | None:
        """The Bayesian fit the analysis tables use: the first tier (or g-prior fit)."""
        bayesian = [*self.tiers, *(t + G_PRIOR for t in self.g_prior)]
        return bayesian[0] if bayesian else None


@dataclass
class Analysis:
    """Everything one run produced: the fits, their tables and figures, and how long each took."""

    data: ChoiceData
    train: ChoiceData
    test: ChoiceData | None
    settings: Settings
    fits: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    panel: PanelAnalysis | None = None


def check_settings(data: ChoiceData, settings: Settings) -> None:
    """The labels in ``settings`` exist in ``data``; else :class:`ChoiceDataError` naming the one that
    does not."""
    alternatives = [str(a) for a in data.alternatives]
    for what, label in (("reference", settings.reference), ("price_alternative", settings.price_alternative)):
        if label is not None and str(label) not in alternatives:
            raise ChoiceDataError(f"{what} {label!r} is not an alternative; the alternatives are "
                                  f"{', '.join(alternatives)}")
    if settings.price is not None:
        label_position(data.attributes, settings.price, "price attribute")
    if isinstance(settings.random, Mapping):
        unknown = sorted(set(settings.random) - set(map(str, data.attributes)))
        if unknown:
            raise ChoiceDataError(f"random coefficients for {', '.join(unknown)}: not attributes")
    if settings.nests:  # before anything is fitted
        resolve_nests(as_spec("NL", [], nests=settings.nests).nests, data.alternatives.tolist())
    if settings.test_fraction and data.n_individuals < 4:
        raise ChoiceDataError(f"{data.n_individuals} individuals cannot be split for held-out scores: "
                              "set test_fraction to 0")


def _label(data: ChoiceData, label):
    """An alternative label as typed (a CLI string) mapped to the data's own label."""
    if label is None:
        return None
    return plain(data.alternatives[[str(a) for a in data.alternatives].index(str(label))])


def run(data: ChoiceData, settings: Settings | None = None, *, log: Callable[[str], None] | None = None
        ) -> Analysis:
    """Fit ``the fits of ``settings```` to a training split of ``data`` and compute the analysis tables.

    Parameters
    ----------
    data : ChoiceData
    settings : Settings, optional
    log : callable, optional
        Receives one line per step (default: standard error).

    Returns
    -------
    Analysis

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.workflow import Settings, run
    >>> out = run(pmx.load_travel_mode(), Settings(tiers=[], price="gc"), log=lambda line: None)
    >>> out.fits["MaxEnt"].converged, list(out.tables["pricing"].index), sorted(out.figures)
    (True, ['MaxEnt'], ['elasticities', 'revenue_curve'])
    """
    settings = settings or Settings()
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    check_settings(data, settings)
    reference = _label(data, settings.reference)
    if settings.test_fraction:
        train, test = split_by_individual(data, test_fraction=settings.test_fraction, seed=settings.seed)
    else:
        train, test = data, None
    out = Analysis(data=data, train=train, test=test, settings=settings)
    out.tables["tiers"] = tier_table(data).drop(columns="description")
    names = settings.names
    steps = len(names) + 1
    for step, name in enumerate(names, start=1):
        start = time.perf_counter()
        log(f"[{step}/{steps}] fitting {name} on {train.n_situations} situations ...")
        out.models[name] = model = _model(train, name, settings, reference)
        fit = _fit(model, name, settings)
        out.tables[f"estimates_{name}"] = fit.estimates()
        out.fits[name] = fit
        out.timings[name] = time.perf_counter() - start
        health = ", ".join(f"{k} {v}" for k, v in convergence(fit).items())
        log(f"      {name}: {out.timings[name]:.1f} s, {health}")
    start = time.perf_counter()
    log(f"[{steps}/{steps}] comparison, model selection, information gain"
        + (", elasticities and pricing" if settings.price else "") + " ...")
    analyse(out)
    out.timings["analysis"] = time.perf_counter() - start
    return out


def _model(train: ChoiceData, name: str, settings: Settings, reference) -> ChoiceModel:
    """The :class:`~pymc_maxent.ChoiceModel` of one named fit of the settings."""
    if name == MAXENT:
        return ChoiceModel(train, "MNL-2", reference=reference)
    if name.startswith(f"{MAXENT} "):  # a tier's MaxEnt twin (or the MaxEnt mixed logit)
        tier = name.removeprefix(f"{MAXENT} ")
        return ChoiceModel(train, tier, reference=reference, random=settings.random,
                           correlated=settings.correlated and tier.startswith("MXL"))
    tier = name.removesuffix(G_PRIOR)
    if name.endswith(G_PRIOR):
        return ChoiceModel(train, tier, reference=reference, g_prior="gme")
    wtp = {"space": "wtp", "price": settings.price} if settings.space == "wtp" else {}
    return ChoiceModel(train, tier, reference=reference, random=settings.random,
                       correlated=settings.correlated and tier.startswith("MXL"),
                       nests=settings.nests if tier in NESTED_TIERS else None, **wtp)


def _fit(cm: ChoiceModel, name: str, settings: Settings):
    if name == MAXENT or name.startswith(f"{MAXENT} "):
        return cm.fit(method="maxent")
    tune = settings.tune if settings.tune is not None else settings.draws
    kwargs = {"cores": 1} if settings.sampler == "pymc" else {}
    return cm.fit(draws=settings.draws, tune=tune, chains=settings.chains, random_seed=settings.seed,
                  nuts_sampler=settings.sampler, progressbar=settings.progress,
                  compute_convergence_checks=False, **kwargs)


def convergence(fit) -> dict:
    """Sampler or solver health of one fit, as plain numbers (:meth:`Fit.convergence`)."""
    return fit.convergence()


def analyse(out: Analysis) -> None:
    """Fill ``out.tables`` and ``out.figures`` from ``out.fits``."""
    s, fits, tables, figures = out.settings, out.fits, out.tables, out.figures
    maxent = fits.get(MAXENT)
    focus = fits[s.focus] if s.focus else None
    if focus is not None and maxent is not None:
        table = compare_estimates(focus, maxent)
        if len(table):
            tables["comparison"] = table
            figures["posterior_vs_maxent"] = plot_posterior_vs_maxent(focus, maxent, labels=(s.focus, MAXENT))
        g_twin = s.focus.removesuffix(G_PRIOR) + G_PRIOR
        if g_twin in fits and g_twin != s.focus:
            tables["comparison_g_prior"] = compare_estimates(fits[g_twin], maxent)
    refits = None if s.cv_draws is None else {"draws": s.cv_draws, "tune": s.cv_draws, "chains": 1}
    tables["selection"] = model_selection(fits, out.train, out.test, cv=s.cv, folds=s.folds,
                                          sample_kwargs=refits, random_seed=s.seed)

    if focus is not None:
        prior = pm.sample_prior_predictive(draws=1000, model=focus.model, random_seed=s.seed)
        tables["parameter_information"] = posterior_information_gain(focus.idata, prior, random_seed=s.seed)
        figures["information_gain"] = plot_information_gain(
            tables["parameter_information"], title=f"{s.focus}: KL(posterior || prior)")
    tables["choice_information"] = compare_information(fits, random_seed=s.seed)
    if s.price is None:
        return

    # elasticities, willingness to pay and pricing, for the focus posterior and MaxEnt
    named = [(n, f) for n, f in ((s.focus, focus), (MAXENT, maxent)) if f is not None]
    fig, axes = plt.subplots(1, len(named), figsize=(5.5 * len(named), 4.2), squeeze=False)
    for ax, (name, fit) in zip(axes[0], named, strict=True):
        E = elasticities(fit, s.price)
        suffix = "" if name == s.focus else "_maxent"
        tables[f"elasticities{suffix}"] = E["estimate"].to_pandas()
        tables[f"elasticities{suffix}_sd"] = E["sd"].to_pandas()
        plot_elasticity_heatmap(E, ax=ax, title=f"{name}: elasticities to {s.price}")
    fig.tight_layout()
    figures["elasticities"] = fig

    others = [str(a) for a in out.data.attributes if a != s.price]
    if others:
        tables["wtp"] = _wtp_table(named, s.price, others, out.train)
    alternative = _label(out.data, s.price_alternative) or _default_price_alternative(out.train, s)
    grid = np.linspace(*s.price_bounds, 31)
    rows = {}
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for k, (name, fit) in enumerate(named):
        opt = optimal_prices(fit, s.price, alternative, bounds=s.price_bounds)
        curve = revenue_curve(fit, s.price, alternative, grid)
        plot_revenue_curve(curve, optimum=opt, ax=ax, color=f"C{k}", label=name)
        rows[name] = {"alternative": str(alternative), "price_multiplier": float(opt.x[0]),
                      "revenue": opt.revenue, "revenue_status_quo": opt.revenue_observed,
                      "converged": bool(opt.success)}
    ax.set_title(f"expected revenue of {alternative} over its {s.price}")
    figures["revenue_curve"] = fig
    tables["pricing"] = pd.DataFrame.from_dict(rows, orient="index")


def _default_price_alternative(data: ChoiceData, s: Settings):
    reference = _label(data, s.reference) if s.reference is not None else plain(data.alternatives[-1])
    return next(plain(a) for a in data.alternatives if plain(a) != reference)


def _wtp_table(named, price: str, attributes: list[str], data: ChoiceData) -> pd.DataFrame:
    """Willingness to pay of the first individual (constant across individuals for fixed
    coefficients; one draw of the population for random ones): estimate and sd."""
    columns = {}
    alternative = plain(data.alternatives[-1])
    for name, fit in named:
        wtp = willingness_to_pay(fit, price, attributes).isel(individual=0).sel(alternative=alternative)
        columns[f"{name} estimate"] = wtp["estimate"].to_pandas()
        columns[f"{name} sd"] = wtp["sd"].to_pandas()
    return pd.DataFrame(columns)


# ------------------------------------------------------------------------------ simulated panel
@dataclass
class PanelSettings:
    """The simulated panel on which ``MXL-1`` is fitted by NUTS and by MaxEnt and the individual
    coefficients compared (:func:`~pymc_maxent.simulate.simulate_priced_panel`: a price
    around 30, a quality score, three products).

    Parameters
    ----------
    n_individuals, n_situations : int
        Panel size.
    draws : int
        Posterior draws per chain, after as many tuning steps.
    chains, sampler, seed, progress : sampler settings (``seed`` also draws the panel).
    """

    n_individuals: int = 60
    n_situations: int = 10
    draws: int = 200
    chains: int = 2
    sampler: str = "pymc"
    seed: int = 1
    progress: bool = False

    def __post_init__(self):
        self.n_individuals = require_count(self.n_individuals, "n_individuals", minimum=4)
        self.n_situations = require_count(self.n_situations, "n_situations", minimum=2)
        self.draws = require_count(self.draws, "draws", minimum=10)
        self.chains = require_count(self.chains, "chains")
        if self.sampler not in SAMPLERS:
            raise SpecificationError(f"unknown sampler {self.sampler!r}: use one of {', '.join(SAMPLERS)}")


@dataclass
class PanelAnalysis:
    """The simulated panel, its truth, both ``MXL-1`` fits, the comparison tables and figure."""

    data: ChoiceData
    truth: dict
    settings: PanelSettings
    fits: dict = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    figures: dict = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)


#: The names of the panel's two fits.
PANEL_FITS = ("MXL-1", "MaxEnt MXL-1")


def run_panel(settings: PanelSettings | None = None, *, log: Callable[[str], None] | None = None
              ) -> PanelAnalysis:
    """``MXL-1`` by NUTS and by the MaxEnt mixed logit on a seeded simulated panel, and their
    individual coefficients ``β_i`` compared with each other and with the truth.

    Tables: ``individuals`` (per random coefficient: the correlation of MaxEnt's ``β_i`` with
    the posterior means and the RMSE of their difference in posterior SDs, by
    :func:`~pymc_maxent.diagnostics.compare_individuals`; then each estimator's correlation
    with the true ``β_i`` and the RMSE of its error in its own SDs); ``population`` (``mu`` and
    ``sigma``: the posterior's, MaxEnt's learnt mixing distribution's, and the truth). Figure
    ``individual_coefficients``: MaxEnt's ``β_i`` against the posterior means.

    Examples
    --------
    >>> from pymc_maxent.workflow import PanelSettings, run_panel
    >>> out = run_panel(PanelSettings(n_individuals=20, draws=30, chains=1), log=lambda line: None)
    >>> list(out.fits), list(out.tables["population"].index)
    (['MXL-1', 'MaxEnt MXL-1'], ['mu[price]', 'mu[quality]', 'sigma[price]', 'sigma[quality]'])
    """
    s = settings or PanelSettings()
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    data, truth = simulate_priced_panel(s.n_individuals, s.n_situations, seed=s.seed)
    out = PanelAnalysis(data=data, truth=truth, settings=s)
    bayes, maxent = PANEL_FITS
    fitting = {
        bayes: lambda: ChoiceModel(data, "MXL-1").fit(
            draws=s.draws, tune=s.draws, chains=s.chains, random_seed=s.seed, nuts_sampler=s.sampler,
            progressbar=s.progress, compute_convergence_checks=False,
            **({"cores": 1} if s.sampler == "pymc" else {})),
        maxent: lambda: ChoiceModel(data, "MXL-1").fit(method="maxent"),
    }
    log(f"simulated panel: {s.n_individuals} individuals x {s.n_situations} situations, MXL-1 by NUTS "
        "and by MaxEnt ...")
    for name, fit in fitting.items():
        start = time.perf_counter()
        out.fits[name] = fit()
        out.timings[name] = time.perf_counter() - start
        health = ", ".join(f"{k} {v}" for k, v in convergence(out.fits[name]).items())
        log(f"      panel {name}: {out.timings[name]:.1f} s, {health}")
    start = time.perf_counter()
    compare_panel(out)
    out.timings["comparison"] = time.perf_counter() - start
    return out


def compare_panel(out: PanelAnalysis) -> None:
    """Fill ``out.tables`` and ``out.figures`` from the panel's two fits."""
    posterior, maxent = (out.fits[name] for name in PANEL_FITS)
    labels = list(out.data.attributes)
    known = KnownCoefficients(out.truth["theta"], out.data.individuals, labels)
    table = compare_individuals(posterior, maxent)
    for name, fit in (("bayes", posterior), ("maxent", maxent)):
        vs_truth = compare_individuals(fit, known)
        table[f"{name}_truth_correlation"] = vs_truth["correlation"]
        table[f"{name}_truth_rmse_sd"] = vs_truth["rmse_sd"]
    out.tables["individuals"] = table
    population = compare_estimates(posterior, maxent, var_names=("mu", "sigma"))
    population.insert(0, "truth", [out.truth[name.split("[")[0]][labels.index(name[name.index("[") + 1:-1])]
                                   for name in population.index])
    out.tables["population"] = population
    out.figures["individual_coefficients"] = plot_individual_coefficients(posterior, maxent,
                                                                          labels=("posterior mean", "MaxEnt"))
