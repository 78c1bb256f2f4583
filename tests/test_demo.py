"""The demo report: assembly into one self-contained page, and the --out guard."""

from jaxopt_lab.cli import main
from jaxopt_lab.demo import run_demo


def test_demo_report_is_self_contained(tmp_path):
    index = run_demo(tmp_path / "report", size="tiny", only=["quartic"])
    html = index.read_text()
    assert index.name == "index.html" and "data:image/png;base64," in html
    assert "quartic" in html.lower() and "Total time" in html
    summary = (tmp_path / "report" / "summary.md").read_text()
    assert "![" in summary and "(Computed in" in summary
    for line in summary.splitlines():
        if line.startswith("!["):
            assert (tmp_path / "report" / line.split("(")[1].rstrip(")")).exists()
    assert not list(tmp_path.glob(".report.partial-*"))


def test_demo_refuses_a_folder_whose_names_it_did_not_write(tmp_path, capsys):
    (tmp_path / "precious.txt").write_text("keep me")
    (tmp_path / "index.html").write_text("<p>my own page</p>")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert "'index.html'" in capsys.readouterr().err
    assert (tmp_path / "precious.txt").read_text() == "keep me"
    assert (tmp_path / "index.html").read_text() == "<p>my own page</p>"


def test_experiment_scripts_run_on_their_own(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).parent.parent
    scripts = sorted((root / "experiments").glob("[0-9][0-9]_*.py"))
    assert len(scripts) == 10
    r = subprocess.run([sys.executable, str(root / "experiments" / "02_quartic.py"), "--size", "tiny", "--out",
                        str(tmp_path / "q")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "q" / "index.html").exists() and list((tmp_path / "q").glob("*.png"))
