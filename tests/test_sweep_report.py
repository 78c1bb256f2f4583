"""The sweep report: its statistics against scipy / brute force / pandas, its sections on a real sweep,
and the figures' text check."""

import ast
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from jaxopt_lab import plots
from jaxopt_lab.config import from_dict
from jaxopt_lab.sweep import config_sweep, stats
from jaxopt_lab.sweep import report as sweep_report

ROOT = Path(__file__).parent.parent

# 3 swept keys (parallel coordinates), 2 seeds, learning rates up to 1000 so some runs diverge
TINY_SWEEP = {
    "data": {"dataset": "moons", "n_samples": 120, "noise": 0.25, "random_state": 7, "val_fraction": 0.25},
    "model": {"hidden": [6]},
    "train": {"epochs": 6},
    "optimizer": {"name": "sgd", "learning_rate": 0.1, "momentum": 0.5},
    "sweep": {"seeds": 2, "grid": {"optimizer": {"learning_rate": [0.01, 0.3, 1000.0], "momentum": [0.0, 0.9]},
                                   "train": {"l2": [0.0, 0.01]}}},
}


# ----------------------------------------------------------------------------- statistics


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 7, 10, 20, 31, 100])
def test_t_quantile_matches_scipy(df):
    scipy_stats = pytest.importorskip("scipy.stats")
    want = scipy_stats.t.ppf(0.975, df)
    assert stats.t_quantile_975(df) == pytest.approx(want, rel=1e-9)
    assert stats._t_quantile_975_approx(df) == pytest.approx(want, abs=2e-3)


def test_mean_interval_matches_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    x = np.random.default_rng(0).normal(3.0, 2.0, size=9)
    m, lo, hi = stats.mean_interval(x)
    want = scipy_stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=scipy_stats.sem(x))
    assert m == pytest.approx(x.mean()) and (lo, hi) == pytest.approx(want, rel=1e-9)
    assert math.isnan(stats.mean_interval([1.0])[1])


def test_welch_agrees_with_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(1)
    checked = 0
    for trial in range(200):
        a = rng.normal(0.0, 1.0, size=rng.integers(3, 12))
        b = rng.normal(rng.uniform(0, 2), rng.uniform(0.3, 3), size=rng.integers(3, 12))
        p = scipy_stats.ttest_ind(a, b, equal_var=False).pvalue
        if 0.035 < p < 0.07:  # the test rounds Welch's df down: only the edge may differ
            continue
        assert stats.welch_distinguishable(a, b) == (p < 0.05), (trial, p)
        checked += 1
    assert checked > 150
    assert stats.welch_distinguishable([1.0], [1.0, 2.0]) is None


@pytest.mark.parametrize("mode", ["max", "min"])
def test_best_of_k_against_every_draw(mode):
    values = np.array([0.3, 0.9, 0.5, 0.7, 0.5])
    pick = max if mode == "max" else min
    for k in (1, 2, 3):
        bests = np.array([pick(d) for d in itertools.product(values, repeat=k)])  # every equally likely draw
        expected, lo, hi = sweep_report.best_of_k(values, [k], mode)
        assert expected[0] == pytest.approx(bests.mean(), rel=1e-12)
        # the quantiles: the smallest value with at least q of the draws at or before it, in the "worse" order
        order = np.sort(bests) if mode == "max" else np.sort(bests)[::-1]
        for q, got in ((0.025, lo[0]), (0.975, hi[0])):
            assert got == order[math.ceil(q * len(order)) - 1]


def test_main_effect_shares_match_pandas_groupby():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(2)
    rows = [{"a": a, "b": b, "y": a * 2.0 + rng.normal(0, 0.3)}
            for a in (1, 2, 3) for b in ("x", "y") for _ in range(5)]
    df = pd.DataFrame(rows)
    shares = sweep_report.main_effect_shares(rows, ["a", "b"], "y")
    for key in ("a", "b"):
        g = df.groupby(key)["y"]
        between = (g.count() * (g.mean() - df["y"].mean()) ** 2).sum() / len(df)
        assert shares[key] == pytest.approx(between / df["y"].var(ddof=0), rel=1e-12)
    assert shares["a"] > 0.9 > 0.1 > shares["b"]


def test_fanova_finds_the_key_that_matters():
    pytest.importorskip("optuna")
    rng = np.random.default_rng(3)
    rows = [{"run": i, "lr": lr, "m": m, "seed": s, "diverged": False,
             "final_val_accuracy": float(np.log10(lr) + 0.01 * m + 0.01 * rng.normal())}
            for i, (lr, m, s) in enumerate(itertools.product([1e-3, 1e-2, 1e-1, 1.0], [0.0, 0.5, 0.9], range(2)))]
    method, imp = sweep_report.importance(rows, ["lr", "m"], "final_val_accuracy", "max")
    assert method.startswith("fANOVA") and imp["lr"] > 0.9 and sum(imp.values()) == pytest.approx(1.0)


