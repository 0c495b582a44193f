"""Posterior modes and maximum-likelihood estimates to round-off, with an identification check.

:func:`map_estimate` maximises a model's log density (priors and likelihood; with
``Prior("Flat")`` priors the maximum-likelihood estimate), :func:`ml_estimate` its
log-likelihood alone. Both use the exact gradient and Hessian of the model's PyTensor graph:
SciPy's ``trust-exact`` from the model's initial point, then Newton steps until the last one
is below ``tol`` on every parameter, in units of the parameter's standard error at the initial
point (so that the criterion does not depend on the units of the data). ``pm.find_MAP``
(L-BFGS-B, default tolerances) stops about ``1e-5`` of a standard error short; these land
within round-off.

The Hessian at the estimate then says whether the data identify the parameters:

- its Jacobi-scaled (correlation) form is near-singular (condition number above ``1e10``, or
  an eigenvalue ``≤ 0``): some combination of parameters, named by the eigenvector of the
  smallest eigenvalue, is not pinned down (attributes collinear up to a perturbation the
  specification check lets through, a direction along which the posterior is flat);
- the curvature along a parameter has fallen below ``1e-10`` of its value at the initial point:
  the objective keeps rising as the parameter runs off to ``±∞`` (the constant of an alternative
  that is never chosen, an attribute that separates the choices), and no finite maximum exists.

Either warns (:class:`~pymc_maxent.exceptions.IdentificationWarning`) or raises
(:class:`~pymc_maxent.exceptions.SpecificationError`), naming the parameters.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
from pymc.blocking import DictToArrayBijection, RaveledVars
from pymc.initial_point import make_initial_point_fn
from pymc.pytensorf import compile as compile_fn
from pymc.pytensorf import join_nonshared_inputs
from pymc.util import get_default_varnames
from pytensor.gradient import jacobian
from scipy.optimize import OptimizeResult

from pymc_maxent.arguments import require_count
from pymc_maxent.data.containers import require_observed_choices
from pymc_maxent.exceptions import ConvergenceWarning, IdentificationWarning, SpecificationError
from pymc_maxent.numerics import (
    MAX_CONDITION,
    ON_UNIDENTIFIED,
    condition_number,
    jacobi_scaled,
    near_null_direction,
    newton,
    trust_exact,
)

#: Newton steps after ``trust-exact`` at most (it converges quadratically in a handful).
POLISH_STEPS = 50
#: Parameters at most: the Hessian is dense (a mixed logit's joint mode has one deviation per
#: individual and random component).
MAX_PARAMETERS = 2000


class PointEstimate(OptimizeResult):
    """The result of :func:`map_estimate` or :func:`ml_estimate`: a SciPy ``OptimizeResult``.

    Attributes
    ----------
    x : dict of str to ndarray
        The estimate on the model's constrained scale: every free variable and deterministic,
        by name (as ``pm.find_MAP`` returns it).
    fun : float
        The minimised objective: ``−log p`` (``map``) or ``−log L`` (``ml``) at the estimate.
    jac, hess : ndarray
        Its gradient and Hessian there, over the model's value variables raveled in order
        (:attr:`labels`; transformed variables on their unconstrained scale).
    labels : list of str
        The raveled value variables, ``"beta[gc]"``.
    converged : bool
        The last Newton step was below ``tol`` on every parameter; also ``success``.
    message : str
    nit : int
        Iterations: ``trust-exact``'s and the Newton steps after it.
    grad_norm : float
        Largest gradient component at the estimate, per unit of the parameter's standard error
        at the initial point (unit-free).
    step : float
        Largest component of the last Newton step, in the same units.
    condition_number : float
        Of the Jacobi-scaled Hessian at the estimate (``inf`` with an eigenvalue ``≤ 0``).
    identified : bool
    unidentified : tuple of (str, float)
        When not identified: the parameters whose curvature vanished, with the ratio of their
        curvature at the estimate to that at the initial point; or else the near-null direction
        of the scaled Hessian (its largest components, the largest ``+1``).
    identification : str
        What is not identified, in words (``""`` when identified).
    objective : {"posterior", "likelihood"}
    parameters : Series
        The free variables at the estimate on their constrained scale, one row per element
        (``"beta[gc]"``).
    """

    def describe(self) -> str:
        """The unidentified direction or parameters, as ``"+1 beta[x1] -2 beta[x2]"``."""
        return " ".join(f"{c:+.3g} {name}" for name, c in self.unidentified)


def map_estimate(model: pm.Model | None = None, *, start: Mapping | None = None, tol: float = 1e-10,
                 maxiter: int = 1000, on_unidentified: str = "warn") -> PointEstimate:
    """The posterior mode of ``model`` (maximum likelihood under ``Prior("Flat")`` priors).

    Parameters
    ----------
    model : pm.Model, optional
        Default the model on the context stack.
    start : mapping, optional
        Starting values of some free variables, by name, on their constrained scale (the
        others at the model's initial point).
    tol : float
        Largest Newton step accepted as converged, on every parameter, in units of its
        standard error at the initial point.
    maxiter : int
        Iterations of ``trust-exact`` at most.
    on_unidentified : {"warn", "raise"}
        An unidentified estimate warns (:class:`~pymc_maxent.exceptions.IdentificationWarning`)
        or raises :class:`~pymc_maxent.exceptions.SpecificationError`.

    Returns
    -------
    PointEstimate
        Maximising ``log p(θ, y)`` without the Jacobian of transforms (the mode on the
        constrained scale, as ``pm.find_MAP``). An estimate that did not converge warns
        (:class:`~pymc_maxent.exceptions.ConvergenceWarning`).

    Notes
    -----
    The joint mode of a mixed logit (its individual deviations ``z`` free) sits where the
    standard deviations are 0: it is no estimate of them, and the curvature check says so.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_extras.prior import Prior
    >>> from pymc_maxent.bayes.point import map_estimate
    >>> model = pmx.build_model(pmx.load_travel_mode(), "MNL-2", reference="car",
    ...                         priors={"alpha": Prior("Flat"), "beta": Prior("Flat")})
    >>> fit = map_estimate(model)
    >>> fit.converged, fit.identified, round(float(fit.x["beta"][0]), 5), round(-fit.fun, 3)
    (True, True, -0.0155, -199.128)
    """
    return _estimate(pm.modelcontext(model), "posterior", start, tol, maxiter, on_unidentified)


def ml_estimate(model: pm.Model | None = None, *, start: Mapping | None = None, tol: float = 1e-10,
                maxiter: int = 1000, on_unidentified: str = "warn") -> PointEstimate:
    """The maximum-likelihood estimate of a model without random components, whatever its
    priors (:func:`map_estimate` of the log-likelihood ``Σ log p(y | θ)`` alone).

    Parameters are those of :func:`map_estimate`.

    Raises
    ------
    SpecificationError
        For a model with random components: its likelihood integrates over them, and the
        likelihood given the deviations ``z`` has no maximum worth the name.

    Examples
    --------
    >>> import pymc_maxent as pmx
    >>> from pymc_maxent.bayes.point import ml_estimate
    >>> fit = ml_estimate(pmx.build_model(pmx.load_travel_mode(), "MNL-2", reference="car"))
    >>> round(float(fit.parameters["beta[ttme]"]), 4), fit.objective
    (-0.0961, 'likelihood')
    """
    model = pm.modelcontext(model)
    latent = [v.name for v in model.free_RVs if v.name in ("z", "z_situation")]
    if latent:
        raise SpecificationError(
            f"ml_estimate: the model has random components (latent deviations {latent}); its "
            "likelihood integrates over them: use map_estimate or sample")
    return _estimate(model, "likelihood", start, tol, maxiter, on_unidentified)


# ---------------------------------------------------------------------- the optimisation
def _estimate(model, objective, start, tol, maxiter, on_unidentified) -> PointEstimate:
    require_observed_choices(model, "a point estimate")
    maxiter = require_count(maxiter, "maxiter")
    if on_unidentified not in ON_UNIDENTIFIED:
        raise SpecificationError(f"on_unidentified must be one of {ON_UNIDENTIFIED}; got {on_unidentified!r}")
    if not tol > 0:
        raise SpecificationError(f"tol must be positive; got {tol!r}")
    reference = model.initial_point()
    values = _value_variables(model, reference)
    point = _start_point(model, start) if start else reference
    x_ref = DictToArrayBijection.map({v.name: reference[v.name] for v in values})
    x0 = DictToArrayBijection.map({v.name: point[v.name] for v in values}).data
    fgh = _objective(model, values, model.observed_RVs if objective == "likelihood" else None, reference)
    # units: the standard errors at the initial point (1 where it has no curvature)
    unit = jacobi_scaled(fgh(x_ref.data)[2])[1]
    x, nit, message = trust_exact(fgh, x0, unit, gtol=tol, maxiter=maxiter)
    x, steps, converged, step, message = _polish(fgh, x, unit, tol, message)
    f, g, H = fgh(x)
    result = PointEstimate(
        x=_constrained(model, RaveledVars(x, x_ref.point_map_info), point), fun=f, jac=g, hess=H,
        labels=[label for v in values for label in _element_labels(model, v.name, reference[v.name].shape,
                                                                     model.values_to_rvs[v].name)],
        converged=converged, success=converged, status=0 if converged else 1, message=message,
        nit=nit + steps, grad_norm=float(np.max(np.abs(g / unit))), step=step,
        condition_number=condition_number(H), objective=objective,
    )
    result.parameters = _parameters(model, result.x)
    result.unidentified, result.identification = _identification(H, unit, result.labels,
                                                                 result.condition_number, objective)
    result.identified = not result.identification
    _report(result, on_unidentified)
    return result


def _value_variables(model, reference) -> list:
    """The model's value variables: continuous, and not too many for a dense Hessian."""
    values = model.continuous_value_vars
    discrete = [v.name for v in model.value_vars if v not in values]
    if discrete or not values:
        raise SpecificationError(f"a point estimate needs continuous free variables, and only those; "
                                 f"discrete: {discrete}, continuous: {[v.name for v in values]}")
    size = sum(reference[v.name].size for v in values)
    if size > MAX_PARAMETERS:
        raise SpecificationError(f"a point estimate (with a dense Hessian) takes {MAX_PARAMETERS} parameters "
                                 f"at most; the model has {size}: sample it instead")
    return values


def _start_point(model, start) -> dict:
    fn = make_initial_point_fn(model=model, jitter_rvs=set(), return_transformed=True, overrides=dict(start))
    point = fn(None)
    model.check_start_vals(point)
    return point


def _objective(model, values, terms, point):
    """``x ↦ (f, ∇f, ∇²f)`` of ``f = −log p`` (or ``−log L``) over the raveled value variables."""
    logp = model.logp(vars=terms, jacobian=False)
    [logp], x = join_nonshared_inputs(point, [logp], values)
    f = -logp
    g = pt.grad(f, x)
    fn = compile_fn([x], [f, g, jacobian(g, x, vectorize=True)])

    def fgh(v):
        f, g, H = fn(np.asarray(v, dtype=x.dtype))
        return float(f), np.asarray(g, dtype=float), np.asarray(H, dtype=float)

    return fgh


def _polish(fgh, x, unit, tol, message):
    """Newton steps from ``x`` until the step is below ``tol`` on every parameter, in units of
    ``1/unit``: the package's Newton solver, stopping where the Hessian is singular or indefinite
    (a posterior need not be log-concave)."""
    def batch(v, rows, hessian):
        f, g, H = fgh(v[0])
        return np.array([f]), g[None], H[None]

    result = newton(batch, np.asarray(x, dtype=float)[None], (1.0 / unit)[None], tol=tol,
                    maxiter=POLISH_STEPS,
                    metric="jacobi", criterion="step", require_definite=True)
    step, converged = float(result.residual[0]), bool(result.converged[0])
    if converged:
        message = f"converged: Newton step {step:.2g} ≤ tol {tol:g} (in standard errors at the initial point)"
    else:
        message = f"{message}; Newton: {result.note[0] or 'stopped'} (last step {step:.2g} > tol {tol:g})"
    return result.x[0], int(result.nit[0]), converged, step, message


# ---------------------------------------------------------------------- identification
def _identification(H, unit, labels, cond, objective) -> tuple[tuple, str]:
    """``(parameters, message)`` of what the estimate leaves unidentified (``((), "")``: nothing):
    the parameters whose curvature fell below ``1/MAX_CONDITION`` of its value at the initial
    point with that ratio, or else the near-null direction of the Jacobi-scaled Hessian."""
    if not np.all(np.isfinite(H)):
        bad = [labels[i] for i in np.flatnonzero(~np.isfinite(H).all(axis=1))]
        return tuple((name, np.nan) for name in bad), f"the Hessian of the {objective} is not finite in {bad}"
    ratio = np.diag(H) / unit**2
    lost = np.flatnonzero(~(ratio >= 1.0 / MAX_CONDITION))
    if len(lost):
        names = [labels[i] for i in lost]
        lowest = max(ratio[lost].min(), 0.0)
        return tuple((labels[i], float(ratio[i])) for i in lost), (
            f"the {objective} keeps rising as {', '.join(names)} {'runs' if len(names) == 1 else 'run'} off "
            f"to ±∞ (curvature down to {lowest:.2g} of its value at the initial point): it has no finite "
            "maximum (an alternative never chosen? choices separated by an attribute?)")
    if not cond <= MAX_CONDITION:
        direction = near_null_direction(H, labels)
        return direction, (
            f"the scaled Hessian of the {objective} at the estimate has condition number {cond:.3g} "
            f"(threshold {MAX_CONDITION:.0e}): it is nearly flat along "
            f"{' '.join(f'{c:+.3g} {name}' for name, c in direction)}; these parameters are (nearly) "
            "collinear")
    return (), ""


def _report(result: PointEstimate, on_unidentified: str) -> None:
    if not result.identified:
        message = f"{result.identification}; their estimates mean nothing: drop them, or give proper priors"
        if on_unidentified == "raise":
            raise SpecificationError(message)
        warnings.warn(message, IdentificationWarning, stacklevel=4)
    elif not result.converged:
        warnings.warn(f"the {result.objective} maximum was not reached: {result.message}", ConvergenceWarning,
                      stacklevel=4)


# ---------------------------------------------------------------------- names and values
def _constrained(model, x: RaveledVars, point) -> dict:
    """Free variables and deterministics at the raveled value variables ``x``."""
    outputs = get_default_varnames(model.unobserved_value_vars, include_transformed=False)
    values = model.compile_fn(inputs=model.value_vars, outs=outputs)(DictToArrayBijection.rmap(x, point))
    return {var.name: np.asarray(value) for var, value in zip(outputs, values, strict=True)}


def _parameters(model, x) -> pd.Series:
    """The free variables of ``x``, one row per element."""
    rows = {}
    for rv in model.free_RVs:
        value = np.asarray(x[rv.name])
        rows |= dict(zip(_element_labels(model, rv.name, value.shape), value.ravel().tolist(), strict=True))
    return pd.Series(rows, name="estimate", dtype=float)


def _element_labels(model, name, shape, rv_name=None) -> list[str]:
    """``name[c1, c2]`` for each element of a variable of ``shape``, by the coords of the dims of
    ``rv_name`` (default ``name``), or by position where it has none."""
    if not shape:
        return [name]
    dims = model.named_vars_to_dims.get(rv_name or name) or ()
    if len(dims) != len(shape):
        dims = (None,) * len(shape)
    axes = [model.coords[d] if d in model.coords and len(model.coords[d]) == n else range(n)
            for d, n in zip(dims, shape, strict=True)]
    return [f"{name}[{', '.join(str(c) for c in index)}]" for index in itertools.product(*axes)]
