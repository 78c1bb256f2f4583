"""The optimizers against optax: same keywords, same trajectories, traced hyperparameters.

The promises are docs/optimizers.md's "Guarantees".

The problem is small but not quadratic: a pytree of two arrays under a
log-cosh regression loss with a quartic penalty, float64, 100 steps.
Trajectories are compared leaf by leaf at every step, relative to the largest
entry of the reference (`max|ours - ref| / max|ref| < 1e-9`).
"""

from __future__ import annotations

import inspect
import zlib
from dataclasses import dataclass, field
from typing import Any

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from jaxopt_lab.optim import aliases as al
from jaxopt_lab.optim import parity
from jaxopt_lab.optim import transforms as tr
from jaxopt_lab.optim.base import apply_updates, chain

STEPS = 100
RTOL = 1e-9

_rng = np.random.default_rng(0)
X = jnp.asarray(_rng.normal(size=(24, 3)))
Y = jnp.asarray(_rng.normal(size=(24, 2)))
P0 = {"w": jnp.asarray(_rng.normal(size=(3, 2))), "b": jnp.asarray(_rng.normal(size=(2,)))}


def loss(p):
    r = X @ p["w"] + p["b"] - Y
    return jnp.mean(jnp.log(jnp.cosh(r))) + 0.02 * jnp.sum(p["w"] ** 4)


GRAD = jax.grad(loss)


def trajectory(opt, params=P0, steps=STEPS):
    """All iterates of `steps` updates of `opt` (a pytree of arrays with a leading step axis)."""

    def step(carry, _):
        p, s = carry
        u, s = opt.update(GRAD(p), s, p)
        p = apply_updates(p, u)
        return (p, s), p

    _, traj = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
    return traj


def rel_err(ours, ref):
    errs = jax.tree.map(lambda a, b: jnp.max(jnp.abs(a - b)) / jnp.max(jnp.abs(b)), ours, ref)
    return float(max(jax.tree.leaves(errs)))


def both(ours, ref, steps=STEPS):
    """Trajectories of two optimizers, compiled together (one compilation)."""
    return jax.jit(lambda: (trajectory(ours, steps=steps), trajectory(ref, steps=steps)))()


def moved(traj):
    return float(jnp.max(jnp.abs(traj["w"][-1] - P0["w"])))


# ------------------------------------------------------------------ configurations

LOG, LIN = "log", "lin"
LR = (1e-3, 0.2, LOG)
SMALL_LR = (1e-4, 1e-2, LOG)
B1 = (0.0, 0.99, LIN)
B2 = (0.9, 0.9999, LIN)
EPS = (1e-10, 1e-4, LOG)
EPS_ROOT = (0.0, 1e-8, LIN)
WD = (0.0, 0.1, LIN)
MOM = (0.0, 0.95, LIN)


@dataclass(frozen=True)
class Config:
    id: str
    name: str  # the alias's name in jaxopt_lab (and optax, when shared)
    hp: dict  # numeric hyperparameter -> (low, high, log|lin)
    static: dict = field(default_factory=dict)  # structural keywords, passed as Python values
    shared: bool = True  # optax has it: check parity
    optax_static: dict | None = None  # optax's structural keywords when they differ


