"""`jaxopt-lab`: the command line (docs/guide.md; `jaxopt-lab --help`).

Exit status: 0 success; 2 bad input (config, file, argument) with one line on
stderr naming the offending key or value and the valid choices, no traceback,
and no results folder left behind; 1 anything else.

JAX's host device count and 64-bit mode must be fixed before JAX initializes
its backend, so each command decides them first, from its arguments and the
config, and only then imports anything that computes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
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


def parse_set(items: list[str] | None) -> dict[str, Any]:
    """``--set section.key=value`` items as {dotted key: value}; values are TOML (``0.3``, ``[32, 32]``,
    ``true``, ``"adam"``), and a bare word that is not TOML (``adam``) is taken as a string."""
    import tomllib

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key, text = key.strip(), text.strip()
        if not sep or not key:
            raise BadInput(f"--set {item!r} must be section.key=value, e.g. --set optimizer.learning_rate=0.3")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            if not text or not all(c.isalnum() or c in "_-.:/" for c in text):
                raise BadInput(f"--set {key}: {text!r} is not a TOML value (quote strings: {key}='\"...\"')") from None
            value = text
        out[key] = value
    return out


def _load_config(path: str, overrides: list[str] | None = None):
    from jaxopt_lab import config as config_mod

    try:
        return config_mod.load(path, parse_set(overrides))
    except config_mod.ConfigError as e:
        raise BadInput(str(e)) from None


def _check_out(out: str | None, names: tuple[str, ...] = (), *, resume: bool = False,
               required: bool = False, sweep: bool = False) -> Path | None:
    """Check --out before any work, under the output-folder contract (`jaxopt_lab._io`): leftovers of an
    interrupted publish are cleaned, and an entry the user owns under one of `names` is refused."""
    from jaxopt_lab import _io

    if out is None:
        if required:
            raise BadInput("--out DIR is required")
        return None
    try:
        p = _io.prepare(out, names)
    except _io.OutputFolderError as e:
        raise BadInput(str(e)) from None
    ckpt = p / _io.CHECKPOINTS
    if not sweep:
        return p
    if os.path.lexists(ckpt) and not (ckpt / _io.CHECKPOINT_MANIFEST).is_file():
        if not ckpt.is_dir() or any(ckpt.iterdir()):
            raise BadInput(f"--out {out!r} holds {str(ckpt)!r}, which jaxopt_lab did not write (no "
                           f"{_io.CHECKPOINT_MANIFEST}): move it away or choose another --out")
    if not resume and (ckpt / _io.CHECKPOINT_MANIFEST).is_file():
        raise BadInput(f"--out {out!r} holds an interrupted sweep: pass --resume to continue it, or remove it")
    return p


def best_table(rows: list[dict], keys: list[str], n: int = 5) -> str:
    """A short text table of the best runs (lowest best validation loss, diverged last)."""
    from jaxopt_lab.report_page import text_cell
    from jaxopt_lab.sweep.records import loss_column

    metric = loss_column(rows)

    def rank(r):
        v = r.get(metric)
        return (bool(r.get("diverged")), v is None, v if v is not None else 0.0)

    top = sorted(rows, key=rank)[:n]
    cols = ["run", *keys, "seed", metric, "final_val_accuracy", "final_train_accuracy", "epochs_run", "diverged"]
    cols = list(dict.fromkeys(cols))
    table = [[text_cell(r.get(c)) for c in cols] for r in top]
    widths = [max(len(c), *(len(row[i]) for row in table)) if table else len(c) for i, c in enumerate(cols)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in table]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- commands


def cmd_list(args: argparse.Namespace) -> int:
    from jaxopt_lab import config, registry
    from jaxopt_lab.protocols import PROTOCOLS

    sections = {
        "optimizers": list(registry.optimizers()),
        "schedules": list(registry.schedules()),
        "datasets": registry.dataset_names(),
        "models": [
            "mlp (model.kind = 'mlp': model.hidden, model.activation, model.init, model.norm, model.dropout)",
            "cnn (model.kind = 'cnn': model.channels, model.kernels, model.strides, model.image_shape, model.pool, "
            "model.hidden)",
            "your own (model.factory = 'package.module:function' with [model.kwargs]: a jaxopt_lab.models.Model, "
            "or a Flax linen/NNX or Equinox module)",
        ],
        "activations": registry.activation_names(),
        "initializers": [*registry.initializer_names(), "auto"],
        "losses": registry.loss_names(),
        "protocols (sweep --protocol)": [f"{name}: {m.TITLE}" for name, m in PROTOCOLS.items()],
        "keys (default, valid values; traced: swept without recompiling)": config.key_lines(),
    }
    what = getattr(args, "what", None)
    if what is not None:
        names = {name.split(" ")[0]: name for name in sections}
        if what not in names:
            raise BadInput(str(config.choices_error("list WHAT", what, names)))
        sections = {names[what]: sections[names[what]]}
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
    # Every case compares a name against optax's own, so `optax.adam` asks for the `adam` case.
    only = [n.removeprefix("optax.") if n.count(".") == 1 else n for n in only] if only else None
    try:
        rows = parity.parity_table(steps=args.steps, seed=args.seed, only=only)
    except ValueError as e:
        raise BadInput(f"--only: {e}") from None
    print(parity.format_parity_table(rows))
    return EXIT_OK


def _check_seed(flag: str, seed: int) -> None:
    from jaxopt_lab.config import ConfigError, check_seed

    try:
        check_seed(flag, seed)
    except ConfigError as e:
        raise BadInput(str(e)) from None


def cmd_train(args: argparse.Namespace) -> int:
    cfg = _load_config(args.config, args.set)
    _check_seed("--seed", args.seed)
    from jaxopt_lab import _io

    out = _check_out(args.out, _io.TRAIN_OUTPUTS)
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
    from jaxopt_lab import _io

    target = out / "vectorization.json"
    # Readers never see a half-written file; a user's own vectorization.json is refused, not replaced.
    with _io.publish(out, replace=False) as stage:
        (stage / target.name).write_text(json.dumps(report.to_dict(), indent=2, default=str) + "\n")
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


def _with_log_flags(cfg: Any, args: argparse.Namespace) -> Any:
    """`--tensorboard DIR` / `--mlflow URI` set `[sweep.log]` (checked with the rest of the sweep)."""
    flags = {k: v for k, v in (("tensorboard", args.tensorboard), ("mlflow", args.mlflow)) if v is not None}
    if not flags:
        return cfg
    log = dict((cfg.sweep or {}).get("log") or {})
    return cfg.replace(sweep={**(cfg.sweep or {}), "log": {**log, **flags}})


def _check_process_args(args: argparse.Namespace) -> tuple[str, int] | None:
    """--coordinator HOST:PORT, --num-processes N, --process-id I, --coordinator-timeout S: checked
    before JAX starts. Returns (host, port) for a multi-process run, None for one process."""
    if args.num_processes < 1:
        raise BadInput(f"--num-processes {args.num_processes} is out of range: valid range is [1, inf)")
    if args.coordinator_timeout is not None and not (1 <= args.coordinator_timeout <= 86400):
        raise BadInput(f"--coordinator-timeout {args.coordinator_timeout} is out of range: valid range is "
                       "[1, 86400] seconds")
    if args.num_processes == 1 and not args.coordinator and args.process_id in (None, 0):
        return None
    if not args.coordinator or args.process_id is None or args.num_processes < 2:
        raise BadInput("--coordinator HOST:PORT, --num-processes N (N >= 2) and --process-id I go together")
    if not 0 <= args.process_id < args.num_processes:
        raise BadInput(f"--process-id {args.process_id} is out of range: valid range is [0, "
                       f"{args.num_processes - 1}] for --num-processes {args.num_processes}")
    host, sep, port = args.coordinator.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise BadInput(f"--coordinator {args.coordinator!r} must be HOST:PORT with a port in [1, 65535], "
                       "e.g. 10.0.0.1:1234")
    return host, int(port)


def _sweep_needs_x64(cfg: Any) -> bool:
    """Whether any run of the sweep trains in float64 (`train.precision` set or swept): 64-bit mode is
    process-wide and must be on before JAX starts; float32 groups still run in float32."""
    from jaxopt_lab.sweep import config_sweep

    return cfg.train.precision == "float64" or "float64" in config_sweep.swept_values(cfg, "train.precision")


def _claim_checkpoints(out: Path, cfg: Any, resume: bool) -> None:
    """A search method records its progress under OUT/checkpoints: that folder gets the sweep's
    manifest, so --resume finds it jaxopt_lab's and a changed config is refused."""
    import hashlib
    import json

    from jaxopt_lab import _io, config
    from jaxopt_lab.config import ConfigError
    from jaxopt_lab.sweep import runner

    raw = json.dumps(config.to_dict(cfg), sort_keys=True, default=str).encode()
    try:
        runner.prepare_checkpoints(out / _io.CHECKPOINTS, hashlib.sha256(raw).hexdigest(), resume)
    except (ConfigError, ValueError) as e:
        raise BadInput(str(e)) from None


