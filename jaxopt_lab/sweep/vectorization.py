"""Check a sweep's vectorized execution against its runs one by one: same numbers, and faster?

`jaxopt-lab sweep CONFIG.toml --out DIR --check-vectorization` calls `check_vectorization`.
For each group of the sweep (runs sharing one compiled program) it takes a small sample of
runs, spread over the group, and runs them

* ``loop``: `jax.jit(group.fn)` compiled once and called run by run from Python on one device,
  which is what a user running each config alone gets;
* every mode of `MODES` (``vmap``, ``map``, ``refill``): `runner.execute` on the sample, exactly as the
  sweep would run it, sharded over all the devices.

Every scalar output of every sampled run (the runs.csv metrics) is compared between each mode
and the loop, and runs/s (compilation excluded) are compared too: vectorizing is not always
faster (on a CPU batched small matrix products can be slower than the runs in sequence).

Tolerance (`TOLERANCES`, chosen by the dtype of each value). Measured on the moons example
(examples/moons_sweep.toml, 16 runs spread over learning rates 1e-3..3 and momenta 0..0.99;
SGD 100 and 400 epochs, Adam 200 epochs, 2 CPU devices), the largest relative difference of
any metric between the loop and vmap or map was 5e-7 in float32 (about 4 ulps) and 1.6e-13
in float64, for every run whose training is not chaotic; ``map`` differs from the loop too
(its program is compiled differently, inside `shard_map`). Hence rtol 1e-5 (float32) and
1e-9 (float64): 20x and 6000x the worst measured, far below any real error (a wrong learning
rate or seed changes the loss by percents within two epochs).

Chaotic runs amplify those rounding differences: with learning rate 1-3 and momentum 0.99 the
loop and vmap agree to 1e-7 for the first 24-76 epochs (float32) and then separate, ending
up to 230% apart (float64: 1.3e-4 after 400 epochs). No tolerance tells that apart from a bug
on the final metrics alone, so a run beyond tolerance is judged by its per-epoch history:
when the histories agree within tolerance for at least `DRIFT_MIN_EPOCHS` epochs before they
separate, the run *drifts* (rounding amplified by the training itself; the loop would drift
as much from any other compilation of the same run) and this is a warning, not a
disagreement. A vectorization bug (wrong hyperparameter, seed, or data reaching a run)
shows in the first epochs. Likewise an integer metric (best_epoch) that differs while the
histories agree within tolerance is a near-tie broken by rounding (seen once in float32: best_epoch
differed while every history agreed within 1e-4): a warning.
Booleans and integers are otherwise compared exactly; NaN equals NaN.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from jaxopt_lab import _cache
from jaxopt_lab.sweep import config_sweep, runner

#: (rtol, atol) per floating dtype: |mode - loop| <= atol + rtol * |loop| (see the module docstring).
TOLERANCES: dict[str, tuple[float, float]] = {
    "float16": (1e-2, 1e-3),
    "bfloat16": (1e-2, 1e-3),
    "float32": (1e-5, 1e-6),
    "float64": (1e-9, 1e-12),
}

#: A run beyond tolerance whose histories agree for at least this many epochs first drifts (a warning).
DRIFT_MIN_EPOCHS = 5

#: `mode(group, devices) -> (per-run outputs in the group's order, stats)`.
ModeFn = Callable[[runner.Group, Sequence[Any]], tuple[list[Any], runner.ExecutionStats]]


def _runner_mode(execution: str) -> ModeFn:
    def run(group: runner.Group, devices: Sequence[Any]) -> tuple[list[Any], runner.ExecutionStats]:
        outputs, stats = runner.execute([group], len(group.indices), execution=execution, devices=devices,
                                        progress=False)
        if execution == "refill":  # (outputs, lane info) per run: the outputs are what is compared
            outputs = [o[0] for o in outputs]
        return outputs, stats

    run.__name__ = f"runner_{execution}"
    return run


#: The vectorized modes checked, in order: a name -> how the sweep runs a group that way.
MODES: dict[str, ModeFn] = {
    "vmap": _runner_mode("vmap"),
    "map": _runner_mode("map"),
    "refill": _runner_mode("refill"),
}


_LOOP_COMPILED = _cache.BoundedCache("vectorization check programs", 32)


def run_loop(group: runner.Group, devices: Sequence[Any]) -> tuple[list[Any], runner.ExecutionStats]:
    """The reference: `jax.jit(group.fn)` compiled once, then one call per run on `devices[0]`."""
    device = devices[0]
    dt = runner._float_dtype()
    keys = sorted(group.hparams)

    def args(i: int):
        seed = jax.device_put(np.asarray(group.seeds[i], np.int32), device)
        hp = {k: jax.device_put(np.asarray(group.hparams[k][i], dt), device) for k in keys}
        return seed, hp

    data = jax.device_put(group.data_args(), device)
    stats = runner.ExecutionStats(runs=len(group.indices), devices=1, execution="loop")
    t0 = time.perf_counter()
    # cached like the runner's programs, so the timed repeats do not compile again
    key = (group.cache_key if group.cache_key is not None else id(group.fn), tuple(keys), str(device), str(dt))
    hit = _LOOP_COMPILED.get(key)
    if hit is None:
        compiled = jax.jit(group.fn).lower(*args(0), *data).compile()
        _LOOP_COMPILED[key] = (compiled, group.fn)  # the fn kept alive so that its id is not reused
        stats.compile_seconds = time.perf_counter() - t0
        stats.compilations = 1
    else:
        compiled = hit[0]
    outputs = []
    for i in range(len(group.indices)):
        outputs.append(jax.device_get(jax.block_until_ready(compiled(*args(i), *data))))
    stats.wall_seconds = time.perf_counter() - t0
    stats.chunks = len(group.indices)
    return outputs, stats


@dataclasses.dataclass
class Difference:
    """One sampled run whose value in `mode` is not the loop's.

    `kind` is ``"disagree"`` (a failure), ``"drift"`` (histories agree for `epoch` epochs, then
    separate: amplified rounding) or ``"tie"`` (an integer metric differs while the histories agree).
    """

    group: int
    run: int
    mode: str
    metric: str
    loop: Any
    value: Any
    abs_diff: float
    rel_diff: float
    kind: str
    epoch: int | None = None

    def describe(self, label: str = "") -> str:
        where = f"run {self.run}" + (f" ({label})" if label else "")
        text = (f"{where}, metric {self.metric}: {self.mode} {_num(self.value)} vs loop {_num(self.loop)} "
                f"(abs diff {self.abs_diff:.3g}, rel diff {self.rel_diff:.3g})")
        if self.kind == "drift":
            text += f"; the histories agree for the first {self.epoch} epochs, then drift apart"
        elif self.kind == "tie":
            text += "; the histories agree within tolerance (a near-tie broken by rounding)"
        return text


@dataclasses.dataclass
class ModeResult:
    """One way of running a group's sample: timings, and its agreement with the loop."""

    mode: str
    runs: int
    devices: int
    compile_seconds: float
    run_seconds: float
    #: over the floating-point metrics; integer and boolean mismatches are in `differences`
    max_abs_diff: float = 0.0
    max_rel_diff: float = 0.0
    differences: list[Difference] = dataclasses.field(default_factory=list)

    @property
    def runs_per_second(self) -> float:
        return self.runs / self.run_seconds if self.run_seconds > 0 else float("nan")

    @property
    def agree(self) -> bool:
        return not any(d.kind == "disagree" for d in self.differences)