def test_importance_of_a_metric_that_never_changes_is_none():
    rows = [{"run": i, "a": a, "b": b, "diverged": False, "final_val_accuracy": 0.5}
            for i, (a, b) in enumerate(itertools.product([1.0, 2.0, 3.0], ["u", "v"]))]
    method, imp = sweep_report.importance(rows, ["a", "b"], "final_val_accuracy", "max")
    assert imp == {} or set(imp.values()) == {0.0}
    assert sweep_report.main_effect_shares(rows, ["a", "b"], "final_val_accuracy") == {"a": 0.0, "b": 0.0}


# ----------------------------------------------------------------------------- the figures' text check


def test_a_long_title_is_wrapped_to_fit(tmp_path):
    fig, ax = plots.new_figure(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    ax.set_title("final_val_accuracy: optimizer.momentum vs optimizer.learning_rate (div = every seed diverged)")
    before = plots.clipped_texts(fig)
    assert before, "the title should stick out before the fix"
    path = plots.save(fig, tmp_path / "t.png")
    assert plots.figure_info(path)["text_check"] == "ok"


def test_text_moved_inside_by_the_layout(tmp_path):
    fig, ax = plots.new_figure(figsize=(4, 3))
    ax.text(1.3, 0.5, "beside the axes", transform=ax.transAxes)  # tight_layout shrinks the axes for it
    assert plots.figure_info(plots.save(fig, tmp_path / "t.png"))["text_check"] == "ok"


def test_text_that_cannot_be_fixed_is_recorded_or_raises(tmp_path, monkeypatch):
    def draw():
        fig, ax = plots.new_figure(figsize=(4, 3))
        fig.text(0.9, 0.5, "far outside the axes")  # a figure text: no layout moves it
        return fig

    with pytest.warns(UserWarning, match="outside the figure"):
        path = plots.save(draw(), tmp_path / "bad.png")
    assert plots.figure_info(path)["text_check"].startswith("clipped: far outside")
    monkeypatch.setattr(plots, "STRICT_TEXT", True)
    with pytest.raises(plots.ClippedTextError, match="far outside the axes"):
        plots.save(draw(), tmp_path / "bad2.png")


def test_hover_regions_are_fractions_of_the_image(tmp_path):
    fig, ax = plots.new_figure(figsize=(4, 3))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    path = plots.save(fig, tmp_path / "h.png", [plots.Hover(ax, 0, 0, 1, 1, "whole axes"),
                                               plots.Hover.point(ax, 0.5, 0.5, "centre")])
    whole, centre = plots.figure_info(path)["hover"]
    box = ax.get_position()  # figure fractions, origin bottom left
    assert whole["x0"] == pytest.approx(box.x0, abs=1e-4) and whole["x1"] == pytest.approx(box.x1, abs=1e-4)
    assert whole["y0"] == pytest.approx(1 - box.y1, abs=1e-4) and whole["y1"] == pytest.approx(1 - box.y0, abs=1e-4)
    assert centre["x0"] < (box.x0 + box.x1) / 2 < centre["x1"] and centre["text"] == "centre"


# ----------------------------------------------------------------------------- the report of a real sweep


@pytest.fixture(scope="module")
def tiny_sweep(tmp_path_factory):
    result = config_sweep.run_sweep(from_dict(TINY_SWEEP), progress=False)
    out = tmp_path_factory.mktemp("sweep") / "out"
    config_sweep.write_results(out, result)
    return result, out


def _titles(html):
    return [s.split("</h2>")[0].split(">", 1)[1] for s in html.split("<h2 ")[1:]]


def test_sweep_report_sections_in_order(tiny_sweep):
    result, out = tiny_sweep
    html = (out / "index.html").read_text()
    assert _titles(html) == ["What ran", "Best configurations", "Slices", "Heatmaps", "Parallel coordinates",
                             "Hyperparameter importance", "Learning curves", "Best of k", "All configurations"]
    assert "[sweep.grid.optimizer]" in html and "learning_rate = [0.01, 0.3, 1000.0]" in html  # the config
    assert "href='runs.csv'" in html and "href='aggregate.csv'" in html
    n_div = sum(r["diverged"] for r in result.rows)
    assert n_div > 0 and f"{n_div} run(s) diverged" in html
    assert html.count("<img ") == 8  # slices, 3 heatmaps, parallel coordinates, importance, curves, best of k
    assert html.count("data-text-check='ok'") == html.count("<img ")
    assert "data-hover=" in html and "script type='application/json'" in html


def test_best_configurations_table_against_numpy(tiny_sweep):
    result, out = tiny_sweep
    data = config_sweep.report_data(result)
    metric, mode = sweep_report.objective(data.rows)
    assert (metric, mode) == ("final_val_accuracy", "max")
    best = sweep_report.ranked(sweep_report.config_stats(data.rows, data.keys, metric), mode)[0]
    # independently: the configuration with the highest mean over its non-diverged seeds
    by_cfg = {}
    for r in result.rows:
        if not r["diverged"] and r[metric] is not None:
            by_cfg.setdefault(tuple(r[k] for k in data.keys), []).append(r[metric])
    want = max(by_cfg, key=lambda c: np.mean(by_cfg[c]))
    assert tuple(best.values.values()) == want
    assert best.interval[0] == pytest.approx(np.mean(by_cfg[want]))


def test_report_from_the_folder_equals_the_report_from_the_result(tiny_sweep, tmp_path):
    import shutil

    _, out = tiny_sweep
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "index.html").unlink()
    sweep_report.sweep_report(copy)
    a, b = (out / "index.html").read_text(), (copy / "index.html").read_text()
    assert _titles(a) == _titles(b)
    if (out / "config.json").is_file():  # the folder holds the sweep's own config: the same text
        assert a.split("<pre>")[1].split("</pre>")[0] == b.split("<pre>")[1].split("</pre>")[0]
    # re-rendered into an empty staging folder, reading the results folder's files
    staged = tmp_path / "staged"
    staged.mkdir()
    sweep_report.sweep_report(staged, source=copy)
    c = (staged / "index.html").read_text()
    assert _titles(c) == _titles(a) and "href='runs.csv'" in c and not (staged / "runs.csv").exists()
    table = a.split("<h3>Top")[1].split("</table>")[0]
    assert table == b.split("<h3>Top")[1].split("</table>")[0]