def _refuse_run_flags(args: argparse.Namespace, method: str) -> None:
    """The sweep flags that plan chunks, lanes or processes, which a search method plans itself."""
    unsupported = {"--coordinator": args.coordinator, "--check-vectorization": args.check_vectorization,
                   "--chunk-size": args.chunk_size is not None, "--lanes": args.lanes is not None}
    for flag, given in unsupported.items():
        if given:
            raise BadInput(f"{flag} does not apply to {method}")


def _sweep_adaptive(args: argparse.Namespace, cfg: Any, out: Path) -> int:
    """`[sweep.adaptive]`: rounds of trials proposed by an Optuna sampler (`jaxopt_lab.sweep.search`)."""
    _refuse_run_flags(args, "an adaptive search (sweep.adaptive): each round is one chunk")
    _setup_jax(args.devices, x64=cfg.train.precision == "float64")
    from jaxopt_lab.config import ConfigError
    from jaxopt_lab.sweep import search
    from jaxopt_lab.sweep.runner import SweepInterrupted

    try:
        search.check_config(cfg)
    except (ConfigError, ValueError, search.MissingOptuna) as e:
        raise BadInput(str(e)) from None
    _claim_checkpoints(out, cfg, args.resume)  # only once the config is known good
    try:
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
    from jaxopt_lab.report_page import text_cell

    print(f"wrote {out}  ({len(study.trials)} trials in {study.opts.rounds} rounds, "
          f"{result.stats.compilations} compilation(s); best {study.opts.objective} = "
          f"{text_cell(best['value']) if best else '-'})")
    return EXIT_OK


