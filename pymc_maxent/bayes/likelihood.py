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

# exp by Cody-Waite range reduction, x = k ln2 + r with |r| <= ln2/2, a degree-12 Taylor
# polynomial for e^r (truncation < 2e-16 relative) and 2^k from the exponent bits: a loop LLVM
# vectorises, unlike calls to libm's exp (~4x faster here; matches np.exp to 2 ulp).
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.44269504088896338700e+00
_NO_REASSOC = {"contract", "nsz", "arcp"}  # keep Horner's evaluation order


@numba.njit(cache=True, nogil=True, fastmath=_NO_REASSOC)
def exp_nonpositive(x, out, bits):
    """``out[:n] = exp(x)`` for ``x <= 0`` (``n = x.size``), exactly 0 below ``-708`` (and for
    ``-inf``): the factors of a log-sum-exp after its maximum is subtracted."""
    n = x.size
    for i in range(n):
        v = max(x[i], -708.0)
        k = np.floor(v * _INV_LN2 + 0.5)
        r = (v - k * _LN2_HI) - k * _LN2_LO
        p = 1.0 / 479001600
        p = p * r + 1.0 / 39916800
        p = p * r + 1.0 / 3628800
        p = p * r + 1.0 / 362880
        p = p * r + 1.0 / 40320
        p = p * r + 1.0 / 5040
        p = p * r + 1.0 / 720
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        bits[i] = (np.int64(k) + 1023) << 52
        out[i] = p if x[i] >= -708.0 else 0.0
    scale = bits[:n].view(np.float64)
    for i in range(n):
        out[i] *= scale[i]


_CHUNK = 256  # situations per pass: the chunk's utilities stay in L1


@numba.njit(cache=True, nogil=True)
def choice_log_likelihood_kernel(X, available, chosen, individual, alpha, beta, theta, constant_index,
                                 coefficient_index, generic, terms):
    """``ℓ`` (situation,), ``∂ℓ_n/∂α`` (situation, a), ``∂ℓ_n/∂β`` (situation, b) and
    ``∂ℓ_n/∂θ_{individual[n]}`` (situation, r); the layout as :func:`kernel_layout` gives it.

    The utility is ``U_nj = c[constant_index[j]] + Σ_k X_njk c[coefficient_index[j, k]]`` with
    ``c = (α, β, θ_i, 0)``, its coefficient matrix gathered once per individual. The gradient
    of a generic column is one sum over the alternatives, ``Σ_j r_nj X_njk`` with
    ``r_nj = 1[j = y_n] − p_nj``; alternative-specific ``terms`` (j, k, slot) and the constants
    add one product each: no two updates of one slot per situation, so no chain of dependent
    stores. An unavailable chosen alternative gives ``ℓ = -inf``.
    """
    N, J, K = X.shape
    A, B = alpha.shape[0], beta.shape[0]
    M, R = theta.shape
    P = A + B + R
    c = np.zeros(P + 1)
    c[:A] = alpha
    c[A:A + B] = beta
    coefficients = np.empty((J, K))
    constants = np.empty(J)
    ll = np.empty(N)
    g = np.zeros((N, P + 1))  # the last column collects the zero slot's (unused) gradient
    U = np.empty(_CHUNK * J)
    E = np.empty(_CHUNK * J)
    bits = np.empty(_CHUNK * J, dtype=np.int64)
    r = np.empty(J)
    last = -2
    for start in range(0, N, _CHUNK):
        stop = min(N, start + _CHUNK)
        for n in range(start, stop):  # utilities, less each situation's largest
            i = individual[n]
            if i != last:
                if R > 0:
                    if i < 0 or i >= M:
                        raise IndexError("individual_index points past the individuals' coefficients")
                    c[A + B:P] = theta[i]
                for j in range(J):
                    constants[j] = c[constant_index[j]]
                    for k in range(K):
                        coefficients[j, k] = c[coefficient_index[j, k]]
                last = i
            row = (n - start) * J
            top = -np.inf
            for j in range(J):
                s = constants[j]
                for k in range(K):
                    s += X[n, j, k] * coefficients[j, k]
                U[row + j] = s if available[n, j] else -np.inf
                top = max(top, U[row + j])
            for j in range(J):
                U[row + j] -= top
        m = (stop - start) * J
        exp_nonpositive(U[:m], E, bits)
        for n in range(start, stop):  # ℓ and the gradient
            row = (n - start) * J
            total = 0.0
            for j in range(J):
                total += E[row + j]
            y = chosen[n]
            ll[n] = U[row + y] - np.log(total)
            inv = 1.0 / total
            for j in range(J):
                r[j] = -E[row + j] * inv
            r[y] += 1.0
            for j in range(J):
                g[n, constant_index[j]] += r[j]
            for k in range(K):
                if generic[k] >= 0:
                    s = 0.0
                    for j in range(J):
                        s += r[j] * X[n, j, k]
                    g[n, generic[k]] = s
            for t in range(terms.shape[0]):
                j = terms[t, 0]
                g[n, terms[t, 2]] += r[j] * X[n, j, terms[t, 1]]
    return (ll, np.ascontiguousarray(g[:, :A]), np.ascontiguousarray(g[:, A:A + B]),
            np.ascontiguousarray(g[:, A + B:P]))


