"""The figure of examples/optax_comparison.toml: final validation accuracy against the learning
rate (mean and min-max over seeds), one line per optimizer.

    python examples/optax_comparison_figure.py OUT_DIR FIGURE.png
"""

from __future__ import annotations

import sys
from collections import defaultdict

import numpy as np

from jaxopt_lab import plots
from jaxopt_lab.sweep.records import read_runs_csv


def main(out_dir: str, figure: str) -> None:
    rows = read_runs_csv(f"{out_dir}/runs.csv")
    acc: dict[str, dict[float, list[float]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        value = r["final_val_accuracy"] if not r["diverged"] else np.nan
        acc[r["optimizer.name"]][r["optimizer.learning_rate"]].append(value)
    fig, ax = plots.new_figure(figsize=(6.5, 4))
    for i, (name, by_lr) in enumerate(acc.items()):
        lrs = sorted(by_lr)
        vals = [np.asarray(by_lr[lr], float) for lr in lrs]
        mean = np.array([np.nanmean(v) if np.isfinite(v).any() else np.nan for v in vals])
        lo = np.array([np.nanmin(v) if np.isfinite(v).any() else np.nan for v in vals])
        hi = np.array([np.nanmax(v) if np.isfinite(v).any() else np.nan for v in vals])
        style = "--" if name == "optax.adam" else "-"
        ax.plot(lrs, mean, style, marker="o", ms=3, color=f"C{i % 10}", label=f"{name} (n={len(vals[0])})")
        ax.fill_between(lrs, lo, hi, color=f"C{i % 10}", alpha=0.15)
        print(name, " ".join(f"{lr:g}:{m:.4f}" for lr, m in zip(lrs, mean, strict=True)))
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("final validation accuracy")
    ax.set_title("digits, MLP 64 ReLU, 30 epochs, batch 64: mean and range over seeds")
    ax.legend(fontsize=8)
    plots.save(fig, figure)
    print(f"wrote {figure}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
