"""Report scale: how long `jaqmoo report` pages take to load in headless Chromium.

For each size (default 1,000 / 10,000 / 50,000 evaluations) this writes a run folder through
the results store (``meta.json``, ``evaluations.jsonl``, ``history.csv``) with MobileNetV1's 28
layers (per-layer weight/activation bits, a mapping per layer, 4 hardware parameters, energy
per level), writes its report with :func:`jaqmoo.reporting.html.write_report`, and loads it
``--repeats`` times in one headless Chromium (warmed up on a small report first). The load
time is navigation start -> every plot drawn (the page's ready mark: HTML + plotly.js parsed,
data parsed, all 2-D projections, hypervolume and table drawn; the 3-D view is drawn when the
user opens it); the median is reported, with the CPU time the browser's processes used
meanwhile, split into the page's renderer process and the gpu-process (WebGL, rendered in
software by SwiftShader where there is no GPU). On a machine shared with other jobs the wall
time is inflated by waiting for a CPU, the CPU time much less. The objective values come from a smooth stand-in (accuracy rises with the bits,
energy with w x a x MACs and the PE array) so that the run has a realistic front of a few
hundred points: this measures the page, not the search. Timings on a shared machine are
noisy (the spread of the repeats is printed).

    python benchmarks/report_scale.py [--sizes 1000 10000 50000] [--repeats 3] [--out DIR]

Last line: ``RESULT load_seconds_50k=.. load_seconds_10k=.. load_seconds_1k=.. browser_cpu_seconds_50k=..
... renderer_cpu_seconds_50k=.. ... html_mb_50k=..``
(the size keys follow ``--sizes``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jaqmoo.reporting.browser import console_errors, load_report, missing, start_chromium  # noqa: E402
from jaqmoo.reporting.html import write_report  # noqa: E402
from jaqmoo.search.store import ResultsStore  # noqa: E402

W_BITS = (2, 3, 4, 5, 6, 8)
A_BITS = (3, 4, 5, 6, 8)
HW = {"pe_x": (8, 12, 14, 16), "pe_y": (8, 12, 14), "glb_depth": (4096, 16384, 65536), "weights_spad_depth": (96, 192, 384)}
LEVELS = ("DRAM", "shared_glb", "ifmap_spad", "weights_spad", "psum_spad", "mac")


def mobilenet_layers() -> list[tuple[str, int, str]]:
    """(name, MACs, mapping summary) of MobileNetV1's layers at 32x32 (the repository's model)."""
    from jaqmoo.models import build_model
    from jaqmoo.workload import extract_workload

    wl = extract_workload(build_model("mobilenet_v1", 10, 3, 32), (3, 32, 32), name="mobilenet_v1")
    return [(layer.name, int(layer.macs), f"DRAM[K{min(layer.K, 4)}] shared_glb[P{layer.P}] Y[C{min(layer.C, 3)} S{layer.S}] "
                                          f"weights_spad[R{layer.R}] psum_spad[K{max(layer.K // 4, 1)}]")
            for layer in wl.layers]


def write_run(path: Path, n: int, layers: list[tuple[str, int, str]], seed: int = 0, population: int = 100) -> None:
    """A run folder with ``n`` evaluations (see the module doc)."""
    rng = np.random.default_rng(seed)
    names = [layer[0] for layer in layers]
    macs = np.array([layer[1] for layer in layers], dtype=float)
    wi = rng.integers(0, len(W_BITS), size=(n, len(layers)))
    ai = rng.integers(0, len(A_BITS), size=(n, len(layers)))
    # later generations concentrate on low bits, as a search does
    gen = np.arange(n) // population + 1
    drift = np.minimum(gen / gen.max(), 1.0)[:, None]
    wi = np.where(rng.random(wi.shape) < 0.5 * drift, np.maximum(wi - 2, 0), wi)
    for i, b in enumerate((8, 6, 4)):  # the uniform seeds of generation 1
        wi[i], ai[i] = W_BITS.index(b), A_BITS.index(b)
    w = np.asarray(W_BITS)[wi].astype(float)
    a = np.asarray(A_BITS)[ai].astype(float)
    hw_idx = {k: rng.integers(0, len(v), size=n) for k, v in HW.items()}
    pe = np.asarray(HW["pe_x"])[hw_idx["pe_x"]] * np.asarray(HW["pe_y"])[hw_idx["pe_y"]]
    acc = 0.93 - 0.12 * np.mean(np.exp(-(w - 2) / 1.5) + 0.5 * np.exp(-(a - 3) / 1.5), axis=1) + rng.normal(0, 0.004, n)
    energy = (w * a * macs).sum(axis=1) * 0.02 * (1 + 40.0 / pe) * rng.lognormal(0, 0.05, n)
    memory = (w * macs ** 0.5 * 50).sum(axis=1) + a.max(axis=1) * 2e4
    share = np.array([0.55, 0.15, 0.08, 0.12, 0.06, 0.04])
    store = ResultsStore(path)
    store.create(overwrite=True)
    store.write_meta({
        "name": path.name, "objectives": ["accuracy", "energy", "memory"], "constraints": {},
        "layer_names": names, "gene_names": [f"{k}.{m}" for m in names for k in ("w", "a")] + [f"hw.{k}" for k in HW],
        "mapping_mode": "inner", "hardware_genes": [{"name": k, "choices": list(v), "default": v[0]} for k, v in HW.items()],
        "hardware_fixed": {}, "settings": {"algorithm": "nsga2", "population": population, "generations": int(gen.max())},
        "baselines": [{"label": f"uniform {b}-bit", "bits": b, "gen": 1, "idx": i} for i, b in enumerate((8, 6, 4))],
    })
    batch = []
    for i in range(n):
        rec = {"gen": int(gen[i]), "idx": int(i % population),
               "genes": [int(v) for pair in zip(wi[i], ai[i], strict=True) for v in pair] + [int(hw_idx[k][i]) for k in HW]}
        for j, m in enumerate(names):
            rec[f"w.{m}"], rec[f"a.{m}"] = W_BITS[wi[i, j]], A_BITS[ai[i, j]]
        rec.update({f"hw.{k}": int(HW[k][hw_idx[k][i]]) for k in HW})
        rec.update({"feasible": True, "reason": "", "energy_pj": float(energy[i]), "cycles": float(1e6 / pe[i]),
                    "latency_s": float(1e-3 / pe[i]), "edp": float(energy[i] * 1e6 / pe[i]), "memory_bits": float(memory[i]),
                    "weight_memory_bits": float(memory[i] * 0.8), "activation_memory_bits": float(memory[i] * 0.2),
                    "area_mm2": float(0.01 * pe[i])})
        rec.update({f"map.{m}": mapping for m, _, mapping in layers})
        rec.update({f"energy.{lvl}": float(energy[i] * s) for lvl, s in zip(LEVELS, share, strict=True)})
        rec["accuracy"] = float(acc[i])
        batch.append(rec)
        if len(batch) == 5000:
            store.append(batch)
            batch = []
    store.append(batch)
    hv = np.sort(rng.random(int(gen.max())))
    store.write_history([{"generation": g + 1, "evaluations": (g + 1) * population, "front_size": 0, "hypervolume": float(v)}
                         for g, v in enumerate(hv)])


def browser_cpu_seconds(root_pid: int) -> dict[str, float]:
    """CPU seconds (user + system) used so far by every live process under ``root_pid``
    (chromedriver -> chromium), by Chromium process type (``renderer``: the page's parsing,
    JavaScript and layout; ``gpu-process``: WebGL, rendered in software by SwiftShader on a
    machine without a GPU; ``browser`` and the rest), from /proc."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    kinds: dict[int, str] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            # chromium rewrites its command line as one space-separated title
            cmd = (stat.parent / "cmdline").read_bytes().decode(errors="replace").replace("\0", " ").split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        times[pid] = (int(fields[11]) + int(fields[12])) / tick
        kind = next((a[len("--type="):] for a in cmd if a.startswith("--type=")), "browser")
        kinds[pid] = kind if kind in ("renderer", "gpu-process") else "other"
    total: dict[str, float] = {"renderer": 0.0, "gpu-process": 0.0, "other": 0.0}
    todo = [root_pid]
    while todo:
        pid = todo.pop()
        total[kinds.get(pid, "other")] += times.get(pid, 0.0)
        todo += [c for c, p in parents.items() if p == pid]
    return total