def kernel_layout(layout: UtilityLayout, n_alpha: int, n_beta: int, n_theta: int):
    """The layout as indices into ``c = (α, β, θ_i, 0)`` (absent entries at the zero slot):
    constants (alternative,) and coefficients (alternative, attribute); each attribute's
    slot when it is generic (the same for every alternative), else -1; and the other
    coefficients as (alternative, attribute, slot) rows."""
    asc, fixed, random_asc, random = layout.dense()
    zero = n_alpha + n_beta + n_theta
    theta = n_alpha + n_beta  # θ_i's first slot
    constants = np.where(asc >= 0, asc, np.where(random_asc >= 0, theta + random_asc, zero))
    coefficients = np.where(fixed >= 0, n_alpha + fixed, np.where(random >= 0, theta + random, zero))
    generic = np.where((coefficients == coefficients[:1]).all(axis=0) & (coefficients[0] != zero),
                       coefficients[0], -1)
    j, k = np.nonzero((generic[None, :] < 0) & (coefficients != zero))
    terms = np.stack([j, k, coefficients[j, k]], axis=1).reshape(-1, 3)
    return (constants.astype(np.int64), coefficients.astype(np.int64), generic.astype(np.int64),
            terms.astype(np.int64))


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
        sizes = self.layout.sizes()
        if (inputs[4].shape[0], inputs[5].shape[0], inputs[6].shape[1]) != sizes:
            raise ValueError(f"ChoiceLogLikelihood: alpha, beta and theta's columns have sizes "
                             f"{inputs[4].shape[0]}, {inputs[5].shape[0]}, {inputs[6].shape[1]}; "
                             f"the layout uses {sizes}")
        results = choice_log_likelihood_kernel(*inputs, *kernel_layout(self.layout, *sizes))
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
    theta = pt.as_tensor_variable(theta)
    # (situation, size) zeros with the sizes static (JAX traces no arithmetic on shapes)
    situations = pt.zeros_like(X[:, 0, 0])[:, None]
    rows = [situations + pt.zeros(n) for n in layout.sizes()]
    U = layout.utility(X, alpha[None] + rows[0], beta[None] + rows[1], theta[individual] + rows[2])
    ll = log_choice_probabilities(U, available)[pt.arange(X.shape[0]), chosen]
    grads = pytensor.grad(ll.sum(), rows, disconnected_inputs="ignore", return_disconnected="zero")
    return [ll, *grads]


@register_funcify_default_op_cache_key(ChoiceLogLikelihood)
def _numba_funcify(op, node=None, **kwargs):
    n_alpha, n_beta, n_theta = op.layout.sizes()
    constants, coefficients, generic, terms = kernel_layout(op.layout, n_alpha, n_beta, n_theta)
    kernel = choice_log_likelihood_kernel

    @numba_njit
    def choice_log_likelihood_op(X, available, chosen, individual, alpha, beta, theta):
        if alpha.shape[0] != n_alpha or beta.shape[0] != n_beta or theta.shape[1] != n_theta:
            raise ValueError("ChoiceLogLikelihood: alpha, beta or theta differ in size from the layout")
        return kernel(X, available, chosen, individual, alpha, beta, theta, constants, coefficients,
                      generic, terms)

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
                                exclude=("cxx_only", "BlasOpt", "fusion", "inplace"))
        return jax_funcify(FunctionGraph(inputs, outputs, clone=True))

    _JAX_REGISTERED = True
