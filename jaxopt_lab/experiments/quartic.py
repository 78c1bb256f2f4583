"""Experiment 2 (the quartic lecture): gradient descent and its variants on a quartic with two minima.

``f(x) = 319/8400 x^4 + 43/4200 x^3 - 6799/8400 x^2 - 299/840 x + 6`` has its
global minimum at x = 3.2728 and a local one at x = -3.2550, separated by a
local maximum near -0.22. The lecture runs 100 iterations with alpha = 0.1 of

* plain gradient descent, ``x <- x - alpha f'(x)``: from 5 it prints
  3.2727653395584366, from -5 it is trapped at -3.254993730859254;
* momentum, ``m <- mu m - alpha f'(x); x <- x + m``: with mu = 0.1 the same two
  ends (printed 3.272765339558436 and -3.254993730859254), with mu = 0.9 from -5
  it escapes and prints 3.267681061691328;
* Nesterov momentum, ``x <- x + mu m - alpha f'(x)`` with the same m;
* learning-rate decay, ``alpha <- K alpha`` before each step (K = 0.99);
* gradient-based learning-rate control, ``alpha <- alpha / (1 + c sqrt|f'(x)|)``
  before each step (c = 0.99);

printing final values for the first two only. Here each runs through the
library's optimizers (`sgd(momentum=..., nesterov=...)`, `step_decay`,
`gradient_lr_control`) in float64 and is checked against the printed numbers
and against the lecture's loops run in plain Python floats.

Beyond the lecture, every (start point, momentum) and (start point, learning
rate) of a grid is run at once (one `vmap`-ed program per map) to draw which
minimum each ends in: the basins of attraction of the two minima, and how
momentum and the step size reshape them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.patches import Patch

from jaxopt_lab import plots
from jaxopt_lab.experiments import check_size
from jaxopt_lab.optim import aliases
from jaxopt_lab.optim.base import apply_updates
from jaxopt_lab.report_page import Section
from jaxopt_lab.schedules import step_decay

GLOBAL_MIN = 3.2727653395584366
LOCAL_MIN = -3.254993730859254
ALPHA = 0.1
N_ITER = 100

#: (label, lecture loop name, keyword arguments, the printed result per start or None).
METHODS: tuple[tuple[str, str, dict[str, float], dict[float, float]], ...] = (
    ("GD", "gd", {}, {5.0: 3.2727653395584366, -5.0: -3.254993730859254}),
    ("momentum 0.1", "momentum", {"mu": 0.1}, {5.0: 3.272765339558436, -5.0: -3.254993730859254}),
    ("momentum 0.9", "momentum", {"mu": 0.9}, {-5.0: 3.267681061691328}),
    ("Nesterov 0.1", "nesterov", {"mu": 0.1}, {}),
    ("Nesterov 0.9", "nesterov", {"mu": 0.9}, {}),
    ("LR decay K=0.99", "decay", {"K": 0.99}, {}),
    ("gradient LR control c=0.99", "control", {"c": 0.99}, {}),
)
STARTS = (-5.0, 5.0)

#: Basin maps: (start points, momenta, learning rates, iterations) per size.
SIZES = {
    "tiny": {"starts": 25, "momenta": 8, "rates": 8, "iters": 300},
    "demo": {"starts": 121, "momenta": 50, "rates": 50, "iters": 500},
    "full": {"starts": 241, "momenta": 100, "rates": 100, "iters": 1000},
}
OUTCOMES = ("global minimum", "local minimum", "not settled", "diverged")
OUTCOME_COLORS = ("#2c7bb6", "#fdae61", "#bdbdbd", "#d7191c")


# ----------------------------------------------------------------------------- the lecture's loops


_A4, _A3, _A2, _A1, _A0 = 319 / 8400, 43 / 4200, -6799 / 8400, -299 / 840, 6.0


def lecture_f(val: Any) -> Any:
    """f(x) as the lecture writes it (`obj_fun`; Python floats, numpy or JAX arrays)."""
    return _A4 * val**4 + _A3 * val**3 + _A2 * val**2 + _A1 * val + _A0


def second_derivative(val: Any) -> Any:
    """f''(x) = 12 a4 x^2 + 6 a3 x + 2 a2: GD with step alpha is stable at a minimum x* iff alpha < 2 / f''(x*)."""
    return 12 * _A4 * val**2 + 6 * _A3 * val + 2 * _A2


def lecture_deriv(val: Any) -> Any:
    """f'(x) written as the lecture writes it (Python floats or JAX arrays)."""
    a4, a3, a2, a1 = 319 / 8400, 43 / 4200, -6799 / 8400, -299 / 840
    return 4 * a4 * val**3 + 3 * a3 * val**2 + 2 * a2 * val + a1


