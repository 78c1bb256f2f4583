"""The training engine: lecture reproduction, vmap equality, early stopping, divergence, resume."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxopt_lab import checkpoint
from jaxopt_lab.config import Config, ConfigError, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
from jaxopt_lab.train import HISTORY_KEYS, make_train

MOONS = DataConfig(dataset="moons", n_samples=120, noise=0.25, random_state=3, val_fraction=0.25)


def _cfg(epochs=30, batch_size=0, opt=None, **train):
    return Config(
        data=MOONS,
        model=ModelConfig(hidden=(8,)),
        train=TrainConfig(epochs=epochs, batch_size=batch_size, precision="float64", **train),
        optimizer=opt or OptimizerConfig("sgd", {"learning_rate": 0.1, "momentum": 0.9}),
    )


# --------------------------------------------------------------------------- the moons lecture


def _lecture_weights():
    """The lecture's initial weights: rng(7), normal(0.3), the SGD net drawn first, then Adam's."""
    rng = np.random.default_rng(7)
    out = {}
    for mode in ("sgd", "adam"):
        out[mode] = {
            "dense_0": {"w": rng.normal(scale=0.3, size=(2, 20)), "b": np.zeros(20)},
            "dense_1": {"w": rng.normal(scale=0.3, size=(20, 2)), "b": np.zeros(2)},
        }
    return out


def _relu_net(p, x):
    h = jax.nn.relu(x @ p["dense_0"]["w"] + p["dense_0"]["b"])
    return h @ p["dense_1"]["w"] + p["dense_1"]["b"]


@pytest.mark.parametrize(
    "mode,opt,printed",
    [
        ("sgd", OptimizerConfig("sgd", {"learning_rate": 0.3}), (0.890, 0.892, 0.898, 0.896)),
        ("adam", OptimizerConfig("adam", {"learning_rate": 0.05}), (0.946, 0.950, 0.950, 0.950)),
    ],
)
def test_lecture_000_accuracies_reproduced(mode, opt, printed):
    """The moons lecture prints the accuracy after updates 100, 200, 300 and 400 of full-batch training.

    The history's training accuracy of epoch e+1 is measured on the parameters
    after e updates (before that epoch's update), so index 100 is the lecture's
    epoch 100.
    """
    weights = _lecture_weights()[mode]
    cfg = Config(
        data=DataConfig(dataset="moons", n_samples=500, noise=0.25, random_state=7, val_fraction=0.0),
        train=TrainConfig(epochs=400, precision="float64"),
        optimizer=opt,
    )
    train = make_train(cfg, init_fn=lambda key: weights, apply_fn=_relu_net)
    result = jax.jit(train)(jax.random.PRNGKey(0))
    acc = np.asarray(result.history["train_accuracy"])
    got = (acc[100], acc[200], acc[300], float(result.metrics["final_train_accuracy"]))
    np.testing.assert_allclose(got, printed, atol=1e-12)


# --------------------------------------------------------------------------- one run vs many


@pytest.fixture(scope="module")
def sgd_train():
    return make_train(_cfg(epochs=12, batch_size=30))


def test_run_alone_equals_run_in_vmap_and_map(sgd_train):
    lrs = jnp.array([0.03, 0.1, 0.3])
    seeds = jnp.array([0, 1, 2])

    def one(seed, lr):
        return sgd_train(jax.random.PRNGKey(seed), {"optimizer.learning_rate": lr}).metrics

    batched = jax.jit(jax.vmap(one))(seeds, lrs)
    mapped = jax.jit(lambda s, lr: jax.lax.map(lambda a: one(*a), (s, lr)))(seeds, lrs)
    alone = jax.jit(one)
    for i in range(3):
        single = alone(seeds[i], lrs[i])
        for k in single:
            np.testing.assert_allclose(batched[k][i], single[k], rtol=1e-10, err_msg=k)
            assert np.array_equal(mapped[k][i], single[k]), k


def test_same_key_same_result_bitwise(sgd_train):
    run = jax.jit(sgd_train)
    a = run(jax.random.PRNGKey(5))
    b = run(jax.random.PRNGKey(5))
    chex.assert_trees_all_equal(a, b)
    c = run(jax.random.PRNGKey(6))
    assert not np.array_equal(a.metrics["final_train_loss"], c.metrics["final_train_loss"])


def test_history_shapes_and_metrics(sgd_train):
    r = jax.jit(sgd_train)(jax.random.PRNGKey(0))
    for k in HISTORY_KEYS:
        chex.assert_shape(r.history[k], (12,))
    assert int(r.metrics["epochs_run"]) == 12
    assert np.all(np.isfinite(r.history["val_loss"]))
    np.testing.assert_allclose(r.history["learning_rate"], 0.1)
    # the last epoch's validation loss is the final validation loss (no early stopping)
    np.testing.assert_allclose(r.history["val_loss"][-1], r.metrics["final_val_loss"], rtol=1e-12)


def test_unknown_hparam_key_is_named(sgd_train):
    with pytest.raises(ValueError, match="optimizer.learnig_rate.*did you mean 'optimizer.learning_rate'"):
        sgd_train(jax.random.PRNGKey(0), {"optimizer.learnig_rate": 0.1})


def test_minibatch_sgd_and_full_batch_share_one_path():
    # batch 1 (SGD) and a batch size that does not divide the split both run and learn
    for bs in (1, 7):
        r = jax.jit(make_train(_cfg(epochs=3, batch_size=bs)))(jax.random.PRNGKey(0))
        assert int(r.metrics["epochs_run"]) == 3
        assert r.history["train_loss"][-1] < r.history["train_loss"][0]


def test_batch_size_larger_than_split_is_rejected():
    with pytest.raises(ConfigError, match="train.batch_size"):
        make_train(_cfg(batch_size=1000))


# --------------------------------------------------------------------------- early stopping


def test_early_stopping_stops_after_patience_and_restores_best():
    """Validation labels are the flipped training labels: the better the fit, the worse the
    validation loss, so the best epoch is early and the run stops `patience` epochs later."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 2))
    y = (x[:, 0] > 0).astype(np.int64)
    x_all = np.concatenate([x, x[:20]])
    y_all = np.concatenate([y, 1 - y[:20]])

    cfg = Config(
        data=DataConfig(val_fraction=0.2, stratify=False, random_state=0),
        model=ModelConfig(hidden=(4,)),
        train=TrainConfig(epochs=200, early_stopping_patience=4, precision="float64"),
        optimizer=OptimizerConfig("sgd", {"learning_rate": 0.5}),
    )
    # Put the flipped rows in validation: pass the split explicitly via a user data hook.
    train = make_train(cfg, data=(x_all, y_all))
    train.data = train.data._replace(x_train=x, y_train=y, x_val=x[:20], y_val=1 - y[:20])
    r = jax.jit(train)(jax.random.PRNGKey(1))
    best, ran = int(r.metrics["best_epoch"]), int(r.metrics["epochs_run"])
    assert ran == best + 4 < 200
    vl = np.asarray(r.history["val_loss"])
    assert np.nanargmin(vl) + 1 == best
    assert np.all(np.isnan(vl[ran:]))
    # the best epoch's parameters were restored: final validation loss is the best one
    np.testing.assert_allclose(r.metrics["final_val_loss"], r.metrics["best_val_loss"], rtol=1e-12)
    np.testing.assert_allclose(r.metrics["best_val_loss"], vl[best - 1], rtol=1e-12)


def test_each_run_stops_on_its_own_under_vmap():
    train = make_train(_cfg(epochs=60, early_stopping_patience=3))
    pats = jnp.array([0.0, 3.0])

    def one(p):
        return train(jax.random.PRNGKey(0), {"train.early_stopping_patience": p}).metrics["epochs_run"]

    ran = jax.jit(jax.vmap(one))(pats)
    alone = [int(jax.jit(one)(p)) for p in pats]
    assert list(np.asarray(ran)) == alone
    assert alone[0] == 60


# --------------------------------------------------------------------------- divergence


def test_divergence_is_flagged_frozen_and_isolated():
    train = make_train(_cfg(epochs=20, opt=OptimizerConfig("sgd", {"learning_rate": 0.1})))

    def one(lr):
        return train(jax.random.PRNGKey(0), {"optimizer.learning_rate": lr})

    both = jax.jit(jax.vmap(one))(jnp.array([0.1, 1e30]))
    good = jax.jit(one)(0.1)
    assert not bool(both.metrics["diverged"][0]) and bool(both.metrics["diverged"][1])
    for k, v in good.metrics.items():
        np.testing.assert_allclose(both.metrics[k][0], v, rtol=1e-10, err_msg=k)
    # the diverged run's parameters stay finite (the bad update was never applied)
    assert all(np.all(np.isfinite(leaf[1])) for leaf in jax.tree.leaves(both.params))
    assert int(both.metrics["epochs_run"][1]) < 20


# --------------------------------------------------------------------------- regularizers


def test_coupled_l2_equals_decoupled_decay_for_sgd_but_not_adam():
    """The gradients lecture: for plain SGD an L2 penalty (lambda/2)|w|^2 and weight decay lr*lambda*w are the same
    update; with Adam the penalty's gradient is rescaled per coordinate, so they differ (AdamW)."""

    def final(opt, **reg):
        t = make_train(_cfg(epochs=10, opt=opt, **reg))
        return jax.jit(t)(jax.random.PRNGKey(0)).params

    sgd = OptimizerConfig("sgd", {"learning_rate": 0.1})
    chex.assert_trees_all_close(final(sgd, l2=0.05), final(sgd, weight_decay=0.05), rtol=1e-10)
    adam = OptimizerConfig("adam", {"learning_rate": 0.01})
    a, b = final(adam, l2=0.05), final(adam, weight_decay=0.05)
    assert not np.allclose(a["dense_0"]["w"], b["dense_0"]["w"], rtol=1e-6)


def test_schedule_is_stepped_per_update():
    from jaxopt_lab.config import ScheduleConfig

    opt = OptimizerConfig(
        "sgd", {"learning_rate": 0.2},
        schedule=ScheduleConfig("exponential_decay", {"transition_steps": 1, "decay_rate": 0.9}),
    )
    cfg = _cfg(epochs=5, batch_size=30, opt=opt)  # 90 train rows -> 3 updates per epoch
    r = jax.jit(make_train(cfg))(jax.random.PRNGKey(0))
    # the rate of each epoch's last update: step 2, 5, 8, ...
    np.testing.assert_allclose(r.history["learning_rate"], 0.2 * 0.9 ** (np.arange(5) * 3 + 2), rtol=1e-12)


def test_reduce_on_plateau_lowers_the_rate():
    from jaxopt_lab.config import PlateauConfig

    opt = OptimizerConfig("sgd", {"learning_rate": 2.0}, plateau=PlateauConfig(factor=0.5, patience=2))
    r = jax.jit(make_train(_cfg(epochs=60, opt=opt)))(jax.random.PRNGKey(0))
    lr = np.asarray(r.history["learning_rate"])
    assert lr[0] == 2.0 and lr[-1] < 2.0
    assert set(np.round(np.log2(lr / 2.0), 9)) <= {0.0, -1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0, -8.0}


# --------------------------------------------------------------------------- resume


def test_resume_from_checkpoint_gives_identical_results(tmp_path):
    train = make_train(_cfg(epochs=20, batch_size=16, early_stopping_patience=50))
    hp = {"optimizer.learning_rate": 0.05}
    key = jax.random.PRNGKey(3)
    full = jax.jit(lambda k: train(k, hp))(key)

    state = jax.jit(lambda k: train.run_epochs(train.init_state(k, hp), hp, until=8))(key)
    checkpoint.save(tmp_path / "run.ckpt", state, {"epoch": 8})
    like = train.init_state(key, hp)
    loaded, meta = checkpoint.load(tmp_path / "run.ckpt", like=like)
    assert meta["epoch"] == 8
    resumed = jax.jit(lambda s: train.finalize(train.run_epochs(s, hp), hp))(loaded)
    chex.assert_trees_all_equal(resumed.metrics, full.metrics)
    chex.assert_trees_all_equal(resumed.params, full.params)
    chex.assert_trees_all_equal(resumed.history, full.history)


def test_user_model_and_data():
    """make_train with a user's init/apply (a linear model) and arrays."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 3))
    y = (x @ np.array([1.0, -2.0, 0.5]) > 0).astype(np.int64)
    cfg = Config(train=TrainConfig(epochs=50, precision="float64"),
                 optimizer=OptimizerConfig("adam", {"learning_rate": 0.05}))
    train = make_train(
        cfg,
        init_fn=lambda key: {"w": jax.random.normal(key, (3, 2)) * 0.01, "b": jnp.zeros(2)},
        apply_fn=lambda p, x: x @ p["w"] + p["b"],
        data=(x, y),
    )
    r = jax.jit(train)(jax.random.PRNGKey(0))
    assert float(r.metrics["final_val_accuracy"]) > 0.85


def test_optimizer_fn_replaces_the_config_optimizer_and_its_values_trace():
    from jaxopt_lab import optim

    def lookahead_sgd(hp):
        return optim.lookahead(optim.sgd(hp["learning_rate"]), sync_period=5, slow_step_size=hp["alpha"])

    train = make_train(_cfg(epochs=12), optimizer_fn=lookahead_sgd)

    def one(alpha):
        return train(jax.random.PRNGKey(0), {"optimizer.learning_rate": 0.3, "optimizer.alpha": alpha}).metrics

    batched = jax.jit(jax.vmap(one))(jnp.array([0.5, 1.0]))
    # slow_step_size 1 makes lookahead plain SGD: compare with the config's own sgd
    plain = jax.jit(make_train(_cfg(epochs=12, opt=OptimizerConfig("sgd", {"learning_rate": 0.3}))))(
        jax.random.PRNGKey(0)).metrics
    np.testing.assert_allclose(batched["final_train_loss"][1], plain["final_train_loss"], rtol=1e-9)
    assert not np.isclose(batched["final_train_loss"][0], plain["final_train_loss"], rtol=1e-6)
