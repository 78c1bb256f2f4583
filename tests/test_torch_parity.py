"""Step-by-step parity with `torch.optim` (float64 tensors).

Both sides get exactly the same gradient at every step (the JAX gradient of the
current torch parameters), so the comparison isolates the optimizer math.
Each case names the jaxopt_lab keywords that select PyTorch's variant.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from jaxopt_lab.optim import aliases as al  # noqa: E402
from jaxopt_lab.optim import transforms as tr  # noqa: E402
from jaxopt_lab.optim.base import apply_updates, chain  # noqa: E402

STEPS = 60
RTOL = 1e-10

_rng = np.random.default_rng(1234)
X = jnp.asarray(_rng.normal(size=(16, 3)))
Y = jnp.asarray(_rng.normal(size=(16, 2)))
W0 = _rng.normal(size=(3, 2))
B0 = _rng.normal(size=(2,))


def _loss(p):
    r = X @ p["w"] + p["b"] - Y
    return jnp.mean(jnp.log(jnp.cosh(r))) + 0.05 * jnp.sum(p["w"] ** 4)


_grad = jax.jit(jax.grad(_loss))


@pytest.fixture(autouse=True)
def _torch_float64():
    # torch keeps its scalar optimizer state (step, eta, mu_product) in the
    # default dtype; float64 makes the comparison a float64 statement.
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def _run_both(make_torch, opt, steps=STEPS, extra=None):
    """Run torch and jaxopt_lab side by side; return the max relative difference over all steps."""
    tw = torch.tensor(W0, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(B0, dtype=torch.float64, requires_grad=True)
    topt = make_torch([tw, tb])
    params = {"w": jnp.asarray(W0), "b": jnp.asarray(B0)}
    state = opt.init(params)
    update = jax.jit(opt.update)
    worst = 0.0
    for _ in range(steps):
        g = _grad({"w": jnp.asarray(tw.detach().numpy()), "b": jnp.asarray(tb.detach().numpy())})
        tw.grad = torch.from_numpy(np.array(g["w"]))
        tb.grad = torch.from_numpy(np.array(g["b"]))
        topt.step()
        # Our side sees the gradient of *its own* iterate (they agree to rounding).
        u, state = update(_grad(params), state, params)
        params = apply_updates(params, u)
        for ours, theirs in ((params["w"], tw), (params["b"], tb)):
            ref = theirs.detach().numpy()
            worst = max(worst, float(np.max(np.abs(np.asarray(ours) - ref)) / np.max(np.abs(ref))))
        if extra is not None:
            worst = max(worst, extra(topt, tw, tb, state))
    # The trajectory must actually move, or the comparison proves nothing.
    assert float(np.max(np.abs(np.asarray(params["w"]) - W0))) > 1e-3
    return worst


CASES = {
    "sgd": (lambda ps: torch.optim.SGD(ps, lr=0.05, foreach=False), al.sgd(0.05)),
    "sgd_momentum": (
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, foreach=False),
        al.sgd(0.05, momentum=0.9),
    ),
    "sgd_nesterov": (
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True, foreach=False),
        al.sgd(0.05, momentum=0.8, nesterov=True),
    ),
    "sgd_weight_decay": (
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.1, foreach=False),
        chain(tr.add_l2_penalty_grad(0.1), al.sgd(0.05, momentum=0.9)),
    ),
    "adagrad": (
        lambda ps: torch.optim.Adagrad(ps, lr=0.1, foreach=False),
        al.adagrad(0.1, initial_accumulator_value=0.0, eps=1e-10, eps_in_sqrt=False),
    ),
    "adagrad_lr_decay_init": (
        lambda ps: torch.optim.Adagrad(
            ps, lr=0.1, lr_decay=0.05, initial_accumulator_value=0.3, eps=1e-6, foreach=False
        ),
        al.adagrad(0.1, initial_accumulator_value=0.3, eps=1e-6, eps_in_sqrt=False, lr_decay=0.05),
    ),
    "rmsprop": (
        lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.99, eps=1e-8, foreach=False),
        al.rmsprop(0.01, decay=0.99, eps=1e-8, eps_in_sqrt=False),
    ),
    "rmsprop_centered": (
        lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.9, eps=1e-6, centered=True, foreach=False),
        al.rmsprop(0.01, decay=0.9, eps=1e-6, eps_in_sqrt=False, centered=True),
    ),
    "rmsprop_momentum": (
        lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.95, momentum=0.7, foreach=False),
        al.rmsprop(0.01, decay=0.95, eps=1e-8, eps_in_sqrt=False, momentum=0.7),
    ),
    "rmsprop_centered_momentum": (
        lambda ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.95, momentum=0.5, centered=True, foreach=False),
        al.rmsprop(0.01, decay=0.95, eps=1e-8, eps_in_sqrt=False, momentum=0.5, centered=True),
    ),
    "adadelta": (
        lambda ps: torch.optim.Adadelta(ps, foreach=False),
        al.adadelta(),  # learning_rate=None means 1.0, PyTorch's default
    ),
    "adadelta_weight_decay": (
        lambda ps: torch.optim.Adadelta(ps, lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.1, foreach=False),
        al.adadelta(0.5, rho=0.8, eps=1e-5, weight_decay=0.1),
    ),
    "adam": (
        lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-7, foreach=False),
        al.adam(0.01, b1=0.8, b2=0.99, eps=1e-7),
    ),
    "adam_l2": (
        lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=0.05, foreach=False),
        chain(tr.add_l2_penalty_grad(0.05), al.adam(0.01)),
    ),
    "adamw": (
        lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1, foreach=False),
        al.adamw(0.01, weight_decay=0.1),
    ),
    "amsgrad": (
        lambda ps: torch.optim.Adam(ps, lr=0.02, betas=(0.9, 0.99), amsgrad=True, foreach=False),
        al.amsgrad(0.02, b1=0.9, b2=0.99, max_before_bias_correction=True),
    ),
    "nadam": (
        lambda ps: torch.optim.NAdam(ps, lr=0.01, foreach=False),
        al.nadam(0.01, momentum_decay=4e-3),
    ),
    "nadam_fast_decay": (
        lambda ps: torch.optim.NAdam(ps, lr=0.01, betas=(0.8, 0.99), momentum_decay=0.05, foreach=False),
        al.nadam(0.01, b1=0.8, b2=0.99, momentum_decay=0.05),
    ),
    "nadamw": (
        lambda ps: torch.optim.NAdam(ps, lr=0.01, weight_decay=0.1, decoupled_weight_decay=True, foreach=False),
        al.nadamw(0.01, weight_decay=0.1, momentum_decay=4e-3),
    ),
    "radam": (
        lambda ps: torch.optim.RAdam(ps, lr=0.01, eps=1e-3, foreach=False),
        al.radam(0.01, eps=1e-3, eps_before_bias_correction=True),
    ),
    "radam_short_warmup": (
        lambda ps: torch.optim.RAdam(ps, lr=0.01, betas=(0.9, 0.9), eps=1e-8, foreach=False),
        al.radam(0.01, b2=0.9, eps=1e-8, eps_before_bias_correction=True),
    ),
    "adamax": (
        lambda ps: torch.optim.Adamax(ps, lr=0.02, betas=(0.8, 0.95), eps=1e-6, foreach=False),
        al.adamax(0.02, b1=0.8, b2=0.95, eps=1e-6),
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch(name):
    make_torch, opt = CASES[name]
    assert _run_both(make_torch, opt) < RTOL


def _asgd_ax_gap(topt, tw, tb, state):
    ax = al.asgd_averaged_params(state)
    gap = 0.0
    for p, key in ((tw, "w"), (tb, "b")):
        ref = topt.state[p]["ax"].numpy()
        gap = max(gap, float(np.max(np.abs(np.asarray(ax[key]) - ref)) / np.max(np.abs(ref))))
    return gap


@pytest.mark.parametrize(
    "kw",
    [
        dict(lr=0.05),
        dict(lr=0.05, lambd=0.01, alpha=0.6, t0=10.0, weight_decay=0.1),
        dict(lr=0.1, lambd=0.5, alpha=1.0, t0=0.0),
    ],
)
def test_asgd_matches_torch_including_average(kw):
    ours = al.asgd(
        kw["lr"],
        lambd=kw.get("lambd", 1e-4),
        alpha=kw.get("alpha", 0.75),
        t0=kw.get("t0", 1e6),
        weight_decay=kw.get("weight_decay", 0.0),
    )
    gap = _run_both(lambda ps: torch.optim.ASGD(ps, foreach=False, **kw), ours, extra=_asgd_ax_gap)
    assert gap < RTOL


def test_default_keywords_do_not_match_torch_where_documented():
    """The torch-selecting keywords matter: optax's defaults give a different trajectory."""
    make_torch, _ = CASES["radam"]
    assert _run_both(make_torch, al.radam(0.01, eps=1e-3)) > 1e-6
    make_torch, _ = CASES["amsgrad"]
    assert _run_both(make_torch, al.amsgrad(0.02, b1=0.9, b2=0.99)) > 1e-8
    make_torch, _ = CASES["nadam"]
    assert _run_both(make_torch, al.nadam(0.01)) > 1e-6
    make_torch, _ = CASES["adagrad"]
    assert _run_both(make_torch, al.adagrad(0.1)) > 1e-6
