"""Cost across the model zoo: torchvision CNNs at 224x224 on the Eyeriss and Simba templates.

For each network of ``problems/zoo-cost.yaml`` (ResNet-18, ResNet-50, MobileNetV2,
MobileNetV3-Large, EfficientNet-B0, RegNetX-400MF), each accelerator and each uniform bit-width,
the workload is extracted (``torchvision:<name>``) and every layer's mapping searched, as
``jaqmoo cost`` and the cost-only sweep do (:func:`jaqmoo.sweep.cost_sweep.cost_point`, one
process, one torch thread). Printed per point: layers, MACs, energy, cycles, latency, seconds
(workload extraction + mapping). Then the guard: ``jaqmoo cost --model torchvision:resnet50
--accelerator eyeriss`` as a fresh process (start-up, imports, workload, mapping; the mapper has no
on-disk cache, so every run is cold), its wall and CPU seconds.

Run: ``python benchmarks/zoo_cost.py`` (``--quick``: ResNet-18 and ResNet-50 on Eyeriss at 8 bits).
Last line: ``RESULT seconds_resnet50_eyeriss=.. seconds_per_layer_median=.. cpu_seconds_resnet50_eyeriss=..
cpu_seconds_per_layer_median=.. guard_wall_seconds=.. guard_cpu_seconds=..`` (wall seconds, and the
process's CPU seconds: on a shared machine the wall time is the CPU time stretched by the load).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _guard() -> tuple[float, float]:
    """Wall and CPU seconds of ``jaqmoo cost --model torchvision:resnet50 --accelerator eyeriss``."""
    exe = shutil.which("jaqmoo")
    cmd = ([exe] if exe else [sys.executable, "-c", "from jaqmoo.cli import main; main()"]) + [
        "cost", "--model", "torchvision:resnet50", "--accelerator", "eyeriss", "--quiet"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="ResNet-18 and ResNet-50 on Eyeriss at 8 bits")
    ap.add_argument("--spec", default=str(ROOT / "problems" / "zoo-cost.yaml"))
    ap.add_argument("--bits", default=None, help="only these uniform bits of the sweep (comma-separated, e.g. 8)")
    ap.add_argument("--no-guard", action="store_true", help="skip the jaqmoo cost start-up-included timing")
    args = ap.parse_args(argv)

    import torch

    from jaqmoo.sweep.cost_sweep import cost_point, load_cost_sweep

    torch.set_num_threads(1)
    plan = load_cost_sweep(args.spec, out_dir="unused")
    points = list(plan.points)
    if args.quick:
        points = [p for p in points if p["model"] in ("torchvision:resnet18", "torchvision:resnet50")
                  and p["accelerator"] == "eyeriss" and p["bits"] == "8"]
    if args.bits:
        points = [p for p in points if p["bits"] in args.bits.split(",")]
    print(f"load before: {os.getloadavg()[0]:.2f} (1-min average, {os.cpu_count()} cores)")
    print(f"{'model':<32} {'accel':<8} {'bits':>4} {'layers':>6} {'GMACs':>7} {'energy uJ':>11} {'cycles':>12} "
          f"{'latency ms':>10} {'seconds':>8} {'CPU s':>6}")
    rows = []
    for p in points:
        row, _ = cost_point(p["model"], p["accelerator"], p["bits"], plan.settings)
        rows.append(row)
        if row["status"] != "done":
            print(f"{p['model']:<32} {p['accelerator']:<8} {p['bits']:>4} FAILED: {row['error']}")
            continue
        print(f"{row['model']:<32} {row['accelerator']:<8} {row['bits']:>4} {row['layers']:>6} "
              f"{row['macs'] / 1e9:>7.3f} {row['energy_uj']:>11.1f} {row['cycles']:>12d} "
              f"{row['latency_s'] * 1e3:>10.2f} {row['seconds']:>8.2f} {row['cpu_seconds']:>6.2f}", flush=True)
    done = [r for r in rows if r["status"] == "done"]
    r50 = next((r for r in done if r["model"] == "torchvision:resnet50" and r["accelerator"] == "eyeriss"
                and r["bits"] == "8"), None)
    per_layer = statistics.median(r["mapping_seconds"] / r["layers"] for r in done) if done else float("nan")
    cpu_per_layer = statistics.median(r["cpu_seconds"] / r["layers"] for r in done) if done else float("nan")
    guard_wall = guard_cpu = float("nan")
    if not args.no_guard:
        guard_wall, guard_cpu = _guard()
        print(f"guard: jaqmoo cost --model torchvision:resnet50 --accelerator eyeriss: {guard_wall:.1f} s wall, "
              f"{guard_cpu:.1f} s CPU (load {os.getloadavg()[0]:.2f})")
    print(f"load after: {os.getloadavg()[0]:.2f}")
    print(f"RESULT seconds_resnet50_eyeriss={r50['seconds'] if r50 else float('nan'):.2f} "
          f"seconds_per_layer_median={per_layer:.3f} cpu_seconds_resnet50_eyeriss="
          f"{r50['cpu_seconds'] if r50 else float('nan'):.2f} cpu_seconds_per_layer_median={cpu_per_layer:.3f} "
          f"guard_wall_seconds={guard_wall:.1f} guard_cpu_seconds={guard_cpu:.1f}")
    return 0 if len(done) == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