def lecture_loop(
    kind: str, start: float, n_iter: int = N_ITER, alpha: float = ALPHA, return_alpha: bool = False, **kw: float
) -> float:
    """The lecture's five loops in plain Python floats (its indentation typos fixed): the reference.

    Returns the final x, or with `return_alpha` the final learning rate.
    """
    val, mom = start, 0.0
    for _ in range(n_iter):
        grad = lecture_deriv(val)
        if kind == "gd":
            val -= alpha * grad
        elif kind == "momentum":
            mom = kw["mu"] * mom - alpha * grad
            val += mom
        elif kind == "nesterov":
            mom = kw["mu"] * mom - alpha * grad
            val += kw["mu"] * mom - alpha * grad
        elif kind == "decay":
            alpha *= kw["K"]
            val += -alpha * grad
        elif kind == "control":
            alpha *= 1 / (1 + kw["c"] * math.sqrt(abs(grad)))
            val += -alpha * grad
        else:
            raise ValueError(f"kind={kind!r} is not a valid choice; valid choices: gd, momentum, nesterov, "
                             "decay, control")
    return alpha if return_alpha else val


# ----------------------------------------------------------------------------- the library's optimizers


def optimizer(kind: str, **kw: Any):
    """The library's optimizer for one of the lecture's loops (hyperparameters may be traced)."""
    lr = kw.get("lr", ALPHA)
    if kind == "gd":
        return aliases.sgd(lr)
    if kind == "momentum":
        return aliases.sgd(lr, momentum=kw["mu"])
    if kind == "nesterov":
        return aliases.sgd(lr, momentum=kw["mu"], nesterov=True)
    if kind == "decay":
        # The lecture decays alpha *before* each step: step t uses alpha K^(t+1).
        return aliases.sgd(step_decay(lr, kw["K"], decay_first=True))
    if kind == "control":
        return aliases.gradient_lr_control(lr, control_factor=kw["c"])
    raise ValueError(f"kind={kind!r} is not a valid choice; valid choices: gd, momentum, nesterov, decay, control")


def trajectory(make_opt: Callable[[], Any], x0: jax.Array, n_iter: int) -> jax.Array:
    """x_0, x_1, ..., x_n of `n_iter` optimizer steps on the quartic.

    The gradient is the lecture's f' (the same polynomial as autodiff of `testfns.quartic`, summed in
    the lecture's order, so the last digits of the printed results come out the same).
    """
    opt = make_opt()

    def step(carry, _):
        x, state = carry
        updates, state = opt.update(lecture_deriv(x), state, x)
        x = apply_updates(x, updates)
        return (x, state), x

    _, xs = jax.lax.scan(step, (x0, opt.init(x0)), None, length=n_iter)
    return jnp.concatenate([x0[None], xs])


def _outcome(x: np.ndarray, tol: float = 1e-2) -> np.ndarray:
    """0 global, 1 local, 2 finite elsewhere, 3 diverged (non-finite or |x| > 1e3)."""
    out = np.full(x.shape, 2, np.int8)
    out[np.abs(x - GLOBAL_MIN) < tol] = 0
    out[np.abs(x - LOCAL_MIN) < tol] = 1
    out[~np.isfinite(x) | (np.abs(np.nan_to_num(x, nan=np.inf)) > 1e3)] = 3
    return out


def basin_map(starts: np.ndarray, values: np.ndarray, what: str, n_iter: int) -> np.ndarray:
    """Final x of every (value, start): momentum (lr 0.1) or learning rate (no momentum); one program."""

    def final(x0, v):
        if what == "momentum":
            make = lambda: aliases.sgd(ALPHA, momentum=v)  # noqa: E731
        else:
            make = lambda: aliases.sgd(v)  # noqa: E731
        return trajectory(make, x0, n_iter)[-1]

    grid = jax.jit(jax.vmap(jax.vmap(final, in_axes=(0, None)), in_axes=(None, 0)))
    return np.asarray(grid(jnp.asarray(starts, jnp.float64), jnp.asarray(values, jnp.float64)))


# ----------------------------------------------------------------------------- figures


