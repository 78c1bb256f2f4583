"""Timing harness shared by the benchmarks: side-by-side repetitions, peak memory, machine facts.

Everything here exists because the benchmark machine is shared and small: absolute
times drift by tens of percent between minutes, so every comparison is made by
*alternating* the contenders (A B A B ...) inside one process, taking medians of
the repetitions, and showing the min-max spread as the noise. Ratios are formed
per round (A and B timed back to back) before taking their median, so a slow
minute slows both sides of a ratio.

Peak memory is the process's resident-set high-water mark (`VmHWM` of
`/proc/self/status`), reset before each measured call by writing ``5`` to
`/proc/self/clear_refs` (Linux >= 4.0). Where that is not allowed a sampling
thread reads `VmRSS` every few milliseconds instead. Child processes print their
own `VmHWM` at exit (`report_peak_at_exit`); `os.wait4`'s `ru_maxrss` is only a
fallback, since on Linux it also counts the parent's memory at the fork.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

SIZES = ("tiny", "small", "full")

# ----------------------------------------------------------------------------- machine


def cpu_count() -> int:
    """Cores this process may run on (the affinity mask, which containers narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(module: str) -> str | None:
    try:
        from importlib import metadata

        return metadata.version(module)
    except Exception:  # noqa: BLE001 - a missing or broken package is reported as None
        return None


def memory_total_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    """Cores, CPU model, memory, library versions, load and date: what a result needs to be read."""
    info: dict[str, Any] = {
        "date_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "cores": cpu_count(),
        "cpu_model": cpu_model(),
        "memory_total_gib": round((memory_total_bytes() or 0) / 2**30, 1),
        "load_average_1_5_15": load_average(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
    for pkg in ("jax", "jaxlib", "optax", "numpy", "torch", "scikit-learn"):
        info[pkg] = _version(pkg)
    if "jax" in sys.modules:
        import jax

        info["jax_backend"] = jax.default_backend()
        info["jax_devices"] = len(jax.devices())
    return info


def format_machine(info: Mapping[str, Any]) -> str:
    load = info.get("load_average_1_5_15")
    load_s = ", ".join(f"{x:.2f}" for x in load) if load else "?"
    parts = [
        f"{info['cores']} cores ({info['cpu_model']})",
        f"{info['memory_total_gib']} GiB",
        f"jax {info['jax']} / jaxlib {info['jaxlib']}",
        f"optax {info['optax']}",
        f"numpy {info['numpy']}",
    ]
    if info.get("torch"):
        parts.append(f"torch {info['torch']}")
    if "jax_devices" in info:
        parts.append(f"{info['jax_devices']} {info['jax_backend']} device(s)")
    return f"{info['date_utc']} | " + ", ".join(parts) + f" | load average {load_s}"


# ----------------------------------------------------------------------------- memory


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_bytes() -> int:
    """Current resident set size of this process (0 where /proc is missing)."""
    kib = _status_kib("VmRSS")
    return 1024 * kib if kib is not None else 0


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakRSS:
    """Peak resident memory of this process over a `with` block.

    Attributes (after the block):
      start: RSS at entry, bytes.
      peak: highest RSS during the block, bytes.
      delta: `peak - start`: what the block itself added at its worst.
      method: "VmHWM" (kernel high-water mark, exact) or "sampled" (every 2 ms).
    """

    def __init__(self) -> None:
        self.start = self.peak = self.delta = 0
        self.method = ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakRSS:
        self.start = rss_bytes()
        if _reset_peak() and _status_kib("VmHWM") is not None:
            self.method = "VmHWM"
        else:
            self.method = "sampled"
            self.peak = self.start
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc: Any) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, rss_bytes())
        else:
            self.peak = 1024 * (_status_kib("VmHWM") or 0)
        self.delta = max(0, self.peak - self.start)


@dataclasses.dataclass
class ChildResult:
    """A finished child process.

    Attributes:
      peak_rss: the child's peak resident memory, bytes; `peak_source` says how it was read:
        "child VmHWM" (the child printed its own high-water mark at exit, see
        `report_peak_at_exit`: exact) or "ru_maxrss" (the kernel's rusage, which on Linux
        also counts the parent's resident memory at the moment of the fork: an upper bound).
    """

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_rss: int
    peak_source: str = "ru_maxrss"


PEAK_MARKER = "BENCH_PEAK_RSS_KIB"


def report_peak_at_exit() -> None:
    """In a child process: print this process's VmHWM to stderr when it exits (read by `run_child`)."""
    import atexit

    def report() -> None:
        kib = _status_kib("VmHWM")
        if kib is not None:
            print(f"{PEAK_MARKER} {kib}", file=sys.stderr, flush=True)

    atexit.register(report)


def python_entry_point(module: str, function: str = "main") -> list[str]:
    """`python -c ...` that runs `module.function(sys.argv[1:])` as its console script does
    (`sys.exit(function(argv))`) and reports its own peak memory at exit."""
    code = (
        f"import sys; sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r}); "
        "import common; common.report_peak_at_exit(); "
        f"from {module} import {function} as _entry; sys.exit(_entry(sys.argv[1:]))"
    )
    return [sys.executable, "-c", code]


def run_child(
    cmd: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None
) -> ChildResult:
    """Run a command to its end: its output, wall time and peak RSS.

    The peak is the one the child reports itself (`report_peak_at_exit`) where it does,
    else `os.wait4`'s `ru_maxrss`. Output goes to temporary files, so no pipe fills up
    while we wait.
    """
    import tempfile

    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    with tempfile.TemporaryFile("w+") as fo, tempfile.TemporaryFile("w+") as fe:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fo, stderr=fe, env=full_env, cwd=cwd, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        fo.seek(0)
        fe.seek(0)
        out, err = fo.read(), fe.read()
    peak, source = usage.ru_maxrss * 1024, "ru_maxrss"
    marks = [ln for ln in err.splitlines() if ln.startswith(PEAK_MARKER + " ")]
    if marks:
        peak, source = int(marks[-1].split()[1]) * 1024, "child VmHWM"
        err = "\n".join(ln for ln in err.splitlines() if not ln.startswith(PEAK_MARKER + " "))
    return ChildResult(proc.returncode, out, err, seconds, peak, source)


# ----------------------------------------------------------------------------- timing


@dataclasses.dataclass
class Sample:
    """One timed call: seconds, the work it did (runs or steps), and its peak memory."""

    seconds: float
    work: float
    peak_rss: int = 0
    rss_delta: int = 0
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.work / self.seconds if self.seconds > 0 else float("nan")


def timed(fn: Callable[[], Any], work: float = 1.0) -> tuple[Sample, Any]:
    """Call `fn()` once (it must block until its results are ready); its time and peak memory."""
    with PeakRSS() as mem:
        t0 = time.perf_counter()
        out = fn()
        seconds = time.perf_counter() - t0
    return Sample(seconds, work, mem.peak, mem.delta), out


def alternate(
    contenders: Mapping[str, Callable[[], Any]],
    reps: int,
    *,
    work: Mapping[str, float] | None = None,
    rotate: bool = True,
    on_result: Callable[[str, int, Any, Sample], None] | None = None,
) -> dict[str, list[Sample]]:
    """Time every contender `reps` times, interleaved: round r calls each once (A B C, B C A, ...).

    A contender may return a `Sample`-overriding dict `{"seconds": s, ...}` under the key
    `"__timing__"` of a returned mapping to report its own time (e.g. a child process's
    measured run time); otherwise the wall time of the call is used.

    Returns: name -> list of samples, in round order (sample r of every contender is round r).
    """
    names = list(contenders)
    out: dict[str, list[Sample]] = {n: [] for n in names}
    for r in range(reps):
        order = names[r % len(names) :] + names[: r % len(names)] if rotate and names else names
        for name in order:
            sample, result = timed(contenders[name], (work or {}).get(name, 1.0))
            if isinstance(result, Mapping) and "__timing__" in result:
                for k, v in result["__timing__"].items():
                    if hasattr(sample, k):
                        setattr(sample, k, v)
                    else:
                        sample.extra[k] = v
            out[name].append(sample)
            if on_result is not None:
                on_result(name, r, result, sample)
    return out


@dataclasses.dataclass
class Spread:
    """Median with min and max: a measurement and its noise."""

    median: float
    low: float
    high: float
    n: int

    def fmt(self, digits: int = 3, scale: float = 1.0) -> str:
        if not math.isfinite(self.median):
            return "n/a"
        m, lo, hi = (self.median * scale, self.low * scale, self.high * scale)
        if self.n <= 1:
            return _num(m, digits)
        return f"{_num(m, digits)} [{_num(lo, digits)}–{_num(hi, digits)}]"

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "min": self.low, "max": self.high, "n": self.n}


