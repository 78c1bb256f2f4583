"""`jaxopt-lab`: the command line (SPEC section 3).

Exit status: 0 success; 2 bad input (config, file, argument) with one line on
stderr naming the offending key or value and the valid choices, no traceback,
and no results folder left behind; 1 anything else.

JAX's host device count and 64-bit mode must be fixed before JAX initializes
its backend, so each command decides them first, from its arguments and the
config, and only then imports anything that computes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_ERROR, EXIT_BAD_INPUT = 0, 1, 2


class BadInput(Exception):
    """Bad user input: printed as one line, exit status 2."""


def _setup_jax(devices: int | None, x64: bool) -> None:
    import jax

    if x64:
        jax.config.update("jax_enable_x64", True)
    n = devices if devices is not None else (os.cpu_count() or 1)
    if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
        try:
            jax.config.update("jax_num_cpu_devices", max(1, n))
        except RuntimeError:
            pass
    cache = os.environ.get("JAXOPT_LAB_CACHE_DIR", str(Path.home() / ".cache" / "jaxopt_lab" / "xla"))
    if cache:
        try:
            jax.config.update("jax_compilation_cache_dir", cache)
            jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
        except Exception:  # noqa: BLE001 - the cache is an optimization only
            pass


def _load_config(path: str):
    from jaxopt_lab import config as config_mod

    try:
        return config_mod.load(path)
    except config_mod.ConfigError as e:
        raise BadInput(str(e)) from None


def _check_out(out: str | None, *, resume: bool = False, required: bool = False) -> Path | None:
    if out is None:
        if required:
            raise BadInput("--out DIR is required")
        return None
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise BadInput(f"--out {out!r} exists and is not a folder")
    if p.is_dir() and not resume:
        ckpt = p / "checkpoints"
        if ckpt.is_dir() and any(ckpt.iterdir()):
            raise BadInput(f"--out {out!r} holds an interrupted sweep: pass --resume to continue it, or remove it")
    return p


def _fmt(v: Any) -> str:
    from jaxopt_lab.report import format_value

    return format_value(v) or "-"


def best_table(rows: list[dict], keys: list[str], n: int = 5) -> str:
    """A short text table of the best runs (lowest best validation loss, diverged last)."""
    metric = "best_val_loss" if any(r.get("best_val_loss") is not None for r in rows) else "final_train_loss"

    def rank(r):
        v = r.get(metric)
        return (bool(r.get("diverged")), v is None, v if v is not None else 0.0)

    top = sorted(rows, key=rank)[:n]
    cols = ["run", *keys, "seed", metric, "final_val_accuracy", "final_train_accuracy", "epochs_run", "diverged"]
    cols = list(dict.fromkeys(cols))
    table = [[_fmt(r.get(c)) for c in cols] for r in top]
    widths = [max(len(c), *(len(row[i]) for row in table)) if table else len(c) for i, c in enumerate(cols)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in table]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- commands


def cmd_list(args: argparse.Namespace) -> int:
    from jaxopt_lab import registry
    from jaxopt_lab.protocols import PROTOCOLS

    sections = {
        "optimizers": list(registry.optimizers()),
        "schedules": list(registry.schedules()),
        "datasets": registry.dataset_names(),
        "models": ["mlp (model.hidden, model.activation, model.init, model.norm, model.dropout)"],
        "activations": registry.activation_names(),
        "initializers": [*registry.initializer_names(), "auto"],
        "losses": registry.loss_names(),
        "protocols (sweep --protocol)": [f"{name}: {m.TITLE}" for name, m in PROTOCOLS.items()],
    }
    for name, items in sections.items():
        print(f"{name}:")
        for item in items:
            print(f"  {item}")
    return EXIT_OK


def cmd_compare_optax(args: argparse.Namespace) -> int:
    _setup_jax(1, x64=True)
    from jaxopt_lab.optim import parity

    if args.steps < 1:
        raise BadInput(f"--steps {args.steps} is out of range: valid range is [1, inf)")
    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    try:
        rows = parity.parity_table(steps=args.steps, seed=args.seed, only=only)
    except ValueError as e:
        raise BadInput(f"--only: {e}") from None
    print(parity.format_parity_table(rows))
    return EXIT_OK


def cmd_train(args: argparse.Namespace) -> int:
    cfg = _load_config(args.config)
    out = _check_out(args.out)
    if args.seed < 0:
        raise BadInput(f"--seed {args.seed} is out of range: valid range is [0, inf)")
    _setup_jax(1, x64=cfg.train.precision == "float64")
    from jaxopt_lab import single_run as run_one

    try:
        trainer = run_one.build(cfg)
    except ValueError as e:
        raise BadInput(str(e)) from None
    out = out or Path("runs") / f"train-{time.strftime('%Y%m%d-%H%M%S')}"
    result = run_one.train_and_write(trainer, out, seed=args.seed)
    print(f"wrote {out}")
    print(best_table([result], []))
    return EXIT_OK


def _check_vectorization_args(args: argparse.Namespace) -> None:
    """Checked before JAX starts, so that bad input costs no startup and leaves no folder."""
    if not getattr(args, "check_vectorization", False):
        if getattr(args, "sample", None) is not None:
            raise BadInput("--sample N only applies with --check-vectorization")
        return
    if args.sample is not None and args.sample < 1:
        raise BadInput(f"--sample {args.sample} is out of range: valid range is [1, inf)")
    if args.coordinator:
        raise BadInput("--check-vectorization runs in one process: drop --coordinator/--num-processes/--process-id")


def _run_vectorization_check(args: argparse.Namespace, plan: Any, out: Path) -> int:
    """`sweep --check-vectorization`: the check alone (no sweep); 0 when the numbers agree, 1 when not."""
    import json

    from jaxopt_lab.sweep import vectorization

    sample = args.sample if args.sample is not None else 8
    print(f"check-vectorization: up to {sample} runs of each of {len(plan.groups)} group(s), one by one and "
          f"vectorized ({', '.join(vectorization.MODES)})", file=sys.stderr)
    report = vectorization.check_vectorization(plan.config, sample=sample, sweep_plan=plan)
    print(report.table())
    for w in report.warnings:
        print(f"warning: {w}", file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    target = out / "vectorization.json"
    tmp = out / f".vectorization.json.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
    os.replace(tmp, target)  # readers never see a half-written file
    print(f"wrote {target}")
    bad = report.disagreements()
    if bad:
        more = f" (and {len(bad) - 1} more, see {target})" if len(bad) > 1 else ""
        print(f"jaxopt-lab: vectorized results disagree: {bad[0].describe(report.label_of(bad[0].group))}{more}",
              file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


def _sweep_protocol(args: argparse.Namespace, cfg: Any, out: Path) -> int:
    """`sweep --protocol NAME` or `[sweep] protocol`: a benchmark protocol's sweeps, tables and report."""
    unsupported = {"--resume": args.resume, "--coordinator": args.coordinator,
                   "--check-vectorization": getattr(args, "check_vectorization", False),
                   "--lanes": getattr(args, "lanes", None) is not None}
    for flag, given in unsupported.items():
        if given:
            raise BadInput(f"{flag} does not apply to a protocol run (--protocol / sweep.protocol)")
    _setup_jax(args.devices, x64=cfg.train.precision == "float64")
    from jaxopt_lab import protocols
    from jaxopt_lab.config import ConfigError

    try:
        path = protocols.run_protocol(cfg, out, protocol=args.protocol, execution=args.execution,
                                      chunk_size=args.chunk_size)
    except ConfigError as e:
        raise BadInput(str(e)) from None
    print(f"wrote {path}  ({path / 'index.html'})")
    return EXIT_OK