CONFIGS = [
    Config("sgd", "sgd", {"learning_rate": LR}),
    Config("sgd-momentum", "sgd", {"learning_rate": LR, "momentum": MOM}),
    Config("sgd-nesterov", "sgd", {"learning_rate": LR, "momentum": MOM}, {"nesterov": True}),
    Config(
        "adagrad",
        "adagrad",
        {"learning_rate": LR, "initial_accumulator_value": (0.0, 1.0, LIN), "eps": EPS},
    ),
    Config(
        "rmsprop",
        "rmsprop",
        {"learning_rate": SMALL_LR, "decay": (0.5, 0.999, LIN), "eps": EPS, "initial_scale": (0.0, 1.0, LIN)},
    ),
    Config(
        "rmsprop-centered-momentum",
        "rmsprop",
        # Bias-corrected and centered, the first step's variance is g^2 - g^2 = 0 up to
        # rounding: a tiny eps would make the step ill-conditioned (in optax too).
        {"learning_rate": SMALL_LR, "decay": (0.5, 0.999, LIN), "eps": (1e-6, 1e-4, LOG), "momentum": MOM},
        {"centered": True, "bias_correction": True},
    ),
    Config(
        "rmsprop-torch-nesterov",
        "rmsprop",
        {"learning_rate": SMALL_LR, "decay": (0.5, 0.999, LIN), "eps": EPS, "momentum": MOM},
        {"eps_in_sqrt": False, "nesterov": True},
    ),
    Config(
        "adadelta",
        "adadelta",
        {"learning_rate": (0.1, 2.0, LOG), "rho": (0.5, 0.99, LIN), "eps": (1e-8, 1e-4, LOG), "weight_decay": WD},
    ),
    Config("adam", "adam", {"learning_rate": LR, "b1": B1, "b2": B2, "eps": EPS, "eps_root": EPS_ROOT}),
    Config(
        "adamw-mask",
        "adamw",
        {"learning_rate": LR, "b1": B1, "b2": B2, "eps": EPS, "weight_decay": WD},
        {"mask": {"w": True, "b": False}},
    ),
    Config("nadam", "nadam", {"learning_rate": LR, "b1": B1, "b2": B2, "eps": EPS, "eps_root": EPS_ROOT}),
    Config("nadamw", "nadamw", {"learning_rate": LR, "b1": B1, "b2": B2, "eps": EPS, "weight_decay": WD}),
    Config("adamax", "adamax", {"learning_rate": LR, "b1": B1, "b2": B2, "eps": EPS}),
    Config("adamaxw", "adamaxw", {"learning_rate": LR, "b1": B1, "b2": B2, "eps": EPS, "weight_decay": WD}),
    Config("amsgrad", "amsgrad", {"learning_rate": LR, "b1": B1, "b2": B2, "eps": EPS, "eps_root": EPS_ROOT}),
    Config(
        "lion",
        "lion",
        {"learning_rate": SMALL_LR, "b1": (0.0, 1.0, LIN), "b2": (0.9, 0.999, LIN), "weight_decay": WD},
    ),
    Config(
        "radam",
        "radam",
        {
            "learning_rate": LR,
            "b1": B1,
            "b2": B2,
            "eps": EPS,
            "eps_root": EPS_ROOT,
            "threshold": (4.0, 6.0, LIN),
        },
    ),
    Config(
        "adabelief",
        "adabelief",
        # b1 = 0 makes the surprise g - m vanish: the step is g / sqrt(eps_root), in optax too.
        {
            "learning_rate": LR,
            "b1": (0.5, 0.99, LIN),
            "b2": B2,
            "eps": (1e-16, 1e-8, LOG),
            "eps_root": (1e-16, 1e-8, LOG),
        },
    ),
    Config(
        "lamb",
        "lamb",
        {"learning_rate": LR, "b1": B1, "b2": B2, "eps": (1e-8, 1e-4, LOG), "weight_decay": WD},
    ),
    Config("yogi", "yogi", {"learning_rate": LR, "b1": B1, "b2": B2, "eps": (1e-4, 1e-2, LOG)}),
    Config(
        "noisy_sgd",
        "noisy_sgd",
        {"learning_rate": LR, "eta": (0.0, 0.1, LIN), "gamma": (0.0, 1.0, LIN)},
        {"key": 3},
    ),
    Config("sign_sgd", "sign_sgd", {"learning_rate": SMALL_LR}),
    # Not in optax (or PyTorch variants): only the traced/concrete equivalence applies.
    Config("momentum", "momentum", {"learning_rate": LR, "momentum": MOM}, shared=False),
    Config("nesterov", "nesterov", {"learning_rate": LR, "momentum": MOM}, shared=False),
    Config(
        "adagrad-torch",
        "adagrad",
        {"learning_rate": LR, "eps": EPS, "lr_decay": (0.0, 0.1, LIN)},
        {"eps_in_sqrt": False},
        shared=False,
    ),
    Config(
        "nadam-torch",
        "nadam",
        {"learning_rate": LR, "b1": B1, "b2": B2, "eps": EPS, "momentum_decay": (0.0, 0.05, LIN)},
        shared=False,
    ),
    Config(
        "amsgrad-torch",
        "amsgrad",
        {"learning_rate": LR, "b1": B1, "b2": B2, "eps": EPS},
        {"max_before_bias_correction": True},
        shared=False,
    ),
    Config(
        "radam-torch",
        "radam",
        {"learning_rate": LR, "b1": B1, "b2": B2, "eps": EPS},
        {"eps_before_bias_correction": True},
        shared=False,
    ),
    Config(
        "adabound",
        "adabound",
        {
            "learning_rate": LR,
            "b1": B1,
            "b2": B2,
            "final_lr": (0.01, 0.5, LOG),
            "gamma": (1e-3, 0.1, LOG),
            "eps": EPS,
            "weight_decay": WD,
        },
        {"amsbound": True},
        shared=False,
    ),
    Config(
        "asgd",
        "asgd",
        {
            "learning_rate": LR,
            "lambd": (0.0, 0.1, LIN),
            "alpha": (0.0, 1.0, LIN),
            "t0": (0.0, 4.0, LIN),  # averaging starts within the open loop's steps
            "weight_decay": WD,
        },
        shared=False,
    ),
    Config(
        "gradient_lr_control",
        "gradient_lr_control",
        {"learning_rate": LR, "control_factor": (0.0, 1.0, LIN)},
        shared=False,
    ),
]
SHARED = [c for c in CONFIGS if c.shared]
BY_ID = {c.id: c for c in CONFIGS}


