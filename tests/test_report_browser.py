"""The HTML report in a real headless Chromium (Debian chromium + chromium-driver, Selenium).

Skipped, with the reason, where Chromium or Selenium is absent. Kept to one browser session
and a few page loads: Chromium is CPU-heavy on small CI machines.
"""

from __future__ import annotations

import json
import shutil
import time

import pandas as pd
import pytest

from jaqmoo.report import load_run
from jaqmoo.reporting.browser import console_errors, load_report, missing, start_chromium
from jaqmoo.reporting.html import write_report

pytestmark = pytest.mark.skipif(bool(missing()), reason=f"headless Chromium unavailable: {missing()}")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, fake_run_dir):
    path = tmp_path_factory.mktemp("browser") / "run"
    shutil.copytree(fake_run_dir, path)  # the shared run stays read-only
    load_run(path).export(csv=path / "front.csv")
    write_report(path)
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    downloads = tmp_path_factory.mktemp("downloads")
    driver = start_chromium(download_dir=downloads)
    driver.downloads = downloads
    yield driver
    driver.quit()


def test_run_report_points_click_and_download(run_dir, browser):
    load_report(browser, run_dir / "report.html")
    assert console_errors(browser) == []
    front = pd.read_csv(run_dir / "front.csv")
    # the front markers drawn (SVG nodes) in the first projection == the CSV's rows
    assert browser.execute_script("return window.jaqmoo.drawnFrontPoints()") == len(front) > 1

    # a real mouse click on a drawn front point shows that point's per-layer bits
    from selenium.webdriver.common.action_chains import ActionChains

    k = _isolated_front_point(browser)  # a small dominated marker near a front marker would take the click
    ActionChains(browser).move_to_element(_front_point(browser, k)).pause(0.3).click().perform()
    panel = _wait(browser, "return document.querySelector('#details .detail')")
    kind, index = panel.get_attribute("data-kind"), int(panel.get_attribute("data-index"))
    assert kind == "front"
    # markers can overlap: the click lands on point ``index``; its bits must be that CSV row's
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll('#details .detail .bits-table tr[data-layer]')).map("
        "function (tr) { return [tr.dataset.layer, tr.querySelector('.w').textContent, tr.querySelector('.a').textContent]; })")
    layers = [c[2:] for c in front.columns if c.startswith("w.")]
    assert [r[0] for r in rows] == layers
    assert [(int(w), int(a)) for _, w, a in rows] == [(int(front.iloc[index][f"w.{n}"]), int(front.iloc[index][f"a.{n}"]))
                                                     for n in layers]
    acc = browser.execute_script("return document.querySelector('#details .detail td[data-col=accuracy]').textContent")
    assert float(acc) == pytest.approx(front.iloc[index]["accuracy"], rel=1e-4)
    # recolouring redraws the plots; clicks still work: clicking the same point again pins it
    browser.execute_script("var s = document.getElementById('color-by'); s.value = 'gen'; s.onchange();")
    _wait(browser, "return window.jaqmoo.drawnFrontPoints() === arguments[0]", args=(len(front),))
    ActionChains(browser).move_to_element(_front_point(browser, k)).pause(0.3).click().perform()
    _wait(browser, "return document.querySelector('#details .detail.pinned')")
    # a second point then shows beside the pinned one
    browser.execute_script("window.jaqmoo.select({kind: 'front', index: arguments[0]});", (index + 1) % len(front))
    kinds = browser.execute_script("return Array.from(document.querySelectorAll('#details .detail')).map("
                                   "function (d) { return [d.className, Number(d.dataset.index)]; })")
    assert kinds == [["detail pinned", index], ["detail", (index + 1) % len(front)]]

    # the download button yields the front CSV
    browser.find_element("id", "download-csv").click()
    target = browser.downloads / "fake-front.csv"
    deadline = time.monotonic() + 20
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert target.read_bytes() == (run_dir / "front.csv").read_bytes()

    # the table sorts by a clicked column
    browser.execute_script("document.querySelector('#front-table th[data-col=energy_pj]').click()")
    first = browser.execute_script("return Number(document.querySelector('#front-table tr[data-row]').dataset.row)")
    assert first == int(front["energy_pj"].to_numpy().argmin())
    assert console_errors(browser) == []