def _sweep_pbt(args: argparse.Namespace, cfg: Any, out: Path) -> int:
    """`[sweep.pbt]`: population-based training in one compiled program (`jaxopt_lab.sweep.pbt`)."""
    _refuse_run_flags(args, "population-based training (sweep.pbt)")
    _setup_jax(args.devices, x64=cfg.train.precision == "float64")
    from jaxopt_lab.config import ConfigError
    from jaxopt_lab.sweep import pbt

    try:
        pbt.check_config(cfg)
    except (ConfigError, ValueError) as e:
        raise BadInput(str(e)) from None
    _claim_checkpoints(out, cfg, args.resume)  # only once the config is known good
    try:
        result, res = pbt.run_config_pbt(cfg, checkpoint_dir=out / "checkpoints" / "pbt", resume=args.resume)
    except (ConfigError, ValueError) as e:
        raise BadInput(str(e)) from None
    pbt.write_config_pbt(out, result, res, report=not args.no_report)
    import shutil

    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    print(f"wrote {out}  ({len(result.rows)} members, {len(res.epochs)} exploit steps, "
          f"{res.compilations} compilation(s))")
    return EXIT_OK


def _sweep_compare_search(args: argparse.Namespace, cfg: Any, out: Path) -> int:
    """`[sweep.compare_search]`: search methods at equal compute (`jaxopt_lab.sweep.method_comparison`)."""
    _refuse_run_flags(args, "a comparison of search methods (sweep.compare_search)")
    if args.resume:
        raise BadInput("--resume does not apply to a comparison of search methods (sweep.compare_search)")
    _setup_jax(args.devices, x64=cfg.train.precision == "float64")
    from jaxopt_lab.config import ConfigError
    from jaxopt_lab.sweep import method_comparison, search

    try:
        method_comparison.check_config(cfg)
    except (ConfigError, ValueError, search.MissingOptuna) as e:
        raise BadInput(str(e)) from None
    result = method_comparison.run_comparison(cfg, progress=True)
    method_comparison.write_comparison(out, result, report=not args.no_report)
    print(f"wrote {out}  ({len(result.records)} searches in {result.wall_seconds:.0f}s)")
    return EXIT_OK