def _sweep_adaptive(args: argparse.Namespace, cfg: Any, out: Path) -> int:
    """`[sweep.adaptive]`: rounds of trials proposed by an Optuna sampler (`jaxopt_lab.sweep.search`)."""
    unsupported = {"--coordinator": args.coordinator, "--check-vectorization": args.check_vectorization,
                   "--chunk-size": args.chunk_size is not None, "--lanes": args.lanes is not None}
    for flag, given in unsupported.items():
        if given:
            raise BadInput(f"{flag} does not apply to an adaptive search (sweep.adaptive): each round is one chunk")
    _setup_jax(args.devices, x64=cfg.train.precision == "float64")
    from jaxopt_lab.config import ConfigError
    from jaxopt_lab.sweep import search
    from jaxopt_lab.sweep.runner import SweepInterrupted

    try:
        search.check_config(cfg)
        result, study = search.run_config_search(cfg, record_dir=out / "checkpoints" / "search", resume=args.resume,
                                                 execution=args.execution)
    except (ConfigError, ValueError, search.MissingOptuna) as e:
        raise BadInput(str(e)) from None
    except SweepInterrupted:
        print("search interrupted: the finished rounds are saved; rerun with --resume", file=sys.stderr)
        return 130
    search.write_config_search(out, result, study, report=not args.no_report)
    import shutil

    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    best = result.extra_summary["search"]["best_trial"]
    print(f"wrote {out}  ({len(study.trials)} trials in {study.opts.rounds} rounds, "
          f"{result.stats.compilations} compilation(s); best {study.opts.objective} = "
          f"{_fmt(best['value']) if best else '-'})")
    return EXIT_OK


