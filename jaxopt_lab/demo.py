"""`jaxopt-lab demo`: every experiment at demo size, gathered into one report."""

from __future__ import annotations

import importlib
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from jaxopt_lab.experiments import EXPERIMENTS
from jaxopt_lab.report import Section, write_report

INTRO = """This report reproduces and extends the lectures' findings on how neural networks are trained and
optimized: each section below was computed just now by jaxopt_lab, and its numbers are measurements, not quotes.
Sizes are chosen to finish in a few minutes on a 2-core CPU; rerun any experiment alone, larger, with the scripts
in the repository's experiments/ folder."""


def run_demo(out: str | os.PathLike, size: str = "demo", only: list[str] | None = None) -> Path:
    """Run the experiments into a temporary folder, then move the finished report to `out`."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    sections: list[Section] = []
    t_all = time.perf_counter()
    try:
        for name in only or EXPERIMENTS:
            t0 = time.perf_counter()
            print(f"demo: {name} ...", file=sys.stderr, flush=True)
            module = importlib.import_module(f"jaxopt_lab.experiments.{name}")
            folder = tmp / name
            folder.mkdir()
            try:
                section = module.run(folder, size=size)
            except Exception as e:  # noqa: BLE001 - one failed experiment must not lose the others
                traceback.print_exc()
                section = Section(f"{name} (failed)", f"This experiment failed: {type(e).__name__}: {e}")
            dt = time.perf_counter() - t0
            section.text = f"{section.text.rstrip()}\n\n(Computed in {dt:.1f} s.)"
            sections.append(section)
            print(f"demo: {name} done in {dt:.1f} s", file=sys.stderr, flush=True)
        intro = INTRO + f"\n\nTotal time: {time.perf_counter() - t_all:.0f} s."
        write_report(tmp, "jaxopt_lab demo: training and optimizing neural networks", sections, intro)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out / "index.html"