def strategy(spec):
    lo, hi, kind = spec
    if kind == LOG:
        return st.floats(np.log(lo), np.log(hi)).map(lambda v: float(np.exp(v)))
    return st.floats(lo, hi)


def sample(spec_dict, n, seed):
    """n deterministic draws of each hyperparameter (float64 arrays)."""
    rng = np.random.default_rng(seed)
    out = {}
    for k, (lo, hi, kind) in spec_dict.items():
        u = rng.uniform(size=n)
        out[k] = np.exp(np.log(lo) + u * (np.log(hi) - np.log(lo))) if kind == LOG else lo + u * (hi - lo)
    return out


# Open loop: a fixed sequence of gradients, so that the comparison sees only the
# optimizer's arithmetic (a closed loop would let rounding differences in the
# vmapped loss be amplified by the dynamics).
OPEN_LOOP_STEPS = 12
G_SEQ = {
    "w": jnp.asarray(_rng.normal(size=(OPEN_LOOP_STEPS, 3, 2)) + 0.5),
    "b": jnp.asarray(_rng.normal(size=(OPEN_LOOP_STEPS, 2)) - 0.3),
}


def open_loop(opt):
    def step(carry, g):
        p, s = carry
        u, s = opt.update(g, s, p)
        p = apply_updates(p, u)
        return (p, s), p

    _, traj = jax.lax.scan(step, (P0, opt.init(P0)), G_SEQ)
    return traj


EAGER_STEPS = 6


def open_loop_eager(opt, steps=EAGER_STEPS):
    """The first steps of `open_loop`, one by one in Python (no tracing: hyperparameters stay Python floats)."""
    p, s, out = P0, opt.init(P0), []
    for t in range(steps):
        u, s = opt.update(jax.tree.map(lambda g, t=t: g[t], G_SEQ), s, p)
        p = apply_updates(p, u)
        out.append(p)
    return jax.tree.map(lambda *xs: jnp.stack(xs), *out)


BATCH = 3
_PARITY_RUNNERS: dict[str, Any] = {}
_VMAP_RUNNERS: dict[str, Any] = {}


