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


def test_demo_refuses_a_folder_that_is_not_a_report(tmp_path, capsys):
    (tmp_path / "precious.txt").write_text("keep me")
    assert main(["demo", "--out", str(tmp_path)]) == 2
    assert "not an earlier report" in capsys.readouterr().err
    assert (tmp_path / "precious.txt").read_text() == "keep me"
