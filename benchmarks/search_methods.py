"""Search methods at equal compute (BENCHMARKS.md section 7), through the library's comparison.

    python benchmarks/search_methods.py CONFIG --out DIR [--seeds N] [--methods a,b] [--set key=value ...]
                                        [--figure PATH]

CONFIG holds a `[sweep.compare_search]` (`benchmarks/search_methods_moons.toml`,
`benchmarks/search_methods_digits.toml`); this runs exactly what
`jaxopt-lab sweep CONFIG --out DIR` runs (`jaxopt_lab.sweep.method_comparison`), with a shorter way
to change the search seeds and methods, prints the per-method table, and copies the report's
figure to `--figure` (for docs/figures). The folder DIR holds runs.csv (one row per search),
curves.csv (best-so-far against epochs spent), summary.json and the report (index.html).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("config")
    p.add_argument("--out", required=True, help="the comparison's folder")
    p.add_argument("--seeds", type=int, default=None, help="search seeds 0..N-1 (default: the config's)")
    p.add_argument("--methods", default=None, help="comma-separated methods (default: the config's)")
    p.add_argument("--set", action="append", default=[], help="section.key=value, as jaxopt-lab's --set")
    p.add_argument("--figure", default=None, help="also copy the comparison figure here")
    args = p.parse_args(argv)
    from jaxopt_lab import cli
    from jaxopt_lab.sweep import method_comparison as mc

    overrides = list(args.set)
    if args.seeds is not None:
        overrides.append(f"sweep.compare_search.search_seeds={args.seeds}")
    if args.methods is not None:
        listed = ", ".join(f'"{m}"' for m in args.methods.split(","))
        overrides.append(f"sweep.compare_search.methods=[{listed}]")
    cfg = cli._load_config(args.config, overrides)
    cli._setup_jax(None, x64=cfg.train.precision == "float64")
    result = mc.run_comparison(cfg, progress=True)
    mc.write_comparison(args.out, result)
    summary = result.summary()["compare_search"]
    print(f"budget {summary['budget_epochs']} epochs per search, {len(summary['search_seeds'])} search seeds "
          f"({result.wall_seconds:.0f}s in all)")
    print("| method | best val loss (mean, 95% interval) | configurations | epochs computed | s per search | "
          "s proposing |")
    print("| --- | --- | --- | --- | --- | --- |")
    for m, s in summary["by_method"].items():
        half = (s["ci95_high"] - s["ci95_low"]) / 2 if s["ci95_high"] is not None else float("nan")
        print(f"| {m} | {s['best_val_loss_mean']:.4f} ± {half:.4f} | {s['configs']:.0f} | "
              f"{s['epochs_computed_mean']:.0f} | {s['seconds_mean']:.1f} | {s['proposal_seconds_mean']:.1f} |")
    if args.figure:
        shutil.copyfile(Path(args.out) / "compare_search.png", args.figure)
    print(f"wrote {args.out}" + (f" and {args.figure}" if args.figure else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
