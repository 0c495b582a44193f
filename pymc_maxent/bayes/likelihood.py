"""The choice log-likelihood as one fused Op: utility, masked log-sum-exp and the gradient in
one pass over ``X``.

``ℓ_n = U_{n,y_n} − log Σ_{j available} exp U_nj`` with ``U`` the utility of
:class:`~pymc_maxent.utility.UtilityLayout` (fixed constants and coefficients ``α``, ``β``;
random components ``θ`` per individual, gathered by ``individual``). The Op returns the
pointwise ``ℓ`` and its gradients per situation with respect to ``α``, ``β`` and the
situation's row of ``θ``; its ``pullback`` contracts them with the output gradient (a dot
product and a scatter-add by individual), so that NUTS never builds the
``situation × alternative × attribute`` temporaries of the graph formulation.

Backends: a numba kernel (PyTensor's default backend, nutpie, PyMC's NUTS, and ``perform``
for the others) and, for numpyro/blackjax, the graph formulation
(:func:`reference_outputs`) handed to PyTensor's JAX backend (:func:`register_jax`).
Derivatives of the per-situation gradients (the Hessians of
:func:`~pymc_maxent.bayes.point.map_estimate`) go through the graph formulation as well.
"""

from __future__ import annotations

import numba
import numpy as np
import pytensor
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, grad_not_implemented, grad_undefined
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_default_op_cache_key

from pymc_maxent.utility import UtilityLayout, log_choice_probabilities


@numba.njit(cache=True, nogil=True)
def choice_log_likelihood_kernel(X, available, chosen, individual, alpha, beta, theta,
                                 asc, fixed, random_asc, random):
    """``ℓ`` (situation,), ``∂ℓ_n/∂α`` (situation, a), ``∂ℓ_n/∂β`` (situation, b) and
    ``∂ℓ_n/∂θ_{individual[n]}`` (situation, r), the layout dense (:meth:`UtilityLayout.dense`).
    An unavailable chosen alternative gives ``ℓ = -inf``."""
    N, J, K = X.shape
    M = theta.shape[0]
    uses_theta = theta.shape[1] > 0
    ll = np.empty(N)
    g_alpha = np.zeros((N, alpha.shape[0]))
    g_beta = np.zeros((N, beta.shape[0]))
    g_theta = np.zeros((N, theta.shape[1]))
    u = np.empty(J)
    for n in range(N):
        i = individual[n]
        if uses_theta and (i < 0 or i >= M):
            raise IndexError("individual_index points past the individuals' coefficients")
        top = -np.inf
        for j in range(J):
            if not available[n, j]:
                u[j] = -np.inf
                continue
            s = 0.0
            if asc[j] >= 0:
                s += alpha[asc[j]]
            if random_asc[j] >= 0:
                s += theta[i, random_asc[j]]
            for k in range(K):
                if fixed[j, k] >= 0:
                    s += X[n, j, k] * beta[fixed[j, k]]
                if random[j, k] >= 0:
                    s += X[n, j, k] * theta[i, random[j, k]]
            u[j] = s
            if s > top:
                top = s
        total = 0.0
        for j in range(J):
            if available[n, j]:
                u[j] = np.exp(u[j] - top)  # u now holds the unnormalised probabilities
                total += u[j]
        y = chosen[n]
        ll[n] = np.log(u[y] / total) if available[n, y] else -np.inf
        for j in range(J):
            if not available[n, j]:
                continue
            r = (1.0 if j == y else 0.0) - u[j] / total  # ∂ℓ_n/∂U_nj
            if asc[j] >= 0:
                g_alpha[n, asc[j]] += r
            if random_asc[j] >= 0:
                g_theta[n, random_asc[j]] += r
            for k in range(K):
                if fixed[j, k] >= 0:
                    g_beta[n, fixed[j, k]] += r * X[n, j, k]
                if random[j, k] >= 0:
                    g_theta[n, random[j, k]] += r * X[n, j, k]
    return ll, g_alpha, g_beta, g_theta