def cmd_sweep(args: argparse.Namespace) -> int:
    from jaxopt_lab import _io

    cfg = _with_log_flags(_load_config(args.config, args.set), args)
    out = _check_out(args.out, _io.SWEEP_OUTPUTS, resume=args.resume, required=True, sweep=True)
    if args.chunk_size is not None and args.chunk_size < 1:
        raise BadInput(f"--chunk-size {args.chunk_size} is out of range: valid range is [1, inf)")
    if args.lanes is not None and args.lanes < 1:
        raise BadInput(f"--lanes {args.lanes} is out of range: valid range is [1, inf)")
    if args.lanes is not None and args.execution in ("map", "vmap"):
        raise BadInput(f"--lanes only applies to refilling sweeps (--execution refill or auto), not --execution "
                       f"{args.execution}")
    if args.devices is not None and args.devices < 1:
        raise BadInput(f"--devices {args.devices} is out of range: valid range is [1, inf)")
    coordinator = _check_process_args(args)
    if getattr(args, "protocol", None) is not None or (cfg.sweep or {}).get("protocol") is not None:
        return _sweep_protocol(args, cfg, out)
    if "adaptive" in (cfg.sweep or {}):
        return _sweep_adaptive(args, cfg, out)
    if "pbt" in (cfg.sweep or {}):
        return _sweep_pbt(args, cfg, out)
    if "compare_search" in (cfg.sweep or {}):
        return _sweep_compare_search(args, cfg, out)
    _check_vectorization_args(args)
    from jaxopt_lab import distributed

    x64 = _sweep_needs_x64(cfg)
    _setup_jax(args.devices, x64=x64)
    import jax

    if coordinator:
        distributed.initialize(args.coordinator, args.num_processes, args.process_id,
                               timeout=args.coordinator_timeout)
    from jaxopt_lab.config import ConfigError
    from jaxopt_lab.sweep import config_sweep
    from jaxopt_lab.sweep.runner import SweepInterrupted

    try:
        plan = config_sweep.plan(cfg)
    except (ConfigError, ValueError) as e:
        raise BadInput(str(e)) from None
    if args.check_vectorization:
        return _run_vectorization_check(args, plan, out)
    devices = jax.devices() if coordinator else None
    print(f"sweep: {len(plan.points)} runs in {len(plan.groups)} group(s) on {len(devices or jax.local_devices())} "
          f"device(s)", file=sys.stderr)
    ckpt = out / _io.CHECKPOINTS
    fresh = not os.path.lexists(ckpt)
    try:
        with distributed.watch(out=out, resume_hint=_resume_hint(args)) if coordinator else contextlib.nullcontext():
            result = config_sweep.run_sweep(
                cfg, checkpoint_dir=ckpt, resume=args.resume, execution=args.execution,
                chunk_size=args.chunk_size, sweep_plan=plan, devices=devices, lanes=args.lanes,
            )
    except ConfigError as e:
        _drop_empty_checkpoints(ckpt, fresh)
        raise BadInput(str(e)) from None
    except SweepInterrupted as e:
        print(str(e), file=sys.stderr)
        return 130
    except Exception:
        _drop_empty_checkpoints(ckpt, fresh)
        raise
    if jax.process_index() == 0:
        try:
            config_sweep.write_results(out, result, report=not args.no_report, drop=(_io.CHECKPOINTS,))
        except _io.OutputFolderError as e:
            raise BadInput(f"{e} (the finished chunks stay in {ckpt}: rerun with --resume to publish them)") from None
        st = result.stats
        print(f"wrote {out}  ({st.runs} runs, {st.runs_per_second:.1f} runs/s, compile {st.compile_seconds:.1f}s)")
        print(best_table(result.rows, plan.swept_keys))
    return EXIT_OK


def _resume_hint(args: argparse.Namespace) -> str:
    argv = [a for a in sys.argv[1:] if a != "--resume"]
    return "jaxopt-lab " + " ".join(argv) + " --resume"


