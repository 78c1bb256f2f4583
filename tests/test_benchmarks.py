"""Smoke tests of the benchmarks: each script at a tiny size prints its tables and passes its checks.

The scripts run in child processes: they set the host device count and float32 before
JAX starts, which this test process (x64 on, backend started) cannot. The default run
keeps to the cheapest contenders (every compile costs seconds on a small machine); the
complete tiny run of each script is marked slow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(BENCH))

import common  # noqa: E402


def run_script(name: str, *args: str, out: Path, timeout: float = 600) -> tuple[str, dict]:
    cmd = [sys.executable, str(BENCH / name), "--size", "tiny", "--out", str(out), *args]
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_ENABLE_X64"] = "0"
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout)
    tail = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, f"{name} exited {proc.returncode}\n{tail}"
    payload = json.loads(out.read_text())
    assert payload["ok"] is True
    assert payload["checks"] and all(c["ok"] for c in payload["checks"])
    assert "all checks passed" in proc.stdout
    return proc.stdout, payload


# ----------------------------------------------------------------------------- the harness itself


def test_spread_and_ratios():
    s = common.spread([3.0, 1.0, 2.0, float("nan")])
    assert (s.median, s.low, s.high, s.n) == (2.0, 1.0, 3.0, 3)
    assert s.fmt(3) == "2.00 [1.00–3.00]"
    a = [common.Sample(seconds=1.0, work=10), common.Sample(seconds=2.0, work=10)]
    b = [common.Sample(seconds=2.0, work=10), common.Sample(seconds=2.0, work=10)]
    r = common.ratio_spread(a, b)  # a is 2x then 1x as fast as b, round by round
    assert (r.low, r.high, r.median) == (1.0, 2.0, 1.5)
    assert common.rate_spread(a).median == pytest.approx(7.5)


def test_alternate_interleaves_rounds():
    calls = []
    out = common.alternate(
        {"A": lambda: calls.append("A"), "B": lambda: calls.append("B")}, reps=3, work={"A": 2, "B": 1}
    )
    assert calls == ["A", "B", "B", "A", "A", "B"]
    assert [len(v) for v in out.values()] == [3, 3]
    assert all(s.work == 2 for s in out["A"])


def test_alternate_takes_a_reported_time():
    out = common.alternate(
        {"child": lambda: {"__timing__": {"seconds": 0.5, "compile": 3.0}}}, reps=1, work={"child": 5}
    )
    assert out["child"][0].seconds == 0.5 and out["child"][0].rate == 10.0
    assert out["child"][0].extra == {"compile": 3.0}


def test_table_layout():
    text = common.table([{"a": 1, "bb": "x"}, {"a": 22, "bb": "yyy"}])
    lines = text.splitlines()
    assert lines[0] == "| a  | bb  |" and lines[1] == "| -- | --- |" and lines[3] == "| 22 | yyy |"


def test_peak_rss_sees_a_temporary_allocation():
    with common.PeakRSS() as mem:
        block = np.ones(40 * 2**20 // 8)  # 40 MiB, touched
        block.sum()
        del block
    assert mem.delta >= 30 * 2**20, (mem.method, mem.delta)
    assert mem.peak >= mem.start


def test_run_child_reports_its_own_peak_and_status():
    code = "import numpy as np, sys; a = np.ones(50 * 2**20 // 8); a.sum(); sys.exit(3)"
    child = common.run_child([sys.executable, "-c", code])
    assert child.returncode == 3
    assert child.peak_rss >= 50 * 2**20
    assert child.seconds > 0


def test_child_reports_its_own_peak_not_the_parents():
    # ru_maxrss of a child counts the parent's resident memory at the fork; the child's own
    # VmHWM, printed at exit, does not.
    ballast = np.ones(300 * 2**20 // 8)  # 300 MiB held by this process while the child runs
    ballast.sum()
    code = (
        f"import sys; sys.path.insert(0, {str(BENCH)!r}); import common; common.report_peak_at_exit(); "
        "import numpy as np; a = np.ones(20 * 2**20 // 8); a.sum()"
    )
    child = common.run_child([sys.executable, "-c", code])
    del ballast
    assert child.returncode == 0 and child.peak_source == "child VmHWM"
    assert 20 * 2**20 <= child.peak_rss < 250 * 2**20
    assert common.PEAK_MARKER not in child.stderr


def test_checks_and_machine_info(tmp_path):
    checks = common.Checks()
    checks.add("good", True)
    assert common.finish(checks, {}, str(tmp_path / "a.json")) == 0
    checks.add("bad", False, "why")
    assert common.finish(checks, {}, str(tmp_path / "b.json")) == 1
    assert json.loads((tmp_path / "b.json").read_text())["ok"] is False
    info = common.machine_info()
    assert info["cores"] >= 1 and info["jax"] and info["cpu_model"]
    # BENCHMARKS.md section 1.1: 96 MFLOP per run of the moons sweep
    assert common.mlp_train_flops([2, 20, 2], 500) * 400 == pytest.approx(96e6)


def test_to_toml_round_trips():
    import tomllib

    import sweep_throughput as st

    raw = st.problem_config("moons", st.PROBLEMS["moons"]["tiny"], 0.2)
    assert tomllib.loads(st.to_toml(raw)) == raw


# ----------------------------------------------------------------------------- the scripts, tiny


def test_sweep_throughput_tiny(tmp_path):
    t0 = time.perf_counter()
    stdout, payload = run_script(
        "sweep_throughput.py",
        "--problems",
        "moons",
        "--lines",
        "identical",
        "--contenders",
        "project API,expert jit(vmap),torch sequential 1-thread,numpy lecture loop",
        out=tmp_path / "st.json",
    )
    assert "x expert jit(vmap)" in stdout and "runs/s" in stdout
    (line,) = payload["lines"]
    names = [r["contender"] for r in line["table"]]
    assert names == ["project API", "expert jit(vmap)", "torch sequential 1-thread", "numpy lecture loop"]
    # every contender was compared run by run with the project, and agreed
    assert {c["name"].split(": ")[1] for c in payload["checks"]} >= {
        "expert jit(vmap) matches the project run by run",
        "numpy lecture loop matches the project run by run",
    }
    assert line["contenders"]["expert jit(vmap)"]["ratio_vs_baseline"]["median"] == pytest.approx(1.0)
    assert time.perf_counter() - t0 < 300


def test_optimizer_step_tiny(tmp_path):
    stdout, payload = run_script("optimizer_step.py", "--optimizers", "sgd,adam", out=tmp_path / "os.json")
    assert "project / optax" in stdout and "lecture NumPy" in stdout
    assert set(payload["optimizers"]) == {"sgd", "adam"}
    adam = payload["optimizers"]["adam"]
    # Adam holds exactly two moment trees (+ a count): optax's state size
    assert adam["state_bytes_project"] == adam["state_bytes_optax"]
    assert adam["state_bytes_project"] >= 2 * 4 * payload["parameters"]
    assert set(payload["lecture_numpy"]) == {"adagrad", "rmsprop", "adam"}


def test_scaling_tiny(tmp_path):
    stdout, payload = run_script("scaling.py", "--parts", "recompile,runs", out=tmp_path / "sc.json")
    assert "runs per sweep" in stdout and "second sweep with new values" in stdout
    rec = payload["recompile"]
    assert rec[0]["compilations"] == 1 and rec[1]["compilations"] == 0
    assert [r["runs"] for r in payload["runs_per_sweep"]][:3] == [1, 2, 4]


def test_adaptive_tiny(tmp_path):
    stdout, payload = run_script("adaptive.py", out=tmp_path / "ad.json")
    assert "## Refill" in stdout and "Successive halving" in stdout
    refill = payload["refill"][0]
    assert set(refill["runs_per_second"]) == {"vmap", "refill", "map"}
    assert refill["epochs_needed"] <= refill["runs"] * refill["epochs"]
    point = payload["halving"]["moons"]["per_seed"][0]["halving"][0]
    assert point["epochs_spent"] < point["configs"] * 9


@pytest.mark.slow
def test_every_script_complete_at_tiny_size(tmp_path):
    stdout, payload = run_script("sweep_throughput.py", out=tmp_path / "st.json")
    problems = {(ln["problem"], ln["line"].split(" ")[0]) for ln in payload["lines"]}
    assert problems == {
        ("moons", "identical"),
        ("moons", "project"),
        ("minibatch", "identical"),
        ("digits", "identical"),
    }
    assert "project CLI" in stdout
    run_script("optimizer_step.py", out=tmp_path / "os.json")
    _, sc = run_script("scaling.py", out=tmp_path / "sc.json")
    assert set(sc["devices"]["samples"]) == {"1", "2"}


# ----------------------------------------------------------------------------- the accelerator check


def _accelerator(*args: str, out: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env.update({"OUT": str(out), "JAX_PLATFORMS": "cpu"})
    return subprocess.run(["bash", str(BENCH / "accelerator.sh"), *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=timeout)


def test_accelerator_script_parses_and_refuses_a_cpu_only_machine(tmp_path):
    assert subprocess.run(["bash", "-n", str(BENCH / "accelerator.sh")]).returncode == 0
    proc = _accelerator(out=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "no GPU or TPU here (jax.default_backend() is 'cpu'): nothing measured" in proc.stdout
    assert "--cpu-smoke" in proc.stdout
    assert "nothing measured" in (tmp_path / "accelerator.log").read_text()
    bad = _accelerator("--fast", out=tmp_path)
    assert bad.returncode == 2 and "unknown option '--fast'; valid: --cpu-smoke, --help" in bad.stderr


@pytest.mark.slow
def test_accelerator_cpu_smoke(tmp_path):
    proc = _accelerator("--cpu-smoke", out=tmp_path, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:]
    log = (tmp_path / "accelerator.log").read_text()
    for step in ("moons sweep", "minibatch sweep", "digits sweep", "CNN sweep"):
        assert f"### {step}: done" in log
    steps = log.split("## ratios")[0]  # the summary after it repeats the steps' lines
    assert steps.count("all checks passed") == 3 and steps.count("peak device memory") >= 3