def parity_runner(cfg: Config):
    """One compiled `hp -> (our trajectory, optax's)` per shared config, both built from traced scalars."""
    if cfg.id not in _PARITY_RUNNERS:
        ours, theirs = getattr(al, cfg.name), getattr(optax, cfg.name)
        optax_static = cfg.static if cfg.optax_static is None else cfg.optax_static
        _PARITY_RUNNERS[cfg.id] = jax.jit(
            lambda hp: (trajectory(ours(**cfg.static, **hp)), trajectory(theirs(**optax_static, **hp)))
        )
    return _PARITY_RUNNERS[cfg.id]


def vmap_runner(cfg: Config):
    """One compiled `jit(vmap(hp -> open-loop trajectory))` per config, the optimizer built inside vmap."""
    if cfg.id not in _VMAP_RUNNERS:
        factory = getattr(al, cfg.name)
        _VMAP_RUNNERS[cfg.id] = jax.jit(jax.vmap(lambda hp: open_loop(factory(**cfg.static, **hp))))
    return _VMAP_RUNNERS[cfg.id]


# ------------------------------------------------------------------ parity with optax


@pytest.mark.parametrize("cfg", SHARED, ids=[c.id for c in SHARED])
# No shrinking: a failing draw is reported as drawn (shrinking recompiles nothing
# but reruns 100-step trajectories for minutes).
@settings(max_examples=10, deadline=None, database=None, derandomize=True, phases=(Phase.explicit, Phase.generate))
@given(data=st.data())
def test_same_trajectory_as_optax(cfg, data):
    hp = data.draw(st.fixed_dictionaries({k: strategy(v) for k, v in cfg.hp.items()}))
    ours, ref = parity_runner(cfg)({k: jnp.asarray(v, jnp.float64) for k, v in hp.items()})
    chex.assert_trees_all_equal_shapes_and_dtypes(ours, ref)
    chex.assert_tree_all_finite(ref)
    assert moved(ref) > 1e-6  # a trajectory that goes somewhere
    assert rel_err(ours, ref) < RTOL


@pytest.mark.parametrize("cfg", SHARED, ids=[c.id for c in SHARED])
def test_same_keywords_and_defaults_as_optax(cfg):
    ours = inspect.signature(getattr(al, cfg.name)).parameters
    theirs = inspect.signature(getattr(optax, cfg.name)).parameters
    for name, p in theirs.items():
        assert name in ours, f"{cfg.name} lacks optax's keyword {name}"
        assert ours[name].default == p.default or (ours[name].default is p.default), (
            f"{cfg.name}({name}=...) default differs from optax"
        )
        assert ours[name].kind == p.kind, f"{cfg.name}: {name} is {ours[name].kind}, optax {p.kind}"


def test_parity_table_with_python_float_arguments(monkeypatch):
    """`compare-optax`'s table: concrete Python-float arguments, optax's defaults for the rest.

    A few cases here (each runs a compilation); the full table is the slow test below.
    """
    subset = [case for case in parity.PARITY_CASES if case[0] == "rmsprop"][1:2]
    monkeypatch.setattr(parity, "PARITY_CASES", subset)
    rows = parity.parity_table(steps=100, seed=3)
    assert [r["optimizer"] for r in rows] == [parity._label(n, kw) for n, kw in subset]
    for r in rows:
        assert r["match"] and r["max_rel_diff"] < RTOL, r
        assert r["final_loss"] == pytest.approx(r["optax_final_loss"], rel=1e-12)
        assert r["state_bytes"] == r["optax_state_bytes"]
    text = parity.format_parity_table(rows)
    assert "rmsprop(centered=True, momentum=0.9)" in text and "0.00e+00" in text
    assert f"all {len(rows)} cases match optax" in text


def test_format_parity_table_flags_mismatches():
    rows = [
        dict(
            optimizer="adam",
            learning_rate=0.01,
            max_rel_diff=0.0,
            final_loss=0.5,
            optax_final_loss=0.5,
            state_bytes=8,
            optax_state_bytes=8,
            match=True,
        ),
        dict(
            optimizer="sgd",
            learning_rate=0.1,
            max_rel_diff=1e-3,
            final_loss=0.5,
            optax_final_loss=0.6,
            state_bytes=0,
            optax_state_bytes=0,
            match=False,
        ),
    ]
    text = parity.format_parity_table(rows)
    assert "1 of 2 differ from optax" in text and "sgd" in text.splitlines()[-1]
    assert text.splitlines()[0].split()[:4] == ["optimizer", "lr", "max", "rel"]


