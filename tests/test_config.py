"""Config files: parsing, defaults, and one clear error per kind of bad input."""

import textwrap

import pytest

from jaxopt_lab import config as C

MOONS_EXAMPLE = """
[data]
dataset = "moons"
n_samples = 500
noise = 0.25
random_state = 7
val_fraction = 0.2

[model]
hidden = [20]
activation = "relu"
init = "he_normal"
dropout = 0.0
norm = "none"

[train]
loss = "cross_entropy"
epochs = 400
batch_size = 0
early_stopping_patience = 0

[optimizer]
name = "sgd"
learning_rate = 0.1
momentum = 0.9

[sweep]
seeds = 32
chunk_size = 256

[sweep.grid.optimizer]
learning_rate = [0.001, 0.01, 0.1]
momentum = [0.0, 0.9]
"""


def _load(tmp_path, text):
    p = tmp_path / "c.toml"
    p.write_text(textwrap.dedent(text))
    return C.load(p)


def test_spec_example_parses(tmp_path):
    cfg = _load(tmp_path, MOONS_EXAMPLE)
    assert cfg.data.n_samples == 500 and cfg.model.hidden == (20,)
    assert cfg.optimizer.name == "sgd" and cfg.optimizer.kwargs == {"learning_rate": 0.1, "momentum": 0.9}
    assert cfg.sweep["seeds"] == 32


@pytest.mark.parametrize(
    "text,pattern",
    [
        ("[dta]\ndataset='moons'", r"unknown section \[dta\] \(did you mean 'data'\?\)"),
        ("[data]\ndatset='moons'", r"unknown key data.datset \(did you mean 'dataset'\?\)"),
        ("[data]\nn_samples='many'", r"data.n_samples = 'many' must be an integer"),
        ("[data]\ndataset='moon'", r"data.dataset = 'moon' is not a valid choice \(did you mean 'moons'\?\); valid"),
        ("[data]\nval_fraction=1.5", r"data.val_fraction = 1.5 is out of range"),
        ("[model]\nactivation='rlu'", r"model.activation = 'rlu'.*did you mean 'relu'"),
        ("[model]\ninit='he_norml'", r"model.init = 'he_norml'.*did you mean 'he_normal'"),
        ("[model]\ndropout=1.0", r"model.dropout = 1.0 is out of range; valid range: \[0, 1\)"),
        ("[model]\nnorm='group'", r"model.norm = 'group' is not a valid choice"),
        ("[model]\nhidden=[20, 0]", r"model.hidden = 0 is out of range"),
        ("[train]\nloss='crossentropy'", r"train.loss = 'crossentropy'.*did you mean 'cross_entropy'"),
        ("[train]\nepochs=0", r"train.epochs = 0 is out of range"),
        ("[train]\nprecision='float16'", r"train.precision = 'float16' is not a valid choice"),
        ("[optimizer]\nname='adamm'\nlearning_rate=0.1", r"optimizer.name = 'adamm'.*did you mean 'adam'"),
        ("[optimizer]\nname='sgd'\nlearning_rate=0.1\nbeta1=0.9", r"optimizer.beta1 is not a keyword of sgd"),
        ("[optimizer]\nname='adam'\nlearning_rate=-0.1", r"learning_rate.*-0.1.*range"),
        ("[optimizer]\nname='adam'\nlearning_rate=0.1\nb1=1.5", r"b1.*1.5.*range"),
        ("[optimizer]\nname='sgd'\nlearning_rate='fast'", r"optimizer.learning_rate = 'fast' must be a number"),
        (
            "[optimizer]\nname='sgd'\nlearning_rate=0.1\n[optimizer.schedule]\nname='cosine'",
            r"optimizer.schedule.name = 'cosine'.*valid choices",
        ),
        ("data = 3", r"\[data\] must be a table"),
    ],
)
def test_bad_input_names_the_key(tmp_path, text, pattern):
    with pytest.raises(C.ConfigError, match=pattern) as e:
        _load(tmp_path, text)
    assert "\n" not in str(e.value)


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(C.ConfigError, match="does not exist"):
        C.load(tmp_path / "nope.toml")
    p = tmp_path / "bad.toml"
    p.write_text("[data\n")
    with pytest.raises(C.ConfigError, match="not valid TOML"):
        C.load(p)


def test_schedule_and_plateau_sections(tmp_path):
    cfg = _load(tmp_path, """
        [optimizer]
        name = "sgd"
        learning_rate = 0.1
        [optimizer.schedule]
        name = "exponential_decay"
        transition_steps = 10
        decay_rate = 0.5
        [optimizer.plateau]
        factor = 0.5
        patience = 3
    """)
    assert cfg.optimizer.schedule.name == "exponential_decay"
    assert cfg.optimizer.schedule.kwargs == {"transition_steps": 10, "decay_rate": 0.5}
    assert cfg.optimizer.plateau.patience == 3
    with pytest.raises(C.ConfigError, match="optimizer.schedule.decay is not a keyword of exponential_decay"):
        _load(tmp_path, """
            [optimizer]
            name = "sgd"
            learning_rate = 0.1
            [optimizer.schedule]
            name = "exponential_decay"
            transition_steps = 10
            decay = 0.5
        """)


def test_example_configs_load_and_plan():
    from pathlib import Path

    from jaxopt_lab.sweep import config_sweep

    examples = sorted((Path(__file__).parent.parent / "examples").glob("*.toml"))
    assert len(examples) >= 3
    for path in examples:
        cfg = C.load(path)
        plan = config_sweep.plan(cfg)
        assert len(plan.points) >= 1 and plan.groups