def test_sweep_report_shows_one_panel_per_run(run_dir, browser, tmp_path):
    sweep = tmp_path / "sweep"
    names = []
    for model in ("m1", "m2"):
        for acc in ("eyeriss", "simba"):
            names.append(f"{model}-{acc}")
            shutil.copytree(run_dir, sweep / "runs" / names[-1])
    # a model given as a mapping, as in problems/sweep-quick.yaml (it used to read "[object Object]")
    models = {"m1": "m1", "m2": {"name": "mobilenet_v1", "width_mult": 0.25}}
    (sweep / "sweep.json").write_text(json.dumps({
        "name": "s", "axes": ["model", "accelerator"], "grid": {"rows": "model", "cols": "accelerator"},
        "runs": [{"name": n, "values": {"model": models[n.split("-")[0]], "accelerator": n.split("-")[1]}}
                 for n in names]}))
    write_report(sweep)
    load_report(browser, sweep / "report.html")
    assert console_errors(browser) == []
    grid_text = browser.execute_script("return document.getElementById('sweep-grid').innerText")
    assert "[object Object]" not in grid_text and "model = mobilenet_v1 width_mult=0.25" in grid_text
    # the page header describes the sweep; each run's own settings sit in the run section
    assert "4 runs" in browser.execute_script("return document.getElementById('sweep-meta').innerText")
    assert browser.execute_script("return document.getElementById('run-meta').closest('section').id") == "run-section"
    panels = browser.execute_script("return Array.from(document.querySelectorAll('#sweep-grid .sweep-panel')).map("
                                    "function (p) { return [p.dataset.run, p.querySelectorAll('.js-plotly-plot').length]; })")
    assert sorted(panels) == [[n, 1] for n in sorted(names)]
    # the axis selectors re-lay the grid: no row axis -> still one panel per run
    browser.execute_script("var s = document.getElementById('sweep-rows'); s.value = ''; s.onchange();")
    assert browser.execute_script("return document.querySelectorAll('#sweep-grid .sweep-panel').length") == len(names)
    assert console_errors(browser) == []


def _front_point(driver, k):
    """The SVG marker of front point ``k`` in the first projection."""
    return driver.execute_script(
        "var gd = document.getElementById('projections');"
        "var i = gd._fullData.findIndex(function (t) { return t.meta && t.meta.kind === 'front' && t.xaxis === 'x'; });"
        "var g = Array.prototype.find.call(gd.querySelectorAll('.subplot.xy .scatterlayer .trace'),"
        "  function (g) { return g.__data__[0].trace.index === i; });"
        "return g.querySelectorAll('path.point')[arguments[0]];", k)


def _isolated_front_point(driver):
    """The front point of the first projection farthest (in pixels) from every other drawn marker."""
    return driver.execute_script(
        "var gd = document.getElementById('projections'), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;"
        "function px(t, j) { return [xa.l2p(xa.d2l(t.x[j])), ya.l2p(ya.d2l(t.y[j]))]; }"
        "var mine = gd._fullData.filter(function (t) { return t.meta && t.xaxis === 'x' && t.visible === true; });"
        "var front = mine.find(function (t) { return t.meta.kind === 'front'; }), best = 0, bestD = -1;"
        "for (var k = 0; k < front.x.length; k++) {"
        "  var p = px(front, k), d = Infinity;"
        "  mine.forEach(function (t) { for (var j = 0; j < t.x.length; j++) {"
        "    if (t === front && j === k) continue;"
        "    var q = px(t, j); d = Math.min(d, Math.hypot(p[0] - q[0], p[1] - q[1])); } });"
        "  if (d > bestD) { bestD = d; best = k; } }"
        "return best;")


def _wait(driver, script, timeout=10.0, args=()):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        got = driver.execute_script(script, *args)
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {script}")
