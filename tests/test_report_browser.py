"""The HTML report as a browser renders it: headless Chromium loads the page written by
``receval results report``, and the test checks the DOM (table rows, charts with a non-zero natural
size) and that the screenshot is not blank.

Needs the Debian package ``chromium`` (``/usr/bin/chromium``); nothing is installed at test time.
"""

from __future__ import annotations

import json
import re
import subprocess
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
  document.title = "probe:" + JSON.stringify({images: sizes, svgs: svgs,
    rows: document.querySelectorAll("table.summary tbody tr").length});
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
def report_page(tmp_path_factory) -> Path:
    from tests.test_results import random_side, write_run  # the run-folder helper of the results tests

    root = tmp_path_factory.mktemp("browser")
    rng = np.random.default_rng(4)
    users = range(30)
    write_run(
        root / "store", "r1", created="2024-05-01T02:00:00Z",
        per_user={"pop": random_side(rng, users), "ibknn": random_side(rng, users, 0.1), "cb": random_side(rng, users, 0.05)},
        data_quality={"users_without_list": 2, "items_without_features": 7},
    )  # fmt: skip
    page = root / "report.html"
    try:
        main(["results", "report", str(root / "store"), "r1", "--out", str(page)])
    except SystemExit as exc:
        assert exc.code in (0, None)
    return page


def test_dom_has_table_rows_and_charts_with_natural_size(report_page, tmp_path):
    probed = tmp_path / "probed.html"
    probed.write_text(report_page.read_text().replace("</body>", _PROBE + "</body>"))
    done = _chromium("--virtual-time-budget=10000", "--dump-dom", probed.as_uri(), user_data=tmp_path / "profile")
    assert done.returncode == 0, done.stderr[-2000:]
    dom = done.stdout
    title = re.search(r"<title>probe:(.*?)</title>", dom, re.S)
    assert title, "the probe script did not run: " + dom[:500]
    probe = json.loads(title.group(1).replace("&quot;", '"'))
    # 3 algorithms × 2 cutoffs (5 and 10) in the summary tables
    assert probe["rows"] == 6
    assert len(probe["images"]) == 2 and not probe["svgs"]
    for natural_width, natural_height, shown_width in probe["images"]:
        assert natural_width > 100 and natural_height > 100 and shown_width > 100
    for algorithm in ("pop", "ibknn", "cb"):
        assert f"<td>{algorithm}</td>" in dom
    assert "Data quality" in dom and "items_without_features" in dom


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