def _sweep_pbt(args: argparse.Namespace, cfg: Any, out: Path) -> int:
    """`[sweep.pbt]`: population-based training in one compiled program (`jaxopt_lab.sweep.pbt`)."""
    unsupported = {"--coordinator": args.coordinator, "--check-vectorization": args.check_vectorization,
                   "--chunk-size": args.chunk_size is not None, "--lanes": args.lanes is not None}
    for flag, given in unsupported.items():
        if given:
            raise BadInput(f"{flag} does not apply to population-based training (sweep.pbt)")
    _setup_jax(args.devices, x64=cfg.train.precision == "float64")
    from jaxopt_lab.config import ConfigError
    from jaxopt_lab.sweep import pbt

    try:
        pbt.check_config(cfg)
        result, res = pbt.run_config_pbt(cfg, checkpoint_dir=out / "checkpoints" / "pbt", resume=args.resume)
    except (ConfigError, ValueError) as e:
        raise BadInput(str(e)) from None
    pbt.write_config_pbt(out, result, res, report=not args.no_report)
    import shutil

    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    print(f"wrote {out}  ({len(result.rows)} members, {len(res.epochs)} exploit steps, "
          f"{res.compilations} compilation(s))")
    return EXIT_OK


def cmd_sweep(args: argparse.Namespace) -> int:
    cfg = _load_config(args.config)
    out = _check_out(args.out, resume=args.resume, required=True)
    if args.chunk_size is not None and args.chunk_size < 1:
        raise BadInput(f"--chunk-size {args.chunk_size} is out of range: valid range is [1, inf)")
    if args.lanes is not None and args.lanes < 1:
        raise BadInput(f"--lanes {args.lanes} is out of range: valid range is [1, inf)")
    if args.devices is not None and args.devices < 1:
        raise BadInput(f"--devices {args.devices} is out of range: valid range is [1, inf)")
    if args.num_processes > 1 or args.coordinator:
        if not args.coordinator or args.process_id is None:
            raise BadInput("--coordinator HOST:PORT, --num-processes N and --process-id I go together")
    if getattr(args, "protocol", None) is not None or (cfg.sweep or {}).get("protocol") is not None:
        return _sweep_protocol(args, cfg, out)
    if "adaptive" in (cfg.sweep or {}):
        return _sweep_adaptive(args, cfg, out)
    if "pbt" in (cfg.sweep or {}):
        return _sweep_pbt(args, cfg, out)
    _check_vectorization_args(args)
    _setup_jax(args.devices, x64=cfg.train.precision == "float64")
    import jax

    if args.coordinator:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
        jax.distributed.initialize(
            coordinator_address=args.coordinator, num_processes=args.num_processes, process_id=args.process_id
        )
    from jaxopt_lab.config import ConfigError
    from jaxopt_lab.sweep import config_sweep
    from jaxopt_lab.sweep.runner import SweepInterrupted

    try:
        plan = config_sweep.plan(cfg)
    except (ConfigError, ValueError) as e:
        raise BadInput(str(e)) from None
    if args.check_vectorization:
        return _run_vectorization_check(args, plan, out)
    devices = jax.devices() if args.coordinator else None
    print(f"sweep: {len(plan.points)} runs in {len(plan.groups)} group(s) on {len(devices or jax.local_devices())} "
          f"device(s)", file=sys.stderr)
    try:
        result = config_sweep.run_sweep(
            cfg, checkpoint_dir=out / "checkpoints", resume=args.resume, execution=args.execution,
            chunk_size=args.chunk_size, sweep_plan=plan, devices=devices, lanes=args.lanes,
        )
    except ConfigError as e:
        raise BadInput(str(e)) from None
    except SweepInterrupted as e:
        print(str(e), file=sys.stderr)
        return 130
    if jax.process_index() == 0:
        config_sweep.write_results(out, result, report=not args.no_report)
        import shutil

        shutil.rmtree(out / "checkpoints", ignore_errors=True)
        st = result.stats
        print(f"wrote {out}  ({st.runs} runs, {st.runs_per_second:.1f} runs/s, compile {st.compile_seconds:.1f}s)")
        print(best_table(result.rows, plan.swept_keys))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    out = _check_out(args.out) or Path("jaxopt-lab-report")
    if out.is_dir() and any(out.iterdir()) and not (out / "index.html").exists():
        raise BadInput(f"--out {str(out)!r} is a non-empty folder that is not an earlier report; choose another")
    _setup_jax(None, x64=True)
    from jaxopt_lab import demo

    index = demo.run_demo(out, size=args.size)
    print(f"wrote {index}")
    return EXIT_OK


