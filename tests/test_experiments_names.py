"""Experiment names (what the user sees) against experiment module names (what the code imports).

The demo's folders, the scripts' default output folders and `jaxopt-lab demo`'s collision check use the
experiment names (`splits`, `optimizers`, ...); the modules are named for what they hold, so that none
shadows a library module of the same name (`jaxopt_lab/data/splits.py`, `jaxopt_lab/schedules.py`, ...).
"""

from __future__ import annotations

import ast
from pathlib import Path

import jaxopt_lab
from jaxopt_lab import experiments
from jaxopt_lab.demo import run_demo

PACKAGE = Path(jaxopt_lab.__file__).parent
EXPERIMENT_DIR = PACKAGE / "experiments"


def _library_module_names() -> set[str]:
    return {p.stem for p in PACKAGE.rglob("*.py") if p.parent != EXPERIMENT_DIR and p.stem != "__init__"}


def test_no_experiment_module_shadows_a_library_module():
    ours = {p.stem for p in EXPERIMENT_DIR.glob("*.py")} - {"__init__"}
    assert ours & _library_module_names() == set()


def test_every_experiment_module_is_listed_once_and_runs():
    modules = {p.stem for p in EXPERIMENT_DIR.glob("*.py")}
    # Every module with a `run(out, size)` is an experiment; the rest are the steps they share.
    with_run = {m for m in modules
                if any(isinstance(n, ast.FunctionDef) and n.name == "run"
                       for n in ast.parse((EXPERIMENT_DIR / f"{m}.py").read_text()).body)}
    assert sorted(experiments.MODULES.values()) == sorted(with_run)
    assert experiments.EXPERIMENTS == tuple(experiments.MODULES)
    assert experiments.experiment_module("splits").__name__ == "jaxopt_lab.experiments.split_comparison"


def test_scripts_name_experiments_that_exist():
    root = PACKAGE.parent / "experiments"
    for script in sorted(root.glob("[0-9][0-9]_*.py")):
        call = next(n for n in ast.walk(ast.parse(script.read_text()))
                    if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "main")
        name = call.args[0].value
        assert name in experiments.EXPERIMENTS, script.name
        assert script.stem.split("_", 1)[1] == name  # 10_splits.py runs experiment "splits"


def test_demo_folder_keeps_the_experiment_name(tmp_path):
    """A renamed module still writes its report under the experiment's name."""
    index = run_demo(tmp_path / "report", size="tiny", only=["splits"])
    out = index.parent
    assert {"index.html", "splits", "summary.md"} <= {p.name for p in out.iterdir()}
    assert not (out / "split_comparison").exists()
    assert [p.name for p in (out / "splits").iterdir()] == ["splits_estimates.png"]
    assert "10. Lecture: data splits" in (out / "summary.md").read_text()
