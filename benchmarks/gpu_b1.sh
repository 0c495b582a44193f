#!/usr/bin/env bash
# B1 (panel mixed logit) with the JAX samplers on a CUDA GPU, in one run of under 10 minutes.
#
# Run from anywhere in the repository on a machine with an NVIDIA GPU and CUDA 12 drivers:
#     bash benchmarks/gpu_b1.sh
# It installs the package with jax[cuda12], numpyro and blackjax into .venv-gpu (or the
# active environment with GPU_B1_VENV=none), checks that JAX sees the GPU, then runs B1
# with numpyro and blackjax (2 chains vectorized on the one device) for the builder and the
# hand-written model (and the builder with 400 tuning steps under numpyro), and prints B1's
# table; each row is also printed to stderr as it finishes, so a cut-off run still reports.
# Budget: install ~2-3 min, 5 runs of ~1 min each.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [[ "${GPU_B1_VENV:-.venv-gpu}" != none ]]; then
    VENV=${GPU_B1_VENV:-.venv-gpu}
    [[ -x "$VENV/bin/python" ]] || "$PY" -m venv "$VENV"
    PY="$VENV/bin/python"
fi
# Skip the install (minutes: the CUDA wheels are ~2 GB) where JAX already sees a GPU.
if ! "$PY" -c 'import jax, numpyro, blackjax, pymc_maxent; assert jax.devices()[0].platform == "gpu"' 2>/dev/null; then
    "$PY" -m pip install --quiet --upgrade pip
    "$PY" -m pip install --quiet -e ".[bench]" "jax[cuda12]"
fi

"$PY" - <<'EOF'
import jax
devices = jax.devices()
print("JAX", jax.__version__, "devices:", devices)
if devices[0].platform != "gpu":
    raise SystemExit("JAX does not see a GPU: check the CUDA 12 driver (nvidia-smi) and jax[cuda12]")
EOF

# Bounded so that install + table fit the 10-minute run.
timeout 480 "$PY" benchmarks/bench_b1_mixed_logit.py --samplers numpyro blackjax \
    --models builder hand-written --designs electricity --jax-platform gpu --chain-method vectorized "$@"