@pytest.mark.slow
def test_full_parity_table():
    rows = parity.parity_table()
    assert len(rows) == len(parity.PARITY_CASES)
    assert all(r["match"] for r in rows), parity.format_parity_table(rows)


def test_adadelta_default_descends_where_optax_ascends():
    """The one documented default difference: optax's learning_rate=None applies no -1."""
    ours, ref, ref1 = jax.jit(
        lambda: tuple(trajectory(o, steps=50) for o in (al.adadelta(), optax.adadelta(), optax.adadelta(1.0)))
    )()
    final = lambda traj: loss(jax.tree.map(lambda t: t[-1], traj))
    assert final(ours) < loss(P0) < final(ref)
    # With an explicit learning rate of 1.0 optax descends, and the two agree
    # (the hypothesis test covers other explicit values).
    assert rel_err(ours, ref1) < RTOL


# ------------------------------------------------------------------ traced hyperparameters


@pytest.mark.parametrize("cfg", CONFIGS, ids=[c.id for c in CONFIGS])
def test_built_inside_vmap_equals_built_with_concrete_values(cfg):
    hps = sample(cfg.hp, BATCH, seed=zlib.crc32(cfg.id.encode()))
    batched = vmap_runner(cfg)({k: jnp.asarray(v) for k, v in hps.items()})
    chex.assert_tree_all_finite(batched)
    factory = getattr(al, cfg.name)
    for i in range(BATCH):
        concrete = {k: float(v[i]) for k, v in hps.items()}
        single = open_loop_eager(factory(**cfg.static, **concrete))
        element = jax.tree.map(lambda t, i=i: t[i, :EAGER_STEPS], batched)
        assert rel_err(element, single) < RTOL, (cfg.id, concrete)
    # Different hyperparameters give different trajectories (the vmap is not a broadcast).
    first, second = (jax.tree.map(lambda t, i=i: t[i], batched) for i in (0, 1))
    assert rel_err(first, second) > 1e-6


@pytest.mark.parametrize("cfg", CONFIGS, ids=[c.id for c in CONFIGS])
def test_new_hyperparameter_values_never_recompile(cfg):
    run = vmap_runner(cfg)
    a, b = ({k: jnp.asarray(v) for k, v in sample(cfg.hp, BATCH, seed=seed).items()} for seed in (11, 12))
    out_a, out_b = run(a), run(b)
    assert rel_err(out_a, out_b) > 1e-8  # really new values...
    assert run._cache_size() == 1  # ...one compilation
    if cfg.shared:  # and the scalar runner, after all the hypothesis examples, is still compiled once
        pair = parity_runner(cfg)
        pair({k: jnp.asarray(v[0]) for k, v in a.items()})
        pair({k: jnp.asarray(v[0]) for k, v in b.items()})
        assert pair._cache_size() == 1


def test_scalar_hyperparameters_into_a_jitted_factory_never_recompile():
    step = jax.jit(lambda lr, wd: al.adamw(lr, weight_decay=wd).update(P0, al.adamw(lr).init(P0), P0)[0])
    outs = [step(jnp.asarray(lr), jnp.asarray(wd)) for lr, wd in ((0.1, 0.0), (0.2, 0.01), (0.3, 0.5))]
    assert rel_err(outs[0], outs[1]) > 1e-3
    assert step._cache_size() == 1


def test_traced_hyperparameters_work_with_optax_inject_hyperparams():
    # optax's wrapper re-builds the optimizer every step with array hyperparameters.
    ours = optax.inject_hyperparams(al.adam)(learning_rate=0.05, b1=0.8)
    ref = optax.inject_hyperparams(optax.adam)(learning_rate=0.05, b1=0.8)
    assert rel_err(*both(ours, ref)) < RTOL