class ChoiceLogLikelihood(Op):
    """``(X, available, chosen, individual, α, β, θ) -> (ℓ, ∂ℓ/∂α, ∂ℓ/∂β, ∂ℓ/∂θ)`` per
    situation, for a :class:`~pymc_maxent.utility.UtilityLayout`.

    ``θ`` has one row per individual (``individual`` indexes them; a situation-level model
    passes one row per situation and ``individual = arange(N)``) and is on the natural scale.
    Absent parameter groups are empty vectors (or a ``(1, 0)`` ``θ``).

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.bayes.likelihood import ChoiceLogLikelihood
    >>> from pymc_maxent.utility import UtilityLayout
    >>> layout = UtilityLayout(2, 1, fixed=((0,), (0,)), fixed_columns=(0,))
    >>> X = np.array([[[1.0], [0.0]]])
    >>> ll, *_ = ChoiceLogLikelihood(layout)(X, np.ones((1, 2), bool), [0], [0], np.zeros(0),
    ...                                      np.array([np.log(3.0)]), np.zeros((1, 0)))
    >>> float(np.exp(ll.eval()[0]))  # exp(log 3) / (3 + 1)
    0.75
    """

    __props__ = ("layout",)

    def __init__(self, layout: UtilityLayout):
        self.layout = layout

    def make_node(self, X, available, chosen, individual, alpha, beta, theta):
        X = pt.as_tensor_variable(X, dtype="float64")
        available = pt.as_tensor_variable(available)
        chosen = pt.as_tensor_variable(chosen).astype("int64")
        individual = pt.as_tensor_variable(individual).astype("int64")
        alpha, beta = (pt.as_tensor_variable(v, dtype="float64") for v in (alpha, beta))
        theta = pt.as_tensor_variable(theta, dtype="float64")
        if (X.ndim, available.ndim, chosen.ndim, individual.ndim, alpha.ndim, beta.ndim, theta.ndim) \
                != (3, 2, 1, 1, 1, 1, 2):
            raise TypeError("ChoiceLogLikelihood: X (N, J, K), available (N, J), chosen (N,), "
                            "individual (N,), alpha (a,), beta (b,), theta (m, r)")
        outputs = [pt.vector(dtype="float64"), pt.matrix(dtype="float64"), pt.matrix(dtype="float64"),
                   pt.matrix(dtype="float64")]
        return Apply(self, [X, available, chosen, individual, alpha, beta, theta], outputs)

    def perform(self, node, inputs, output_storage):
        inputs = [np.ascontiguousarray(v) for v in inputs]
        inputs[1] = inputs[1].astype(bool)
        results = choice_log_likelihood_kernel(*inputs, *self.layout.dense())
        for storage, value in zip(output_storage, results, strict=True):
            storage[0] = value

    def infer_shape(self, fgraph, node, shapes):
        n = shapes[0][0]
        return [(n,), (n, shapes[4][0]), (n, shapes[5][0]), (n, shapes[6][1])]

    def connection_pattern(self, node):
        return [[True] * 4] * 7

    def pullback(self, inputs, outputs, output_grads):
        X, available, chosen, individual, alpha, beta, theta = inputs
        connected = [not isinstance(g.type, DisconnectedType) for g in output_grads]
        if not any(connected[1:]):
            # first derivatives: Σ_n g_n ∂ℓ_n/∂(α, β), and ∂ℓ_n/∂θ scattered to its individual
            g = output_grads[0]
            _, g_alpha, g_beta, g_theta = outputs
            grads = [pt.dot(g, g_alpha), pt.dot(g, g_beta),
                     pt.inc_subtensor(pt.zeros_like(theta)[individual], g[:, None] * g_theta)]
        else:  # derivatives of the gradients: through the graph formulation
            known = {ref: g for ref, g, c in zip(reference_outputs(self.layout, *inputs), output_grads,
                                                 connected, strict=True) if c}
            grads = pytensor.grad(None, [alpha, beta, theta], known_grads=known,
                                  disconnected_inputs="ignore", return_disconnected="zero")
        return [grad_not_implemented(self, 0, X), grad_undefined(self, 1, available),
                grad_undefined(self, 2, chosen), grad_undefined(self, 3, individual), *grads]


def reference_outputs(layout: UtilityLayout, X, available, chosen, individual, alpha, beta, theta):
    """The Op's outputs as a PyTensor graph (the graph formulation, the Op's reference): the
    utility of :meth:`UtilityLayout.utility`, the masked log-softmax, and the per-situation
    gradients by automatic differentiation with respect to per-situation copies of the
    parameters."""
    X = pt.as_tensor_variable(X)
    N = X.shape[0]
    theta = pt.as_tensor_variable(theta)
    rows = [pt.zeros((N, alpha.shape[0])), pt.zeros((N, beta.shape[0])), pt.zeros((N, theta.shape[1]))]
    U = layout.utility(X, alpha[None] + rows[0], beta[None] + rows[1], theta[individual] + rows[2])
    ll = log_choice_probabilities(U, available)[pt.arange(N), chosen]
    grads = pytensor.grad(ll.sum(), rows, disconnected_inputs="ignore", return_disconnected="zero")
    return [ll, *grads]


def choice_log_likelihood(layout: UtilityLayout, X, available, chosen, individual, alpha=None,
                          beta=None, theta=None):
    """Pointwise log-likelihood ``ℓ`` (situation,) by the fused Op; ``None`` for an absent
    parameter group."""
    alpha = pt.zeros(0) if alpha is None else alpha
    beta = pt.zeros(0) if beta is None else beta
    if theta is None:
        theta, individual = pt.zeros((1, 0)), pt.zeros_like(individual)
    return ChoiceLogLikelihood(layout)(X, available, chosen, individual, alpha, beta, theta)[0]


@register_funcify_default_op_cache_key(ChoiceLogLikelihood)
def _numba_funcify(op, node=None, **kwargs):
    asc, fixed, random_asc, random = op.layout.dense()
    kernel = choice_log_likelihood_kernel

    @numba_njit
    def choice_log_likelihood_op(X, available, chosen, individual, alpha, beta, theta):
        return kernel(X, available, chosen, individual, alpha, beta, theta, asc, fixed, random_asc, random)

    return choice_log_likelihood_op


_JAX_REGISTERED = False


def register_jax() -> None:
    """Teach PyTensor's JAX backend the Op (the graph formulation, jitted by JAX); called by
    :func:`~pymc_maxent.sample` for numpyro and blackjax (JAX is imported only then)."""
    global _JAX_REGISTERED
    if _JAX_REGISTERED:
        return
    from pytensor.graph.fg import FunctionGraph
    from pytensor.graph.rewriting.utils import rewrite_graph
    from pytensor.link.jax.dispatch import jax_funcify

    @jax_funcify.register(ChoiceLogLikelihood)
    def _jax_funcify(op, node=None, **kwargs):
        inputs = [v.type() for v in node.inputs]
        outputs = rewrite_graph(reference_outputs(op.layout, *inputs), include=("fast_run",),
                                exclude=("cxx_only", "BlasOpt", "local_careduce_fusion", "fusion"))
        return jax_funcify(FunctionGraph(inputs, outputs, clone=True))

    _JAX_REGISTERED = True
