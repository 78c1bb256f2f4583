"""Performance profiles (Dolan & Moré 2002) and AlgoPerf's benchmark score (Dahl et al. 2023).

For solvers ``s`` on problems ``p`` with scores ``t_{p,s}`` (lower is better: time to a target;
``inf`` when the target was never reached), the performance ratio is
``r_{p,s} = t_{p,s} / min_s' t_{p,s'}`` and the profile is

    rho_s(tau) = |{p : r_{p,s} <= tau}| / |P|,

the fraction of problems on which ``s`` is within a factor ``tau`` of the best solver. An
infinite score never counts (its ratio is ``inf``), and on a problem no solver solved, every
ratio is ``inf``. (E. D. Dolan, J. J. Moré, "Benchmarking optimization software with performance
profiles", Math. Programming 91, 2002.)

AlgoPerf summarizes a profile by its normalized area up to ``tau_max = 4``:

    B_s = 1 / (tau_max - 1) * integral_1^tau_max rho_s(tau) d tau,

1 for a solver that is fastest everywhere, 0 for one never within ``tau_max`` of the best. As
``rho_s`` is a step function, the integral is exact: each problem contributes
``max(0, tau_max - max(r_{p,s}, 1)) / (|P| (tau_max - 1))``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

Scores = Mapping[str, Mapping[str, float]]


def _check(scores: Scores) -> tuple[list[str], list[str]]:
    if not scores:
        raise ValueError("scores is empty: give {solver: {problem: score}}")
    solvers = list(scores)
    problems = list(next(iter(scores.values())))
    if not problems:
        raise ValueError("scores has no problems")
    for s in solvers:
        if set(scores[s]) != set(problems):
            raise ValueError(f"solver {s!r} has scores for {sorted(scores[s])}, not for every problem {problems}")
        for p in problems:
            v = float(scores[s][p])
            if math.isnan(v) or v < 0:
                raise ValueError(f"score of {s!r} on {p!r} is {v!r}: scores must be >= 0 (inf: never reached)")
    return solvers, problems


def performance_ratios(scores: Scores) -> dict[str, dict[str, float]]:
    """``r_{p,s}`` for every solver and problem: score over the best score on that problem.

    ``inf`` when the solver's score is infinite or no solver has a finite score on the problem.
    A best score of 0 gives ratio 1 for the solvers that match it and ``inf`` for the others.
    """
    solvers, problems = _check(scores)
    out: dict[str, dict[str, float]] = {s: {} for s in solvers}
    for p in problems:
        best = min(float(scores[s][p]) for s in solvers)
        for s in solvers:
            t = float(scores[s][p])
            if not math.isfinite(t) or not math.isfinite(best):
                r = math.inf
            elif best == 0:
                r = 1.0 if t == 0 else math.inf
            else:
                r = t / best
            out[s][p] = r
    return out


def performance_profile(scores: Scores, taus: Sequence[float]) -> dict[str, np.ndarray]:
    """``rho_s(tau)`` at each of `taus`, for every solver."""
    ratios = performance_ratios(scores)
    taus_a = np.asarray(taus, dtype=np.float64)
    out = {}
    for s, per_problem in ratios.items():
        r = np.asarray(list(per_problem.values()), dtype=np.float64)
        out[s] = (r[None, :] <= taus_a[:, None]).mean(axis=1)
    return out


def benchmark_score(scores: Scores, tau_max: float = 4.0) -> dict[str, float]:
    """AlgoPerf's score: the area under ``rho_s`` on ``[1, tau_max]`` divided by ``tau_max - 1``."""
    if not tau_max > 1:
        raise ValueError(f"tau_max = {tau_max!r} must be > 1")
    ratios = performance_ratios(scores)
    out = {}
    for s, per_problem in ratios.items():
        r = np.asarray(list(per_problem.values()), dtype=np.float64)
        contrib = np.where(np.isfinite(r), np.maximum(0.0, tau_max - np.maximum(r, 1.0)), 0.0)
        out[s] = float(contrib.sum() / (len(r) * (tau_max - 1)))
    return out


def profile_figure(scores: Scores, path: str | os.PathLike, *, tau_max: float = 4.0,
                   title: str = "Performance profiles") -> Path:
    """Step plot of every solver's profile on ``[1, tau_max]``, its score in the legend."""
    from jaxopt_lab import plots  # matplotlib: only when a figure is drawn (protocols.figures)

    ratios = performance_ratios(scores)
    bscore = benchmark_score(scores, tau_max)
    fig, ax = plots.new_figure(figsize=(6.5, 4))
    for i, (s, per_problem) in enumerate(ratios.items()):
        r = np.sort(np.asarray(list(per_problem.values()), dtype=np.float64))
        xs = np.concatenate([[1.0], np.clip(r[np.isfinite(r) & (r <= tau_max)], 1.0, None), [tau_max]])
        ys = np.asarray([np.mean(r <= x) for x in xs])
        ax.step(xs, ys, where="post", color=f"C{i % 10}", label=f"{s} (score {bscore[s]:.3f})")
    ax.set_xlim(1.0, tau_max)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("tau: within this factor of the fastest (time to target)")
    ax.set_ylabel("fraction of problems")
    ax.set_title(title)
    ax.legend(fontsize=8)
    return plots.save(fig, path)