def timed_load(driver, report: Path) -> tuple[float, dict[str, float]]:
    """(wall seconds to the ready mark, browser CPU seconds per process type spent meanwhile)."""
    pid = driver.service.process.pid
    cpu0 = browser_cpu_seconds(pid)
    wall = load_report(driver, report)
    cpu1 = browser_cpu_seconds(pid)
    return wall, {k: cpu1[k] - cpu0[k] for k in cpu1}


def label(n: int) -> str:
    return f"{n // 1000}k" if n % 1000 == 0 else str(n)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", help="folder for the generated runs and reports (default: a temporary folder)")
    ap.add_argument("--reuse", action="store_true", help="reuse the run folders already in --out")
    args = ap.parse_args()
    why = missing()
    if why:
        print(f"headless Chromium unavailable: {why}")
        return 1
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="jaqmoo-report-scale-"))
    layers = mobilenet_layers()
    reports = {}
    for n in [200] + list(args.sizes):
        run = out / f"run{n}"
        t0 = time.perf_counter()
        if not (args.reuse and (run / "meta.json").is_file()):
            write_run(run, n, layers)
        t1 = time.perf_counter()
        reports[n] = write_report(run)
        t2 = time.perf_counter()
        if n != 200:
            print(f"{n:>6} evaluations: run folder {t1 - t0:.1f} s, report written in {t2 - t1:.1f} s "
                  f"({reports[n].stat().st_size / 1e6:.1f} MB)")
    driver = start_chromium()
    results: dict[int, float] = {}
    cpu: dict[int, float] = {}
    renderer: dict[int, float] = {}
    try:
        load_report(driver, reports[200])  # warm-up: browser start, GPU process, first plotly compile
        for n in args.sizes:
            loads = [timed_load(driver, reports[n]) for _ in range(args.repeats)]
            times = [w for w, _ in loads]
            cpu[n] = statistics.median(sum(c.values()) for _, c in loads)
            renderer[n] = statistics.median(c["renderer"] for _, c in loads)
            gpu = statistics.median(c["gpu-process"] for _, c in loads)
            errors = console_errors(driver)
            drawn = driver.execute_script("return window.jaqmoo.drawnFrontPoints()")
            front = driver.execute_script("return window.jaqmoo.data.runs[0].front.accuracy.length")
            dominated = driver.execute_script("return window.jaqmoo.data.runs[0].dominated.accuracy.length")
            results[n] = statistics.median(times)
            print(f"{n:>6} evaluations: load {results[n]:.2f} s (median of {len(times)}: "
                  f"{', '.join(f'{t:.2f}' for t in times)}), browser CPU {cpu[n]:.2f} s (page renderer "
                  f"{renderer[n]:.2f} s, software WebGL gpu-process {gpu:.2f} s); "
                  f"drawn {drawn} front + {dominated} dominated points "
                  f"(front {front}); console errors: {len(errors)}")
            if errors:
                print("  " + "\n  ".join(errors[:5]))
    finally:
        driver.quit()
    parts = [f"load_seconds_{label(n)}={results[n]:.2f}" for n in sorted(results, reverse=True)]
    parts += [f"browser_cpu_seconds_{label(n)}={cpu[n]:.2f}" for n in sorted(cpu, reverse=True)]
    parts += [f"renderer_cpu_seconds_{label(n)}={renderer[n]:.2f}" for n in sorted(renderer, reverse=True)]
    big = max(results)
    parts.append(f"html_mb_{label(big)}={reports[big].stat().st_size / 1e6:.1f}")
    print(f"load average (1/5/15 min) at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())} on {os.cpu_count()} CPUs")
    print("RESULT " + " ".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