def _trajectory_figure(trajs: dict[tuple[str, float], np.ndarray], path: Path) -> Path:
    xs = np.linspace(-6, 6, 400)
    fx = lecture_f(xs)
    fig, axes = plots.new_figure(1, 3, figsize=(15, 4.4), gridspec_kw={"width_ratios": [1.3, 1, 1]})
    ax = axes[0]
    ax.plot(xs, fx, color="k", lw=1.2, label="f(x)")
    shown = ("GD", "momentum 0.9", "Nesterov 0.9", "LR decay K=0.99", "gradient LR control c=0.99")
    for i, (label, *_rest) in enumerate(METHODS):
        if label not in shown:
            continue
        t = trajs[(label, -5.0)]
        t = t[np.isfinite(t) & (np.abs(t) < 6)]
        ax.plot(t, lecture_f(t), "o-", ms=3, lw=0.6, alpha=0.8, color=f"C{i}",
                label=label)
    ax.axvline(GLOBAL_MIN, color="k", ls=":", lw=0.8)
    ax.axvline(LOCAL_MIN, color="k", ls=":", lw=0.8)
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    ax.set_title("Iterates from x0 = -5 drawn on f (100 steps, alpha 0.1)")
    ax.legend(fontsize=7, loc="upper center")
    for ax, start in zip(axes[1:], STARTS, strict=True):
        for i, (label, *_rest) in enumerate(METHODS):
            ax.plot(np.arange(N_ITER + 1), trajs[(label, start)], color=f"C{i}", lw=1.2, label=label)
        ax.axhline(GLOBAL_MIN, color="k", ls=":", lw=0.8)
        ax.axhline(LOCAL_MIN, color="k", ls=":", lw=0.8)
        ax.text(N_ITER, GLOBAL_MIN + 0.15, "global min", ha="right", fontsize=7)
        ax.text(N_ITER, LOCAL_MIN + 0.15, "local min", ha="right", fontsize=7)
        ax.set_xlabel("iteration")
        ax.set_ylabel("x")
        ax.set_title(f"x over the iterations from x0 = {start:g}")
    axes[1].legend(fontsize=7, loc="center right")
    return plots.save(fig, path)


def _basin_figure(starts, values, outcomes, path, *, ylabel, title, logy=False, marks=()) -> Path:
    fig, ax = plots.new_figure(figsize=(8.5, 4.6))
    cmap = ListedColormap(OUTCOME_COLORS)
    norm = BoundaryNorm(np.arange(-0.5, len(OUTCOMES) + 0.5), cmap.N)
    ax.pcolormesh(starts, values, outcomes, cmap=cmap, norm=norm, shading="nearest")
    if logy:
        ax.set_yscale("log")
    for x in (GLOBAL_MIN, LOCAL_MIN):
        ax.axvline(x, color="k", ls=":", lw=0.8)
    for y, text in marks:
        ax.axhline(y, color="k", lw=0.6, ls="--")
        ax.text(0.0, y, text, va="bottom", ha="center", fontsize=7, backgroundcolor="white")
    ax.set_xlabel("start point x0 (dotted: the two minima)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    handles = [Patch(color=c, label=o) for c, o in zip(OUTCOME_COLORS, OUTCOMES, strict=True)]
    ax.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="ends in")
    return plots.save(fig, path)


# ----------------------------------------------------------------------------- the experiment


def _lecture_runs() -> tuple[list[dict[str, Any]], dict[tuple[str, float], np.ndarray]]:
    """Every method of `METHODS` from every start of `STARTS`: table rows (printed, Python loop, library) and
    the library's trajectories by (method label, start). Runs in float64 (call inside `jax.enable_x64`)."""
    rows = []
    trajs: dict[tuple[str, float], np.ndarray] = {}
    for label, kind, kw, printed in METHODS:
        run_all = jax.jit(jax.vmap(lambda x0, kind=kind, kw=kw: trajectory(
            lambda: optimizer(kind, **kw), x0, N_ITER)))
        paths = np.asarray(run_all(jnp.asarray(STARTS, jnp.float64)))
        for start, path in zip(STARTS, paths, strict=True):
            trajs[(label, start)] = path
            ref = lecture_loop(kind, start, **kw)
            got = float(path[-1])
            rows.append({
                "method": label,
                "x0": start,
                "printed": printed.get(start),
                "lecture loop (Python)": ref,
                "jaxopt_lab (float64)": got,
                "|difference|": max(abs(got - ref), abs(got - printed[start]) if start in printed else 0.0),
                "ends in": OUTCOMES[int(_outcome(np.asarray([got]))[0])],
            })
    return rows, trajs


