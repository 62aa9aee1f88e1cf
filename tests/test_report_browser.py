"""The HTML report as a browser renders it: headless Chromium loads the page written by
``receval results report`` after the README's Quick start (a real ``receval run``), and the test checks
the DOM at 1280 px (table rows, no horizontal scroll, one data-quality table with its warnings
highlighted, Gini labelled as RankSys's 1−G, charts with a non-zero natural size) and that the
screenshot is not blank.

Needs the Debian package ``chromium`` (``/usr/bin/chromium``); nothing is installed at test time.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from receval.cli import main

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="headless browser check needs /usr/bin/chromium (Debian package 'chromium')"
)

# Runs after the page (and its data: images) loaded; --virtual-time-budget lets it finish before the
# DOM is dumped. It writes what the browser measured where --dump-dom can show it.
_PROBE = """
<script>
window.addEventListener("load", function () {
  var sizes = Array.prototype.map.call(document.images, function (img) {
    return [img.naturalWidth, img.naturalHeight, img.getBoundingClientRect().width];
  });
  var svgs = Array.prototype.map.call(document.querySelectorAll("svg"), function (s) {
    var box = s.getBoundingClientRect(); return [box.width, box.height];
  });
  var warn = document.querySelector("table.quality td.warn"), plain = document.querySelector("table.quality td:not(.warn)");
  document.title = "probe:" + JSON.stringify({images: sizes, svgs: svgs,
    rows: document.querySelectorAll("table.summary tbody tr").length,
    pageWidth: document.documentElement.scrollWidth, viewport: window.innerWidth,
    widest: Math.max.apply(null, Array.prototype.map.call(document.querySelectorAll("table"), function (t) {
      return t.getBoundingClientRect().right; })),
    qualityTables: document.querySelectorAll("table.quality").length,
    warnCells: Array.prototype.map.call(document.querySelectorAll("table.quality td.warn"), function (td) {
      return [td.parentNode.cells[0].textContent.split(" (")[0],
              td.closest("table").rows[0].cells[td.cellIndex].textContent]; }),
    warnBackground: warn ? getComputedStyle(warn).backgroundColor : null,
    plainBackground: plain ? getComputedStyle(plain).backgroundColor : null});
});
</script>
"""


def _chromium(*args: str, user_data: Path) -> subprocess.CompletedProcess:
    command = [
        str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        f"--user-data-dir={user_data}", *args,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


@pytest.fixture(scope="module")
def quick_start(tmp_path_factory) -> tuple[Path, list[dict]]:
    """The README's Quick start in a fresh folder: ``receval run``, then ``receval results report``."""
    root = tmp_path_factory.mktemp("quickstart")
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    for argv in (["run"], ["results", "report", "./receval-runs", "latest", "--out", "r.html"]):
        done = subprocess.run([sys.executable, "-m", "receval", *argv], cwd=root, env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    (summary,) = root.glob("receval-runs/runs/*/summary.json")
    return root / "r.html", json.loads(summary.read_text())


@pytest.fixture(scope="module")
def report_page(quick_start) -> Path:
    return quick_start[0]


def test_dom_has_table_rows_and_charts_with_natural_size(quick_start, tmp_path):
    report_page, records = quick_start
    probed = tmp_path / "probed.html"
    probed.write_text(report_page.read_text().replace("</body>", _PROBE + "</body>"))
    done = _chromium("--window-size=1280,900", "--virtual-time-budget=10000", "--dump-dom", probed.as_uri(),
                     user_data=tmp_path / "profile")
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    title = re.search(r"<title>probe:(.*?)</title>", dom, re.S)
    assert title, "the probe script did not run: " + dom[:500]
    probe = json.loads(title.group(1).replace("&quot;", '"'))
    metrics = [r for r in records if r.get("kind", "metric") == "metric"]
    algorithms = list(dict.fromkeys(r["algorithm"] for r in metrics))
    # one row per metric definition and cutoff (the default run has no two definitions differing in a parameter)
    assert probe["rows"] == len({(r["metric"], r["relevance"], r["discount"], r["cutoff"]) for r in metrics})
    # no horizontal scroll at 1280 px, and no table wider than the window
    assert probe["viewport"] == 1280
    assert probe["pageWidth"] <= probe["viewport"] and probe["widest"] <= probe["viewport"]
    assert len(probe["images"]) == 2 and not probe["svgs"]
    for natural_width, natural_height, shown_width in probe["images"]:
        assert natural_width > 100 and natural_height > 100 and shown_width > 100
    for algorithm in algorithms:
        assert f'<th class="algorithm">{algorithm}</th>' in dom
    # data quality: one compact table, each non-zero problem count highlighted, nothing else
    assert "Data quality" in dom and probe["qualityTables"] == 1
    problems = {(r["metric"] + (f" @{r['cutoff']}" if r.get("cutoff") is not None else ""), r["algorithm"])
                for r in records if r.get("kind") == "data_quality" and r["metric"] != "test_users" and r["value"]}
    assert problems, "the synthetic run has known data-quality warnings (e.g. lists shorter than the cutoff)"
    assert {tuple(cell) for cell in probe["warnCells"]} == problems
    assert probe["warnBackground"] != probe["plainBackground"]
    # Gini is RankSys's 1 - G, and the page says so
    assert re.search(r"gini\[none,none\] <small>\(1−G\)</small>", dom)
    assert "RankSys's 1 − G" in dom


def test_screenshot_is_not_blank(report_page, tmp_path):
    import matplotlib.image as mpimg

    shot = tmp_path / "shot.png"
    done = _chromium("--window-size=1280,1800", f"--screenshot={shot}", report_page.as_uri(), user_data=tmp_path / "profile")
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (1800, 1280)
    assert pixels.std() > 0
    # Text, table lines and the charts' bars: a real page has a fair share of non-white pixels.
    assert (pixels.min(axis=2) < 0.9).mean() > 0.02