@dataclasses.dataclass
class GroupReport:
    group: int
    label: dict[str, Any]
    size: int
    runs: list[int]
    loop: ModeResult
    modes: dict[str, ModeResult]

    def ratio(self, mode: str, per_device: bool = False) -> float:
        """runs/s of `mode` over the loop's (per device: divided by the mode's device count)."""
        m = self.modes[mode]
        r = m.runs_per_second / self.loop.runs_per_second
        return r / m.devices if per_device else r

    @property
    def fastest(self) -> str:
        """The fastest way overall, the one-by-one loop included."""
        allm = {"loop": self.loop, **self.modes}
        return max(allm, key=lambda k: _or(allm[k].runs_per_second, -1.0))

    @property
    def recommended(self) -> str:
        """The fastest sweep execution mode (what to pass to `--execution`)."""
        return max(self.modes, key=lambda k: _or(self.modes[k].runs_per_second, -1.0))

    @property
    def agree(self) -> bool:
        return all(m.agree for m in self.modes.values())


@dataclasses.dataclass
class VectorizationReport:
    """What `check_vectorization` found; `table()` for people, `to_dict()` for vectorization.json."""

    groups: list[GroupReport]
    sample: int
    seed: int
    devices: int
    backend: str
    tolerances: dict[str, tuple[float, float]]
    warnings: list[str]

    @property
    def agree(self) -> bool:
        return all(g.agree for g in self.groups)

    def disagreements(self) -> list[Difference]:
        out = [d for g in self.groups for m in g.modes.values() for d in m.differences if d.kind == "disagree"]
        return sorted(out, key=lambda d: -_or(d.rel_diff, math.inf))

    def label_of(self, group: int) -> str:
        return _label(self.groups[group].label)

    def to_dict(self) -> dict[str, Any]:
        groups = []
        for g in self.groups:
            modes = {}
            for name, m in {"loop": g.loop, **g.modes}.items():
                d: dict[str, Any] = {
                    "devices": m.devices, "runs": m.runs, "compile_seconds": m.compile_seconds,
                    "run_seconds": m.run_seconds, "runs_per_second": _json_num(m.runs_per_second),
                }
                if name != "loop":
                    d.update(
                        speed_ratio=_json_num(g.ratio(name)), speed_ratio_per_device=_json_num(g.ratio(name, True)),
                        max_abs_diff=_json_num(m.max_abs_diff), max_rel_diff=_json_num(m.max_rel_diff),
                        agree=m.agree, differences=[_diff_dict(x) for x in m.differences],
                    )
                modes[name] = d
            groups.append({
                "group": g.group, "label": g.label, "size": g.size, "sampled_runs": g.runs, "modes": modes,
                "fastest": g.fastest, "recommended_execution": g.recommended, "agree": g.agree,
            })
        return {
            "agree": self.agree, "sample": self.sample, "seed": self.seed, "devices": self.devices,
            "backend": self.backend, "tolerances": {k: {"rtol": r, "atol": a} for k, (r, a) in self.tolerances.items()},
            "drift_min_epochs": DRIFT_MIN_EPOCHS, "groups": groups, "warnings": list(self.warnings),
            "disagreements": [_diff_dict(d) for d in self.disagreements()],
        }

    def table(self) -> str:
        cols = ["group", "mode", "devices", "runs", "compile_s", "runs/s", "vs loop", "per device", "max abs diff",
                "max rel diff", "agree"]
        rows = []
        for g in self.groups:
            lab = f"{g.group}" + (f" {_label(g.label)}" if g.label else "")
            rows.append([lab, "loop", str(g.loop.devices), str(g.loop.runs), f"{g.loop.compile_seconds:.2f}",
                         f"{g.loop.runs_per_second:.1f}", "1.00x", "1.00x", "-", "-", "(reference)"])
            for name, m in g.modes.items():
                drift = sum(d.kind in ("drift", "tie") for d in m.differences)
                agree = "yes" if m.agree else "NO"
                if drift:
                    agree += f" ({drift} drift)"
                rows.append(["", name, str(m.devices), str(m.runs), f"{m.compile_seconds:.2f}",
                             f"{m.runs_per_second:.1f}", f"{g.ratio(name):.2f}x", f"{g.ratio(name, True):.2f}x",
                             f"{m.max_abs_diff:.2g}", f"{m.max_rel_diff:.2g}", agree])
        widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
        lines = [
            f"vectorization check: up to {self.sample} runs per group, {len(self.groups)} group(s), "
            f"{self.backend} backend, {self.devices} device(s)",
            "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cols, widths, strict=True))),
        ]
        lines += [
            "  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths, strict=True)))
            for r in rows
        ]
        tol = ", ".join(f"{k} rtol {r:g} atol {a:g}" for k, (r, a) in self.tolerances.items()
                        if k in ("float32", "float64"))
        lines += [
            "",
            "runs/s exclude compilation. The loop runs one run at a time on 1 device; the vectorized modes use "
            f"all {self.devices}: 'vs loop' is the raw speed ratio, 'per device' divides it by the mode's devices.",
            f"tolerance: {tol}; 'drift': a chaotic run whose histories agree for >= {DRIFT_MIN_EPOCHS} epochs, "
            "then separate (rounding amplified by training, not a disagreement).",
        ]
        for g in self.groups:
            where = f"group {g.group}" + (f" ({_label(g.label)})" if g.label else "")
            lines.append(f"recommendation: {where}: --execution {g.recommended} (fastest overall: {g.fastest})")
        return "\n".join(lines)


