"""optax's optimizers by name (`optax.NAME`, `optax.contrib.NAME`) in configs, sweeps and protocols.

References are optax itself: its own `adam` through the same engine, its
`schedule_free_eval_params`, and tracing its factories directly.
"""

import jax
import numpy as np
import optax
import optax.contrib
import pytest

from jaxopt_lab import protocols, registry
from jaxopt_lab.config import Config, ConfigError, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
from jaxopt_lab.config import validate as validate_config
from jaxopt_lab.sweep import config_sweep
from tests.cli_helpers import cli

BASE = Config(
    data=DataConfig(dataset="moons", n_samples=64, noise=0.2, random_state=1, val_fraction=0.25),
    model=ModelConfig(hidden=(4,)),
    train=TrainConfig(epochs=3, batch_size=0),
    optimizer=OptimizerConfig("adam", {"learning_rate": 0.01}),
)


def _with_optimizer(name, **kwargs):
    import dataclasses

    return BASE.replace(optimizer=dataclasses.replace(BASE.optimizer, name=name, kwargs=kwargs))


# ----------------------------------------------------------------------------- names and keywords


def test_optax_and_contrib_optimizers_are_listed_and_helpers_are_not():
    names = registry.optimizers()
    for name in ("optax.adafactor", "optax.lars", "optax.lamb", "optax.novograd", "optax.sm3", "optax.rprop",
                 "optax.adan", "optax.lion", "optax.contrib.muon", "optax.contrib.schedule_free_adamw",
                 "optax.contrib.prodigy", "optax.contrib.sophia", "optax.contrib.dadapt_adamw",
                 "optax.contrib.cocob", "optax.contrib.ademamix", "optax.contrib.adopt"):
        assert names[name] is eval(name), name  # noqa: S307 - the dotted name is the attribute
    for helper in ("optax.chain", "optax.clip_by_global_norm", "optax.scale_by_adam", "optax.lookahead",
                   "optax.contrib.sam", "optax.contrib.reduce_on_plateau", "optax.contrib.dpsgd"):
        assert helper not in names
        assert registry.refusal(helper)
    assert "wraps another optimizer" in registry.refusal("optax.contrib.sam")
    assert "adam" in names and "optax.adam" in names


@pytest.mark.parametrize("name, numeric, static", [
    ("optax.adafactor", {"learning_rate", "decay_rate", "eps", "clipping_threshold"},
     {"min_dim_size_to_factor", "factored", "multiply_by_parameter_scale", "dtype_momentum", "weight_decay_mask"}),
    ("optax.contrib.muon", {"learning_rate", "beta", "eps", "weight_decay"},
     {"ns_steps", "ns_coeffs", "nesterov", "weight_decay_mask", "mu_dtype"}),
    ("optax.contrib.schedule_free_adamw", {"learning_rate", "b1", "b2", "weight_decay"},
     {"warmup_steps", "state_dtype"}),
    ("adam", {"learning_rate", "b1", "b2", "eps", "eps_root"}, {"mu_dtype", "nesterov"}),
    ("sgd", {"learning_rate", "momentum"}, {"nesterov", "accumulator_dtype"}),
])
def test_numeric_and_static_keywords(name, numeric, static):
    num, stat = set(registry.numeric_keywords(name)), set(registry.static_keywords(name))
    assert numeric <= num and static <= stat and not num & stat
    assert num | stat == set(registry.optimizer_keywords(name))
    factory = registry.optimizer_factory(name)
    # The reference: optax's factory itself, one step traced with the keyword as a tracer.
    kw = {"learning_rate": 0.01} if "learning_rate" not in registry.optimizer_params(factory) or \
        registry.optimizer_params(factory)["learning_rate"].default is not None else {}
    p = {"w": np.ones((3, 4), np.float32), "b": np.ones(4, np.float32)}

    def step(value, key):
        opt = factory(**{**kw, key: value})
        return opt.update(p, opt.init(p), p)[0]

    jax.eval_shape(lambda v: step(v, "b1" if "b1" in num else "learning_rate"), np.float32(0.9))
    if name == "optax.adafactor":  # a structural int: traced, optax's own factory fails (optax #412)
        with pytest.raises(Exception):  # noqa: B017 - any tracer error
            jax.eval_shape(lambda v: step(v, "min_dim_size_to_factor"), np.float32(2.0))


def test_optimizers_whose_update_needs_the_loss():
    assert registry.extra_update_arguments("optax.adam") == ()
    assert registry.extra_update_arguments("optax.polyak_sgd") == ("value",)
    assert registry.extra_update_arguments("optax.contrib.momo") == ("value",)
    assert registry.extra_update_arguments("optax.contrib.sophia") == ("obj_fn",)
    assert registry.extra_update_arguments("optax.lbfgs") == ("value", "grad", "value_fn")
    assert registry.eval_params("optax.adam") is None
    assert registry.eval_params("optax.contrib.schedule_free_sgd") is optax.contrib.schedule_free_eval_params


