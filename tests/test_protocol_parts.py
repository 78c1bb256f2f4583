"""The protocols' shared parts: one `Prepared`, the tables' CSV writer, `[sweep]` table builders, configs."""

import ast
import csv
import inspect
import math
import os
import pathlib
import stat

import optax
import pandas as pd
import pytest

from jaxopt_lab import protocols
from jaxopt_lab.config import Config, ConfigError, DataConfig, ModelConfig, OptimizerConfig, TrainConfig
from jaxopt_lab.protocols import optimizer_configs, search_spaces, sweeps, tables
from jaxopt_lab.protocols.options import Option, parse_options
from jaxopt_lab.sweep import config_sweep

BASE = Config(
    data=DataConfig(dataset="moons", n_samples=200, noise=0.2, random_state=1, val_fraction=0.25),
    model=ModelConfig(hidden=(8,)),
    train=TrainConfig(epochs=5, precision="float64"),
    optimizer=OptimizerConfig("sgd", {"learning_rate": 0.1, "momentum": 0.9}),
)
PROTOCOLS_DIR = pathlib.Path(protocols.__file__).parent


def test_one_prepared_dataclass_for_every_protocol():
    defined_in = [p.name for p in sorted(PROTOCOLS_DIR.glob("*.py"))
                  for node in ast.walk(ast.parse(p.read_text())) if isinstance(node, ast.ClassDef)
                  and node.name == "Prepared"]
    assert defined_in == ["sweeps.py"]
    algoperf_problem = {"name": "m", "target_metric": "val_loss", "target_value": 0.5}
    options = {"deepobs": {"lr_points": 3}, "crowded_valley": {}, "choi": {"optimizers": ["sgd", "adam"]},
               "algoperf": {"optimizers": ["adam"], "problems": [algoperf_problem]}}
    for name, opts in options.items():
        module, prepared = protocols.prepare(BASE, name, opts)
        assert module.NAME == name
        assert type(prepared) is sweeps.Prepared, name
    # each protocol fills what its run uses
    _, p = protocols.prepare(BASE, "deepobs", {"lr_points": 3, "lr_range": [1e-2, 1.0]})
    assert p.learning_rates == pytest.approx([1e-2, 1e-1, 1.0], rel=1e-12) and list(p.configs) == ["sgd"]
    _, p = protocols.prepare(BASE, "algoperf", options["algoperf"])
    assert [q.name for q in p.problems] == ["m"] and list(p.spaces) == ["adam"] and p.configs == {}


def test_write_csv_cells_read_back(tmp_path):
    rows = [
        {"name": "a, b ± c", "x": 0.1, "n": 3, "ok": True, "none": None},
        {"name": "d", "x": 1 / 3, "n": -1, "ok": False, "none": math.nan, "late": math.inf},
        {"x": 5e-324, "late": -math.inf},
    ]
    path = tables.write_csv(tmp_path / "t.csv", rows)
    assert [p.name for p in tmp_path.iterdir()] == ["t.csv"]  # written atomically: no temporary left
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    with open(path, newline="", encoding="utf-8") as f:
        cells = list(csv.reader(f))
    assert cells[0] == ["name", "x", "n", "ok", "none", "late"]  # columns in order of first appearance
    assert cells[1] == ["a, b ± c", "0.1", "3", "true", "", ""]
    assert cells[2] == ["d", "0.3333333333333333", "-1", "false", "", "inf"]  # NaN and None: empty cells
    frame = pd.read_csv(path)
    assert frame["x"].tolist() == [0.1, 1 / 3, 5e-324]  # repr: every float reads back bit for bit
    assert frame["late"].tolist()[1:] == [math.inf, -math.inf]
    assert frame["none"].isna().all()
    assert path.read_bytes().count(b"\r") == 0


