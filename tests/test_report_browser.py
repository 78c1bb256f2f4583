"""Each kind of report opened in a real browser (headless Chromium, Debian's `chromium` package).

For the demo (tiny size), a plain sweep, a successive-halving sweep and a protocol: the page is opened
from disk, a screenshot is taken, and a script injected into a copy of the page checks, after load, that
every image decoded (naturalWidth > 0), that every figure passed its text check when it was drawn (no
text outside the figure: `jaxopt_lab.plots`), that hovering a figure shows a tooltip, and that the page
logged no error. Two tests break a page on purpose (a corrupt image, a clipped figure) and see the check
fail. Skipped only where no Chromium binary is installed (CI installs it: `.ci/run`).
"""

import json
import re
import shutil
import subprocess

import pytest

from jaxopt_lab import plots, protocols
from jaxopt_lab.config import from_dict
from jaxopt_lab.demo import run_demo
from jaxopt_lab.report_page import Section, write_report
from jaxopt_lab.sweep import config_sweep

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium)")

BASE = {
    "data": {"dataset": "moons", "n_samples": 120, "noise": 0.25, "random_state": 7, "val_fraction": 0.25},
    "model": {"hidden": [6]},
    "train": {"epochs": 6},
    "optimizer": {"name": "sgd", "learning_rate": 0.1, "momentum": 0.5},
}
SWEEP = {"seeds": 2, "grid": {"optimizer": {"learning_rate": [0.01, 0.3, 1000.0], "momentum": [0.0, 0.9]}}}
HALVING = {"lanes": 4, "halving": {"min_epochs": 1, "eta": 3}, "random": {
    "trials": 9, "seed": 0, "optimizer": {"learning_rate": {"loguniform": [1e-3, 3.0]}}}}

# Runs first in <head>: records errors, then after load writes what it found into <pre id=browser-check>.
CHECK = """<script>
window.__errors = [];
window.addEventListener('error', function (e) {
  window.__errors.push('error: ' + (e.message || (e.target && e.target.tagName) || 'resource'));
}, true);
window.addEventListener('unhandledrejection', function (e) { window.__errors.push('rejection: ' + e.reason); });
(function () {
  var ce = console.error;
  console.error = function () { window.__errors.push('console.error: ' + Array.from(arguments).join(' '));
                                ce.apply(console, arguments); };
})();
window.addEventListener('load', function () {
  var imgs = Array.from(document.images), out = {images: imgs.length, hover: null};
  out.broken = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).map(function (i) {
    return i.alt; });
  out.clipped = imgs.filter(function (i) { return i.dataset.textCheck !== 'ok'; }).map(function (i) {
    return i.alt + ': ' + i.dataset.textCheck; });
  var img = imgs.find(function (i) { return i.dataset.hover; });
  if (img) {
    var g = JSON.parse(document.getElementById(img.dataset.hover).textContent)[0], r = img.getBoundingClientRect();
    img.dispatchEvent(new MouseEvent('mousemove', {bubbles: true, clientX: r.left + (g.x0 + g.x1) / 2 * r.width,
                                                  clientY: r.top + (g.y0 + g.y1) / 2 * r.height}));
    var tip = document.getElementById('hover-tip');
    out.hover = tip && tip.style.display === 'block' ? tip.textContent : '';
  }
  out.errors = window.__errors;
  var pre = document.createElement('pre');
  pre.id = 'browser-check';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
});
</script>"""


def open_in_chromium(index, shots):
    """Open a copy of `index` (with the check script) in headless Chromium; screenshot into `shots`.
    Returns what the check script found."""
    page = index.with_name("browser-check.html")
    page.write_text(index.read_text().replace("<head>", "<head>" + CHECK, 1))
    shot = shots / f"{index.parent.name}.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
           f"--user-data-dir={shots / ('profile-' + index.parent.name)}", "--window-size=1200,2400",
           "--virtual-time-budget=5000", f"--screenshot={shot}", "--dump-dom", page.resolve().as_uri()]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    page.unlink()
    found = re.search(r"<pre id=\"browser-check\">(.*?)</pre>", run.stdout, re.S)
    assert found, f"the check script did not run: {run.stderr[-2000:]}"
    result = json.loads(found.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    result["screenshot"] = shot
    return result


def assert_page_ok(result, *, hover=True):
    assert result["images"] > 0, "no figure in the page"
    assert not result["broken"], f"images that did not load: {result['broken']}"
    assert not result["clipped"], f"figures with text outside them: {result['clipped']}"
    assert not result["errors"], f"errors in the page: {result['errors']}"
    assert result["screenshot"].stat().st_size > 10_000 and result["screenshot"].read_bytes()[:4] == b"\x89PNG"
    if hover:
        assert result["hover"], "hovering a figure showed no tooltip"


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def sweep_page(tmp_path_factory):
    cfg = from_dict({**BASE, "sweep": SWEEP})
    out = tmp_path_factory.mktemp("reports") / "sweep"
    config_sweep.write_results(out, config_sweep.run_sweep(cfg, progress=False))
    return out / "index.html"


def test_sweep_report_in_the_browser(sweep_page, shots):
    result = open_in_chromium(sweep_page, shots)
    assert_page_ok(result)
    assert result["images"] == 5  # slices, one heatmap, importance, learning curves, best of k
    assert "learning_rate" in result["hover"]


def test_halving_report_in_the_browser(tmp_path, shots):
    cfg = from_dict({**BASE, "train": {"epochs": 9}, "sweep": HALVING})
    out = tmp_path / "halving"
    config_sweep.write_results(out, config_sweep.run_sweep(cfg, progress=False))
    assert "Successive halving" in (out / "index.html").read_text()
    assert_page_ok(open_in_chromium(out / "index.html", shots))


def test_protocol_report_in_the_browser(tmp_path, shots):
    cfg = from_dict({**BASE, "train": {"epochs": 5}})
    out = tmp_path / "protocol"
    protocols.run_protocol(cfg, out, protocol="deepobs", progress=False,
                           options={"optimizers": ["sgd"], "lr_points": 3, "lr_range": [0.01, 1.0], "rerun_seeds": 2})
    assert_page_ok(open_in_chromium(out / "index.html", shots), hover=False)


def test_demo_report_in_the_browser(tmp_path, shots):
    index = run_demo(tmp_path / "demo", size="tiny", only=["quartic"])
    html = index.read_text()
    assert "Lecture: gradient descent by hand" in html and not re.search(r"seeds? 00\d", html)
    assert_page_ok(open_in_chromium(index, shots), hover=False)


def test_the_check_fails_on_a_broken_image(sweep_page, shots, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    html = sweep_page.read_text()
    html = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]{100}", "data:image/png;base64,AAAA", html, count=1)
    (broken / "index.html").write_text(html)
    result = open_in_chromium(broken / "index.html", shots)
    assert len(result["broken"]) == 1
    with pytest.raises(AssertionError, match="images that did not load"):
        assert_page_ok(result)


def test_the_check_fails_on_a_clipped_title(tmp_path, shots):
    fig, ax = plots.new_figure(figsize=(4, 3))
    ax.plot([0, 1], [0, 1])
    fig.text(0.7, 0.95, "a figure title placed too far right to fit")
    with pytest.warns(UserWarning, match="outside the figure"):
        png = plots.save(fig, tmp_path / "clipped.png")
    folder = tmp_path / "clipped"
    index = write_report(folder, "Clipped", [Section("One figure", "", [png])])
    with pytest.raises(AssertionError, match="text outside them"):
        assert_page_ok(open_in_chromium(index, shots), hover=False)