class Basins(NamedTuple):
    """Where heavy-ball GD ends (an `OUTCOMES` index) from each start, per momentum and per learning rate."""

    starts: np.ndarray
    momenta: np.ndarray
    rates: np.ndarray
    by_momentum: np.ndarray  # (momenta, starts), alpha 0.1
    by_rate: np.ndarray  # (rates, starts), no momentum
    fine_mu: np.ndarray  # a fine scan of the momentum ...
    escape: np.ndarray  # ... and where GD from x0 = -5 ends with each


def _basin_maps(sz: dict[str, int]) -> Basins:
    """The two basin maps of size `sz` and the fine momentum scan from -5. Call inside `jax.enable_x64`."""
    starts = np.linspace(-6.0, 6.0, sz["starts"])
    momenta = np.linspace(0.0, 0.98, sz["momenta"])
    rates = np.linspace(0.02, 0.9, sz["rates"])
    mom_out = _outcome(basin_map(starts, momenta, "momentum", sz["iters"]))
    lr_out = _outcome(basin_map(starts, rates, "learning_rate", sz["iters"]))
    fine_mu = np.linspace(0.0, 0.98, 197)
    escape = _outcome(basin_map(np.asarray([-5.0]), fine_mu, "momentum", sz["iters"]))[:, 0]
    return Basins(starts, momenta, rates, mom_out, lr_out, fine_mu, escape)


def _share(outcomes_row: np.ndarray, k: int) -> float:
    """The share of the starts whose run ends in outcome `k`."""
    return float(np.mean(outcomes_row == k))


def _momentum_rows(b: Basins) -> list[dict[str, float]]:
    """Shares of the starts ending in each place, for up to 8 momenta spread over the map's."""
    mom_out = b.by_momentum
    return [
        {"momentum": float(b.momenta[i]), "global min": _share(mom_out[i], 0), "local min": _share(mom_out[i], 1),
         "not settled": _share(mom_out[i], 2), "diverged": _share(mom_out[i], 3)}
        for i in np.unique(np.linspace(0, len(b.momenta) - 1, min(len(b.momenta), 8)).round().astype(int))
    ]


def _lecture_text(rows: list[dict[str, Any]], trajs: dict[tuple[str, float], np.ndarray]) -> str:
    """The first paragraph: the lecture's runs, reproduced."""
    max_diff = max(r["|difference|"] for r in rows)
    by = {(r["method"], r["x0"]): r for r in rows}

    def x_end(method, x0):
        return float(by[(method, x0)]["jaxopt_lab (float64)"])

    m09 = trajs[("momentum 0.9", -5.0)]
    control_alpha = lecture_loop("control", -5.0, c=0.99, return_alpha=True)
    return (
        f"All {len(rows)} runs of the lecture (7 methods from x0 = -5 and 5, 100 steps, alpha 0.1) were repeated "
        f"with jaxopt_lab's optimizers in float64; the largest difference from the printed values and from the "
        f"lecture's own loops run in Python is {max_diff:.1e}. Plain GD ends at {x_end('GD', 5.0):.10f} from 5 "
        f"({by[('GD', 5.0)]['ends in']}) and at {x_end('GD', -5.0):.10f} from -5 ({by[('GD', -5.0)]['ends in']}); "
        f"momentum 0.9 from -5 ends at {x_end('momentum 0.9', -5.0):.10f} after 100 steps "
        f"({by[('momentum 0.9', -5.0)]['ends in']}, {abs(x_end('momentum 0.9', -5.0) - GLOBAL_MIN):.4f} from it "
        f"and still moving by {abs(m09[-1] - m09[-2]):.1e} per step). Nesterov 0.9 from -5 ends at "
        f"{x_end('Nesterov 0.9', -5.0):.4f} "
        f"({by[('Nesterov 0.9', -5.0)]['ends in']}), learning-rate decay at {x_end('LR decay K=0.99', -5.0):.4f} "
        f"({by[('LR decay K=0.99', -5.0)]['ends in']}) and gradient-based control at "
        f"{x_end('gradient LR control c=0.99', -5.0):.4f} ({by[('gradient LR control c=0.99', -5.0)]['ends in']}): "
        f"its rate only shrinks, to {control_alpha:.1e} after 100 steps."
    )


