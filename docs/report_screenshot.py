"""Screenshot of a run's HTML report for the README (headless Chromium, the browser the tests use).

Writes the report of RUN_DIR, opens it, clicks the front point with the highest accuracy,
clicks it again to pin it, then clicks the lowest-energy front point to compare the two side by
side, and saves the top of the page (fronts + the two detail panels) as a small PNG.

    python docs/report_screenshot.py runs/quickstart [--out docs/report.png] [--width 1000]
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jaqmoo.reporting.browser import console_errors, load_report, start_chromium  # noqa: E402
from jaqmoo.reporting.html import write_report  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--out", default=str(ROOT / "docs" / "report.png"))
    ap.add_argument("--width", type=int, default=1000, help="width of the saved PNG in pixels")
    args = ap.parse_args()
    report = write_report(args.run_dir)
    driver = start_chromium(width=1400, height=1000)
    try:
        load_report(driver, report)
        driver.execute_script(
            "var f = window.jaqmoo.data.runs[0].front, n = f.accuracy.length, hi = 0, lo = 0;"
            "for (var i = 0; i < n; i++) { if (f.accuracy[i] > f.accuracy[hi]) hi = i; if (f.energy_pj[i] < f.energy_pj[lo]) lo = i; }"
            "window.jaqmoo.select({kind: 'front', index: hi}); window.jaqmoo.select({kind: 'front', index: hi});"
            "window.jaqmoo.select({kind: 'front', index: lo === hi ? (hi + 1) % n : lo});")
        driver.execute_script("return new Promise(function (r) { setTimeout(r, 1500); })")
        bottom = driver.execute_script(
            "var d = document.getElementById('details').getBoundingClientRect(); return d.top + window.scrollY + d.height;")
        errors = console_errors(driver)
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": 1400, "height": min(int(bottom) + 10, 3000), "scale": 1}})
    finally:
        driver.quit()
    if errors:
        print("console errors:\n  " + "\n  ".join(errors))
        return 1
    from PIL import Image

    img = Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")
    img = img.resize((args.width, round(img.height * args.width / img.width)), Image.LANCZOS)
    img = img.quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    img.save(args.out, optimize=True)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1024:.0f} KiB, {img.width}x{img.height})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