def _drop_empty_checkpoints(ckpt: Path, fresh: bool) -> None:
    """A sweep that failed before finishing any chunk leaves no checkpoint folder that would block the
    corrected config ("holds an interrupted sweep"); one with finished chunks is kept for --resume."""
    from jaxopt_lab import _io

    if fresh and ckpt.is_dir() and not any(p.suffix == ".ckpt" for p in ckpt.iterdir()):
        _io.remove_checkpoints(ckpt)


def cmd_demo(args: argparse.Namespace) -> int:
    from jaxopt_lab import _io

    out = Path(args.out) if args.out is not None else Path("jaxopt-lab-report")
    from jaxopt_lab.experiments import EXPERIMENTS  # names only: importing JAX starts no backend

    _check_out(str(out), (*EXPERIMENTS, "index.html", "summary.md"))
    _setup_jax(None, x64=True)
    from jaxopt_lab import demo

    try:
        index = demo.run_demo(out, size=args.size)
    except _io.OutputFolderError as e:
        raise BadInput(str(e)) from None
    print(f"wrote {index}")
    return EXIT_OK


# ----------------------------------------------------------------------------- compare (results as data)


def _load_results(path: str) -> Any:
    """`jaxopt_lab.results.load`, with a missing folder or library as bad input."""
    from jaxopt_lab import results

    if not Path(path).is_dir():
        raise BadInput(f"{path!r} is not a folder: give a sweep's --out folder")
    try:
        return results.load(path)
    except (ImportError, FileNotFoundError) as e:
        raise BadInput(str(e)) from None


def _compare_groups(args: argparse.Namespace) -> tuple[tuple[str, str], Any, Any, list[str]]:
    """(labels, runs A, runs B, configuration keys) for `compare`, refusing what cannot be paired."""
    from jaxopt_lab import compare

    res_a = _load_results(args.out_a)
    if args.out_b is None:
        if args.by is None:
            raise BadInput("compare needs two folders, or one folder and --by KEY (a swept key with two values)")
        if args.by not in res_a.swept_keys:
            from jaxopt_lab.config import closest

            raise BadInput(f"--by {args.by!r} is not a swept key of {args.out_a!r}{closest(args.by, res_a.swept_keys)}"
                           f"; valid choices: {', '.join(res_a.swept_keys) or '(none: nothing was swept)'}")
        labels, a, b = compare.split_by(res_a.runs, args.by)
        return labels, a, b, [k for k in res_a.swept_keys if k != args.by]
    res_b = _load_results(args.out_b)
    keys_a = [k for k in res_a.swept_keys if k != args.by]
    keys_b = [k for k in res_b.swept_keys if k != args.by]
    if set(keys_a) != set(keys_b):
        raise compare.Unpaired(f"different configurations: {args.out_a!r} sweeps {keys_a or 'nothing'} but "
                               f"{args.out_b!r} sweeps {keys_b or 'nothing'}")
    labels = (Path(args.out_a).name, Path(args.out_b).name)
    if args.by is not None:
        by = tuple(compare.config_value(r.config, args.by) for r in (res_a, res_b))
        if None not in by and by[0] != by[1]:
            labels = (str(by[0]), str(by[1]))
    if labels[0] == labels[1]:
        labels = (f"A:{labels[0]}", f"B:{labels[1]}")
    return labels, res_a.runs, res_b.runs, keys_a


def cmd_compare(args: argparse.Namespace) -> int:
    from jaxopt_lab import compare
    from jaxopt_lab.config import ConfigError

    if args.resamples < 100:
        raise BadInput(f"--resamples {args.resamples} is out of range: valid range is [100, inf)")
    out = _check_out(args.out) or Path("compare")
    try:
        labels, a, b, keys = _compare_groups(args)
        comp = compare.compare_frames(a, b, keys, args.metric, labels, seed=args.seed, resamples=args.resamples)
    except compare.Unpaired as e:
        raise BadInput(f"cannot pair the runs: {e}") from None
    except ConfigError as e:
        raise BadInput(str(e)) from None
    print(compare.format_table(comp))
    compare.write(out, comp)
    print(f"wrote {out / 'compare.csv'} and {out / 'compare.png'}")
    return EXIT_OK