def sample_positions(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """At most `k` of `range(n)`, one drawn from each of `k` equal strata: spread over the group
    (a grid's runs are ordered by hyperparameter, so the first runs would all share one value)."""
    if n <= k:
        return np.arange(n)
    edges = np.linspace(0, n, k + 1).round().astype(int)
    return np.asarray([int(rng.integers(lo, hi)) for lo, hi in zip(edges[:-1], edges[1:], strict=True)])


def check_vectorization(
    cfg: Any,
    *,
    sample: int = 8,
    seed: int = 0,
    devices: Sequence[Any] | None = None,
    repeats: int = 3,
    modes: Mapping[str, ModeFn] | None = None,
    loop: ModeFn = run_loop,
    sweep_plan: Any = None,
    slower_below: float = 1.0,
) -> VectorizationReport:
    """Run a sample of `cfg`'s sweep one by one and in every vectorized mode; compare numbers and speed.

    Args:
      cfg: a `Config` (its `[sweep]` section); or pass `sweep_plan` (a planned `ConfigSweep`).
      sample: runs per group, at most (the whole group when smaller).
      seed: picks which runs of each group are sampled.
      devices: devices of the vectorized modes (default: all local devices); the loop uses the first.
      repeats: timed executions after the first (which compiles and warms up); the fastest counts,
        since the first call of a program pays one-time costs larger than a small sample's run time.
      modes: name -> mode function (default `MODES`).
      loop: the reference (default `run_loop`).
      slower_below: warn when a mode's runs/s over the loop's is below this.
    """
    if sample < 1:
        raise ValueError(f"sample={sample!r} is out of range: valid range is [1, inf)")
    if repeats < 0:
        raise ValueError(f"repeats={repeats!r} is out of range: valid range is [0, inf)")

    sp = sweep_plan if sweep_plan is not None else config_sweep.plan(cfg)
    modes = dict(MODES if modes is None else modes)
    devices = list(devices) if devices is not None else list(jax.local_devices())
    warnings: list[str] = []
    reports = []
    for gi, g in enumerate(sp.groups):
        pos = sample_positions(len(g.indices), sample, np.random.default_rng([seed, gi]))
        sub = runner.Group(
            fn=g.fn, indices=np.arange(len(pos)), seeds=np.asarray(g.seeds)[pos],
            hparams={k: np.asarray(v)[pos] for k, v in g.hparams.items()}, label=g.label, cache_key=g.cache_key,
            stepper=g.stepper, data=g.data,
        )
        runs = [int(i) for i in np.asarray(g.indices)[pos]]
        ref_out, ref = _timed(loop, sub, devices, repeats, "loop")
        results = {}
        for name, fn in modes.items():
            out, res = _timed(fn, sub, devices, repeats, name)
            _compare(res, ref_out, out, gi, runs)
            results[name] = res
        rep = GroupReport(group=gi, label=dict(g.label), size=len(g.indices), runs=runs, loop=ref, modes=results)
        reports.append(rep)
        where = f"group {gi}" + (f" ({_label(g.label)})" if g.label else "")
        for name, m in results.items():
            ratio = rep.ratio(name)
            if ratio < slower_below:
                warnings.append(
                    f"{where}: {name} is slower than running the runs one by one ({m.runs_per_second:.1f} vs "
                    f"{ref.runs_per_second:.1f} runs/s, {ratio:.2f}x on {m.devices} device(s) against 1; "
                    f"{rep.ratio(name, True):.2f}x per device); fastest sweep mode here: --execution {rep.recommended}"
                )
            for d in m.differences:
                if d.kind != "disagree":
                    warnings.append(f"{where}: {d.describe()}")
    return VectorizationReport(
        groups=reports, sample=sample, seed=seed, devices=len(devices), backend=jax.default_backend(),
        tolerances=dict(TOLERANCES), warnings=warnings,
    )


def _timed(fn: ModeFn, group: runner.Group, devices: Sequence[Any], repeats: int,
           name: str) -> tuple[list[Any], ModeResult]:
    """First call: outputs and compile time; then `repeats` more calls, the fastest run time counts."""
    out, st = fn(group, devices)
    best = st.wall_seconds - st.compile_seconds
    for _ in range(repeats):
        _, again = fn(group, devices)
        best = min(best, again.wall_seconds - again.compile_seconds)
    return out, ModeResult(mode=name, runs=st.runs, devices=st.devices, compile_seconds=st.compile_seconds,
                           run_seconds=best)


def _scalars(tree: Any) -> dict[str, np.ndarray]:
    return {_name(p): np.asarray(a) for p, a in jax.tree_util.tree_flatten_with_path(tree)[0] if np.ndim(a) == 0}


def _series(tree: Any) -> dict[str, np.ndarray]:
    return {_name(p): np.asarray(a) for p, a in jax.tree_util.tree_flatten_with_path(tree)[0] if np.ndim(a) == 1}


def _name(path: Any) -> str:
    name = jax.tree_util.keystr(path, simple=True, separator=".")
    return name.removeprefix("metrics.")


def _tol(a: np.ndarray) -> tuple[float, float]:
    return TOLERANCES.get(np.asarray(a).dtype.name, TOLERANCES["float32"])


def _diff(a: Any, b: Any) -> tuple[float, float, bool]:
    """(abs diff, rel diff, within tolerance) of two scalars; NaN equals NaN, non-floats exactly."""
    a, b = np.asarray(a), np.asarray(b)
    if not (np.issubdtype(a.dtype, np.floating) and np.issubdtype(b.dtype, np.floating)):
        d = abs(float(a) - float(b))
        return d, d / max(abs(float(a)), 1.0), bool(a == b)
    fa, fb = float(a), float(b)
    if math.isnan(fa) or math.isnan(fb):
        same = math.isnan(fa) and math.isnan(fb)
        return (0.0, 0.0, True) if same else (math.inf, math.inf, False)
    if fa == fb:  # equal infinities too
        return 0.0, 0.0, True
    d = abs(fa - fb)
    rtol, atol = _tol(a)
    return d, d / abs(fa) if fa != 0 else math.inf, d <= atol + rtol * abs(fa)


def _first_divergent_epoch(ref: Any, out: Any) -> int | None:
    """The first epoch at which any per-epoch history differs beyond tolerance (None: they agree)."""
    a_all, b_all = _series(ref), _series(out)
    first = None
    for key, a in a_all.items():
        b = b_all.get(key)
        if b is None or b.shape != a.shape:
            return 0
        if not np.issubdtype(a.dtype, np.floating):
            bad = a != b
        else:
            rtol, atol = _tol(a)
            af, bf = a.astype(np.float64), b.astype(np.float64)
            with np.errstate(invalid="ignore"):
                close = np.isclose(bf, af, rtol=rtol, atol=atol, equal_nan=True)
            bad = ~close
        if bad.any():
            e = int(np.argmax(bad))
            first = e if first is None else min(first, e)
    return first


def _compare(res: ModeResult, ref_out: Sequence[Any], out: Sequence[Any], group: int, runs: Sequence[int]) -> None:
    for j, (r, o) in enumerate(zip(ref_out, out, strict=True)):
        rs, os_ = _scalars(r), _scalars(o)
        beyond = []
        for key, a in rs.items():
            if key not in os_:
                beyond.append(Difference(group, runs[j], res.mode, key, a.item(), None, math.inf, math.inf, "disagree"))
                continue
            d_abs, d_rel, ok = _diff(a, os_[key])
            if np.issubdtype(a.dtype, np.floating):  # integers and flags differ in units, not rounding
                res.max_abs_diff = max(res.max_abs_diff, d_abs)
                res.max_rel_diff = max(res.max_rel_diff, d_rel)
            if not ok:
                beyond.append(Difference(group, runs[j], res.mode, key, a.item(), os_[key].item(), d_abs, d_rel,
                                         "disagree"))
        if not beyond:
            continue
        first = _first_divergent_epoch(r, o)
        only_ints = all(not np.issubdtype(np.asarray(d.loop).dtype, np.floating) for d in beyond)
        if first is not None and first >= DRIFT_MIN_EPOCHS:
            kind = "drift"
        elif first is None and only_ints and _series(r):
            kind = "tie"
        else:
            kind = "disagree"
        worst = max(beyond, key=lambda d: _or(d.rel_diff, math.inf))
        worst.kind, worst.epoch = kind, first
        # one entry per run and mode (its worst metric) keeps the report readable
        res.differences.append(worst)


def _or(x: float, default: float) -> float:
    return default if x is None or (isinstance(x, float) and math.isnan(x)) else x


def _label(label: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in label.items())


def _num(v: Any) -> str:
    if v is None:
        return "missing"
    if isinstance(v, float):
        return f"{v:.6g}"
    return str(v)


def _json_num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _diff_dict(d: Difference) -> dict[str, Any]:
    out = dataclasses.asdict(d)
    for k in ("abs_diff", "rel_diff"):
        out[k] = _json_num(out[k])
    for k in ("loop", "value"):
        v = out[k]
        if isinstance(v, float) and not math.isfinite(v):
            out[k] = str(v)
    return out
