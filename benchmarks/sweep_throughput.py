"""Sweep throughput: the project's sweep engine against what a user would otherwise write.

    python benchmarks/sweep_throughput.py [--size tiny|small|full] [--out results.json]
                                          [--problems moons,minibatch,digits] [--reps N]

Problems (sizes per `--size` in `PROBLEMS`):

* ``moons``: the moons example (`examples/moons_sweep.toml`): MLP 2-20-2 ReLU, make_moons(500, noise 0.25), full batch,
  400 epochs, SGD with momentum; 8 learning rates x 4 momenta x 32 seeds = 1,024 runs at
  `full`. Two lines: *identical work* (``val_fraction = 0``: every contender trains on the
  same 500 rows and evaluates nothing per epoch but its training loss) and the *project's
  default* (``val_fraction = 0.2``: 400 training rows, the validation loss evaluated after
  every epoch; the hand-written JAX contenders do the same).
* ``minibatch``: the same model and optimizer with batches of 32 (make_moons(512), no
  validation, 16 batches per epoch, reshuffled every epoch with the same permutation in
  every contender).
* ``digits``: MLP 64-128-10 ReLU on scikit-learn's digits (1,797 rows, standardized),
  full batch, Adam.

Contenders (each timed on identical work, alternated A B C ... per round):

* ``project API``: `jaxopt_lab.sweep.config_sweep.run_sweep(cfg)` (what `jaxopt-lab sweep` runs);
* ``project runner + expert fn``: `jaxopt_lab.sweep.run(train_fn, points)` with the
  hand-written `train_fn` below (isolates the runner from the training engine);
* ``project CLI``: `jaxopt-lab sweep CFG --out DIR --no-report` in a subprocess (the console
  script's `jaxopt_lab.cli:main`, in an interpreter that reports its own peak memory); its
  runs/s is `summary.json`'s (compile excluded), its first result the process's wall time;
* ``project train per run``: `jax.jit(make_train(cfg))` called once per run (the training
  engine without the runner: with ``expert jit per run`` it shows the engine's per-step cost);
* ``expert jit(vmap)``: `jax.jit(jax.vmap(train))` with `lax.scan` and optax, every run
  in one batch: the reference every ratio is taken against;
* ``expert jit per run``: the same `train` compiled once and called once per run;
* ``expert shard_map+lax.map``: the fastest hand-written execution on CPU: runs sharded over one host device per
  core, `lax.map` (one run at a time) inside each;
* ``torch.func.vmap``: PyTorch, the runs' parameters stacked, `torch.func.grad_and_value`
  vmapped, the update written by hand;
* ``torch sequential``: one run after another, `torch.optim.SGD` / `torch.optim.Adam`;
* ``numpy lecture loop``: the moons lecture's hand-written NumPy forward/backward (docs/lectures.md),
  float64, one run after another (momentum added the heavy-ball way: v = mu v + g).

Every contender starts each run from the same initial weights (He-normal, drawn from the
run's seed with the project's key derivation) on the same data split and, for mini-batches,
the same permutation per epoch, so the runs can be compared one by one: the correctness
checks require the same final loss and accuracy run by run (within float32 rounding for
stable runs; float64 for NumPy) and the same accuracy distribution.

Slow contenders are timed on an evenly spread subset of the runs and their runs/s is
extrapolated; the table says how many runs each timed.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

REPO = Path(__file__).resolve().parent.parent

# ----------------------------------------------------------------------------- problems


@dataclass
class Size:
    seeds: int
    epochs: int
    learning_rates: Sequence[float]
    momenta: Sequence[float] | None
    subset: Mapping[str, int] = field(default_factory=dict)  # contender -> max runs timed


_LR8 = [0.001, 0.00268, 0.0072, 0.0193, 0.0518, 0.139, 0.373, 1.0]
_M4 = [0.0, 0.5, 0.9, 0.99]
_SLOW_FULL = {
    "expert jit per run": 256,
    "torch.func.vmap": 64,
    "torch sequential": 16,
    "torch sequential 1-thread": 16,
    "numpy lecture loop": 16,
}
_SLOW_SMALL = {
    "expert jit per run": 64,
    "torch.func.vmap": 32,
    "torch sequential": 8,
    "torch sequential 1-thread": 8,
    "numpy lecture loop": 8,
}
_FEW = {"torch.func.vmap": 16, "torch sequential": 4, "torch sequential 1-thread": 4, "numpy lecture loop": 4}

PROBLEMS: dict[str, dict[str, Size]] = {
    "moons": {
        "tiny": Size(2, 20, [0.03, 0.3], [0.0, 0.9]),
        "small": Size(4, 400, _LR8, _M4, _SLOW_SMALL),
        "full": Size(32, 400, _LR8, _M4, _SLOW_FULL),
    },
    "minibatch": {
        "tiny": Size(1, 3, [0.03, 0.3], [0.9]),
        "small": Size(1, 100, _LR8[::2], [0.0, 0.9], {**_SLOW_SMALL, **_FEW}),
        "full": Size(4, 400, _LR8, _M4, {**_SLOW_FULL, **_FEW}),
    },
    "digits": {
        "tiny": Size(1, 5, [1e-3, 1e-2], None),
        "small": Size(
            2, 50, [3e-4, 1e-3, 3e-3, 1e-2], None, {**_SLOW_SMALL, **_FEW, "numpy lecture loop": 2}
        ),
        "full": Size(8, 100, [3e-4, 1e-3, 3e-3, 1e-2], None, {**_SLOW_FULL, **_FEW, "numpy lecture loop": 2}),
    },
}


def problem_config(problem: str, size: Size, val_fraction: float) -> dict[str, Any]:
    """The TOML-shaped config of a problem line (both the API and the CLI read it)."""
    if problem == "digits":
        raw = {
            "data": {"dataset": "digits", "val_fraction": val_fraction, "standardize": True},
            "model": {"hidden": [128], "activation": "relu", "init": "he_normal"},
            "train": {"loss": "cross_entropy", "epochs": size.epochs, "batch_size": 0},
            "optimizer": {"name": "adam", "learning_rate": 1e-3},
            "sweep": {
                "seeds": size.seeds,
                "grid": {"optimizer": {"learning_rate": list(size.learning_rates)}},
            },
        }
        return raw
    n_samples, batch = (512, 32) if problem == "minibatch" else (500, 0)
    return {
        "data": {
            "dataset": "moons",
            "n_samples": n_samples,
            "noise": 0.25,
            "random_state": 7,
            "val_fraction": val_fraction,
        },
        "model": {"hidden": [20], "activation": "relu", "init": "he_normal"},
        "train": {"loss": "cross_entropy", "epochs": size.epochs, "batch_size": batch},
        "optimizer": {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9},
        "sweep": {
            "seeds": size.seeds,
            "grid": {
                "optimizer": {"learning_rate": list(size.learning_rates), "momentum": list(size.momenta)}
            },
        },
    }


def to_toml(raw: Mapping[str, Any], prefix: str = "") -> str:
    """Enough TOML for these configs: nested tables of numbers, strings, booleans and lists."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    scalars = {k: v for k, v in raw.items() if not isinstance(v, Mapping)}
    tables = {k: v for k, v in raw.items() if isinstance(v, Mapping)}
    lines = []
    if prefix and scalars:
        lines.append(f"[{prefix}]")
    lines += [f"{k} = {value(v)}" for k, v in scalars.items()]
    text = "\n".join(lines) + ("\n\n" if lines else "")
    for k, v in tables.items():
        text += to_toml(v, f"{prefix}.{k}" if prefix else k)
    return text