# ------------------------------------------------------------------ bad values


BAD = [
    (al.sgd, dict(learning_rate=-0.1), "learning_rate", "-0.1"),
    (al.sgd, dict(learning_rate=0.1, momentum=1.5), "momentum", "1.5"),
    (al.sgd, dict(learning_rate=0.1, momentum=-0.1), "momentum", "-0.1"),
    (al.adam, dict(learning_rate=0.1, b1=1.0), "b1", "1.0"),
    (al.adam, dict(learning_rate=0.1, b2=-0.5), "b2", "-0.5"),
    (al.adam, dict(learning_rate=0.1, eps=-1e-8), "eps", "-1e-08"),
    (al.adam, dict(learning_rate=jnp.asarray(-1.0)), "learning_rate", "-1."),
    (al.adamw, dict(learning_rate=0.1, weight_decay=-0.01), "weight_decay", "-0.01"),
    (al.rmsprop, dict(learning_rate=0.1, decay=1.5), "decay", "1.5"),
    (al.rmsprop, dict(learning_rate=0.1, eps=0.0), "eps", "0.0"),
    (al.adadelta, dict(rho=2.0), "rho", "2.0"),
    (al.adadelta, dict(eps=0.0), "eps", "0.0"),
    (al.adagrad, dict(learning_rate=0.1, initial_accumulator_value=-1.0), "initial_accumulator_value", "-1.0"),
    (al.adagrad, dict(learning_rate=0.1, lr_decay=-1.0), "lr_decay", "-1.0"),
    (al.nadam, dict(learning_rate=0.1, momentum_decay=-1.0), "momentum_decay", "-1.0"),
    (al.lion, dict(learning_rate=0.1, b2=1.5), "b2", "1.5"),
    (al.adabound, dict(final_lr=0.0), "final_lr", "0.0"),
    (al.adabound, dict(gamma=-1.0), "gamma", "-1.0"),
    (al.asgd, dict(lambd=-1.0), "lambd", "-1.0"),
    (al.asgd, dict(weight_decay=-1.0), "weight_decay", "-1.0"),
    (al.gradient_lr_control, dict(control_factor=-0.5), "control_factor", "-0.5"),
    (al.yogi, dict(learning_rate=0.1, b1=float("nan")), "b1", "nan"),
    (al.radam, dict(learning_rate=0.1, threshold=3.0), "threshold", "3.0"),
]


@pytest.mark.parametrize("factory, kwargs, arg, shown", BAD, ids=[f"{b[0].__name__}-{b[2]}" for b in BAD])
def test_out_of_range_values_raise_at_construction(factory, kwargs, arg, shown):
    with pytest.raises(ValueError, match="valid range") as info:
        factory(**kwargs)
    message = str(info.value)
    assert message.startswith(f"{arg}=")
    assert shown in message


def test_boundary_values_are_accepted():
    al.sgd(0.0, momentum=0.0)
    al.sgd(0.1, momentum=1.0)
    al.adam(0.1, b1=0.0, b2=0.0, eps=0.0, eps_root=1e-8)
    al.adamw(0.1, weight_decay=0.0)
    al.lion(0.1, b1=1.0, b2=1.0)


def test_traced_and_scheduled_values_are_not_checked_at_construction():
    # A negative value that is only known at run time cannot be rejected early;
    # a schedule is a function, checked by whoever evaluates it.
    jax.jit(lambda lr: al.adam(lr).init(P0))(jnp.asarray(-1.0))
    al.adam(lambda count: -1.0)


def test_bad_names_list_the_valid_choices():
    with pytest.raises(ValueError, match="did you mean 'smooth'.*; valid choices: hard, refined, smooth"):
        tr.scale_by_lion(mode="smoth")


# ------------------------------------------------------------------ composability with optax


def test_optax_transform_before_ours():
    ours = chain(optax.clip_by_global_norm(0.5), al.adam(0.05))
    ref = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(0.05))
    assert rel_err(*both(ours, ref)) < RTOL