def test_summary_md_links_the_pngs(tiny_sweep):
    _, out = tiny_sweep
    md = (out / "summary.md").read_text()
    pngs = [line.split("(")[1].rstrip(")") for line in md.splitlines() if line.startswith("![")]
    assert len(pngs) == 8 and all((out / p).is_file() for p in pngs)
    assert json.loads((out / "summary.json").read_text())["runs"] == 24


def test_page_assembly_imports_nothing_from_sweep():
    tree = ast.parse((ROOT / "jaxopt_lab" / "report_page.py").read_text())
    imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m and "sweep" in m]


def test_random_search_with_a_categorical_key_and_a_loss(tmp_path):
    """One seed per configuration, a categorical key, 40 distinct learning rates (binned in the heatmap),
    and only a loss to rank by (lower is better): every section still draws, and the text fits."""
    rng = np.random.default_rng(5)
    rows, epochs = [], 7
    for i in range(40):
        name, lr = ["sgd", "adam"][i % 2], float(10 ** rng.uniform(-4, 0))
        loss = (np.log10(lr) + 2) ** 2 + (0.5 if name == "sgd" else 0.0) + 0.01 * i
        rows.append({"run": i, "optimizer.name": name, "optimizer.learning_rate": lr, "seed": 0,
                     "best_val_loss": loss, "final_train_loss": loss, "diverged": i == 39, "epochs_run": epochs})
    histories = {"train_loss": rng.uniform(0.1, 1.0, size=(40, epochs)),
                 "val_loss": rng.uniform(0.1, 1.0, size=(40, epochs))}
    data = sweep_report.SweepData(rows, ["optimizer.name", "optimizer.learning_rate"], histories,
                                  {"runs": 40, "devices": 1, "groups": ["{'optimizer.name': 'sgd'}",
                                                                         "{'optimizer.name': 'adam'}"]}, "")
    sections = sweep_report.sweep_sections(data, tmp_path)
    titles = [s.title for s in sections]
    assert titles[:4] == ["What ran", "Best configurations", "Slices", "Heatmaps"]
    assert "Parallel coordinates" not in titles and "group: {'optimizer.name': 'sgd'}" in sections[0].text
    best = min((r for r in rows if not r["diverged"]), key=lambda r: r["best_val_loss"])
    assert sections[1].tables[0][1][0]["optimizer.learning_rate"] == best["optimizer.learning_rate"]
    assert "One seed per configuration" in sections[1].text
    for png in tmp_path.glob("*.png"):
        assert plots.figure_info(png)["text_check"] == "ok", png.name
    heat = plots.figure_info(next(tmp_path.glob("heatmap_*.png")))["hover"]
    # 2 names x 8 equal-count learning-rate bins; a cell no run fell in has no hover text
    assert 2 * sweep_report._BINS - 3 <= len(heat) <= 2 * sweep_report._BINS
    assert sum(int(h["text"].split("runs: ")[1].split(",")[0]) for h in heat) == 40


def test_a_log_axis_tick_below_the_view_is_not_reported_as_clipped():
    """The text check skips tick labels outside the axis' view; on a log axis whose bounds differ by
    decades, a tolerance relative to the larger bound once let the 1e-8 tick of a (3.6e-7, 1891) axis
    through, and its undrawn label was reported outside the figure."""
    fig, (ax_a, ax_b) = plots.new_figure(1, 2, figsize=(11, 4.2))
    x = np.arange(1, 301)
    ax_a.plot(x, np.geomspace(1e-6, 1e3, 300))
    ax_a.set_yscale("log")
    ax_a.set_ylim(3.6e-7, 1891)
    ax_b.plot(x, np.geomspace(1e-12, 3, 300))
    ax_b.set_yscale("log")
    assert plots.clipped_texts(fig) == []