def _add_compare_parser(sub: Any) -> None:
    cp = sub.add_parser("compare", help="paired statistics of two sweeps (or two groups of one sweep, --by)")
    cp.add_argument("out_a", metavar="OUT_A", help="a sweep's results folder")
    cp.add_argument("out_b", metavar="OUT_B", nargs="?", default=None, help="another (omit with --by)")
    cp.add_argument("--metric", default="best_val_loss", help="runs.csv column to compare (default best_val_loss)")
    cp.add_argument("--by", default=None, metavar="KEY", help="the key that tells the groups apart: a swept key "
                    "with two values (one folder), or a config key labelling each folder (two folders)")
    cp.add_argument("--out", default=None, help="folder for compare.csv and compare.png (default ./compare)")
    cp.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    cp.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    cp.set_defaults(func=cmd_compare)


# ----------------------------------------------------------------------------- report (re-render)


def cmd_report(args: argparse.Namespace) -> int:
    """Re-render a finished sweep's figures and index.html from its files; nothing is rerun."""
    out = Path(args.out)
    if not out.is_dir():
        raise BadInput(f"{args.out!r} is not a folder: give a finished sweep's --out folder")
    if (out / "protocol.json").is_file():
        raise BadInput(f"{args.out!r} is a protocol run: its report is written by the protocol; re-render one of "
                       "its sweep folders instead")
    from jaxopt_lab import _io
    from jaxopt_lab.sweep import report

    if not (out / "runs.csv").is_file():
        raise BadInput(f"{args.out!r} holds no runs.csv: give a finished sweep's --out folder")
    # The new figures and index.html replace the old ones together; the sweep's data files (runs.csv ...)
    # are kept: replace=False, or the publish would drop every earlier result it did not rewrite.
    with _io.publish(out, replace=False) as tmp:
        report.sweep_report(tmp, source=out)
    print(f"wrote {out / 'index.html'}")
    return EXIT_OK


# ----------------------------------------------------------------------------- hypertune


def cmd_hypertune(args: argparse.Namespace) -> int:
    """`hypertune CONFIG --wrt KEY ... --steps N --out DIR`: gradient-based tuning (jaxopt_lab.meta.tune)."""
    cfg = _load_config(args.config)
    out = _check_out(args.out, required=True)
    limits = (("--steps", args.steps, 0), ("--seeds", args.seeds, 1), ("--landscape", args.landscape, 0),
              ("--pairs", args.pairs, 1))
    for flag, value, low in limits:
        if value < low:
            raise BadInput(f"{flag} {value} is out of range: valid range is [{low}, inf)")
    for flag, value in (("--outer-lr", args.outer_lr), ("--sigma", args.sigma)):
        if not value > 0:
            raise BadInput(f"{flag} {value} is out of range: valid range is (0, inf)")
    _setup_jax(1, x64=cfg.train.precision == "float64")
    import numpy as np

    from jaxopt_lab import meta, registry, single_run
    from jaxopt_lab.config import choices_error
    from jaxopt_lab.sweep.records import staged_folder

    if args.outer_optimizer not in registry.optimizers():
        raise BadInput(str(choices_error("--outer-optimizer", args.outer_optimizer, registry.optimizers())))
    try:
        trainer = single_run.build(cfg)
        wrt = meta.check_wrt(trainer, args.wrt)
    except ValueError as e:
        raise BadInput(str(e)) from None
    start = {k: trainer.defaults[k] for k in wrt}
    if any(v <= 0 for v in start.values()):
        bad = next(k for k, v in start.items() if v <= 0)
        raise BadInput(f"--wrt {bad}: its config value {start[bad]!r} is not positive (tuned in log space); set it > 0")
    outer = registry.build_optimizer(args.outer_optimizer, {"learning_rate": args.outer_lr})
    keys = meta.seed_keys(args.seeds, args.seed)
    t0 = time.perf_counter()
    try:
        result = meta.tune(trainer, {}, wrt, steps=args.steps, outer_optimizer=outer, seeds=keys,
                           objective=args.objective, estimator=args.estimator, sigma=args.sigma, pairs=args.pairs,
                           resample=args.resample, key=args.seed)
    except ValueError as e:  # --objective that is not a metric of the run
        raise BadInput(f"--objective: {e}") from None
    seconds = time.perf_counter() - t0
    landscape = None
    if args.landscape:
        path = {k: np.asarray(v) for k, v in result.hparams.items()}
        bounds = {k: (float(path[k].min()) / 3, float(path[k].max()) * 3) for k in wrt}
        landscape = meta.random_landscape(trainer, {}, bounds, keys, args.landscape, objective=args.objective,
                                          seed=args.seed)
    with staged_folder(out) as tmp:
        meta.write_tune(tmp, result, landscape)
    best = result.best()
    passes = " with their backward passes" if args.estimator == "hypergrad" else ""
    print(f"wrote {out}  ({args.steps} steps x {args.seeds} seeds, {args.estimator}, {result.epochs} training "
          f"epochs{passes}, {seconds:.1f}s)")
    print(f"{args.objective}: {float(result.objective[0]):.6g} at the start; best point of the path (step "
          f"{result.best_step}, {float(result.objective[result.best_step]):.6g}): "
          + ", ".join(f"{k}={v:.4g}" for k, v in best.items()))
    if landscape is not None:
        print(f"best of {args.landscape} random configs: {float(np.nanmin(np.asarray(landscape[1]))):.6g}")
    return EXIT_OK


