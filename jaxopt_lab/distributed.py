"""Multi-process sweeps that cannot hang: bounded start-up and a watch for lost peers.

`jax.distributed.initialize` retries the coordinator for `initialization_timeout` seconds and
then aborts the process from C++ (SIGABRT and a stack trace); a peer that dies mid-sweep makes
the others wait in a collective until the coordination service's heartbeat timeout aborts them
the same way. Neither can be caught in Python, so this module gets there first: a watchdog
thread (the C++ calls release the GIL) prints one line that names the coordinator and what was
waited for, and ends the process with `EXIT_LOST` before JAX's own, longer, timeouts fire.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import jax

from jaxopt_lab._checks import ConfigError

EXIT_LOST = 3
"""Exit status when the coordinator or a peer process could not be reached or was lost."""

DEFAULT_TIMEOUT = 60
_KEY = "jaxopt_lab/alive/{}"
_state: dict = {}


def _die(message: str) -> None:
    sys.stderr.write(f"jaxopt-lab: error: {message}\n")
    sys.stderr.flush()
    os._exit(EXIT_LOST)


def initialize(coordinator: str, num_processes: int, process_id: int, timeout: float | None = None) -> None:
    """`jax.distributed.initialize` over gloo, ended with one clear line after `timeout` seconds.

    JAX's own timeouts are set beyond ours (so that ours fires first, with a message); they still
    bound the wait should this process be unable to run Python at all.
    """

    timeout = DEFAULT_TIMEOUT if timeout is None else timeout
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    done = threading.Event()

    def watchdog() -> None:
        if not done.wait(timeout):
            _die(f"process {process_id} of {num_processes}: no connection to the coordinator {coordinator} "
                 f"within --coordinator-timeout {timeout:g} s (waited for all {num_processes} processes to join); "
                 "check the address and that every process was started")

    threading.Thread(target=watchdog, name="jaxopt-lab-coordinator-watchdog", daemon=True).start()
    jax.distributed.initialize(
        coordinator_address=coordinator, num_processes=num_processes, process_id=process_id,
        initialization_timeout=int(timeout) + 30, heartbeat_timeout_seconds=int(timeout) + 30,
    )
    done.set()
    _state.update(coordinator=coordinator, num_processes=num_processes, process_id=process_id, timeout=timeout)


@contextlib.contextmanager
def watch(out: Path, resume_hint: str, period: float = 1.0) -> Iterator[None]:
    """While the block runs, every process publishes a heartbeat in the coordinator's key-value store
    and watches the others'; a peer silent for the timeout (or a coordinator that cannot be reached
    for as long) ends this process with one line saying which chunks are saved and how to resume."""
    from jax._src import distributed as jdist  # private JAX: reached only when a multi-process sweep runs

    client = jdist.global_state.client
    if client is None or not _state:
        yield
        return
    me, n, timeout = _state["process_id"], _state["num_processes"], _state["timeout"]
    stop = threading.Event()
    seen: dict[int, tuple[str, float]] = {}
    last_ok = [time.monotonic()]

    def lost(what: str) -> None:
        ckpt = out / "checkpoints"
        saved = sorted(p.name for p in ckpt.glob("*.ckpt")) if ckpt.is_dir() else []
        kept = (f"{len(saved)} finished chunk(s) are saved in {ckpt}" if me == 0 else
                "finished chunks are saved by process 0 in its --out/checkpoints")
        _die(f"{what}; {kept}; restart every process with --resume (this one: {resume_hint})")

    def beat() -> None:
        count = 0
        while not stop.wait(period):
            count += 1
            try:
                client.key_value_set(_KEY.format(me), str(count), allow_overwrite=True)
                now = time.monotonic()
                for peer in range(n):
                    if peer == me:
                        continue
                    try:
                        value = client.key_value_try_get(_KEY.format(peer))
                    except Exception:  # noqa: BLE001 - not written yet
                        value = ""
                    if seen.get(peer, ("", 0.0))[0] != value or peer not in seen:
                        seen[peer] = (value, now)
                last_ok[0] = now
            except Exception:  # noqa: BLE001 - the coordinator is unreachable: the checker decides
                pass

    def check() -> None:
        last_check = time.monotonic()
        while not stop.wait(period):
            now = time.monotonic()
            if now - last_check > period + timeout / 2:
                # This thread itself was starved (the GIL held by a long call): so was the heartbeat
                # thread, and silence says nothing about the peers. Start the clocks again.
                last_ok[0] = now
                for peer in seen:
                    seen[peer] = (seen[peer][0], now)
            last_check = now
            if now - last_ok[0] > timeout:
                lost(f"lost the coordinator {_state['coordinator']} (no answer for --coordinator-timeout "
                     f"{timeout:g} s)")
            for peer, (_, t) in list(seen.items()):
                if now - t > timeout:
                    lost(f"lost process {peer} of {n} (no heartbeat for --coordinator-timeout {timeout:g} s; "
                         f"coordinator {_state['coordinator']})")

    threads = [threading.Thread(target=f, daemon=True, name=f"jaxopt-lab-{f.__name__}") for f in (beat, check)]
    for t in threads:
        t.start()
    try:
        yield
    except Exception as e:  # noqa: BLE001 - see below

        if isinstance(e, ConfigError):  # bad input: every process sees the same and exits 2 together
            raise
        # A collective failed because a peer went away. Exiting normally would wait in JAX's shutdown
        # barrier for the lost peer until the heartbeat timeout aborts the process: end it now.
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        lost(f"lost contact with the other processes (coordinator {_state['coordinator']}): {first}")
    finally:
        stop.set()
