"""Simulated choice data with known true parameters, for every tier.

The simulator computes utilities with plain NumPy, independently of the PyTensor graph the
models use, so that recovering its truth tests the models.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pymc_maxent.arguments import require_count, require_counts
from pymc_maxent.data.choice_data import ChoiceData
from pymc_maxent.exceptions import SpecificationError
from pymc_maxent.specification import Coefficient, ModelSpec, as_spec, resolve

#: Per tier, (individuals, situations each, alternatives, attributes) at which the
#: recovery tests' posteriors are informative; the tier benchmark uses the same sizes.
RECOVERY_SIZES = {
    "MNL-1": (600, 1, 3, 2),
    "MNL-2": (600, 1, 3, 2),
    "MNL-3": (1000, 1, 3, 2),
    "MXL-1": (200, 8, 3, 2),
    "MXL-2": (200, 8, 3, 2),
    "MXL-3": (200, 8, 3, 1),
    "MXL-4": (100, 6, 3, 1),
}


def simulate_choices(
    spec,
    *,
    n_individuals: int = 200,
    n_situations: int = 1,
    n_alternatives: int = 3,
    n_attributes: int = 2,
    truth: Mapping[str, np.ndarray] | None = None,
    unavailable: float = 0.0,
    seed: int = 0,
) -> tuple[ChoiceData, dict[str, np.ndarray]]:
    """Draw choices from a tier (or a :class:`~pymc_maxent.ModelSpec`) with known parameters.

    Parameters
    ----------
    spec : str or ModelSpec
        Tier name (``"MNL-2"``, ``"MXL-1"``, …) over attributes ``x0, x1, …``, or a full
        specification whose attributes are among those.
    n_individuals, n_situations : int
        Panel size: each individual faces ``n_situations`` choice situations.
    n_alternatives, n_attributes : int
        Alternatives are labelled ``alt0, alt1, …``; attributes are standard normal.
    truth : mapping, optional
        Parameter values (``alpha``, ``beta``, ``mu``, ``sigma``, ``corr``,
        ``sigma_situation``) overriding the defaults drawn from ``seed``.
    unavailable : float
        Probability that an alternative is missing from a choice set (unbalanced sets;
        at least two stay available).
    seed : int

    Returns
    -------
    data : ChoiceData
    truth : dict
        Parameter name -> array aligned with the model's coords, plus ``theta``: the
        individuals' random components (before any lognormal transform).

    Examples
    --------
    >>> from pymc_maxent.simulate import simulate_choices
    >>> data, truth = simulate_choices("MNL-2", n_individuals=50, seed=1)
    >>> data.dims["situation"], sorted(truth)
    (50, ['alpha', 'beta'])
    """
    I, T, K = require_counts(n_individuals=n_individuals, n_situations=n_situations,
                             n_attributes=n_attributes).values()
    J = require_count(n_alternatives, "n_alternatives", minimum=2)
    rng = np.random.default_rng(seed)
    N = I * T
    X = rng.normal(size=(N, J, K))
    available = np.ones((N, J), dtype=bool)
    if unavailable > 0:
        available = rng.random((N, J)) >= unavailable
        for i in np.flatnonzero(available.sum(axis=1) < 2):
            available[i, rng.choice(J, size=2, replace=False)] = True
    individual = np.repeat(np.arange(I), T)
    skeleton = ChoiceData.from_arrays(
        X,
        available.argmax(axis=1),
        available=available,
        individual=individual,
        individuals=np.arange(I),
        alternatives=np.array([f"alt{j}" for j in range(J)]),
        attributes=np.array([f"x{k}" for k in range(K)]),
        occasion=np.tile(np.arange(T), I),
        has_choices=False,
    )
    spec = as_spec(spec, skeleton.attributes.tolist())
    if spec.nests or spec.space != "preference":
        raise SpecificationError(f"{spec.name}: simulate_choices draws preference-space logits; use "
                                 "simulate_nested_choices or simulate_wtp_panel")
    r = resolve(spec, skeleton)
    truth = dict(truth or {})
    D, S = r.n_random, len(r.situation_components)
    n_asc_random = D - len(r.random.labels)

    defaults = {}
    if r.asc_labels:
        defaults["alpha"] = rng.uniform(-1.0, 1.0, len(r.asc_labels))
    if r.fixed.labels:
        n = len(r.fixed.labels)
        defaults["beta"] = rng.choice([-1.0, 1.0], n) * rng.uniform(0.5, 1.5, n)
    if D:
        mu = rng.choice([-1.0, 1.0], D) * rng.uniform(0.5, 1.5, D)
        mu[r.random_sign != 0] = rng.uniform(-0.5, 0.3, (r.random_sign != 0).sum())
        mu[:n_asc_random] = rng.uniform(-1.0, 1.0, n_asc_random)
        sigma = rng.uniform(0.6, 1.2, D)
        sigma[r.random_sign != 0] = rng.uniform(0.3, 0.6, (r.random_sign != 0).sum())
        defaults |= {"mu": mu, "sigma": sigma}
        if spec.correlated:
            A = rng.normal(size=(D, D + 2))
            cov = A @ A.T
            defaults["corr"] = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
        if S:
            defaults["sigma_situation"] = rng.uniform(0.3, 0.6, S)
    truth = defaults | {k: np.asarray(v, dtype=float) for k, v in truth.items()}

    U = np.zeros((N, J))
    if r.asc_labels:
        U += np.append(truth["alpha"], 0.0)[r.asc_layout]
    if r.fixed.labels:
        B = np.append(truth["beta"], 0.0)[r.fixed.matrix(J)]  # (alternative, column)
        U += np.einsum("njc,jc->nj", X[:, :, r.fixed.columns], B)
    if D:
        corr = truth.get("corr", np.eye(D))
        L = np.diag(truth["sigma"]) @ np.linalg.cholesky(corr)
        theta = truth["mu"] + rng.normal(size=(I, D)) @ L.T
        truth["theta"] = theta
        th = theta[individual]
        if S:
            th[:, r.situation_components] += truth["sigma_situation"] * rng.normal(size=(N, S))
        log = r.random_sign != 0
        th[:, log] = r.random_sign[log] * np.exp(th[:, log])
        zero = np.zeros((N, 1))
        if n_asc_random:
            U += np.concatenate([th[:, :n_asc_random], zero], axis=1)[:, r.random_asc_layout]
        if r.random.labels:
            coefficients = np.concatenate([th[:, n_asc_random:], zero], axis=1)
            U += np.einsum(
                "njc,njc->nj", X[:, :, r.random.columns], coefficients[:, r.random.matrix(J)]
            )
    U = np.where(available, U + rng.gumbel(size=(N, J)), -np.inf)
    data = ChoiceData.from_arrays(
        X,
        U.argmax(axis=1),
        available=available,
        individual=individual,
        individuals=skeleton.individuals,
        alternatives=skeleton.alternatives,
        attributes=skeleton.attributes,
        occasion=skeleton.occasion,
    )
    return data, truth


#: The electricity-supplier design (Train's panel): attributes, population means and SDs of
#: the normal random coefficients.
ELECTRICITY_ATTRIBUTES = ("pf", "cl", "loc", "wk", "tod", "seas")
ELECTRICITY_MU = (-1.0, -0.22, 2.3, 1.7, -9.7, -9.7)
ELECTRICITY_SIGMA = (0.22, 0.41, 1.8, 1.2, 2.3, 1.5)


def simulate_electricity_panel(n_individuals: int = 361, n_situations: int = 12, *, short: float = 0.03,
                               mu=ELECTRICITY_MU, sigma=ELECTRICITY_SIGMA, seed: int = 0):
    """A panel with the design and scales of Train's electricity-supplier data.

    Four unlabelled suppliers per situation. Each offer is a fixed price (``pf`` 7 or 9
    cents/kWh; half the offers), a time-of-day rate (``tod`` = 1, ``pf`` = 0) or a seasonal
    rate (``seas`` = 1, ``pf`` = 0); contract length ``cl`` is 0, 1 or 5 years; ``loc``
    (local utility) and ``wk`` (well-known company) are dummies. All six coefficients are
    normal random over individuals, no constants, with means near ±10 on ``tod``/``seas``.

    Parameters
    ----------
    n_individuals, n_situations : int
        Individuals and the most situations each faces.
    short : float
        Share of individuals with fewer situations (between 4 and ``n_situations - 1``): an
        unbalanced panel, as real ones are.
    mu, sigma : sequence of 6 floats
        Population means and SDs of the coefficients (default: near Train's estimates).
    seed : int

    Returns
    -------
    data : ChoiceData
    spec : ModelSpec
        MXL-1 over the six attributes, normal random coefficients, no constants.
    truth : dict
        ``mu``, ``sigma`` and ``theta`` (individual × coefficient).

    Examples
    --------
    >>> from pymc_maxent.simulate import simulate_electricity_panel
    >>> data, spec, truth = simulate_electricity_panel(40, seed=1)
    >>> data.attributes.tolist(), truth["theta"].shape
    (['pf', 'cl', 'loc', 'wk', 'tod', 'seas'], (40, 6))
    """
    I, n_situations = require_counts(n_individuals=n_individuals, n_situations=n_situations).values()
    J = 4
    rng = np.random.default_rng(seed)
    counts = np.full(I, n_situations)
    few = rng.random(I) < short
    shortest = max(1, min(4, n_situations - 1))  # short panels: 4 situations or more (fewer when T <= 4)
    if shortest < n_situations:
        counts[few] = rng.integers(shortest, n_situations, few.sum(), endpoint=False)
    individual = np.repeat(np.arange(I), counts)
    N = individual.size
    kind = rng.choice(3, size=(N, J), p=[0.5, 0.25, 0.25])  # fixed price, time-of-day, seasonal
    X = np.zeros((N, J, 6))
    X[..., 0] = np.where(kind == 0, rng.choice([7.0, 9.0], size=(N, J)), 0.0)
    X[..., 1] = rng.choice([0.0, 1.0, 5.0], size=(N, J))
    X[..., 2] = rng.random((N, J)) < 0.3
    X[..., 3] = rng.random((N, J)) < 0.4
    X[..., 4] = kind == 1
    X[..., 5] = kind == 2
    mu, sigma = np.asarray(mu, dtype=float), np.asarray(sigma, dtype=float)
    theta = mu + sigma * rng.normal(size=(I, 6))
    U = np.einsum("njk,nk->nj", X, theta[individual]) + rng.gumbel(size=(N, J))
    occasion = np.concatenate([np.arange(c) for c in counts])
    data = ChoiceData.from_arrays(X, U.argmax(axis=1), individual=individual, individuals=np.arange(I),
                                  alternatives=np.arange(1, J + 1), attributes=list(ELECTRICITY_ATTRIBUTES),
                                  occasion=occasion)
    spec = ModelSpec(tuple(Coefficient(a, random="normal") for a in ELECTRICITY_ATTRIBUTES), constants="none",
                     name="MXL-1, electricity design")
    return data, spec, {"mu": mu, "sigma": sigma, "theta": theta}


def simulate_priced_panel(n_individuals: int = 80, n_situations: int = 10, *, mu=(-1.0, 0.8),
                          sigma=(0.7, 0.6), price=(30.0, 6.0), quality=(5.0, 2.0), seed: int = 0):
    """An ``MXL-1`` panel in market units: three products, each with a ``price`` (a monthly fee
    around 30 by default) and a ``quality`` score, both coefficients normal random over
    individuals.

    :func:`simulate_choices` draws the panel with standard-normal attributes and ``mu``, ``sigma``
    on that scale; the attributes are then expressed as ``level + spread · x`` and the
    coefficients divided by the spread, which leaves every utility difference, hence every
    choice, unchanged.

    Parameters
    ----------
    n_individuals, n_situations : int
    mu, sigma : pair of float
        Means and SDs of the (price, quality) coefficients on the standard-normal scale.
    price, quality : pair of float
        ``(level, spread)`` of each attribute.
    seed : int

    Returns
    -------
    data : ChoiceData
        Alternatives ``alt0 … alt2`` (constants for the first two), attributes ``price`` and
        ``quality``.
    truth : dict
        ``alpha``, and ``mu``, ``sigma`` and ``theta`` (individual × coefficient) on the data's
        scale.

    Examples
    --------
    >>> from pymc_maxent.simulate import simulate_priced_panel
    >>> data, truth = simulate_priced_panel(20, 5, seed=1)
    >>> data.attributes.tolist(), truth["theta"].shape, bool(20 < data.attribute("price").mean() < 40)
    (['price', 'quality'], (20, 2), True)
    """
    standard, truth = simulate_choices("MXL-1", n_individuals=n_individuals, n_situations=n_situations,
                                       n_alternatives=3, n_attributes=2, seed=seed,
                                       truth={"mu": mu, "sigma": sigma})
    level, spread = np.array([price[0], quality[0]]), np.array([price[1], quality[1]])
    data = ChoiceData.from_arrays(level + spread * standard.X, standard.chosen,
                                  individual=standard.individual, individuals=standard.individuals,
                                  alternatives=standard.alternatives,
                                  attributes=["price", "quality"], occasion=standard.occasion)
    return data, {"alpha": truth["alpha"], "mu": truth["mu"] / spread, "sigma": truth["sigma"] / spread,
                  "theta": truth["theta"] / spread}


def nested_logit_probabilities(V: np.ndarray, available: np.ndarray, nest_of, lambdas) -> np.ndarray:
    """The nested logit's choice probabilities in plain NumPy (the simulators' reference):
    ``P_j = exp(V_j/λ_k) S_k^(λ_k − 1) / Σ_m S_m^λ_m``, ``S_k = Σ_{l ∈ k, available} exp(V_l/λ_k)``.

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.simulate import nested_logit_probabilities
    >>> p = nested_logit_probabilities(np.zeros((1, 3)), np.ones((1, 3), bool), [0, 0, 1], [0.5, 1.0])
    >>> p.round(4).tolist()   # equal utilities, yet the lone alternative gets more than 1/3
    [[0.2929, 0.2929, 0.4142]]
    """
    nest_of, lambdas = np.asarray(nest_of), np.asarray(lambdas, dtype=float)
    lam = lambdas[nest_of]
    shift = np.where(available, V, -np.inf).max(axis=1, keepdims=True)
    e = np.where(available, np.exp((V - shift) / lam), 0.0)
    S = np.stack([e[:, nest_of == m].sum(axis=1) for m in range(len(lambdas))], axis=1)
    # exp((V − c)/λ) = exp(V/λ) e^(−c/λ): per nest the factor e^(−c) overall (the shift cancels)
    top = np.where(S > 0, S, 1.0) ** lambdas * (S > 0)
    p = e * np.where(S > 0, S, 1.0)[:, nest_of] ** (lam - 1)
    return p / top.sum(axis=1, keepdims=True)


def simulate_nested_choices(lam: float = 0.5, *, n_situations: int = 2000, other_lambda: float = 0.7,
                            beta_price: float = -0.03, beta_quality: float = 8.0,
                            alpha=(1.0, -0.5, 0.5), unavailable: float = 0.1, seed: int = 0):
    """Choices from a nested logit at market scales: four alternatives in two nests,
    ``{"A": [alt0, alt1], "B": [alt2, alt3]}``, a ``price`` in the hundreds and a ``quality``
    score in ``[0, 1]``.

    Probabilities by :func:`nested_logit_probabilities` (NumPy, not the models' graph).

    Parameters
    ----------
    lam : float
        ``λ`` of nest ``A`` (``1``: the logit within it).
    n_situations : int
    other_lambda : float
        ``λ`` of nest ``B``.
    beta_price, beta_quality : float
        Generic coefficients (a price of 100–400 moves utility by about ``±5``).
    alpha : three floats
        Constants of ``alt0 … alt2`` (``alt3`` the reference).
    unavailable : float
        Probability that an alternative is missing (at least two stay).
    seed : int

    Returns
    -------
    data : ChoiceData
    truth : dict
        ``alpha``, ``beta`` (price, quality), ``lambda`` (A, B) and the ``nests``.

    Examples
    --------
    >>> from pymc_maxent.simulate import simulate_nested_choices
    >>> data, truth = simulate_nested_choices(0.3, n_situations=100, seed=1)
    >>> data.attributes.tolist(), truth["lambda"].tolist(), truth["nests"]
    (['price', 'quality'], [0.3, 0.7], {'A': ['alt0', 'alt1'], 'B': ['alt2', 'alt3']})
    """
    rng = np.random.default_rng(seed)
    N, J = n_situations, 4
    X = np.stack([rng.uniform(100.0, 400.0, (N, J)), rng.uniform(0.0, 1.0, (N, J))], axis=-1)
    available = rng.random((N, J)) >= unavailable
    for n in np.flatnonzero(available.sum(axis=1) < 2):
        available[n, rng.choice(J, size=2, replace=False)] = True
    beta = np.array([beta_price, beta_quality])
    alpha = np.asarray(alpha, dtype=float)
    V = X @ beta + np.append(alpha, 0.0)
    lambdas = np.array([lam, other_lambda])
    p = nested_logit_probabilities(V, available, [0, 0, 1, 1], lambdas)
    chosen = (rng.random((N, 1)) > p.cumsum(axis=1)).sum(axis=1)
    data = ChoiceData.from_arrays(X, np.minimum(chosen, J - 1), available=available,
                                  alternatives=np.array([f"alt{j}" for j in range(J)]),
                                  attributes=np.array(["price", "quality"]))
    return data, {"alpha": alpha, "beta": beta, "lambda": lambdas,
                  "nests": {"A": ["alt0", "alt1"], "B": ["alt2", "alt3"]}}


def simulate_wtp_panel(n_individuals: int = 150, n_situations: int = 10, *, wtp_mu=(120.0, -40.0),
                       wtp_sigma=(30.0, 15.0), scale_mu: float = np.log(0.04), scale_sigma: float = 0.3,
                       wtp_asc=(20.0, -10.0), seed: int = 0):
    """A panel drawn in willingness-to-pay space: three products with a ``price`` in the
    hundreds, a ``quality`` score and a ``wait`` (days); ``U = −λ_i (price − w_i·x − w_j)``
    with ``λ_i = exp(s_i)``, ``s_i`` normal and the WTPs ``w_i`` normal over individuals.

    Parameters
    ----------
    n_individuals, n_situations : int
    wtp_mu, wtp_sigma : pair of float
        Population means and SDs of the WTPs of ``quality`` and ``wait`` (money units).
    scale_mu, scale_sigma : float
        Mean and SD of ``s`` (the price coefficient is ``−exp(s)``: about ``−0.04``).
    wtp_asc : pair of float
        The constants' WTPs of ``alt0`` and ``alt1`` (``alt2`` the reference).
    seed : int

    Returns
    -------
    data : ChoiceData
    truth : dict
        ``mu``, ``sigma`` (over ``wtp[quality]``… ordered as the model's random components:
        ``quality``, ``wait``, ``scale``), ``wtp_asc`` and ``theta`` (individual × component).

    Examples
    --------
    >>> from pymc_maxent.simulate import simulate_wtp_panel
    >>> data, truth = simulate_wtp_panel(20, 4, seed=1)
    >>> data.attributes.tolist(), truth["theta"].shape
    (['price', 'quality', 'wait'], (20, 3))
    """
    rng = np.random.default_rng(seed)
    I, T, J = n_individuals, n_situations, 3
    N = I * T
    individual = np.repeat(np.arange(I), T)
    X = np.stack([rng.uniform(150.0, 450.0, (N, J)), rng.uniform(0.0, 2.0, (N, J)),
                  rng.integers(1, 8, (N, J)).astype(float)], axis=-1)
    mu = np.array([*wtp_mu, scale_mu])
    sigma = np.array([*wtp_sigma, scale_sigma])
    theta = mu + sigma * rng.normal(size=(I, 3))
    w, lam = theta[individual, :2], np.exp(theta[individual, 2])
    W = np.einsum("njk,nk->nj", X[..., 1:], w) + np.append(np.asarray(wtp_asc, dtype=float), 0.0)
    U = -lam[:, None] * (X[..., 0] - W) + rng.gumbel(size=(N, J))
    data = ChoiceData.from_arrays(X, U.argmax(axis=1), individual=individual, individuals=np.arange(I),
                                  alternatives=np.array([f"alt{j}" for j in range(J)]),
                                  attributes=np.array(["price", "quality", "wait"]),
                                  occasion=np.tile(np.arange(T), I))
    return data, {"mu": mu, "sigma": sigma, "wtp_asc": np.asarray(wtp_asc, dtype=float), "theta": theta}