def test_ours_before_optax_transform():
    # Our clipping feeding optax's Adam; our momentum SGD followed by optax's clip.
    ours = optax.chain(tr.clip_by_global_norm(0.5), optax.adam(0.05), al.sgd(1.0, momentum=0.5), optax.clip(0.01))
    ref = optax.chain(optax.clip_by_global_norm(0.5), optax.adam(0.05), optax.sgd(1.0, momentum=0.5), optax.clip(0.01))
    assert rel_err(*both(ours, ref)) < RTOL


def test_optax_wrappers_accept_ours():
    ours = optax.MultiSteps(al.adam(0.05), every_k_schedule=2)
    ref = optax.MultiSteps(optax.adam(0.05), every_k_schedule=2)
    assert rel_err(*both(ours, ref)) < RTOL


def test_learning_rate_schedules():
    sched = optax.cosine_decay_schedule(0.1, 50)
    ours = chain(al.lamb(sched, weight_decay=lambda c: 0.01 * sched(c)), al.adamw(sched))
    ref = optax.chain(optax.lamb(sched, weight_decay=lambda c: 0.01 * sched(c)), optax.adamw(sched))
    assert rel_err(*both(ours, ref, steps=60)) < RTOL


# ------------------------------------------------------------------ state size and dtypes


def nbytes(tree):
    return sum(np.asarray(x).nbytes for x in jax.tree.leaves(tree))


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw", "nadam", "amsgrad", "lamb", "rmsprop", "adagrad", "lion"])
def test_state_is_as_lean_as_optax(name):
    kw = {"momentum": 0.9} if name == "sgd" else {}
    ours = getattr(al, name)(0.1, **kw).init(P0)
    ref = getattr(optax, name)(0.1, **kw).init(P0)
    assert nbytes(ours) == nbytes(ref)
    assert len(jax.tree.leaves(ours)) == len(jax.tree.leaves(ref))


def test_adam_state_is_two_moments_and_a_count():
    state = al.adam(0.1).init(P0)[0]
    assert state._fields == ("count", "mu", "nu")
    chex.assert_trees_all_equal_shapes_and_dtypes(state.mu, P0)
    chex.assert_trees_all_equal_shapes_and_dtypes(state.nu, P0)
    assert state.count.shape == () and state.count.dtype == jnp.int32


@pytest.mark.parametrize("cfg", CONFIGS, ids=[c.id for c in CONFIGS])
def test_float32_params_stay_float32_with_float64_hyperparameters(cfg):
    """x64 is on: float64 hyperparameters must not promote float32 moments, updates or params."""
    p32 = jax.tree.map(lambda x: x.astype(jnp.float32), P0)
    g32 = jax.tree.map(lambda g: g[0].astype(jnp.float32), G_SEQ)
    hp = {k: jnp.asarray(v[0], jnp.float64) for k, v in sample(cfg.hp, 1, seed=3).items()}
    opt = getattr(al, cfg.name)(**cfg.static, **hp)

    def two_steps(p):
        def step(carry, _):  # scan itself rejects a carry whose dtype changes
            p, s = carry
            u, s = opt.update(g32, s, p)
            return (apply_updates(p, u), s), u

        return jax.lax.scan(step, (p, opt.init(p)), None, length=2)

    # Shapes and dtypes only: tracing, no compilation.
    (p_out, state), updates = jax.eval_shape(two_steps, p32)
    chex.assert_trees_all_equal_dtypes(p_out, p32)
    chex.assert_trees_all_equal_dtypes(updates, p32)
    for leaf in jax.tree.leaves(state):
        if jnp.issubdtype(leaf.dtype, jnp.floating):
            assert leaf.dtype == jnp.float32


def test_mu_dtype_keeps_the_first_moment_in_that_dtype_like_optax():
    ours = al.adam(0.05, mu_dtype=jnp.bfloat16)
    ref = optax.adam(0.05, mu_dtype=jnp.bfloat16)
    s = ours.init(P0)
    assert jax.tree.leaves(s[0].mu)[0].dtype == jnp.bfloat16
    assert rel_err(*both(ours, ref)) < RTOL