def test_random_and_point_tables_plan_in_the_engine():
    space = {"learning_rate": {"loguniform": [1e-3, 1.0]}, "train.weight_decay": {"uniform": [0.0, 0.1]}}
    table = search_spaces.random_table(space, 4, 7)
    assert table == {"trials": 4, "seed": 7, "optimizer": {"learning_rate": {"loguniform": [1e-3, 1.0]}},
                     "train": {"weight_decay": {"uniform": [0.0, 0.1]}}}
    plan = config_sweep.plan(BASE.replace(sweep={"seeds": [0], "random": table}))
    assert len(plan.points) == 4
    assert all(1e-3 <= p["optimizer.learning_rate"] <= 1.0 and 0 <= p["train.weight_decay"] <= 0.1
               for p in plan.points)
    point = search_spaces.swept_point({**plan.points[2], "seed": 0, "run": 2}, plan.swept_keys)
    rerun = search_spaces.point_table(point, range(3))
    assert rerun == {"seeds": [0, 1, 2], "grid": {
        "optimizer": {"learning_rate": [plan.points[2]["optimizer.learning_rate"]]},
        "train": {"weight_decay": [plan.points[2]["train.weight_decay"]]}}}
    again = config_sweep.plan(BASE.replace(sweep=rerun))
    assert [p["seed"] for p in again.points] == [0, 1, 2]
    assert {p["optimizer.learning_rate"] for p in again.points} == {plan.points[2]["optimizer.learning_rate"]}


def test_search_config_sets_the_searched_keywords_to_the_factory_defaults():
    space = {"learning_rate": {"loguniform": [1e-4, 1.0]}, "b1": {"one_minus_loguniform": [1e-3, 1.0]},
             "eps": {"loguniform": [1e-10, 1.0]}, "train.weight_decay": {"uniform": [0.0, 0.1]}}
    cfg = optimizer_configs.search_config(BASE, "adam", space)
    # optax.adam's own defaults; its learning rate has none: the recommended 1e-3
    defaults = {k: p.default for k, p in inspect.signature(optax.adam).parameters.items()}
    assert cfg.optimizer.kwargs == {"learning_rate": 1e-3, "b1": defaults["b1"], "eps": defaults["eps"]}
    user = optimizer_configs.search_config(BASE, "adam", space, {"b1": 0.5})
    assert user.optimizer.kwargs["b1"] == 0.5
    with pytest.raises(ConfigError, match=r"^sweep.protocol_options.defaults.adam: .*b1=-0.5 is out of range"):
        optimizer_configs.search_config(BASE, "adam", space, {"b1": -0.5},
                                        kwargs_where="sweep.protocol_options.defaults.adam")


@pytest.mark.parametrize("kind, value, want", [
    ("float", 2, 2.0), ("bool", False, False), ("names", "adam", ["adam"]), ("range", [1, 3], [1.0, 3.0]),
    ("list", [{"a": 1}], [{"a": 1}]),
])
def test_option_kinds_normalize(kind, value, want):
    opts = parse_options("p", {"k": value}, {"k": Option(kind, None, "")}, BASE)
    assert opts == {"k": want} and type(opts["k"]) is type(want)


@pytest.mark.parametrize("kind, value, match", [
    ("float", math.nan, r"sweep.protocol_options.k = nan must be a finite number"),
    ("float", 7.5, r"sweep.protocol_options.k = 7.5 is out of range; valid range: \[0, 5\]"),
    ("bool", 1, r"sweep.protocol_options.k = 1 must be true or false"),
    ("names", ["a", "a"], r"sweep.protocol_options.k: 'a' is listed twice"),
    ("list", [], r"sweep.protocol_options.k must be a non-empty list of tables"),
    ("str", "maxx", r"sweep.protocol_options.k = 'maxx'.*did you mean 'max'"),
])
def test_option_kinds_refuse(kind, value, match):
    schema = {"k": Option(kind, None, "", low=0, high=5, choices=("min", "max"))}
    with pytest.raises(ConfigError, match=match):
        parse_options("p", {"k": value}, schema, BASE)
