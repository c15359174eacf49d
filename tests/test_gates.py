"""Covers dynjax.model.gates: hard-concrete samples, expected L0 vs Monte Carlo, L1 gates."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dynjax.model.gates import FeatureGates, expected_l0, hard_concrete_mean, hard_concrete_sample


def test_hard_concrete_has_exact_zeros_and_ones():
    z = hard_concrete_sample(jnp.zeros(10_000), jax.random.key(0))
    assert bool(((z >= 0) & (z <= 1)).all())
    assert 0.05 < float((z == 0).mean()) < 0.5 and 0.05 < float((z == 1).mean()) < 0.5


def test_expected_l0_matches_monte_carlo():
    log_alpha = jnp.array([-3.0, -1.0, 0.0, 0.5, 2.0, 4.0])
    keys = jax.random.split(jax.random.key(1), 20_000)
    samples = jax.vmap(lambda k: hard_concrete_sample(log_alpha, k))(keys)
    mc = float((samples > 0).sum(axis=1).mean())
    assert float(expected_l0(log_alpha)) == pytest.approx(mc, abs=0.05)


def test_deterministic_gates_and_module_kinds():
    assert float(hard_concrete_mean(jnp.array(10.0))) == 1.0 and float(hard_concrete_mean(jnp.array(-10.0))) == 0.0
    for kind, key in (("l1", "l1"), ("l0", "expected_l0")):
        gates = FeatureGates(4, kind)
        params = gates.init(jax.random.key(0))
        z, aux = gates.apply(params)
        assert z.shape == (4,) and key in aux
    z, _ = FeatureGates(4, "l0").apply(params, deterministic=False, rngs={"gates": jax.random.key(3)})
    assert z.shape == (4,)
    z, aux = FeatureGates(3, "none").apply({})
    np.testing.assert_array_equal(z, 1.0)
    assert aux == {}
    with pytest.raises(ValueError, match="unknown gate kind"):
        FeatureGates(3, "l2").init(jax.random.key(0))


def test_context_gates_open_with_evidence_and_give_exact_zeros():
    from dynjax.model.gates import ContextGates

    gates = ContextGates(hidden=4, threshold=5.0)
    evidence = jnp.arcsinh(jnp.array([[0.0, 0.0], [2.0, 3.0], [5.0, 5.0], [40.0, 60.0]]))
    params = gates.init(jax.random.key(0), evidence)
    z, aux = gates.apply(params, evidence)
    assert z.shape == (4,) and float(z[0]) == 0.0 and float(z[3]) == 1.0  # shut without evidence, open with plenty
    assert 0.0 < float(z[2]) < 1.0  # half open at the threshold
    assert bool(jnp.all(jnp.diff(z) >= 0))  # monotone in evidence at init
    assert 1.0 < float(aux["expected_l0"]) < 4.0
    sampled, _ = gates.apply(params, evidence, deterministic=False, rngs={"gates": jax.random.key(1)})
    assert float(sampled[0]) == 0.0  # far below the threshold even a sample is shut
    grads = jax.grad(lambda p: gates.apply(p, evidence)[1]["expected_l0"])(params)
    assert float(jnp.abs(grads["params"]["sharpness"])) > 0  # the L0 penalty sharpens the rule ...
    assert float(jnp.abs(grads["params"]["horizons"]).sum()) > 0  # ... and re-weights the horizons
    assert "bias" not in grads["params"]  # but cannot move the threshold (no collapse to all-shut)