# ----------------------------------------------------------------------------- parser


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit status 2
        self.exit(EXIT_BAD_INPUT, f"jaxopt-lab: error: {message}\n")


def _add_set_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config value (TOML value; repeatable), checked like the file: "
                   "--set optimizer.learning_rate=0.3 --set train.epochs=50")


def _add_sweep_parser(sub: Any) -> None:
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
    s.add_argument("--coordinator-timeout", type=float, default=None, metavar="SECONDS",
                   help="give up (one line, exit 3) when the coordinator or a peer process cannot be reached "
                   "for this long (default 60)")
    s.add_argument("--check-vectorization", action="store_true",
                   help="instead of the sweep: run a sample of each group one by one and vectorized (vmap, map), "
                   "compare numbers and speed, write DIR/vectorization.json; exit 1 if the numbers disagree")
    s.add_argument("--sample", type=int, default=None,
                   help="runs per group for --check-vectorization (default 8)")
    s.add_argument("--protocol", default=None, metavar="NAME",
                   help="run a benchmark protocol instead of the config's sweep: deepobs, crowded_valley, choi, "
                   "algoperf (also [sweep] protocol = NAME; options in [sweep.protocol_options]; docs/protocols.md)")
    _add_set_flag(s)
    s.add_argument("--tensorboard", default=None, metavar="DIR", help="log every run to TensorBoard under DIR "
                   "(also [sweep.log] tensorboard = DIR; extra 'log')")
    s.add_argument("--mlflow", default=None, metavar="URI", help="log every run to MLflow at tracking URI "
                   "(e.g. sqlite:///mlflow.db; also [sweep.log] mlflow = URI; extra 'log')")
    s.set_defaults(func=cmd_sweep)


