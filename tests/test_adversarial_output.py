"""Adversarial cases for output folders (issue 16, bugs 1, 2, 3, 12, 13, 20): no command removes or
replaces a file it did not write, publishing is all-or-nothing, and files are 0644."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from jaxopt_lab import _io
from jaxopt_lab.cli import main
from jaxopt_lab.sweep import records

ROOT = Path(__file__).parent.parent

CONFIG = """
[data]
n_samples = 60
[model]
hidden = [4]
[train]
epochs = 2
"""


def _user_files(out: Path) -> dict[str, str]:
    """A user's own files in `out`: one beside the results, one in a subfolder."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "sub").mkdir(exist_ok=True)
    files = {"precious.txt": "keep me", "sub/thesis.tex": "\\documentclass{article}"}
    for name, text in files.items():
        (out / name).write_text(text)
    return files


def _assert_kept(out: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        assert (out / name).read_text() == text, name


def _publish(out: Path, files: dict[str, str], **kw) -> None:
    with _io.publish(out, **kw) as stage:
        for name, text in files.items():
            (stage / name).write_text(text)


def test_bug01_demo_never_removes_a_folder_with_an_index_html(tmp_path, capsys):
    out = tmp_path / "report"
    files = _user_files(out)
    (out / "index.html").write_text("<p>mine</p>")
    assert main(["demo", "--out", str(out), "--size", "tiny"]) == 2
    assert "'index.html'" in capsys.readouterr().err
    _assert_kept(out, {**files, "index.html": "<p>mine</p>"})
    assert not list(tmp_path.glob(".report.partial-*"))


def test_bug02_resume_keeps_a_users_checkpoints_folder(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG + "[sweep]\nseeds = 2\n")
    out = tmp_path / "out"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "model_epoch100.pt").write_bytes(b"weights")
    for extra in ([], ["--resume"]):
        assert main(["sweep", str(cfg), "--out", str(out), *extra]) == 2
        assert "did not write" in capsys.readouterr().err
        assert (out / "checkpoints" / "model_epoch100.pt").read_bytes() == b"weights"
    # A sweep's own checkpoint folder: only its files go, the user's file stays.
    (out / "checkpoints" / "sweep.json").write_text("{}")
    (out / "checkpoints" / "group000_chunk00000.ckpt").write_bytes(b"x")
    assert not _io.remove_checkpoints(out / "checkpoints")
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["model_epoch100.pt"]


def test_bug03_a_users_folder_named_like_a_result_is_refused_not_removed(tmp_path):
    out = tmp_path / "out"
    files = _user_files(out)
    (out / "runs.csv").mkdir()
    (out / "runs.csv" / "inside.txt").write_text("mine")
    with pytest.raises(_io.OutputFolderError, match="'runs.csv' \\(a folder\\)"):
        with records.staged_folder(out) as stage:
            records.write_runs_csv(stage / "runs.csv", [{"seed": 0}], [])
    _assert_kept(out, {**files, "runs.csv/inside.txt": "mine"})
    assert not list(tmp_path.glob(".out.partial-*"))


def test_publish_replaces_only_its_own_results_and_keeps_the_users(tmp_path):
    out = tmp_path / "out"
    files = _user_files(out)
    _publish(out, {"runs.csv": "old", "aggregate.csv": "old"})
    _publish(out, {"runs.csv": "new"})
    assert (out / "runs.csv").read_text() == "new"
    assert not (out / "aggregate.csv").exists()  # the old results' own table went with them
    _assert_kept(out, files)
    assert json.loads((out / _io.MANIFEST).read_text())["entries"] == ["runs.csv"]
    (out / "notes.md").write_text("mine")  # a user's file added later, then a collision with it
    with pytest.raises(_io.OutputFolderError, match="notes.md"):
        _publish(out, {"runs.csv": "newer", "notes.md": "ours"})
    assert (out / "runs.csv").read_text() == "new" and (out / "notes.md").read_text() == "mine"


def test_a_sweeps_own_checkpoints_go_with_the_publish_and_a_train_keeps_them(tmp_path):
    out = tmp_path / "out"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "sweep.json").write_text("{}")
    _publish(out, {"metrics.json": "{}"})  # e.g. `train` into a folder with an interrupted sweep
    assert (out / "checkpoints" / "sweep.json").exists()
    _publish(out, {"runs.csv": "x"}, drop=("checkpoints",))  # the sweep itself, finished
    assert not (out / "checkpoints").exists()
    assert not (out / "metrics.json").exists()  # the earlier results, replaced as a whole


def test_out_empty_string_is_refused_not_the_working_directory(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG)
    assert main(["train", str(cfg), "--out", ""]) == 2
    assert "names no folder" in capsys.readouterr().err


_KILL_SCRIPT = """
import os, sys
from pathlib import Path
sys.path.insert(0, {root!r})
from jaxopt_lab import _io

out, point = Path(sys.argv[1]), sys.argv[2]
real_rename = os.rename
calls = [0]

def die(*a, **k):
    os._exit(9)

if point == "build":
    with _io.publish(out) as stage:
        (stage / "runs.csv").write_text("new")
        die()
if point == "before_swap":
    _io._exchange = lambda a, b: die()
if point == "after_swap":
    _io._give_back = die
if point.startswith("give_back"):
    n = int(point.split(":")[1])
    real_give_back = _io._give_back
    def rename_then_die(a, b):
        calls[0] += 1
        if calls[0] > n:
            die()
        real_rename(a, b)
    def give_back(*a, **k):
        _io.os.rename = rename_then_die
        real_give_back(*a, **k)
    _io._give_back = give_back
if point == "two_renames":
    _io._exchange = lambda a, b: False
    def rename_once(a, b):
        calls[0] += 1
        if calls[0] > 1:
            die()
        real_rename(a, b)
    _io.os.rename = rename_once
with _io.publish(out) as stage:
    for name in ("runs.csv", "summary.json", "histories.npz"):
        (stage / name).write_text("new")
"""


