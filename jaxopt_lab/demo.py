"""`jaxopt-lab demo`: every experiment at demo size, gathered into one report."""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path

from jaxopt_lab import _io
from jaxopt_lab.experiments import EXPERIMENTS, experiment_module
from jaxopt_lab.report_page import Section, write_report

INTRO = """This report reproduces and extends the lectures' findings on how neural networks are trained and
optimized: each section below was computed just now by jaxopt_lab, and its numbers are measurements, not quotes.
Sizes are chosen to finish in a few minutes on a 2-core CPU; rerun any experiment alone, larger, with the scripts
in the repository's experiments/ folder."""


def output_names(only: list[str] | None = None) -> list[str]:
    """The entries a demo report writes into its folder (checked for collisions before any work)."""
    return [*(only or EXPERIMENTS), "index.html", "summary.md"]


def run_demo(out: str | os.PathLike, size: str = "demo", only: list[str] | None = None) -> Path:
    """Run the experiments into a staging folder, then publish the finished report into `out`.

    `out` follows the output-folder contract (`jaxopt_lab._io`): an earlier report there is
    replaced, anything else the user keeps in `out` is left alone, and a name the user owns
    is refused (`OutputFolderError`) before any experiment runs.
    """
    out = _io.prepare(out, output_names(only))
    sections: list[Section] = []
    t_all = time.perf_counter()
    with _io.publish(out) as tmp:
        for name in only or EXPERIMENTS:
            t0 = time.perf_counter()
            print(f"demo: {name} ...", file=sys.stderr, flush=True)
            module = experiment_module(name)
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
    return out / "index.html"