def _add_hypertune_parser(sub: Any) -> None:
    ht = sub.add_parser("hypertune", help="tune hyperparameters by gradient descent on hypergradients")
    ht.add_argument("config", help="TOML config")
    ht.add_argument("--wrt", action="append", required=True, metavar="KEY",
                    help="a traceable hyperparameter to tune (repeat for several), e.g. optimizer.learning_rate")
    ht.add_argument("--steps", type=int, default=50, help="outer steps (default 50)")
    ht.add_argument("--out", help="output folder (hypertune.csv, hypertune.png)")
    ht.add_argument("--seeds", type=int, default=4, help="training seeds averaged per step (default 4)")
    ht.add_argument("--seed", type=int, default=0, help="seed the training seeds are split from")
    ht.add_argument("--objective", default="final_val_loss", help="run metric minimized (default final_val_loss)")
    ht.add_argument("--outer-optimizer", default="adam", help="optimizer of the log hyperparameters (default adam)")
    ht.add_argument("--outer-lr", type=float, default=0.05, help="its learning rate, in log units (default 0.05)")
    ht.add_argument("--landscape", type=int, default=64, help="random-search configs drawn for the figure (0: none)")
    ht.add_argument("--estimator", choices=("hypergrad", "es"), default="hypergrad",
                    help="exact hypergradients (default), or antithetic evolution strategies: no backward pass, "
                    "robust where the run is chaotic (docs/hypergradients.md)")
    ht.add_argument("--sigma", type=float, default=0.25, help="with --estimator es: perturbation scale in log units")
    ht.add_argument("--pairs", type=int, default=4, help="with --estimator es: antithetic pairs per seed and step")
    ht.add_argument("--resample", action="store_true", help="draw fresh training seeds at every step")
    ht.set_defaults(func=cmd_hypertune)


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
    _add_set_flag(t)
    t.set_defaults(func=cmd_train)

    _add_sweep_parser(sub)

    _add_hypertune_parser(sub)

    li = sub.add_parser("list", help="optimizers, schedules, datasets, models, activations, initializers, protocols, "
                        "config keys")
    li.add_argument("what", nargs="?", help="one section only: optimizers, schedules, datasets, models, activations, "
                    "initializers, losses, protocols, keys")
    li.set_defaults(func=cmd_list)

    c = sub.add_parser("compare-optax", help="parity table of every shared optimizer against optax")
    c.add_argument("--steps", type=int, default=100)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--only", help="comma-separated optimizer names (default: every shared optimizer)")
    c.set_defaults(func=cmd_compare_optax)
    _add_compare_parser(sub)
    rp = sub.add_parser("report", help="re-render a finished sweep's report (figures, index.html) from its files")
    rp.add_argument("out", metavar="OUT", help="the sweep's results folder")
    rp.set_defaults(func=cmd_report)
    return p


def _on_sigint(signum: int, frame: Any) -> None:
    """Ctrl-C as KeyboardInterrupt, except inside the swap of a publish, where it waits for the swap's end."""
    from jaxopt_lab import _io

    if _io.in_critical_section():
        _io.defer_interrupt()
        return
    raise KeyboardInterrupt


def _redeliver_swallowed_interrupts(unraisable: Any, previous: Any = None) -> None:
    """`sys.unraisablehook`: a KeyboardInterrupt that Python had to drop -- raised inside a garbage-collector
    callback (JAX registers one), a weakref callback or a ``__del__`` -- is delivered again a moment later,
    outside it; anything else goes to the previous hook."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt) or unraisable.exc_type is KeyboardInterrupt:
        import threading

        # To the process, not this thread: any thread that does not block SIGINT takes it.
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()
        return
    (previous or sys.__unraisablehook__)(unraisable)


def install_interrupt_handling() -> tuple[Any, Any]:
    """Install the CLI's Ctrl-C handling (main thread only); returns the previous (SIGINT handler, unraisablehook)."""
    previous_hook = sys.unraisablehook
    previous_handler = signal.signal(signal.SIGINT, _on_sigint)
    sys.unraisablehook = lambda u: _redeliver_swallowed_interrupts(u, previous_hook)
    return previous_handler, previous_hook


def main(argv: list[str] | None = None) -> int:
    code = _main(argv)
    if code == 130 and argv is None:
        # Interrupted on the command line: a computation may still be running on XLA's threads, and
        # tearing the interpreter down under it can crash (SIGSEGV) after everything is saved and
        # said. Leave at once, with the status that says "interrupted".
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    return code


def _main(argv: list[str] | None) -> int:
    if threading_is_main():
        install_interrupt_handling()
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except BadInput as e:
        print(f"jaxopt-lab: error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("jaxopt-lab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader left (`jaxopt-lab list | head`): not an error of ours. Point stdout at
        # nothing so the interpreter's last flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as e:  # noqa: BLE001 - anything else: one line plus the type, status 1
        if _is_bad_input(e):  # a config or output-folder error raised below a command's own checks
            print(f"jaxopt-lab: error: {e}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if os.environ.get("JAXOPT_LAB_DEBUG"):
            raise
        print(f"jaxopt-lab: failed: {type(e).__name__}: {e}", file=sys.stderr)
        return EXIT_ERROR


def _is_bad_input(e: Exception) -> bool:
    from jaxopt_lab import _io
    from jaxopt_lab.config import ConfigError

    return isinstance(e, (ConfigError, _io.OutputFolderError))


def threading_is_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


if __name__ == "__main__":
    sys.exit(main())