@dataclass
class Line:
    """One comparison: a problem at a size with its runs, data and (lazily built) contenders."""

    problem: str
    name: str
    raw: dict[str, Any]
    size: Size
    cfg: Any = None
    plan: Any = None
    data: Any = None
    seeds: np.ndarray = None
    hp: dict[str, np.ndarray] = None
    sizes: list[int] = None
    optimizer: str = "sgd"
    batch_size: int = 0
    epochs: int = 0

    @property
    def n_runs(self) -> int:
        return len(self.seeds)

    @property
    def has_val(self) -> bool:
        return self.data.x_val is not None

    def flops_per_run(self) -> float:
        n = len(self.data.x_train)
        per_epoch = common.mlp_train_flops(self.sizes, n)  # a mini-batch epoch touches n rows too
        if self.has_val:
            per_epoch += common.mlp_train_flops(self.sizes, len(self.data.x_val)) / 3  # forward only
        return per_epoch * self.epochs


def build_line(problem: str, name: str, size: Size, val_fraction: float) -> Line:
    from jaxopt_lab import config as config_mod
    from jaxopt_lab.sweep import config_sweep
    from jaxopt_lab.train import prepare_data

    raw = problem_config(problem, size, val_fraction)
    cfg = config_mod.from_dict(raw)
    config_mod.validate(cfg)
    plan = config_sweep.plan(cfg)
    line = Line(problem, name, raw, size, cfg=cfg, plan=plan)
    line.data = prepare_data(cfg)
    line.seeds = np.asarray([p["seed"] for p in plan.points], np.int64)
    keys = {"optimizer.learning_rate": "learning_rate", "optimizer.momentum": "momentum"}
    line.hp = {
        short: np.asarray([p[k] for p in plan.points], np.float32)
        for k, short in keys.items()
        if k in plan.points[0]
    }
    line.sizes = [line.data.x_train.shape[1], *cfg.model.hidden, int(line.data.num_classes)]
    line.optimizer = cfg.optimizer.name
    line.batch_size = cfg.train.batch_size
    line.epochs = cfg.train.epochs
    return line


# ----------------------------------------------------------------------------- the expert's JAX


def expert_train(x, y, x_val, y_val, sizes, epochs, batch_size, optimizer):
    """What an expert writes: a pure `train(key, hp)` with `lax.scan` over epochs and optax.

    Keys follow the project's derivation (init: fold_in(key, 0); batch order of an epoch:
    permutation(fold_in(fold_in(key, 1), epoch))) so runs can be compared one by one.
    The batch-order derivation is an engine detail: should it change, mini-batch runs
    differ one by one and only the distribution check (`compare_runs`) still applies.
    Returns `(init, train)`.
    """
    x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.int32)
    has_val = x_val is not None
    if has_val:
        x_val, y_val = jnp.asarray(x_val, jnp.float32), jnp.asarray(y_val, jnp.int32)
    he = jax.nn.initializers.he_normal()

    def init(key):
        keys = jax.random.split(key, len(sizes) - 1)
        return [
            (he(k, (a, b), jnp.float32), jnp.zeros((b,), jnp.float32))
            for k, a, b in zip(keys, sizes[:-1], sizes[1:], strict=True)
        ]

    def forward(params, h):
        for w, b in params[:-1]:
            h = jax.nn.relu(h @ w + b)
        w, b = params[-1]
        return h @ w + b

    def loss_fn(params, xb, yb):
        return optax.softmax_cross_entropy_with_integer_labels(forward(params, xb), yb).mean()

    def evaluate(params, xb, yb):
        logits = forward(params, xb)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean()
        return loss, jnp.mean(jnp.argmax(logits, -1) == yb)

    def train(key, hp):
        if optimizer == "adam":
            opt = optax.adam(hp["learning_rate"])
        else:
            opt = optax.sgd(hp["learning_rate"], momentum=hp["momentum"])
        params = init(jax.random.fold_in(key, 0))
        order_key = jax.random.fold_in(key, 1)

        def step(carry, rows):
            params, state = carry
            xb, yb = (x, y) if rows is None else (x[rows], y[rows])
            loss, grads = jax.value_and_grad(loss_fn)(params, xb, yb)
            updates, state = opt.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), loss

        def epoch(carry, e):
            if batch_size == 0:
                carry, loss = step(carry, None)
            else:
                perm = jax.random.permutation(jax.random.fold_in(order_key, e), len(x))
                carry, losses = jax.lax.scan(step, carry, perm.reshape(-1, batch_size))
                loss = losses.mean()
            val = loss_fn(carry[0], x_val, y_val) if has_val else jnp.float32(jnp.nan)
            return carry, (loss, val)

        (params, _), (train_hist, val_hist) = jax.lax.scan(
            epoch, (params, opt.init(params)), jnp.arange(epochs, dtype=jnp.int32)
        )
        out = {"train_loss_history": train_hist, "val_loss_history": val_hist}
        out["final_train_loss"], out["final_train_accuracy"] = evaluate(params, x, y)
        if has_val:
            out["final_val_loss"], out["final_val_accuracy"] = evaluate(params, x_val, y_val)
        return out

    return init, train


