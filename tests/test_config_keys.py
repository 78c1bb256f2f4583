"""The config keys' single source (`config.KeySpec` on each dataclass field): validation, the
traceable/switchable sets, docs/guide.md's tables and `jaxopt-lab list keys` all follow it."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from jaxopt_lab import config
from jaxopt_lab.config import ConfigError, KeySpec

ROOT = Path(__file__).resolve().parents[1]


def _with(section: str, key: str, value):
    cfg = config.Config()
    if section == "optimizer.plateau":
        plateau = dataclasses.replace(config.PlateauConfig(), **{key: value})
        return cfg.replace(optimizer=dataclasses.replace(cfg.optimizer, plateau=plateau))
    return cfg.replace(**{section: dataclasses.replace(getattr(cfg, section), **{key: value})})


def _outside(spec: KeySpec) -> list[float]:
    """Values just outside the spec's range (each side that has a bound), and infinity when refused."""
    out = []
    if spec.low is not None:
        out.append(spec.low if spec.low_open else spec.low - 1)
    if spec.high is not None:
        out.append(spec.high if spec.high_open else spec.high + 1)
    if not spec.allow_inf:
        out.append(math.inf)
    return out


RANGED = [(k, s) for k, s in config.key_specs().items() if (s.low is not None or s.high is not None) and not s.seed]


@pytest.mark.parametrize("dotted,spec", RANGED, ids=[k for k, _ in RANGED])
def test_validation_refuses_each_value_outside_the_declared_range(dotted, spec):
    section, key = dotted.rsplit(".", 1)
    default = config.key_specs(section)[dotted]
    assert default is spec
    field = {f.name: f for f in dataclasses.fields(config.SPEC_SECTIONS[section])}[key]
    listed = isinstance(field.default, tuple)
    for bad in _outside(spec):
        value = (int(bad) if math.isfinite(bad) else bad,) if listed else bad
        if listed and not math.isfinite(bad):
            continue  # list entries are integers: infinity is a type error, checked elsewhere
        with pytest.raises(ConfigError) as e:
            config.validate(_with(section, key, value), data=section == "data")
        msg = str(e.value)
        assert msg.startswith(f"{dotted} = ") and spec.range_text() in msg, msg


def test_the_defaults_pass_validation_and_every_field_has_a_spec():
    config.validate(config.Config())
    for section, cls in config.SPEC_SECTIONS.items():
        for f in dataclasses.fields(cls):
            assert isinstance(f.metadata.get("spec"), KeySpec), f"{section}.{f.name} has no option(...) spec"
            assert f.metadata["spec"].help, f"{section}.{f.name} has no help text"


def test_choices_come_from_the_spec():
    with pytest.raises(ConfigError, match=r"model.norm = 'bach' is not a valid choice \(did you mean 'batch'\?\)"):
        config.validate(_with("model", "norm", "bach"))
    with pytest.raises(ConfigError, match="train.loss = 'mse2'.*valid choices: .*huber"):
        config.validate(_with("train", "loss", "mse2"))


def test_traceable_and_switchable_sets_are_derived_from_the_specs():
    from jaxopt_lab import train

    assert train.TRACEABLE_KEYS is config.TRACEABLE_KEYS
    assert set(config.SWITCHABLE_KEYS) <= set(config.TRACEABLE_KEYS)
    assert set(config.RANDOM_KEYS) <= set(config.SWITCHABLE_KEYS)
    assert {"train.l2", "train.weight_decay", "model.dropout", "model.init_scale"} <= set(config.TRACEABLE_KEYS)
    assert "train.epochs" not in config.TRACEABLE_KEYS  # a shape: it compiles into the program
    trainer = train.make_train(config.Config().replace(train=config.TrainConfig(epochs=2)))
    assert set(config.TRACEABLE_KEYS) <= set(trainer.traceable_keys())


def test_the_guides_key_tables_are_the_generated_ones():
    guide = (ROOT / "docs" / "guide.md").read_text()
    for section in config.SPEC_SECTIONS:
        assert f"<!-- keys: {section} " in guide, f"docs/guide.md lacks the generated table of [{section}]"
    assert config.update_key_tables(guide) == guide, (
        "docs/guide.md's key tables differ from jaxopt_lab/config.py; regenerate them with "
        "config.update_key_tables"
    )


def test_list_keys_prints_every_key(capsys):
    from jaxopt_lab import cli

    assert cli.main(["list", "keys"]) == 0
    out = capsys.readouterr().out
    for dotted in config.key_specs():
        assert f"  {dotted} = " in out
    assert "  train.l2 = 0.0  [0, inf)  traced" in out
    assert cli.main(["list", "kyes"]) == 2
    assert "list WHAT = 'kyes' is not a valid choice (did you mean 'keys'?)" in capsys.readouterr().err


def test_list_into_a_closed_pipe_is_quiet():
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "jaxopt_lab", "list"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader leaves before the listing is written, as `| head -1` may
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 0 and err == "", err
