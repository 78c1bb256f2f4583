"""Helpers for tests that run `jaxopt-lab` in child processes (shared by test_cli and test_adaptive)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path


def cli(*args, env_extra=None, timeout=300) -> subprocess.CompletedProcess:
    """`python -m jaxopt_lab ARGS` with the persistent compile cache off."""
    env = dict(os.environ, JAXOPT_LAB_CACHE_DIR="", **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-m", "jaxopt_lab", *map(str, args)], capture_output=True, text=True, env=env,
        timeout=timeout,
    )


def sweep_in_two_processes(cfg: Path, out_prefix: Path) -> list[tuple[str, str]]:
    """`jaxopt-lab sweep CFG` across 2 processes on loopback (outputs in OUT_PREFIX0, OUT_PREFIX1);
    fails unless both exit 0. Returns each process's (stdout, stderr)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, JAXOPT_LAB_CACHE_DIR="")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "jaxopt_lab", "sweep", str(cfg), "--out", f"{out_prefix}{i}", "--no-report",
             "--devices", "1", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", str(i)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    return outs
