"""An individual's likelihood with its random components integrated out at fixed nodes, as one
fused Op: the minibatch mixed logit's likelihood.

``log L_i = log Σ_r w_r Π_t P(y_it | V_it + Z_it θ_r)``, with ``V`` the fixed parameters'
utility (situation-level graph: its gradient flows back through it), ``Z`` the random
components' design (:meth:`~pymc_maxent.utility.UtilityLayout.random_design`) and ``θ_r`` the
population's draws at the integration nodes (quasi-Monte Carlo or Gauss–Hermite points through
``μ + σ ∘ z_r`` or ``μ + L z_r``). The graph formulation of the same sum builds
``batch × situation × node × alternative`` temporaries and passes over them some twenty times;
this kernel makes one pass, and returns with ``log L_i`` its gradients with respect to ``V_i``
and to each node's ``θ_r`` (``∂ log L_i/∂θ_r = ω_ir Σ_t Z_it'(e_{y_it} − p_itr)``, ``ω_ir`` the
node's posterior weight), which the pullback contracts with the output gradient.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import grad_not_implemented, grad_undefined
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_default_op_cache_key

from pymc_maxent.bayes.likelihood import exp_nonpositive
from pymc_maxent.utility import log_choice_probabilities


@numba.njit(cache=True, nogil=True)
def simulated_log_likelihood_kernel(V, Z, available, chosen, theta, log_weights):
    """``log L_i`` (b,), ``∂ log L_i/∂V_i`` (b, T, J) and ``∂ log L_i/∂θ_r`` (b, Q, D).

    Per individual, the utilities at every node are one product ``Z_i θ'`` (``(T·J) × Q``) and
    the node gradients another; the log-sum-exps run over rows of ``Q`` nodes (vectorised)."""
    b, T, J = V.shape
    Q, D = theta.shape
    ll = np.empty(b)
    g_V = np.empty((b, T, J))
    g_theta = np.empty((b, Q, D))
    theta_t = np.ascontiguousarray(theta.T)
    G = np.empty((T * J, Q))  # δ_{j y_t} − p_tjr, then weighted by the nodes' posterior weights
    node_ll = np.empty(Q)
    top = np.empty(Q)
    total = np.empty(Q)
    e = np.empty(Q)
    bits = np.empty(Q, dtype=np.int64)
    for i in range(b):
        Zi = np.ascontiguousarray(Z[i]).reshape(T * J, D)
        U = Zi @ theta_t  # (T·J, Q)
        node_ll[:] = log_weights
        for t in range(T):
            top[:] = -np.inf
            for j in range(J):
                row = t * J + j
                if available[i, t, j]:
                    v = V[i, t, j]
                    for r in range(Q):
                        U[row, r] += v
                        top[r] = max(top[r], U[row, r])
            total[:] = 0.0
            for j in range(J):
                row = t * J + j
                if available[i, t, j]:
                    for r in range(Q):
                        U[row, r] -= top[r]
                    exp_nonpositive(U[row], e, bits)
                    for r in range(Q):
                        G[row, r] = e[r]
                        total[r] += e[r]
                else:
                    G[row, :] = 0.0
            c = t * J + chosen[i, t]
            for r in range(Q):
                node_ll[r] += U[c, r] - math.log(total[r])
            for j in range(J):
                row = t * J + j
                for r in range(Q):
                    G[row, r] = -G[row, r] / total[r]
            for r in range(Q):
                G[c, r] += 1.0
        best = node_ll.max()
        for r in range(Q):
            node_ll[r] -= best
        exp_nonpositive(node_ll, e, bits)
        mass = e.sum()
        ll[i] = best + math.log(mass)
        for r in range(Q):
            e[r] /= mass  # the nodes' posterior weights for individual i
        g_V[i] = (G @ e).reshape(T, J)
        for row in range(T * J):
            for r in range(Q):
                G[row, r] *= e[r]
        g_theta[i] = G.T @ Zi
    return ll, g_V, g_theta


class SimulatedLogLikelihood(Op):
    """``(V, Z, available, chosen, θ, log w) -> (log L, ∂ log L/∂V, ∂ log L/∂θ)`` per individual
    of a padded panel ``(individual, situation, alternative[, component])``.

    Examples
    --------
    >>> import numpy as np
    >>> from pymc_maxent.bayes.integrated_likelihood import SimulatedLogLikelihood
    >>> V, Z = np.zeros((1, 1, 2)), np.array([[[[1.0], [0.0]]]])   # one individual, one situation
    >>> theta, log_w = np.array([[np.log(3.0)], [0.0]]), np.log([0.5, 0.5])
    >>> ll, _, _ = SimulatedLogLikelihood()(V, Z, np.ones((1, 1, 2), bool), [[0]], theta, log_w)
    >>> float(np.exp(ll.eval()[0]))  # (3/4 + 1/2) / 2
    0.625
    """

    __props__ = ()

    def make_node(self, V, Z, available, chosen, theta, log_weights):
        V, Z, theta, log_weights = (pt.as_tensor_variable(v, dtype="float64")
                                    for v in (V, Z, theta, log_weights))
        available = pt.as_tensor_variable(available)
        chosen = pt.as_tensor_variable(chosen).astype("int64")
        if (V.ndim, Z.ndim, available.ndim, chosen.ndim, theta.ndim, log_weights.ndim) != (3, 4, 3, 2, 2, 1):
            raise TypeError("SimulatedLogLikelihood: V (b, T, J), Z (b, T, J, D), available (b, T, J), "
                            "chosen (b, T), theta (Q, D), log_weights (Q,)")
        outputs = [pt.vector(dtype="float64"), pt.tensor3(dtype="float64"), pt.tensor3(dtype="float64")]
        return Apply(self, [V, Z, available, chosen, theta, log_weights], outputs)

    def perform(self, node, inputs, output_storage):
        V, Z, available, chosen, theta, log_weights = (np.ascontiguousarray(v) for v in inputs)
        results = simulated_log_likelihood_kernel(V, Z, available.astype(bool), chosen, theta, log_weights)
        for storage, value in zip(output_storage, results, strict=True):
            storage[0] = value

    def infer_shape(self, fgraph, node, shapes):
        b = shapes[0][0]
        return [(b,), shapes[0], (b, shapes[4][0], shapes[4][1])]

    def pullback(self, inputs, outputs, output_grads):
        V, Z, available, chosen, theta, log_weights = inputs
        g = output_grads[0]
        _, g_V, g_theta = outputs
        return [g[:, None, None] * g_V, grad_not_implemented(self, 1, Z), grad_undefined(self, 2, available),
                grad_undefined(self, 3, chosen), (g[:, None, None] * g_theta).sum(axis=0),
                grad_not_implemented(self, 5, log_weights)]


def simulated_log_likelihood_graph(V, Z, available, chosen, theta, log_weights):
    """``log L_i`` as a PyTensor graph (the Op's reference): ``(b, T, Q, J)`` utilities."""
    U = V[:, :, None, :] + pt.moveaxis(pt.dot(Z, pt.as_tensor_variable(theta).T), -1, -2)
    log_p = log_choice_probabilities(U, pt.as_tensor_variable(available)[:, :, None, :])
    J = U.shape[-1]
    picked = pt.switch(pt.eq(pt.arange(J), pt.as_tensor_variable(chosen)[:, :, None, None]), log_p, 0.0)
    return pt.special.logsumexp(picked.sum(axis=(1, 3)) + log_weights, axis=1)


@register_funcify_default_op_cache_key(SimulatedLogLikelihood)
def _numba_funcify(op, node=None, **kwargs):
    kernel = simulated_log_likelihood_kernel

    @numba_njit
    def simulated_log_likelihood_op(V, Z, available, chosen, theta, log_weights):
        # contiguous copies where the graph hands strided views: the kernel is typed for C arrays
        return kernel(np.ascontiguousarray(V), np.ascontiguousarray(Z), np.ascontiguousarray(available),
                      np.ascontiguousarray(chosen), np.ascontiguousarray(theta),
                      np.ascontiguousarray(log_weights))

    return simulated_log_likelihood_op