def _num(x: float, digits: int) -> str:
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    mag = math.floor(math.log10(abs(x)))
    decimals = max(0, digits - 1 - mag)
    return f"{x:.{decimals}f}"


def spread(values: Iterable[float]) -> Spread:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not vals:
        return Spread(float("nan"), float("nan"), float("nan"), 0)
    return Spread(statistics.median(vals), min(vals), max(vals), len(vals))


def rate_spread(samples: Sequence[Sample]) -> Spread:
    return spread(s.rate for s in samples)


def ratio_spread(num: Sequence[Sample], den: Sequence[Sample]) -> Spread:
    """Per-round ratio of rates, `num.rate / den.rate` (> 1: `num` is faster), as a spread."""
    return spread(a.rate / b.rate for a, b in zip(num, den, strict=False) if b.rate > 0)


# ----------------------------------------------------------------------------- tables


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    """A GitHub-markdown table of `rows` (dicts); values are printed with `str`."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = lambda vals: "| " + " | ".join(v.ljust(w) for v, w in zip(vals, widths, strict=True)) + " |"
    sep = "| " + " | ".join("-" * w for w in widths) + " |"
    return "\n".join([line(columns), sep, *(line(r) for r in cells)])


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:.0f}"


# ----------------------------------------------------------------------------- checks


@dataclasses.dataclass
class Check:
    name: str
    ok: bool
    detail: str


class Checks:
    """Correctness checks run alongside the timings; any failure makes the script exit 1."""

    def __init__(self) -> None:
        self.items: list[Check] = []

    def add(self, name: str, ok: bool, detail: str = "") -> bool:
        self.items.append(Check(name, bool(ok), detail))
        return bool(ok)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.items)

    def report(self) -> str:
        rows = [
            {"check": c.name, "result": "PASS" if c.ok else "FAIL", "detail": c.detail} for c in self.items
        ]
        return table(rows, ["check", "result", "detail"])

    def as_list(self) -> list[dict[str, Any]]:
        return [dataclasses.asdict(c) for c in self.items]


# ----------------------------------------------------------------------------- peak compute


def matmul_peak_gflops(n: int = 2048, reps: int = 5) -> Spread:
    """This machine's float32 matmul rate with JAX (GFLOP/s): the practical compute ceiling.

    A large square product is the most compute-bound thing XLA runs; `2 n^3` flops each.
    """
    import jax
    import jax.numpy as jnp

    ka, kb = jax.random.split(jax.random.PRNGKey(0))
    a = jax.random.normal(ka, (n, n), jnp.float32)
    b = jax.random.normal(kb, (n, n), jnp.float32)
    f = jax.jit(lambda x, y: x @ y)
    f(a, b).block_until_ready()
    rates = []
    for _ in range(reps):
        t0 = time.perf_counter()
        f(a, b).block_until_ready()
        rates.append(2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return spread(rates)


def mlp_train_flops(sizes: Sequence[int], rows: int) -> float:
    """Useful flops of one training step of a dense MLP on `rows` examples.

    Forward `2 r Σ d_in d_out`, backward twice that (gradients of weights and of
    activations): the usual `6 r Σ d_in d_out`. Elementwise work is not counted.
    """
    return 6.0 * rows * sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))


# ----------------------------------------------------------------------------- command line


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument(
        "--size", choices=SIZES, default="small", help="problem size (tiny: seconds, for the tests)"
    )
    p.add_argument("--out", default=None, help="write every measurement and check to this JSON file")
    p.add_argument(
        "--reps", type=int, default=None, help="repetitions per contender (default depends on --size)"
    )
    return p


def default_reps(size: str) -> int:
    return {"tiny": 1, "small": 3, "full": 3}[size]


def write_json(path: str | os.PathLike | None, payload: Any) -> None:
    if path is None:
        return
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=_json_default))
    os.replace(tmp, p)


def _json_default(o: Any) -> Any:
    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return str(o)


def finish(checks: Checks, payload: dict[str, Any], out: str | None) -> int:
    """Print the checks, write the JSON, and return the exit status (1 when a check failed)."""
    print("\nCorrectness checks")
    print(checks.report())
    payload["checks"] = checks.as_list()
    payload["ok"] = checks.ok
    payload["machine_after"] = {
        "load_average_1_5_15": load_average(),
        "date_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
    }
    write_json(out, payload)
    print("\nall checks passed" if checks.ok else "\nSOME CHECKS FAILED")
    return 0 if checks.ok else 1
