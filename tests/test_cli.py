"""The command line: exit codes, bad input, sweep outputs (docs/guide.md), resume after SIGKILL."""

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from cli_helpers import cli, sweep_in_two_processes

from jaxopt_lab.cli import main

SWEEP = """
[data]
dataset = "moons"
n_samples = 100
noise = 0.2
random_state = 7
val_fraction = 0.2

[model]
hidden = [8]

[train]
epochs = {epochs}

[optimizer]
name = "sgd"
learning_rate = 0.1
momentum = 0.9

[sweep]
seeds = 2
chunk_size = {chunk}

[sweep.grid.optimizer]
learning_rate = [0.01, 0.1, 1e30]
momentum = [0.0, 0.9]
"""

RUNS_CSV_COLUMNS = [
    "run", "optimizer.learning_rate", "optimizer.momentum", "seed", "final_train_loss", "final_train_accuracy",
    "final_val_loss", "final_val_accuracy", "best_val_loss", "best_epoch", "epochs_run", "diverged",
]


def _write(tmp_path, text, name="c.toml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


_cli = cli


@pytest.mark.parametrize(
    "text,needle",
    [
        ("[model]\nactivaton = 'relu'", "model.activaton"),
        ("[optimizer]\nname = 'adamm'\nlearning_rate = 0.1", "did you mean 'adam'"),
        ("[optimizer]\nname = 'sgd'\nlearning_rate = -1.0", "learning_rate"),
        ("[sweep]\nseeds = 2\n[sweep.grid.model]\ndropot = [0.1]", "model.dropot"),
    ],
)
def test_bad_config_exits_2_with_one_line_and_no_output(tmp_path, capsys, text, needle):
    cfg = _write(tmp_path, text)
    out = tmp_path / "out"
    assert main(["sweep", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and "\n" not in err and "Traceback" not in err
    assert not out.exists()


def test_missing_file_and_bad_arguments_exit_2(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["sweep", "x.toml"])  # --out is required
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["frobnicate"])
    assert e.value.code == 2


def test_list_names_everything(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for word in ("optimizers:", "adamw", "schedules:", "exponential_decay", "datasets:", "moons", "digits",
                 "models:", "cnn (model.kind = 'cnn'", "model.factory",
                 "activations:", "selu", "initializers:", "he_normal", "losses:", "cross_entropy",
                 "protocols (sweep --protocol):", "deepobs:", "algoperf:"):
        assert word in out


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_sweep_writes_documented_outputs(tmp_path):
    cfg = _write(tmp_path, SWEEP.format(epochs=20, chunk=4))
    out = tmp_path / "out"
    r = _cli("sweep", cfg, "--out", out)
    assert r.returncode == 0, r.stderr
    assert f"wrote {out}" in r.stdout
    rows = _read_csv(out / "runs.csv")
    assert rows[0] == RUNS_CSV_COLUMNS
    assert len(rows) == 13 and [int(x[0]) for x in rows[1:]] == list(range(12))
    diverged = {row[2 - 1]: row[-1] for row in rows[1:]}
    assert diverged["1e+30"] == "true" and diverged["0.1"] == "false"
    summary = json.loads((out / "summary.json").read_text())
    for key in ("runs", "devices", "wall_seconds", "compile_seconds", "runs_per_second", "best"):
        assert key in summary
    assert summary["runs"] == 12 and summary["best"]["config"]["optimizer"]["learning_rate"] != 1e30
    assert (out / "histories.npz").exists() and (out / "index.html").exists()
    assert list(out.glob("*.png"))
    assert not (out / "checkpoints").exists()
    assert not list(tmp_path.glob(".out.partial-*"))


def test_one_device_and_four_devices_give_the_same_runs_csv(tmp_path):
    cfg = _write(tmp_path, SWEEP.format(epochs=15, chunk=12))
    one, four = tmp_path / "one", tmp_path / "four"
    r1 = _cli("sweep", cfg, "--out", one, "--devices", "1", "--no-report")
    r4 = _cli("sweep", cfg, "--out", four, "--devices", "4", "--no-report")
    assert r1.returncode == 0 and r4.returncode == 0, r1.stderr + r4.stderr
    assert json.loads((four / "summary.json").read_text())["devices"] == 4
    assert (one / "runs.csv").read_text() == (four / "runs.csv").read_text()


def test_mini_batch_lanes_give_the_same_runs_csv_on_1_2_and_4_devices(tmp_path):
    """execution="auto" vmaps mini-batch runs in lanes of a fixed width; every shard is whole lanes, so
    float32 rounding (which depends on the vmapped width) is the same on any device count."""
    cfg = _write(tmp_path, SWEEP.format(epochs="12\nbatch_size = 16", chunk=50))
    outs = {}
    for d in (1, 2, 4):
        r = _cli("sweep", cfg, "--out", tmp_path / f"d{d}", "--devices", str(d), "--no-report")
        assert r.returncode == 0, r.stderr
        outs[d] = (tmp_path / f"d{d}" / "runs.csv").read_text()
    assert outs[1] == outs[2] == outs[4]


def test_resume_after_sigkill_equals_uninterrupted(tmp_path):
    cfg = _write(tmp_path, SWEEP.format(epochs=1500, chunk=1))
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    r = _cli("sweep", cfg, "--out", ref, "--no-report", "--devices", "1")
    assert r.returncode == 0, r.stderr
    env = dict(os.environ, JAXOPT_LAB_CACHE_DIR="")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jaxopt_lab", "sweep", str(cfg), "--out", str(killed), "--no-report", "--devices", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    ckpts = killed / "checkpoints"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if len(list(ckpts.glob("*.ckpt"))) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list(ckpts.glob("*.ckpt")))
    assert 1 <= done < 12, "the sweep should have been killed part-way"
    assert not (killed / "runs.csv").exists()
    again = _cli("sweep", cfg, "--out", killed, "--no-report", "--devices", "1")
    assert again.returncode == 2 and "--resume" in again.stderr
    resumed = _cli("sweep", cfg, "--out", killed, "--no-report", "--devices", "1", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((killed / "summary.json").read_text())["chunks_resumed"] >= done - 1
    assert (killed / "runs.csv").read_text() == (ref / "runs.csv").read_text()


def test_train_writes_a_run_folder(tmp_path):
    cfg = _write(tmp_path, SWEEP.format(epochs=10, chunk=4).split("[sweep]")[0])
    out = tmp_path / "run"
    assert main(["train", str(cfg), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs_run"] == 10 and metrics["diverged"] is False
    assert len(_read_csv(out / "history.csv")) == 11
    from jaxopt_lab import checkpoint

    tree, meta = checkpoint.load(out / "model.ckpt")
    assert tree["params"]["dense_0"]["w"].shape == (2, 8)
    assert meta["seed"] == 0
    assert Path(out / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_two_processes_on_loopback_give_the_same_runs_csv(tmp_path):
    """A sweep across 2 processes (jax.distributed, CPU collectives) equals one process."""
    cfg = _write(tmp_path, SWEEP.format(epochs=15, chunk=12))
    sweep_in_two_processes(cfg, tmp_path / "p")
    single = _cli("sweep", cfg, "--out", tmp_path / "single", "--no-report", "--devices", "1")
    assert single.returncode == 0, single.stderr
    assert json.loads((tmp_path / "p0" / "summary.json").read_text())["devices"] == 2
    assert (tmp_path / "p0" / "runs.csv").read_text() == (tmp_path / "single" / "runs.csv").read_text()
    assert not (tmp_path / "p1").exists()  # only process 0 writes


def test_compare_optax_prints_the_parity_table(capsys):
    assert main(["compare-optax", "--steps", "5", "--only", "adamw,sgd"]) == 0
    out = capsys.readouterr().out
    assert "adamw" in out and "match" in out and "cases match optax" in out and "radam" not in out
    assert main(["compare-optax", "--steps", "0"]) == 2
    assert main(["compare-optax", "--only", "adamm"]) == 2
    assert "adamm" in capsys.readouterr().err
