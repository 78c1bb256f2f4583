"""Adversarial input (issue 16, bugs 5, 8, 9, 11, 14, 16, 17, 19): every bad value is one line and exit
status 2 before anything is compiled or written, whichever way it comes in."""

import math
import textwrap

import pytest

from jaxopt_lab import config as config_mod
from jaxopt_lab.cli import main
from jaxopt_lab.config import Config, ConfigError, ModelConfig, OptimizerConfig, TrainConfig

BASE = """
[data]
n_samples = 60
[model]
hidden = [4]
[train]
epochs = 2
[optimizer]
name = "{opt}"
learning_rate = 0.1
"""


def _sweep(tmp_path, capsys, text, *extra, opt="sgd"):
    """Run `jaxopt-lab sweep` on BASE + `text`; returns (exit status, stderr, out folder)."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(BASE.format(opt=opt) + textwrap.dedent(text))
    out = tmp_path / "out"
    rc = main(["sweep", str(cfg), "--out", str(out), "--no-report", *extra])
    return rc, capsys.readouterr().err, out


@pytest.mark.parametrize("text,needle,opt", [
    ("[sweep.grid.optimizer]\nlearning_rate = [0.1, -1.0]", "learning_rate", "sgd"),
    ("[sweep.grid.optimizer]\nb1 = [0.9, 1.5]", "b1", "adam"),
    ("[sweep.grid.model]\ndropout = [0.0, 1.5]", "model.dropout", "sgd"),
    ("[sweep.grid.train]\nl2 = [-10.0]", "train.l2", "sgd"),
    ("[sweep.random]\ntrials = 3\n[sweep.random.optimizer]\nmomentum = { uniform = [1.5, 3.0] }", "momentum", "sgd"),
])
def test_bug08_swept_values_get_the_range_checks_of_the_config(tmp_path, capsys, text, needle, opt):
    rc, err, out = _sweep(tmp_path, capsys, text, opt=opt)
    assert rc == 2 and needle in err and "out of range" in err, err
    assert len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("sections,needle", [
    ({"optimizer": OptimizerConfig("sgd", {"learning_rate": -1.0})}, "learning_rate"),
    ({"model": ModelConfig(dropout=1.5)}, "model.dropout"),
    ({"train": TrainConfig(precision="float16")}, "train.precision"),
    ({"optimizer": OptimizerConfig("sgd", {"learning_rate": 0.1, "b1": 0.9})}, "optimizer.b1"),
])
def test_bug09_make_train_checks_a_config_built_in_python(sections, needle):
    from jaxopt_lab.train import make_train

    with pytest.raises(ConfigError, match=needle):
        make_train(Config(**sections))


def test_bug11_seeds_beyond_32_bits_are_refused_not_aliased(tmp_path, capsys):
    rc, err, out = _sweep(tmp_path, capsys, "[sweep]\nseeds = [0, 4294967296]")
    assert rc == 2 and "4294967296" in err and "2**32 - 1" in err
    cfg = tmp_path / "c.toml"
    assert main(["train", str(cfg), "--seed", "4294967296", "--out", str(tmp_path / "t")]) == 2
    assert "--seed" in capsys.readouterr().err and not (tmp_path / "t").exists()
    config_mod.check_seed("seed", 2**32 - 1)  # the largest seed is fine


@pytest.mark.parametrize("old,new,needle", [
    ("hidden = [4]", "hidden = [4]\ninit = \"normal:abc\"", "normal:abc"),
    ("hidden = [4]", "hidden = [4]\ninit = \"normal:-3\"", "normal:-3"),
    ("epochs = 2", "epochs = 1000000000000", "train.epochs"),
    ("learning_rate = 0.1", "learning_rate = 0.1\n[optimizer.schedule]\nname = \"exponential_decay\"\n"
     "decay_steps = \"ten\"\ndecay_rate = 0.5", "decay_steps"),
    ("hidden = [4]", "hidden = [1000000000000]", "model.hidden"),
    ("epochs = 2", "epochs = 2\ndivergence_threshold = -1.0", "train.divergence_threshold"),
    ("epochs = 2", "epochs = 2\nshuffle_seed = -5", "train.shuffle_seed"),
])
def test_bug14_bad_values_exit_2_before_the_checkpoint_folder_exists(tmp_path, capsys, old, new, needle):
    cfg = tmp_path / "c.toml"
    cfg.write_text(BASE.format(opt="sgd").replace(old, new) + "\n[sweep]\nseeds = 2\n")
    out = tmp_path / "out"
    assert main(["sweep", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()  # so the corrected config is not refused as "an interrupted sweep"


def test_bug05_a_huge_random_search_is_refused_before_it_is_expanded(tmp_path, capsys):
    rc, err, out = _sweep(tmp_path, capsys, "[sweep.random]\ntrials = 1000000000\n"
                          "[sweep.random.optimizer]\nlearning_rate = { loguniform = [1e-4, 1.0] }")
    assert rc == 2 and "sweep.random.trials = 1000000000" in err and "1000000" in err
    rc, err, _ = _sweep(tmp_path, capsys, "[sweep]\nseeds = 2000000")
    assert rc == 2 and "sweep.seeds" in err


def test_bug16_a_config_that_is_not_utf8_names_the_file(tmp_path, capsys):
    cfg = tmp_path / "latin1.toml"
    cfg.write_bytes(b"[model]\nactivation = \"r\xe9lu\"\n")
    assert main(["train", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert str(cfg) in err and "UTF-8" in err


@pytest.mark.parametrize("args,needle", [
    (["--coordinator", "127.0.0.1:1234", "--process-id", "5", "--num-processes", "2"], "--process-id 5"),
    (["--num-processes", "0"], "--num-processes 0"),
    (["--coordinator", "127.0.0.1", "--process-id", "0", "--num-processes", "2"], "HOST:PORT"),
    (["--coordinator", "127.0.0.1:99999", "--process-id", "0", "--num-processes", "2"], "HOST:PORT"),
    (["--coordinator-timeout", "0", "--coordinator", "h:1", "--process-id", "0", "--num-processes", "2"],
     "--coordinator-timeout"),
    (["--execution", "map", "--lanes", "4"], "--lanes"),
])
def test_bug16_process_arguments_exit_2(tmp_path, capsys, args, needle):
    rc, err, out = _sweep(tmp_path, capsys, "", *args)
    assert rc == 2 and needle in err, err
    assert not out.exists()


def _checkpointed_sweep(tmp_path):
    """A finished chunk of a 4-run sweep in OUT/checkpoints, as an interrupted sweep leaves it."""
    from jaxopt_lab.sweep import config_sweep

    text = BASE.format(opt="sgd") + "[sweep]\nseeds = 4\n"
    cfg_path = tmp_path / "c.toml"
    cfg_path.write_text(text)
    out = tmp_path / "out"
    config_sweep.run_sweep(config_mod.load(cfg_path), checkpoint_dir=out / "checkpoints", chunk_size=2,
                           execution="map", progress=False)
    (out / "checkpoints" / "group000_chunk00001.ckpt").unlink()
    return cfg_path, out


def test_bug16_resume_with_other_arguments_or_a_corrupt_manifest_exits_2(tmp_path, capsys):
    cfg, out = _checkpointed_sweep(tmp_path)
    common = ["sweep", str(cfg), "--out", str(out), "--no-report", "--resume", "--execution", "map"]
    assert main([*common, "--chunk-size", "4"]) == 2  # one chunk of 4 runs, where 2 were saved
    assert "--chunk-size" in capsys.readouterr().err
    other = tmp_path / "other.toml"
    other.write_text(cfg.read_text().replace("learning_rate = 0.1", "learning_rate = 0.2"))
    assert main(["sweep", str(other), *common[2:], "--chunk-size", "2"]) == 2
    assert "different sweep" in capsys.readouterr().err
    (out / "checkpoints" / "sweep.json").write_text("{not json")
    assert main([*common, "--chunk-size", "2"]) == 2
    assert str(out / "checkpoints" / "sweep.json") in capsys.readouterr().err
    assert (out / "checkpoints" / "group000_chunk00000.ckpt").exists()  # the finished chunk is kept


def test_bug17_a_precision_grid_switches_64_bit_mode_on_for_the_cli():
    from jaxopt_lab.cli import _sweep_needs_x64

    grid = config_mod.from_dict({"sweep": {"grid": {"train": {"precision": ["float32", "float64"]}}}})
    rand = config_mod.from_dict({"sweep": {"random": {"trials": 2, "train": {"precision": {"choice": ["float64"]}}}}})
    plain = config_mod.from_dict({"sweep": {"grid": {"optimizer": {"learning_rate": [0.1]}}}})
    assert _sweep_needs_x64(grid) and _sweep_needs_x64(rand) and not _sweep_needs_x64(plain)


@pytest.mark.parametrize("value", ["inf", "nan"])
def test_bug19_an_infinite_learning_rate_is_refused(tmp_path, capsys, value):
    cfg = tmp_path / "c.toml"
    cfg.write_text(BASE.format(opt="adam").replace("learning_rate = 0.1", f"learning_rate = {value}"))
    assert main(["train", str(cfg), "--out", str(tmp_path / "t")]) == 2
    assert "learning_rate" in capsys.readouterr().err
    from jaxopt_lab import optim

    with pytest.raises(ValueError, match="learning_rate"):
        optim.adam(float(value))
    with pytest.raises(ValueError, match="learning_rate"):
        optim.sgd(math.inf)


@pytest.mark.slow
def test_bug17_a_precision_grid_runs_from_the_command_line(tmp_path):
    import csv

    from cli_helpers import cli

    cfg = tmp_path / "c.toml"
    grid = "[sweep.grid.train]\nprecision = ['float32', 'float64']\n"
    cfg.write_text(BASE.format(opt="sgd") + "[sweep]\nseeds = 2\n" + grid)
    r = cli("sweep", cfg, "--out", tmp_path / "mixed", "--no-report", "--devices", "1")
    assert r.returncode == 0, r.stderr
    only32 = tmp_path / "c32.toml"
    only32.write_text(BASE.format(opt="sgd") + "[sweep]\nseeds = 2\n")
    r = cli("sweep", only32, "--out", tmp_path / "f32", "--no-report", "--devices", "1")
    assert r.returncode == 0, r.stderr
    mixed = list(csv.DictReader(open(tmp_path / "mixed" / "runs.csv")))
    plain = list(csv.DictReader(open(tmp_path / "f32" / "runs.csv")))
    assert [r["train.precision"] for r in mixed] == ["float32", "float32", "float64", "float64"]
    # float32 groups are untouched by the process's 64-bit mode: the same numbers, digit for digit
    assert [r["final_val_loss"] for r in mixed[:2]] == [r["final_val_loss"] for r in plain]
    assert mixed[2]["final_val_loss"] != mixed[0]["final_val_loss"]


def test_sweep_points_with_different_keys_are_refused():
    from jaxopt_lab import sweep

    with pytest.raises(ValueError, match="point 1 has different keys"):
        sweep.run(lambda key, hp: {"x": hp["a"]}, [{"a": 1.0}, {"b": 2.0}], progress=False)


def test_bug10_resume_on_another_device_count_is_refused(tmp_path, capsys):
    """Batched executions round differently on another device count: resuming there is refused, never mixed."""
    from jaxopt_lab import checkpoint

    cfg, out = _checkpointed_sweep(tmp_path)
    chunk = out / "checkpoints" / "group000_chunk00000.ckpt"
    tree, meta = checkpoint.load(chunk)
    checkpoint.save(chunk, tree, {**meta, "devices": meta["devices"] + 1})  # as a sweep on more devices saved it
    assert main(["sweep", str(cfg), "--out", str(out), "--no-report", "--resume", "--execution", "map",
                 "--chunk-size", "2"]) == 2
    assert "--devices" in capsys.readouterr().err
    assert chunk.exists()