# ----------------------------------------------------------------------------- contenders


METRICS = ("final_train_loss", "final_train_accuracy", "final_val_loss", "final_val_accuracy")


@dataclass
class Contender:
    """A way to run a line's sweep: `warmup()` compiles (returns compile seconds), `run()` the timed sweep.

    `run()` returns {metric: array over `indices`} (+ "diverged" for the project), or
    for a child process also "__timing__".
    """

    name: str
    indices: np.ndarray
    warmup: Callable[[], float]
    run: Callable[[], dict[str, Any]]
    what: str
    is_child: bool = False
    warmup_runs: bool = False


def _subset(n: int, limit: int | None) -> np.ndarray:
    if limit is None or limit >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, limit).round().astype(np.int64))


def _keys(seeds: np.ndarray) -> np.ndarray:
    return np.asarray(jax.vmap(jax.random.PRNGKey)(jnp.asarray(seeds, jnp.int32)))


def _host(tree: Any) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in jax.device_get(tree).items()}


def _rows_to_arrays(rows: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    out = {m: np.asarray([np.nan if r[m] is None else r[m] for r in rows], np.float64) for m in METRICS}
    out["diverged"] = np.asarray([r["diverged"] for r in rows], bool)
    return out


def project_api(line: Line) -> Contender:
    from jaxopt_lab.sweep import config_sweep

    state: dict[str, Any] = {}

    def go() -> dict[str, Any]:
        res = config_sweep.run_sweep(line.cfg, progress=False, sweep_plan=line.plan)
        state["stats"] = res.stats
        out = {
            m: np.asarray([np.nan if r[m] is None else r[m] for r in res.rows], np.float64) for m in METRICS
        }
        out["diverged"] = np.asarray([r["diverged"] for r in res.rows], bool)
        return out

    def warmup() -> float:
        state["first"] = go()
        return state["stats"].compile_seconds

    return Contender(
        "project API",
        np.arange(line.n_runs),
        warmup,
        go,
        "config_sweep.run_sweep(cfg): make_train's engine, runner's default execution "
        "(lax.map per device, sharded over host devices); tracks accuracy, grad norm, "
        "divergence and histories per epoch",
        warmup_runs=True,
    )


def project_api_variant(line: Line, execution: str, map_batch_size: int) -> Contender:
    """`run_sweep` with a non-default execution: the engine's own knobs, measured."""
    from jaxopt_lab.sweep import config_sweep

    state: dict[str, Any] = {}

    def go() -> dict[str, Any]:
        res = config_sweep.run_sweep(
            line.cfg, progress=False, sweep_plan=line.plan, execution=execution, map_batch_size=map_batch_size
        )
        state["stats"] = res.stats
        return _rows_to_arrays(res.rows)

    def warmup() -> float:
        go()
        return state["stats"].compile_seconds

    name = "project API vmap" if execution == "vmap" else f"project API map_batch_size={map_batch_size}"
    return Contender(
        name,
        np.arange(line.n_runs),
        warmup,
        go,
        f"config_sweep.run_sweep(cfg, execution={execution!r}, map_batch_size={map_batch_size})",
        warmup_runs=True,
    )


def project_runner(line: Line, train: Callable) -> Contender:
    from jaxopt_lab import sweep

    points = [
        {**{k: float(v[i]) for k, v in line.hp.items()}, "seed": int(line.seeds[i])}
        for i in range(line.n_runs)
    ]
    state: dict[str, Any] = {}

    def go() -> dict[str, Any]:
        res = sweep.run(train, points, progress=False)
        state["stats"] = res.stats
        return {k: np.asarray(v) for k, v in res.outputs.items() if k.startswith("final_")}

    def warmup() -> float:
        go()
        return state["stats"].compile_seconds

    return Contender(
        "project runner + expert fn",
        np.arange(line.n_runs),
        warmup,
        go,
        "jaxopt_lab.sweep.run(expert train_fn, points): the runner's chunking and "
        "sharding around the hand-written train function",
        warmup_runs=True,
    )


def project_cli(line: Line, workdir: Path) -> Contender:
    cfg_path = workdir / f"{line.problem}_{line.name}.toml"
    cfg_path.write_text(to_toml(line.raw))
    # The console script's code path (`jaxopt_lab.cli:main`) in a fresh interpreter that
    # reports its own peak memory at exit.
    base = common.python_entry_point("jaxopt_lab.cli")
    counter = [0]

    def go() -> dict[str, Any]:
        import csv
        import json

        counter[0] += 1
        out_dir = workdir / f"cli_{line.problem}_{line.name}_{counter[0]}"
        cmd = [*base, "sweep", str(cfg_path), "--out", str(out_dir), "--no-report"]
        child = common.run_child(cmd, cwd=str(REPO))
        if child.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed ({child.returncode}):\n{child.stderr[-2000:]}")
        summary = json.loads((out_dir / "summary.json").read_text())
        with open(out_dir / "runs.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        shutil.rmtree(out_dir, ignore_errors=True)
        run_seconds = summary["runs"] / summary["runs_per_second"]
        out: dict[str, Any] = {
            m: np.asarray([float(r[m]) if r[m] != "" else np.nan for r in rows]) for m in METRICS
        }
        out["diverged"] = np.asarray([r["diverged"] == "true" for r in rows])
        out["__timing__"] = {
            "seconds": run_seconds,
            "peak_rss": child.peak_rss,
            "rss_delta": 0,
            "child_wall": child.seconds,
            "compile": summary["compile_seconds"],
        }
        return out

    return Contender(
        "project CLI",
        np.arange(line.n_runs),
        lambda: float("nan"),
        go,
        "`jaxopt-lab sweep CFG --out DIR --no-report` in a fresh process; runs/s from "
        "summary.json (compile excluded), first result = whole process",
        is_child=True,
    )


def project_train_sequential(line: Line, limit: int | None) -> Contender:
    """The project's training engine alone: `jit(make_train(cfg))` called once per run, no runner."""
    from jaxopt_lab.train import make_train

    idx = _subset(line.n_runs, limit)
    trainer = make_train(line.cfg.replace(sweep={}))
    keys = _keys(line.seeds[idx])
    hps = [{f"optimizer.{k}": np.float32(v[i]) for k, v in line.hp.items()} for i in idx]
    state: dict[str, Any] = {}

    def warmup() -> float:
        import time

        t0 = time.perf_counter()
        state["f"] = jax.jit(lambda key, hp: trainer(key, hp).metrics).lower(keys[0], hps[0]).compile()
        return time.perf_counter() - t0

    def go() -> dict[str, Any]:
        outs = [jax.device_get(state["f"](keys[j], hps[j])) for j in range(len(idx))]
        return {k: np.asarray([o[k] for o in outs]) for k in outs[0]}

    return Contender(
        "project train per run",
        idx,
        warmup,
        go,
        "jax.jit(make_train(cfg)) compiled once, called from Python once per run: "
        "the engine without the runner",
    )


def expert_vmap(line: Line, train: Callable) -> Contender:
    keys = _keys(line.seeds)
    hp = {k: np.asarray(v) for k, v in line.hp.items()}
    state: dict[str, Any] = {}

    def warmup() -> float:
        import time

        t0 = time.perf_counter()
        state["f"] = jax.jit(jax.vmap(train)).lower(keys, hp).compile()
        return time.perf_counter() - t0

    return Contender(
        "expert jit(vmap)",
        np.arange(line.n_runs),
        warmup,
        lambda: _host(state["f"](keys, hp)),
        "jax.jit(jax.vmap(train)) over every run at once, lax.scan over epochs, optax; on device 0",
    )


def expert_sequential(line: Line, train: Callable, limit: int | None) -> Contender:
    idx = _subset(line.n_runs, limit)
    keys = _keys(line.seeds[idx])
    hps = [{k: np.float32(v[i]) for k, v in line.hp.items()} for i in idx]
    state: dict[str, Any] = {}

    def warmup() -> float:
        import time

        t0 = time.perf_counter()
        state["f"] = jax.jit(train).lower(keys[0], hps[0]).compile()
        return time.perf_counter() - t0

    def go() -> dict[str, Any]:
        outs = [jax.device_get(state["f"](keys[j], hps[j])) for j in range(len(idx))]
        return {k: np.asarray([o[k] for o in outs]) for k in outs[0] if k.startswith("final_")}

    return Contender(
        "expert jit per run", idx, warmup, go, "jax.jit(train) compiled once, called from Python once per run"
    )


def expert_shard_map(line: Line, train: Callable) -> Contender:
    devices = jax.devices()
    n_dev = len(devices)
    mesh = jax.sharding.Mesh(np.array(devices), ("runs",))
    n = line.n_runs
    padded = math.ceil(n / n_dev) * n_dev
    pad = lambda a: np.concatenate([a, np.repeat(a[-1:], padded - n, axis=0)]) if padded > n else a
    keys = pad(_keys(line.seeds))
    hp = {k: pad(np.asarray(v)) for k, v in line.hp.items()}

    def shard(k, h):
        return jax.lax.map(lambda a: train(*a), (k, h))

    f = jax.jit(
        jax.shard_map(shard, mesh=mesh, in_specs=(P("runs"), P("runs")), out_specs=P("runs"), check_vma=False)
    )
    state: dict[str, Any] = {}

    def warmup() -> float:
        import time

        t0 = time.perf_counter()
        state["f"] = f.lower(keys, hp).compile()
        return time.perf_counter() - t0

    def go() -> dict[str, Any]:
        return {k: v[:n] for k, v in _host(state["f"](keys, hp)).items() if k.startswith("final_")}

    return Contender(
        "expert shard_map+lax.map",
        np.arange(n),
        warmup,
        go,
        f"the fastest hand-written CPU execution: jit(shard_map(lax.map(train))) over {n_dev} host device(s)",
    )


# ----------------------------------------------------------------------------- PyTorch


def _initial_params(line: Line, init: Callable, idx: np.ndarray) -> list[np.ndarray]:
    """Initial weights of runs `idx` as stacked float32 arrays [w0, b0, w1, b1, ...]."""
    keys = jnp.asarray(_keys(line.seeds[idx]))
    params = jax.vmap(lambda k: init(jax.random.fold_in(k, 0)))(keys)
    return [np.asarray(a) for pair in params for a in pair]


def _permutations(line: Line, idx: np.ndarray) -> np.ndarray | None:
    """Per-run, per-epoch row orders `(runs, epochs, n)` of the project's key derivation."""
    if line.batch_size == 0:
        return None
    n = len(line.data.x_train)

    def run_perms(key):
        order_key = jax.random.fold_in(key, 1)
        epochs = jnp.arange(line.epochs, dtype=jnp.int32)
        return jax.vmap(lambda e: jax.random.permutation(jax.random.fold_in(order_key, e), n))(epochs)

    return np.asarray(jax.vmap(run_perms)(jnp.asarray(_keys(line.seeds[idx]))))


def torch_vmap(line: Line, init: Callable, limit: int | None) -> Contender:
    import torch
    import torch.nn.functional as F
    from torch.func import grad_and_value, vmap

    idx = _subset(line.n_runs, limit)
    p0 = _initial_params(line, init, idx)
    perms = _permutations(line, idx)
    x = torch.tensor(line.data.x_train, dtype=torch.float32)
    y = torch.tensor(line.data.y_train, dtype=torch.long)
    xv = torch.tensor(line.data.x_val, dtype=torch.float32) if line.has_val else None
    yv = torch.tensor(line.data.y_val, dtype=torch.long) if line.has_val else None
    R = len(idx)
    lr = torch.tensor(line.hp["learning_rate"][idx])
    mom = torch.tensor(line.hp["momentum"][idx]) if "momentum" in line.hp else None

    def forward(params, h):
        for i in range(0, len(params) - 2, 2):
            h = torch.relu(h @ params[i] + params[i + 1])
        return h @ params[-2] + params[-1]

    def loss(params, xb, yb):
        return F.cross_entropy(forward(params, xb), yb)

    gv_shared = vmap(grad_and_value(loss), in_dims=(0, None, None))
    gv_batched = vmap(grad_and_value(loss), in_dims=(0, 0, 0))
    eval_loss = vmap(loss, in_dims=(0, None, None))
    eval_logits = vmap(forward, in_dims=(0, None))

    def per_run(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        return v.reshape((R,) + (1,) * (like.dim() - 1))

    def go() -> dict[str, Any]:
        with torch.no_grad():
            params = [torch.tensor(a) for a in p0]
            m = [torch.zeros_like(p) for p in params]
            v = [torch.zeros_like(p) for p in params]
            t = 0
            for e in range(line.epochs):
                if perms is None:
                    batches = [None]
                else:
                    order = torch.from_numpy(perms[:, e])
                    batches = [
                        order[:, s : s + line.batch_size] for s in range(0, order.shape[1], line.batch_size)
                    ]
                for rows in batches:
                    if rows is None:
                        grads, _ = gv_shared(tuple(params), x, y)
                    else:
                        grads, _ = gv_batched(tuple(params), x[rows], y[rows])
                    t += 1
                    for i, g in enumerate(grads):
                        if line.optimizer == "adam":
                            m[i] = 0.9 * m[i] + 0.1 * g
                            v[i] = 0.999 * v[i] + 0.001 * g * g
                            mh, vh = m[i] / (1 - 0.9**t), v[i] / (1 - 0.999**t)
                            params[i] = params[i] - per_run(lr, g) * mh / (vh.sqrt() + 1e-8)
                        else:
                            m[i] = per_run(mom, g) * m[i] + g
                            params[i] = params[i] - per_run(lr, g) * m[i]
                if xv is not None:
                    eval_loss(tuple(params), xv, yv)  # the per-epoch validation loss, as the others compute
            out = {}
            for tag, xs, ys in (("train", x, y), ("val", xv, yv)):
                if xs is None:
                    continue
                logits = eval_logits(tuple(params), xs)
                out[f"final_{tag}_loss"] = np.asarray([F.cross_entropy(lg, ys).item() for lg in logits])
                out[f"final_{tag}_accuracy"] = (logits.argmax(-1) == ys).float().mean(-1).numpy()
            return out

    return Contender(
        "torch.func.vmap",
        idx,
        lambda: 0.0,
        go,
        "PyTorch: torch.func.vmap(grad_and_value(loss)) over stacked parameters, update by hand",
    )


def torch_sequential(line: Line, init: Callable, limit: int | None, threads: int | None = None) -> Contender:
    import torch
    import torch.nn.functional as F

    idx = _subset(line.n_runs, limit)
    p0 = _initial_params(line, init, idx)
    perms = _permutations(line, idx)
    x = torch.tensor(line.data.x_train, dtype=torch.float32)
    y = torch.tensor(line.data.y_train, dtype=torch.long)
    xv = torch.tensor(line.data.x_val, dtype=torch.float32) if line.has_val else None
    yv = torch.tensor(line.data.y_val, dtype=torch.long) if line.has_val else None

    def forward(params, h):
        for i in range(0, len(params) - 2, 2):
            h = torch.relu(h @ params[i] + params[i + 1])
        return h @ params[-2] + params[-1]

    def go() -> dict[str, Any]:
        before = torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            return sweep()
        finally:
            torch.set_num_threads(before)

    def sweep() -> dict[str, Any]:
        out: dict[str, list[float]] = {}
        for j, run in enumerate(idx):
            params = [torch.tensor(a[j]).requires_grad_(True) for a in p0]
            lr = float(line.hp["learning_rate"][run])
            if line.optimizer == "adam":
                opt = torch.optim.Adam(params, lr=lr, eps=1e-8)
            else:
                opt = torch.optim.SGD(params, lr=lr, momentum=float(line.hp["momentum"][run]))
            for e in range(line.epochs):
                batches = [None] if perms is None else torch.from_numpy(perms[j, e]).split(line.batch_size)
                for rows in batches:
                    xb, yb = (x, y) if rows is None else (x[rows], y[rows])
                    loss = F.cross_entropy(forward(params, xb), yb)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                if xv is not None:
                    with torch.no_grad():
                        F.cross_entropy(forward(params, xv), yv)
            with torch.no_grad():
                for tag, xs, ys in (("train", x, y), ("val", xv, yv)):
                    if xs is None:
                        continue
                    logits = forward(params, xs)
                    out.setdefault(f"final_{tag}_loss", []).append(F.cross_entropy(logits, ys).item())
                    out.setdefault(f"final_{tag}_accuracy", []).append(
                        (logits.argmax(-1) == ys).float().mean().item()
                    )
        return {k: np.asarray(v) for k, v in out.items()}

    name = "torch.optim.Adam" if line.optimizer == "adam" else "torch.optim.SGD"
    n_threads = threads or torch.get_num_threads()
    return Contender(
        "torch sequential" + (" 1-thread" if threads == 1 else ""),
        idx,
        lambda: 0.0,
        go,
        f"PyTorch: one run after another with {name}, {n_threads} thread(s)",
    )


# ----------------------------------------------------------------------------- NumPy (the moons lecture)


def numpy_lecture(line: Line, init: Callable, limit: int | None) -> Contender:
    """The moons lecture's NumPy loop, one hidden layer, float64, run by run."""
    idx = _subset(line.n_runs, limit)
    p0 = [a.astype(np.float64) for a in _initial_params(line, init, idx)]
    perms = _permutations(line, idx)
    X, y = line.data.x_train.astype(np.float64), np.asarray(line.data.y_train)
    k = line.sizes[-1]
    Y = np.eye(k)[y]
    Xv = line.data.x_val.astype(np.float64) if line.has_val else None
    Yv = np.eye(k)[np.asarray(line.data.y_val)] if line.has_val else None

    def relu(z):
        return np.maximum(0, z)

    def ce(W1, B1, W2, B2, Xs, Ys):
        logits = relu(Xs @ W1 + B1) @ W2 + B2
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs = exp / exp.sum(axis=1, keepdims=True)
        return -np.mean(np.sum(Ys * np.log(probs + 1e-8), axis=1)), logits

    def go() -> dict[str, Any]:
        out: dict[str, list[float]] = {}
        for j, run in enumerate(idx):
            W1, B1, W2, B2 = (a[j].copy() for a in p0)
            lr = float(line.hp["learning_rate"][run])
            mu = float(line.hp["momentum"][run]) if "momentum" in line.hp else 0.0
            state = {
                n: [np.zeros_like(a), np.zeros_like(a)] for n, a in zip("ABCD", (W1, B1, W2, B2), strict=True)
            }
            t = 0
            for e in range(line.epochs):
                batches = [None] if perms is None else perms[j, e].reshape(-1, line.batch_size)
                for rows in batches:
                    Xb, Yb = (X, Y) if rows is None else (X[rows], Y[rows])
                    z1 = Xb @ W1 + B1
                    a1 = relu(z1)
                    logits = a1 @ W2 + B2
                    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
                    probs = exp / exp.sum(axis=1, keepdims=True)
                    -np.mean(
                        np.sum(Yb * np.log(probs + 1e-8), axis=1)
                    )  # the lecture computes the loss each step
                    grad_logits = (probs - Yb) / len(Xb)
                    grad_W2 = a1.T @ grad_logits
                    grad_B2 = grad_logits.sum(axis=0)
                    grad_z1 = (grad_logits @ W2.T) * (z1 > 0)
                    grad_W1 = Xb.T @ grad_z1
                    grad_B1 = grad_z1.sum(axis=0)
                    t += 1
                    for n, p, g in (
                        ("A", W1, grad_W1),
                        ("B", B1, grad_B1),
                        ("C", W2, grad_W2),
                        ("D", B2, grad_B2),
                    ):
                        m, v = state[n]
                        if line.optimizer == "adam":
                            m[...] = 0.9 * m + 0.1 * g
                            v[...] = 0.999 * v + 0.001 * g**2
                            p -= lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
                        else:
                            m[...] = mu * m + g
                            p -= lr * m
                if Xv is not None:
                    ce(W1, B1, W2, B2, Xv, Yv)
            for tag, Xs, Ys in (("train", X, Y), ("val", Xv, Yv)):
                if Xs is None:
                    continue
                with np.errstate(all="ignore"):
                    _, logits = ce(W1, B1, W2, B2, Xs, Ys)
                    z = logits - logits.max(axis=1, keepdims=True)
                    loss = np.mean(np.log(np.exp(z).sum(axis=1)) - np.sum(Ys * z, axis=1))
                out.setdefault(f"final_{tag}_loss", []).append(float(loss))
                out.setdefault(f"final_{tag}_accuracy", []).append(
                    float(np.mean(logits.argmax(1) == Ys.argmax(1)))
                )
        return {kk: np.asarray(v) for kk, v in out.items()}

    return Contender(
        "numpy lecture loop",
        idx,
        lambda: 0.0,
        go,
        "the moons lecture's NumPy forward/backward, float64, one run after another",
    )


# ----------------------------------------------------------------------------- correctness


def compare_runs(
    checks: common.Checks,
    line: Line,
    ref: dict[str, Any],
    name: str,
    got: dict[str, Any],
    idx: np.ndarray,
    *,
    exact: bool = False,
) -> dict[str, Any]:
    """Agreement of `got` (runs `idx`) with the project's results `ref` (all runs), run by run.

    The same algorithm from the same start agrees to rounding on stable runs; runs at the
    chaotic edge (large rate and momentum) drift apart at float32 rounding, and NumPy runs
    in float64, so the criteria are: the typical run agrees (median relative final-loss
    difference <= 1e-3), at least 75% of runs end within 0.02 accuracy, and the mean
    accuracy differs by at most max(0.01, 3 standard errors of the paired differences).
    """
    label = f"{line.problem}/{line.name}: {name}"
    if exact:
        same = all(
            np.array_equal(
                np.asarray(ref[m][idx], np.float64), np.asarray(got[m], np.float64), equal_nan=True
            )
            for m in METRICS
            if m in got
        )
        checks.add(
            f"{label} identical to the project API",
            same,
            "every final metric of every run bit-identical" if same else "metrics differ",
        )
        return {"identical": same}
    ref_loss = ref["final_train_loss"][idx]
    ref_acc = ref["final_train_accuracy"][idx]
    loss = np.asarray(got["final_train_loss"], np.float64)
    acc = np.asarray(got["final_train_accuracy"], np.float64)
    # Runs the project flagged diverged are frozen there; the others keep going (to inf/NaN).
    ok = ~ref["diverged"][idx] & np.isfinite(loss) & np.isfinite(ref_loss) & (loss < 1e6)
    n_ok = int(ok.sum())
    enough = n_ok >= max(1, len(idx) // 2)
    nan = float("nan")
    d = (acc - ref_acc)[ok]
    rel_loss = (np.abs(loss - ref_loss) / np.maximum(np.abs(ref_loss), 1e-6))[ok]
    close = float(np.mean(np.abs(d) <= 0.02)) if n_ok else nan
    mean_diff = float(np.mean(d)) if n_ok else nan
    med_rel = float(np.median(rel_loss)) if n_ok else nan
    paired_se = float(np.std(d, ddof=1) / math.sqrt(n_ok)) if n_ok > 1 else 0.0
    allowed = max(0.01, 3 * paired_se)
    detail = (
        f"{n_ok}/{len(idx)} runs comparable; {close:.0%} within 0.02 accuracy; mean accuracy "
        f"{np.mean(acc[ok]) if n_ok else nan:.4f} vs {np.mean(ref_acc[ok]) if n_ok else nan:.4f} "
        f"(allowed difference {allowed:.4f}); median relative loss difference {med_rel:.1e}"
    )
    run_by_run = enough and med_rel <= 1e-3 and close >= 0.75 and abs(mean_diff) <= allowed
    if run_by_run or line.batch_size == 0:
        checks.add(f"{label} matches the project run by run", run_by_run, detail)
    else:
        # Mini-batch orders come from the engine's key derivation (an implementation detail);
        # if it changed, the runs are the same algorithm on other batches: compare distributions.
        se = math.sqrt((np.var(acc[ok]) + np.var(ref_acc[ok])) / n_ok) if n_ok > 1 else float("inf")
        distribution = enough and abs(mean_diff) <= max(0.01, 3 * se)
        checks.add(
            f"{label} matches the project's accuracy distribution",
            distribution,
            detail + f"; runs differ one by one (other batch orders?): allowed {max(0.01, 3 * se):.4f} "
            "(3 standard errors, unpaired)",
        )
    return {
        "comparable": n_ok,
        "frac_within_0.02_acc": close,
        "mean_acc_diff": mean_diff,
        "allowed_mean_acc_diff": allowed,
        "median_rel_loss_diff": med_rel,
        "diverged_project": int(ref["diverged"][idx].sum()),
        "nonfinite_contender": int((~np.isfinite(loss) | (loss >= 1e6)).sum()),
    }


# ----------------------------------------------------------------------------- driver


CONTENDERS = (
    "project API",
    "project runner + expert fn",
    "project CLI",
    "project train per run",
    "expert jit(vmap)",
    "expert jit per run",
    "expert shard_map+lax.map",
    "torch.func.vmap",
    "torch sequential",
    "torch sequential 1-thread",
    "numpy lecture loop",
)
#: The engine's other executions, measured on request (`--contenders`), not by default.
EXTRA_CONTENDERS = ("project API vmap", "project API map_batch_size=8")
BASELINE = "expert jit(vmap)"


def build_contenders(line: Line, names: Sequence[str], workdir: Path) -> list[Contender]:
    init, train = expert_train(
        line.data.x_train,
        line.data.y_train,
        line.data.x_val,
        line.data.y_val,
        line.sizes,
        line.epochs,
        line.batch_size,
        line.optimizer,
    )
    lim = line.size.subset
    makers = {
        "project API": lambda: project_api(line),
        "project runner + expert fn": lambda: project_runner(line, train),
        "project CLI": lambda: project_cli(line, workdir),
        "project train per run": lambda: project_train_sequential(line, lim.get("expert jit per run")),
        "project API vmap": lambda: project_api_variant(line, "vmap", 1),
        "project API map_batch_size=8": lambda: project_api_variant(line, "map", 8),
        "expert jit(vmap)": lambda: expert_vmap(line, train),
        "expert jit per run": lambda: expert_sequential(line, train, lim.get("expert jit per run")),
        "expert shard_map+lax.map": lambda: expert_shard_map(line, train),
        "torch.func.vmap": lambda: torch_vmap(line, init, lim.get("torch.func.vmap")),
        "torch sequential": lambda: torch_sequential(line, init, lim.get("torch sequential")),
        "torch sequential 1-thread": lambda: torch_sequential(
            line, init, lim.get("torch sequential 1-thread"), 1
        ),
        "numpy lecture loop": lambda: numpy_lecture(line, init, lim.get("numpy lecture loop")),
    }
    return [makers[n]() for n in names]


def run_line(
    line: Line, names: Sequence[str], reps: int, peak: common.Spread, checks: common.Checks, workdir: Path
) -> dict[str, Any]:
    import time

    print(
        f"\n## {line.problem} — {line.name}: {line.n_runs} runs, {line.epochs} epochs, sizes {line.sizes}, "
        f"{len(line.data.x_train)} training rows"
        + (
            f", {len(line.data.x_val)} validation rows (loss evaluated every epoch)"
            if line.has_val
            else ", no validation"
        )
        + (f", batch {line.batch_size}" if line.batch_size else ", full batch")
        + f", {line.optimizer}",
        flush=True,
    )
    contenders = build_contenders(line, names, workdir)
    first: dict[str, dict[str, float]] = {}
    results: dict[str, Any] = {}
    for c in contenders:
        if c.is_child:
            continue
        with common.PeakRSS() as mem:
            t0 = time.perf_counter()
            compile_s = c.warmup()
            # The project's warm-up is a whole sweep (compiling inside); the others compile only.
            first_out = None if c.warmup_runs else c.run()
            ttfr = time.perf_counter() - t0
        first[c.name] = {"compile": compile_s, "ttfr": ttfr, "peak_rss": mem.peak, "rss_delta": mem.delta}
        if first_out is not None:
            results[c.name] = first_out
        print(f"  warm-up {c.name}: compile {compile_s:.1f}s, first result {ttfr:.1f}s", flush=True)

    def keep(name: str, r: int, out: Any, sample: common.Sample) -> None:
        results[name] = out
        print(f"  round {r + 1}: {name}: {sample.seconds:.2f}s ({sample.rate:.1f} runs/s)", flush=True)

    samples = common.alternate(
        {c.name: c.run for c in contenders},
        reps,
        work={c.name: len(c.indices) for c in contenders},
        on_result=keep,
    )

    # --- checks
    ref = results.get("project API")
    stats: dict[str, Any] = {}
    if ref is not None:
        for c in contenders:
            if c.name == "project API":
                continue
            stats[c.name] = compare_runs(
                checks, line, ref, c.name, results[c.name], c.indices, exact=c.name == "project CLI"
            )
    if "project runner + expert fn" in results and BASELINE in results:
        a, b = results["project runner + expert fn"], results[BASELINE]
        fin = np.isfinite(a["final_train_loss"]) & np.isfinite(b["final_train_loss"])
        rel = np.abs(a["final_train_loss"] - b["final_train_loss"]) / np.maximum(
            np.abs(b["final_train_loss"]), 1e-6
        )
        # Same function, batched (vmap) or one run at a time (lax.map): only float reassociation
        # differs, which long chaotic runs (thousands of mini-batch steps at large rates) amplify.
        frac = float(np.mean(rel[fin] <= 1e-3)) if fin.any() else float("nan")
        med = float(np.median(rel[fin])) if fin.any() else float("nan")
        checks.add(
            f"{line.problem}/{line.name}: runner(expert fn) vs jit(vmap(expert fn))",
            frac >= 0.75 and med <= 1e-4,
            f"{frac:.0%} of {int(fin.sum())} finite runs within 1e-3 relative final loss, median {med:.1e} "
            "(same function, lax.map vs vmap)",
        )

    # --- table
    flops = line.flops_per_run()
    rows = []
    base = samples.get(BASELINE)
    for c in contenders:
        s = samples[c.name]
        rate = common.rate_spread(s)
        ratio = common.ratio_spread(s, base) if base else common.spread([])
        if c.is_child:
            comp = common.spread(x.extra.get("compile", float("nan")) for x in s)
            ttfr = common.spread(x.extra.get("child_wall", float("nan")) for x in s)
            peak_abs = max(x.peak_rss for x in s)
            delta = "child"
        else:
            comp = common.spread([first[c.name]["compile"]])
            ttfr = common.spread([first[c.name]["ttfr"]])
            peak_abs = max([x.peak_rss for x in s] + [first[c.name]["peak_rss"]])
            delta = common.mib(max(x.rss_delta for x in s))
        gflops = rate.median * flops / 1e9
        rows.append(
            {
                "contender": c.name,
                "runs timed": f"{len(c.indices)}"
                + ("" if len(c.indices) == line.n_runs else f" of {line.n_runs}"),
                "runs/s": rate.fmt(3),
                f"x {BASELINE}": ratio.fmt(3),
                "compile s": comp.fmt(2),
                "first result s": ttfr.fmt(3),
                "peak RSS MiB (Δ)": f"{common.mib(peak_abs)} ({delta})",
                "GFLOP/s": f"{gflops:.2f}",
                "% of matmul peak": f"{100 * gflops / peak.median:.2f}" if peak.median > 0 else "n/a",
            }
        )
        stats.setdefault(c.name, {}).update(
            {
                "runs_timed": len(c.indices),
                "runs_per_second": rate.as_dict(),
                "ratio_vs_baseline": ratio.as_dict(),
                "compile_seconds": comp.as_dict(),
                "first_result_seconds": ttfr.as_dict(),
                "peak_rss_bytes": peak_abs,
                "gflops": gflops,
                "samples_seconds": [x.seconds for x in s],
                "what": c.what,
            }
        )
    print()
    print(common.table(rows))
    limit = peak.median * 1e9 / flops if flops else float("nan")
    print(
        f"\nuseful work: {flops / 1e6:.1f} MFLOP per run (6·rows·Σ d_in·d_out per step"
        + (", + forward on the validation rows" if line.has_val else "")
        + f"); this machine's float32 matmul peak {peak.fmt(3)} GFLOP/s"
        + f" → physical limit ≈ {limit:,.0f} runs/s"
    )
    if ref is not None:
        print(f"project: {int(ref['diverged'].sum())} of {line.n_runs} runs diverged (flagged, frozen)")
    return {
        "problem": line.problem,
        "line": line.name,
        "runs": line.n_runs,
        "epochs": line.epochs,
        "sizes": line.sizes,
        "train_rows": len(line.data.x_train),
        "val_rows": len(line.data.x_val) if line.has_val else 0,
        "batch_size": line.batch_size,
        "optimizer": line.optimizer,
        "mflop_per_run": flops / 1e6,
        "physical_limit_runs_per_s": limit,
        "table": rows,
        "contenders": stats,
        "config": line.raw,
    }


def main(argv: Sequence[str] | None = None) -> int:
    p = common.parser(__doc__.split("\n")[0])
    p.add_argument(
        "--problems", default="moons,minibatch,digits", help="comma-separated: moons,minibatch,digits"
    )
    p.add_argument(
        "--contenders",
        default=",".join(CONTENDERS),
        help="comma-separated subset of: "
        + ", ".join(CONTENDERS + EXTRA_CONTENDERS)
        + " (default: all but the last two)",
    )
    p.add_argument("--devices", type=int, default=None, help="JAX host devices (default: one per core)")
    p.add_argument(
        "--lines",
        default="identical,default",
        help="identical (no validation, every contender), default (moons with the project's "
        "val_fraction 0.2: project API, expert jit(vmap), expert shard_map)",
    )
    args = p.parse_args(argv)
    # Every core becomes a JAX host device before JAX starts: the project's runner and the
    # shard_map contender shard runs over them; the other JAX contenders run on device 0.
    try:
        jax.config.update("jax_num_cpu_devices", args.devices or common.cpu_count())
    except RuntimeError:
        pass  # backend already started (imported by a caller): keep its devices
    which = {s.strip() for s in args.lines.split(",") if s.strip()}
    if not which or not which <= {"identical", "default"}:
        p.error(f"--lines: {args.lines!r}: valid choices: identical, default")
    reps = args.reps or common.default_reps(args.size)
    problems = [s.strip() for s in args.problems.split(",") if s.strip()]
    names = [s.strip() for s in args.contenders.split(",") if s.strip()]
    for pr in problems:
        if pr not in PROBLEMS:
            p.error(f"--problems: {pr!r} is not a valid choice; valid choices: {', '.join(PROBLEMS)}")
    for n in names:
        if n not in CONTENDERS + EXTRA_CONTENDERS:
            p.error(
                f"--contenders: {n!r} is not a valid choice; valid choices: "
                f"{', '.join(CONTENDERS + EXTRA_CONTENDERS)}"
            )
    if "project API" not in names:
        names.insert(0, "project API")  # the reference of every correctness check
    if BASELINE not in names:
        names.append(BASELINE)

    try:
        import torch

        torch.set_num_threads(common.cpu_count())
    except ImportError:
        names = [n for n in names if not n.startswith("torch")]

    info = common.machine_info()
    print("# sweep throughput —", f"--size {args.size}, {reps} round(s) per contender")
    print("machine:", common.format_machine(info))
    print("command:", " ".join([os.path.basename(sys.executable), *sys.argv]))
    peak = common.matmul_peak_gflops(2048 if args.size != "tiny" else 512)
    print(f"float32 matmul peak (jnp, {'2048' if args.size != 'tiny' else '512'}²): {peak.fmt(3)} GFLOP/s")
    checks = common.Checks()
    lines_out = []
    with tempfile.TemporaryDirectory(prefix="jaxopt-bench-") as tmp:
        for pr in problems:
            size = PROBLEMS[pr][args.size]
            if "identical" in which:
                line = build_line(pr, "identical work (no validation)", size, 0.0)
                lines_out.append(
                    run_line(
                        line,
                        [n for n in names if n != "project CLI" or pr == "moons"],
                        reps,
                        peak,
                        checks,
                        Path(tmp),
                    )
                )
            if pr == "moons" and "default" in which:
                line = build_line(pr, "project default (val_fraction 0.2)", size, 0.2)
                default_names = [
                    n for n in ("project API", "expert jit(vmap)", "expert shard_map+lax.map") if n in names
                ]
                lines_out.append(run_line(line, default_names, reps, peak, checks, Path(tmp)))
    payload = {
        "benchmark": "sweep_throughput",
        "size": args.size,
        "reps": reps,
        "machine": info,
        "command": " ".join(["python", "benchmarks/sweep_throughput.py", *(argv or sys.argv[1:])]),
        "matmul_peak_gflops": peak.as_dict(),
        "lines": lines_out,
    }
    return common.finish(checks, payload, args.out)


if __name__ == "__main__":
    sys.exit(main())