# ----------------------------------------------------------------------------- parser


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit status 2
        self.exit(EXIT_BAD_INPUT, f"jaxopt-lab: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="jaxopt-lab", description="Study how neural networks are trained and optimized.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    d = sub.add_parser("demo", help="run the lectures' experiments at demo size and write a report")
    d.add_argument("--out", help="report folder (default: ./jaxopt-lab-report)")
    d.add_argument("--size", choices=("tiny", "demo"), default="demo", help="problem sizes (tiny: seconds)")
    d.set_defaults(func=cmd_demo)

    t = sub.add_parser("train", help="one run of a config")
    t.add_argument("config", help="CONFIG.toml")
    t.add_argument("--out", help="output folder (default: runs/train-TIMESTAMP)")
    t.add_argument("--seed", type=int, default=0, help="the run's seed (default 0)")
    t.set_defaults(func=cmd_train)

    s = sub.add_parser("sweep", help="every run of the config's sweep, vectorized")
    s.add_argument("config", help="CONFIG.toml")
    s.add_argument("--out", required=True, help="output folder")
    s.add_argument("--resume", action="store_true", help="continue an interrupted sweep in --out")
    s.add_argument("--execution", choices=("auto", "map", "vmap", "refill"), default="auto",
                   help="runs per device one after another (map: fastest on CPU), batched (vmap: GPU/TPU), or "
                   "batched in lanes that take the next run when theirs stops (refill)")
    s.add_argument("--lanes", type=int, default=None, help="lanes of a refilling sweep (default: sweep.lanes, "
                   "or sized from the chunk)")
    s.add_argument("--chunk-size", type=int, default=None, help="runs per compiled chunk (default: from config "
                   "or a memory budget)")
    s.add_argument("--devices", type=int, default=None, help="CPU host devices to shard over (default: cores)")
    s.add_argument("--no-report", action="store_true", help="skip plots and the HTML report")
    s.add_argument("--coordinator", help="HOST:PORT of process 0 for a multi-process sweep")
    s.add_argument("--num-processes", type=int, default=1)
    s.add_argument("--process-id", type=int, default=None)
    s.add_argument("--check-vectorization", action="store_true",
                   help="instead of the sweep: run a sample of each group one by one and vectorized (vmap, map), "
                   "compare numbers and speed, write DIR/vectorization.json; exit 1 if the numbers disagree")
    s.add_argument("--sample", type=int, default=None,
                   help="runs per group for --check-vectorization (default 8)")
    s.add_argument("--protocol", default=None, metavar="NAME",
                   help="run a benchmark protocol instead of the config's sweep: deepobs, crowded_valley, choi, "
                   "algoperf (also [sweep] protocol = NAME; options in [sweep.protocol_options]; docs/protocols.md)")
    s.set_defaults(func=cmd_sweep)

    li = sub.add_parser("list", help="optimizers, schedules, datasets, models, activations, initializers, protocols")
    li.set_defaults(func=cmd_list)

    c = sub.add_parser("compare-optax", help="parity table of every shared optimizer against optax")
    c.add_argument("--steps", type=int, default=100)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--only", help="comma-separated optimizer names (default: every shared optimizer)")
    c.set_defaults(func=cmd_compare_optax)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BadInput as e:
        print(f"jaxopt-lab: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("jaxopt-lab: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 - anything else: one line plus the type, status 1
        if os.environ.get("JAXOPT_LAB_DEBUG"):
            raise
        print(f"jaxopt-lab: failed: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())