def _basin_text(b: Basins, iters: int, hess: dict[str, float]) -> str:
    """The second paragraph: what the basin maps show."""
    starts, momenta, rates, mom_out, lr_out = b.starts, b.momenta, b.rates, b.by_momentum, b.by_rate
    # The basin boundary without momentum: the leftmost start from which GD reaches the global minimum.
    global0 = starts[mom_out[0] == 0]
    boundary = float(global0.min()) if global0.size else float("nan")
    right_of_boundary_global = bool(global0.size and np.all(mom_out[0][starts >= boundary] == 0))
    escaping = b.fine_mu[b.escape == 0]
    first_escape = float(escaping.min()) if escaping.size else float("nan")
    i09 = int(np.argmin(np.abs(momenta - 0.9)))
    left, right = starts < LOCAL_MIN, starts > GLOBAL_MIN
    left_escape = float(np.mean(mom_out[i09][left] == 0)) if left.any() else float("nan")
    right_overshoot = float(np.mean(mom_out[i09][right] == 1)) if right.any() else float("nan")
    lr_diverged = np.asarray([_share(lr_out[i], 3) for i in range(len(rates))])
    first_div = float(rates[np.argmax(lr_diverged > 0)]) if (lr_diverged > 0).any() else float("nan")
    only_local = [float(rates[i]) for i in range(len(rates))
                  if _share(lr_out[i], 1) > 0 and _share(lr_out[i], 0) == 0]
    return (
        f"Basin maps ({len(starts)} start points in [-6, 6], {iters} steps, every run of a map in one "
        f"vmapped program): without momentum GD reaches the global minimum from "
        f"{_share(mom_out[0], 0):.0%} of the starts"
        + (f", exactly those from x0 = {boundary:.2f} on (the local maximum lies between the minima)"
           if right_of_boundary_global else "")
        + f". From x0 = -5 the smallest momentum that escapes is {first_escape:.3f} (a {len(b.fine_mu)}-value "
        f"scan of mu). At mu = {momenta[i09]:.2f}, {left_escape:.0%} of the starts left of the local minimum "
        f"escape to the global one, and {right_overshoot:.0%} of the starts right of the global minimum "
        f"overshoot into the local one. Without momentum GD diverges from some "
        f"starts from alpha = {first_div:.3g} on; the global minimum is unstable above 2/f''(x*) = "
        f"{2 / hess['global']:.3f} and the local one above {2 / hess['local']:.3f}, so "
        + (f"for alpha in [{min(only_local):.3f}, {max(only_local):.3f}] ({len(only_local)} grid value"
           f"{'s' if len(only_local) > 1 else ''}) GD can settle in the local minimum only."
           if only_local else "(on this grid) no rate settles in the local minimum only.")
    )


def run(out: Path, size: str = "demo") -> Section:
    """The lecture's runs (printed vs reproduced), their trajectories, and two basin-of-attraction maps."""
    check_size(size, SIZES)
    out = Path(out)
    sz = SIZES[size]
    with jax.enable_x64(True):
        rows, trajs = _lecture_runs()
        basins = _basin_maps(sz)
    for r in rows:
        # Full precision: the point of the table is the last digits.
        for key in ("printed", "lecture loop (Python)", "jaxopt_lab (float64)"):
            r[key] = "" if r[key] is None else repr(float(r[key]))
    hess = {"global": float(second_derivative(GLOBAL_MIN)), "local": float(second_derivative(LOCAL_MIN))}
    lr_marks = [(2 / hess["global"], "2/f''(global min)"), (2 / hess["local"], "2/f''(local min)")]
    figures = [
        _trajectory_figure(trajs, out / "quartic_trajectories.png"),
        _basin_figure(basins.starts, basins.momenta, basins.by_momentum, out / "quartic_basins_momentum.png",
                      ylabel="momentum mu", title=f"Where heavy-ball GD ends (alpha 0.1, {sz['iters']} steps)"),
        _basin_figure(basins.starts, basins.rates, basins.by_rate, out / "quartic_basins_learning_rate.png",
                      ylabel="learning rate alpha", title=f"Where plain GD ends (no momentum, {sz['iters']} steps)",
                      marks=lr_marks),
    ]
    return Section(
        title="2. Lecture: gradient descent by hand — momentum, Nesterov, decay and learning-rate control on a quartic",
        text=_lecture_text(rows, trajs) + "\n\n" + _basin_text(basins, sz["iters"], hess),
        figures=figures,
        tables=[("Printed vs reproduced (final x after 100 steps)", rows),
                ("Share of start points ending in each place, per momentum (alpha 0.1)", _momentum_rows(basins))],
    )
