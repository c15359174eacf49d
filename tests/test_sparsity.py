"""Covers dynjax.model.sparsity: entropy values, penalty selection, gradient sign, counts."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from dynjax.model.sparsity import attention_entropy, n_nonzero, sparsity_penalty


def test_entropy_of_uniform_and_one_hot_rows():
    mask = jnp.array([True, True, False])
    att = jnp.stack([jnp.full(4, 0.25), jax.nn.one_hot(2, 4), jnp.full(4, 0.25)])
    assert float(attention_entropy(att, mask)) == pytest.approx(np.log(4) / 2, rel=1e-6)


def test_entropy_gradient_concentrates_attention():
    logits = jnp.array([[0.5, 0.2, 0.1, -0.3]])
    grad = jax.grad(lambda z: attention_entropy(jax.nn.softmax(z), jnp.ones(1, bool)))(logits)
    # Descending the penalty raises the largest logit relative to the others.
    step = jax.nn.softmax(logits - 0.5 * grad)
    assert float(step[0, 0]) > float(jax.nn.softmax(logits)[0, 0])
    assert float(attention_entropy(step, jnp.ones(1, bool))) < float(attention_entropy(jax.nn.softmax(logits), jnp.ones(1, bool)))


def test_penalty_kinds_and_counts():
    att = jnp.array([[0.5, 0.5, 0.0]])
    mask = jnp.ones(1, bool)
    assert float(sparsity_penalty("none", att, mask, {}, 3)[0]) == 0.0
    assert float(sparsity_penalty("entropy", att, mask, {}, 3)[0]) == pytest.approx(np.log(2))
    assert float(sparsity_penalty("l1", att, mask, {"l1": jnp.array(0.7)}, 3)[0]) == pytest.approx(0.7)
    assert float(sparsity_penalty("l0", None, mask, {"expected_l0": jnp.array(1.5)}, 3)[0]) == pytest.approx(0.5)
    assert int(n_nonzero(jnp.array([0.2, 0.0, 0.8]))) == 2
    with pytest.raises(ValueError, match="needs model gates 'l0' or 'context'"):
        sparsity_penalty("l0", att, mask, {}, 3)
    with pytest.raises(ValueError, match="needs rows' attention"):  # the model left the row weights out
        sparsity_penalty("entropy", None, mask, {}, 3)
    assert "entropy" not in sparsity_penalty("l0", None, mask, {"expected_l0": jnp.array(1.5)}, 3)[1]
    with pytest.raises(ValueError, match="unknown sparsity penalty"):
        sparsity_penalty("l3", att, mask, {}, 3)
