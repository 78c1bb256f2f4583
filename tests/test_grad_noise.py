"""`train.grad_noise`: a traceable key added as one config field and its use in the step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxopt_lab.config import Config, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
from jaxopt_lab.train import make_train


def _trainer(grad_noise: float = 0.0, precision: str = "float32"):
    cfg = Config(
        data=DataConfig(dataset="moons", n_samples=200, noise=0.2),
        model=ModelConfig(hidden=(256,)),
        train=TrainConfig(epochs=1, batch_size=0, grad_noise=grad_noise, precision=precision),
        optimizer=OptimizerConfig(name="sgd", kwargs={"learning_rate": 0.5}),
    )
    return make_train(cfg)


def test_one_sgd_step_adds_gaussian_noise_of_the_given_std_to_every_gradient_entry():
    # tests/conftest.py turns on 64-bit JAX for the whole session.
    lr, sigma = 0.5, 0.3
    clean = _trainer(precision="float64")
    noisy = _trainer(grad_noise=sigma, precision="float64")
    key = jax.random.PRNGKey(3)
    p_clean = clean.step_epoch(clean.init_state(key, clean.resolve({})), clean.resolve({})).params
    p_noisy = noisy.step_epoch(noisy.init_state(key, noisy.resolve({})), noisy.resolve({})).params
    # SGD: w1 = w0 - lr * (g + sigma * z), so (w1_clean - w1_noisy) / (lr * sigma) = z ~ N(0, 1).
    z = np.concatenate([np.ravel(a - b) for a, b in zip(jax.tree.leaves(p_clean), jax.tree.leaves(p_noisy),
                                                          strict=True)]) / (lr * sigma)
    assert z.size > 800
    assert abs(z.mean()) < 4 / np.sqrt(z.size)
    assert abs(z.std() - 1.0) < 0.1


def test_grad_noise_is_traced_and_zero_noise_is_the_noiseless_run():
    trainer = _trainer(grad_noise=0.1)
    assert "train.grad_noise" in trainer.traceable_keys()
    run = jax.jit(lambda s: trainer(jax.random.PRNGKey(0), {"train.grad_noise": s}).metrics["final_val_loss"])
    with_noise = run(jnp.float32(0.5))
    without = run(jnp.float32(0.0))
    assert run._cache_size() == 1  # one program for every noise scale
    reference = _trainer()(jax.random.PRNGKey(0), {}).metrics["final_val_loss"]
    np.testing.assert_allclose(without, reference, rtol=1e-6)
    assert not np.isclose(with_noise, without)