@pytest.mark.parametrize("name, kwargs, match", [
    ("optax.foo", {}, r"optimizer.name = 'optax.foo' is not a valid choice \(did you mean 'optax\.[a-z]+'\?\)"),
    ("optax.adafactr", {}, r"did you mean 'optax.adafactor'"),
    ("optax.adafactor", {"decay_rat": 0.8}, r"optimizer.decay_rat is not a keyword of optax.adafactor "
                                            r"\(did you mean 'decay_rate'\?\)"),
    ("optax.contrib.sam", {}, r"'optax.contrib.sam' cannot be trained by name: it wraps another optimizer"),
    ("optax.clip", {}, r"'optax.clip' cannot be trained by name: it is not an optimizer"),
    ("optax.adam", {}, r"optimizer.learning_rate is required by optax.adam"),
])
def test_bad_names_and_keywords(name, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        validate_config(_with_optimizer(name, **kwargs))


def test_cli_exits_2_with_the_closest_name(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[optimizer]\nname = "optax.contrib.muonn"\nlearning_rate = 0.01\n')
    r = cli("train", cfg, "--out", tmp_path / "out")
    assert r.returncode == 2, r.stderr
    assert "did you mean 'optax.contrib.muon'" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- through the engine


@pytest.fixture(scope="module")
def name_grid():
    """names x learning rates x b1-free keywords: one compiled program per optimizer."""
    cfg = BASE.replace(sweep={
        "seeds": [0, 1],
        "grid": {"optimizer": {"name": ["adam", "optax.adam", "optax.adafactor",
                                        "optax.contrib.schedule_free_adamw"],
                               "learning_rate": [0.003, 0.03]}},
    })
    return config_sweep.run_sweep(cfg, progress=False, execution="vmap")


def test_name_grid_sweeps_numeric_keywords_without_recompiling(name_grid):
    assert len(name_grid.plan.groups) == 4
    assert name_grid.stats.compilations == 4  # one per optimizer, every learning rate and seed traced
    rows = name_grid.rows
    assert len(rows) == 16 and not any(r["diverged"] for r in rows)
    for name in ("optax.adafactor", "optax.contrib.schedule_free_adamw"):
        by_lr = {r["optimizer.learning_rate"]: r["final_train_loss"] for r in rows
                 if r["optimizer.name"] == name and r["seed"] == 0}
        assert by_lr[0.003] != by_lr[0.03]  # the traced learning rate reaches the optimizer


def test_our_adam_equals_optax_adam_through_the_engine(name_grid):
    ours = {(r["optimizer.learning_rate"], r["seed"]): r for r in name_grid.rows if r["optimizer.name"] == "adam"}
    theirs = {(r["optimizer.learning_rate"], r["seed"]): r for r in name_grid.rows
              if r["optimizer.name"] == "optax.adam"}
    assert ours.keys() == theirs.keys()
    for k in ours:
        for col in ("final_train_loss", "final_val_loss", "final_val_accuracy"):
            assert ours[k][col] == pytest.approx(theirs[k][col], rel=1e-5, abs=1e-7), (k, col)


def test_schedule_free_is_evaluated_at_its_averaged_parameters():
    from jaxopt_lab.train import make_train

    trainer = make_train(_with_optimizer("optax.contrib.schedule_free_adamw", learning_rate=0.05))

    @jax.jit
    def run(key):
        state = trainer.run_epochs(trainer.init_state(key))
        return state, trainer.finalize(state)

    state, result = run(jax.random.PRNGKey(0))
    want = optax.contrib.schedule_free_eval_params(state.opt_state, state.params)
    for got, ref, raw in zip(jax.tree.leaves(result.params), jax.tree.leaves(want), jax.tree.leaves(state.params),
                             strict=True):
        np.testing.assert_allclose(got, ref, rtol=1e-6)
        assert not np.allclose(ref, raw)  # the evaluation point is not the training point


def test_a_static_keyword_splits_groups_instead_of_failing_in_jit():
    cfg = _with_optimizer("optax.adafactor", learning_rate=0.01).replace(sweep={
        "grid": {"optimizer": {"min_dim_size_to_factor": [2, 128], "decay_rate": [0.7, 0.8]}},
    })
    plan = config_sweep.plan(cfg)
    assert [g.label for g in plan.groups] == [{"optimizer.min_dim_size_to_factor": 2},
                                             {"optimizer.min_dim_size_to_factor": 128}]
    assert all("optimizer.decay_rate" in g.hparams for g in plan.groups)  # still traced


# ----------------------------------------------------------------------------- protocols


@pytest.mark.parametrize("protocol, options", [
    ("deepobs", {}),
    ("crowded_valley", {}),
    ("choi", {"space": {"optax.contrib.schedule_free_adamw": {"learning_rate": {"loguniform": [1e-3, 1e-1]},
                                                               "b1": {"one_minus_loguniform": [1e-2, 0.5]}}}}),
    ("algoperf", {"problems": [{"name": "m", "target_metric": "val_loss", "target_value": 0.5}]}),
])
def test_every_protocol_accepts_optax_names(protocol, options):
    opts = {**options, "optimizers": ["optax.contrib.schedule_free_adamw"]}
    _, prepared = protocols.prepare(BASE, protocol, opts)
    assert prepared.options["optimizers"] == ["optax.contrib.schedule_free_adamw"]
    assert all(c.optimizer.name == "optax.contrib.schedule_free_adamw" for c in _configs(prepared))
    with pytest.raises(ConfigError, match=r"did you mean 'optax.contrib.schedule_free_adamw'"):
        protocols.prepare(BASE, protocol, {**opts, "optimizers": ["optax.contrib.schedule_free_adamv"]})


def _configs(prepared):
    configs = getattr(prepared, "configs", None)
    if configs is None:
        return []
    return list(configs.values()) if isinstance(configs, dict) else list(configs)


def test_list_shows_optax_names(capsys):
    from jaxopt_lab import cli as cli_mod

    assert cli_mod.cmd_list(None) == 0
    listed = capsys.readouterr().out.split()
    assert {"adam", "optax.adafactor", "optax.contrib.muon", "optax.contrib.schedule_free_adamw"} <= set(listed)


@pytest.mark.slow
def test_compare_optax_takes_optax_names():
    r = cli("compare-optax", "--only", "optax.adam", "--steps", "3")
    assert r.returncode == 0 and "all 1 cases match optax" in r.stdout, r.stderr


def test_probing_starts_no_jax_backend():
    """The CLI checks a config before it sets JAX's device count, which JAX only allows before a backend starts."""
    import subprocess
    import sys

    code = ("from jax._src import xla_bridge as xb; from jaxopt_lab import registry; "
            "registry.numeric_keywords('optax.contrib.muon'); registry.extra_update_arguments('optax.lbfgs'); "
            "registry.traced_value_error('optax.adafactor', {'learning_rate': 0.1}); print(bool(xb._backends))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.stdout.strip() == "False", r.stderr


def test_a_traced_value_that_breaks_the_factory_is_named(monkeypatch):
    """`a` traces in the default mode, but the config's `mode` makes the factory branch on it in Python."""

    def fake(learning_rate, a=1.0, mode="plain"):
        if mode == "clipped" and a > 0:
            return optax.chain(optax.clip(a), optax.sgd(learning_rate))
        return optax.sgd(learning_rate)

    monkeypatch.setattr(registry, "optax_optimizers", lambda: {"optax.fake": fake})
    assert "a" in registry.numeric_keywords("optax.fake") and "mode" in registry.static_keywords("optax.fake")
    validate_config(_with_optimizer("optax.fake", learning_rate=0.1, a=0.5))
    with pytest.raises(ConfigError, match=r"^optimizer.a = 0.5 cannot be a traced value of optax.fake \(Tracer"):
        validate_config(_with_optimizer("optax.fake", learning_rate=0.1, a=0.5, mode="clipped"))


#: DoG's default first step is 1e-6 * (1 + |x0|), growing with the distance travelled: in 8 short
#: epochs the loss does not move in float32 (optax alone, the same). A first step of 0.01 instead:
#: a static keyword (a tuple) set in the config.
_SLOW_STARTERS = {"optax.contrib.dog": {"init_step": ["learning_rate", 0.01]}}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(registry.optax_optimizers()))
def test_every_optax_optimizer_trains_through_the_engine(name):
    """One compiled run each: extra update arguments (lbfgs, polyak_sgd, momo, sophia) and
    schedule-free evaluation included; the training loss must fall from its first epoch."""
    from jaxopt_lab.train import make_train

    params = registry.optimizer_params(registry.optimizer_factory(name))
    kw = {"learning_rate": 0.01} if "learning_rate" in params else {}
    kw.update(_SLOW_STARTERS.get(name, {}))
    cfg = _with_optimizer(name, **kw).replace(train=TrainConfig(epochs=8, batch_size=16))
    result = jax.jit(make_train(cfg))(jax.random.PRNGKey(0))
    losses = np.asarray(result.history["train_loss"])
    assert not bool(result.metrics["diverged"]) and np.isfinite(losses).all(), losses
    assert losses[-1] < losses[0], losses