@pytest.mark.parametrize("point", ["build", "before_swap", "after_swap", "give_back:0", "give_back:1",
                                   "two_renames"])
def test_bug12_sigkill_while_publishing_leaves_old_or_new_and_the_next_run_cleans_up(tmp_path, point):
    out = tmp_path / "out"
    files = _user_files(out)
    _publish(out, {"runs.csv": "old", "summary.json": "old"})
    script = tmp_path / "kill.py"
    script.write_text(_KILL_SCRIPT.format(root=str(ROOT)))
    r = subprocess.run([sys.executable, str(script), str(out), point], capture_output=True, text=True, timeout=60)
    assert r.returncode == 9, r.stderr
    if out.exists():  # the results are one generation: all old or all new, never a mix
        generation = {(out / n).read_text() for n in ("runs.csv", "summary.json") if (out / n).exists()}
        assert len(generation) == 1
        new = generation == {"new"}
        assert (out / "histories.npz").exists() == new
    _io.prepare(out)  # what the next run (or --resume) does first
    assert not list(tmp_path.glob(".out.partial-*")), "the leftovers of the interrupted publish remain"
    _assert_kept(out, files)
    kept = (out / "runs.csv").read_text()
    assert {(out / n).read_text() for n in ("runs.csv", "summary.json")} == {kept}
    assert kept == ("old" if point in ("build", "before_swap", "two_renames") else "new")


def test_bug13_train_into_a_folder_holding_a_history_csv_folder_is_refused_first(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG)
    out = tmp_path / "run"
    (out / "history.csv").mkdir(parents=True)
    (out / "history.csv" / "mine.txt").write_text("mine")
    assert main(["train", str(cfg), "--out", str(out)]) == 2
    assert "history.csv" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["history.csv"]  # nothing written, nothing removed
    assert (out / "history.csv" / "mine.txt").read_text() == "mine"


def test_bug20_every_output_file_is_0644(tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "out"
        with records.staged_folder(out) as stage:
            records.write_runs_csv(stage / "runs.csv", [{"seed": 0}], [])
            records.write_summary_json(stage / "summary.json", {"runs": 1})
            (stage / "index.html").write_text("x")
        records.write_runs_csv(tmp_path / "alone.csv", [{"seed": 0}], [])
    finally:
        os.umask(old)
    for p in [*out.iterdir(), tmp_path / "alone.csv"]:
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, p.name
    assert stat.S_IMODE(out.stat().st_mode) == 0o755


def test_sweep_then_train_into_a_folder_keep_the_users_files(tmp_path):
    """The commands end to end: results published, the checkpoints gone, the user's files untouched."""
    cfg = tmp_path / "c.toml"
    cfg.write_text(CONFIG + "[sweep]\nseeds = 2\n")
    out = tmp_path / "out"
    files = _user_files(out)
    assert main(["sweep", str(cfg), "--out", str(out), "--no-report", "--devices", "1"]) == 0
    assert (out / "runs.csv").exists() and not (out / "checkpoints").exists()
    _assert_kept(out, files)
    assert main(["train", str(cfg), "--out", str(out)]) == 0
    assert (out / "metrics.json").exists() and not (out / "runs.csv").exists()  # results replaced as a whole
    _assert_kept(out, files)
    assert not list(tmp_path.glob(".out.partial-*"))


def test_a_staging_folder_of_a_running_command_is_left_alone(tmp_path):
    out = tmp_path / "out"
    busy = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        stage = tmp_path / ".out.partial-busy"
        stage.mkdir()
        (stage / _io.PARTIAL_MARK).write_text(f"{busy.pid}\n{__import__('socket').gethostname()}\n")
        (stage / "runs.csv").write_text("being written")
        _publish(out, {"runs.csv": "mine"})  # a second command on the same folder meanwhile
        assert (stage / "runs.csv").read_text() == "being written"
    finally:
        busy.kill()
        busy.wait()
    _io.prepare(out)  # its owner is gone: now it is a leftover
    assert not stage.exists() and (out / "runs.csv").read_text() == "mine"


def test_out_as_a_symlink_publishes_into_the_folder_it_points_to(tmp_path):
    target = tmp_path / "real"
    files = _user_files(target)
    link = tmp_path / "link"
    link.symlink_to(target)
    _publish(link, {"runs.csv": "new"})
    assert link.is_symlink() and (target / "runs.csv").read_text() == "new"
    _assert_kept(target, files)


def test_an_added_result_keeps_the_earlier_ones(tmp_path):
    """`--check-vectorization` adds vectorization.json beside a sweep's results instead of replacing them."""
    out = tmp_path / "out"
    files = _user_files(out)
    _publish(out, {"runs.csv": "sweep", "summary.json": "sweep"})
    with _io.publish(out, replace=False) as stage:
        (stage / "vectorization.json").write_text("{}")
    assert (out / "runs.csv").read_text() == "sweep" and (out / "vectorization.json").exists()
    assert json.loads((out / _io.MANIFEST).read_text())["entries"] == ["runs.csv", "summary.json",
                                                                       "vectorization.json"]
    _assert_kept(out, files)
