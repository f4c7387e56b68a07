"""The seed's table, reproduced: MobileNetV1 on the Klhufek et al. fork's 16-bit designs.

Loads the fork's Eyeriss-like and Simba-like designs (16-bit words) with their mapspace
constraints from its published scenario folders (``tests/data/timeloop_quant``: the
architecture, its constraints and the per-action energies recovered from the run's stats
file, which saved no ERT), then maps all 28 layers of MobileNetV1 @224 (activations 8 bits,
weights 2..8 bits, every layer the same) with jaqmoo's mapper (per layer, by EDP like the
fork's mapper) and prints whole-network energy, cycles and packed weight memory:

* ``dense``: depthwise layers as the fork models them (a dense conv with C = M = channels);
* ``grouped``: true depthwise (G = channels, one input and one output channel per group);

under the fork's counting convention (``convention="fork"``: values packed within 16-bit
words, MAC energy independent of the bits, psums at the 8-bit output width) -- the
reproduction -- and, for comparison, under jaqmoo's own (``convention="jaqmoo"``: packing
over the whole physical word, bit-scaled MAC energy).

``--shapes fork`` (the table to compare with the paper) builds the 28 layers as the fork ran
them, from its published ``mobilenet-l{1..28}-eyeriss-16bit_int-w8-a8`` runs (each run's
``prob.yaml``, design, constraints and recovered energies): its feature maps are one pixel
smaller after each stride-2 layer (P = Q = 55, 27, 13, 6) and its classifier is a 1x1 conv over
a 6x6 map. Per layer it prints jaqmoo's energy and the fork's (the run's stats), and jaqmoo's
EDP over the fork mapper's (its mapping re-costed by jaqmoo's model, so both sides are the same
model), then totals at weights 8/4/2 on the Eyeriss-like and Simba-like designs (fork
convention, jaqmoo's mapper by EDP with ``--budget`` factor splits, the budget of
``jaqmoo timeloop check --search``). ``--shapes true`` prints the table on jaqmoo's own
MobileNetV1 shapes (padded convs, a real fully connected classifier) described above;
``--shapes both`` (the default) prints both.

Run: ``python benchmarks/fork_table.py [--shapes fork|true|both]`` (``--quick``: w8/w4/w2
only in the true-shape table). The last line is ``RESULT ...`` with, for the fork shapes,
``fork_shapes_energy_uj_w8`` (jaqmoo, Eyeriss-like, fork convention) beside
``fork_reported_energy_uj_w8`` (the sum of the fork's 28 runs), ``fork_shapes_energy_uj_w4/_w2``,
``simba_fork_shapes_energy_uj_w8/_w4/_w2``, ``worst_edp_ratio_w8`` (the largest per-layer jaqmoo
EDP / fork EDP) and ``layers_edp_worse_w8`` (layers more than 0.5 % worse); and for the true
shapes ``energy_uj_w8=.. energy_uj_w4=.. energy_uj_w2=.. saving_w4_vs_w8=..
dense_dw_overstatement=.. saving_w4_vs_w8_grouped=..``: Eyeriss-like, fork convention; the
energies and ``saving_w4_vs_w8`` with depthwise as the fork models it, ``saving_w4_vs_w8_grouped``
with true depthwise, and ``dense_dw_overstatement`` = energy of the 13 depthwise layers modelled
dense / modelled grouped, at w8.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

import numpy as np

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "JAQMOO_THREADS"):
    os.environ.setdefault(_var, "1")

from jaqmoo.commands.timeloop import SEARCH_BUDGET  # noqa: E402
from jaqmoo.cost import NetworkCost, network_cost  # noqa: E402
from jaqmoo.mapping.mapper import Mapper, metric_values  # noqa: E402
from jaqmoo.mapping.model import evaluate  # noqa: E402
from jaqmoo.models import model_workload  # noqa: E402
from jaqmoo.timeloop.check import load_reference  # noqa: E402
from jaqmoo.workload import Workload  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "timeloop_quant"
DESIGNS = {"eyeriss-like": DATA / "mobilenet-l3-eyeriss-16bit_int-w4-a8",
           "simba-like": DATA / "mobilenet-l3-simba-16bit_int-w2-a8"}
FORK_RUNS = [DATA / f"mobilenet-l{i}-eyeriss-16bit_int-w8-a8" for i in range(1, 29)]
EDP_TOLERANCE = 0.005
"""A layer counts as worse than the fork when its EDP exceeds the fork's by more than this
(the fork's stats print EDP to three significant figures)."""


def dense_depthwise(workload: Workload) -> Workload:
    """The fork's model of a depthwise layer: a dense conv with C = M = the channels."""
    layers = tuple(dataclasses.replace(layer, kind="conv", G=1, K=layer.G, C=layer.G) if layer.kind == "depthwise"
                   else layer for layer in workload.layers)
    return Workload(workload.name + "-dense-dw", layers)


def depthwise_energy(cost: NetworkCost, names: frozenset[str]) -> float:
    """pJ of the layers named ``names`` (the depthwise ones, dense or grouped) of a network cost."""
    return sum(lc.energy_pj for lc in cost.layers if lc.name in names)


def fork_shapes_table(budget: int) -> dict[str, float]:
    """The seed's table on the fork's own layer shapes (see the module docstring)."""
    runs = [load_reference(folder) for folder in FORK_RUNS]
    simba, _, _ = load_reference(DESIGNS["simba-like"])
    print(f"fork shapes: {len(runs)} layers from {FORK_RUNS[0].parent}/mobilenet-l*-eyeriss-16bit_int-w8-a8; "
          f"{sum(tl.problem.macs for tl, _, _ in runs) / 1e6:.0f} M MACs; energies: "
          f"{runs[0][0].accelerator.energy_source.split(' (')[0]} of each run")
    print(f"{'layer':6s} {'C':>5s} {'M':>5s} {'P':>4s} {'RxS':>4s} {'str':>3s} {'ours uJ':>10s} {'fork uJ':>10s} "
          f"{'ours cyc':>10s} {'fork cyc':>10s} {'EDP ratio':>9s}")
    mapper = Mapper(metric="edp", budget=budget)
    ours_w8 = fork_w8 = 0.0
    ratios = []
    for i, (tl, mapping, stats) in enumerate(runs, start=1):
        layer = tl.problem
        best = mapper.best(layer, tl.accelerator, tl.bits)
        fork_costs = evaluate(layer, tl.accelerator, mapping, tl.bits)
        ratio = best.value / float(metric_values(fork_costs, "edp")[0])
        ratios.append(ratio)
        ours_w8 += best.energy
        fork_w8 += stats.energy_pj
        print(f"l{i:<5d} {layer.C:5d} {layer.K:5d} {layer.P:4d} {layer.R}x{layer.S:<2d} {layer.stride_h:3d} "
              f"{best.energy / 1e6:10.2f} {stats.energy_pj / 1e6:10.2f} {best.cycles:10d} {stats.cycles:10d} "
              f"{ratio:9.4f}")
    worse = sum(r > 1 + EDP_TOLERANCE for r in ratios)
    print(f"total w8/a8: ours {ours_w8 / 1e6:.2f} uJ, the fork's runs {fork_w8 / 1e6:.2f} uJ "
          f"({ours_w8 / fork_w8 - 1:+.2%}); EDP vs the fork: worst {max(ratios):.4f}, geomean "
          f"{float(np.exp(np.mean(np.log(ratios)))):.4f}, {worse} of {len(ratios)} layers worse by > "
          f"{EDP_TOLERANCE:.1%}")
    out = {"fork_shapes_energy_uj_w8": ours_w8 / 1e6, "fork_reported_energy_uj_w8": fork_w8 / 1e6,
           "worst_edp_ratio_w8": max(ratios), "layers_edp_worse_w8": worse}
    print(f"{'design':13s} {'w/a':6s} {'energy uJ':>11s} {'cycles':>10s} {'weights KiB':>12s}")
    for design in ("eyeriss-like", "simba-like"):
        for w in (8, 4, 2):
            energy = cycles = weight_bits = 0
            for tl, _, _ in runs:
                accel = tl.accelerator if design == "eyeriss-like" else simba.accelerator
                best = mapper.best(tl.problem, accel, (w, 8, 8))
                energy += best.energy
                cycles += best.cycles
                weight_bits += tl.problem.K * tl.problem.C * tl.problem.R * tl.problem.S * tl.problem.G * w
            prefix = "" if design == "eyeriss-like" else "simba_"
            out[f"{prefix}fork_shapes_energy_uj_w{w}"] = energy / 1e6
            print(f"{design:13s} w{w}/a8  {energy / 1e6:11.2f} {cycles:10d} {weight_bits / 8 / 1024:12.1f}")
    return out


def true_shapes_table(weight_bits: tuple[int, ...]) -> dict[str, float]:
    """The seed's table on jaqmoo's own MobileNetV1 shapes (see the module docstring)."""
    grouped = model_workload("mobilenet_v1", (3, 224, 224))
    assert len(grouped) == 28, len(grouped)
    dw = frozenset(layer.name for layer in grouped.layers if layer.kind == "depthwise")
    workloads = {"dense": dense_depthwise(grouped), "grouped": grouped}
    print(f"true shapes: MobileNetV1 @224: {len(grouped)} layers ({len(dw)} depthwise), "
          f"{grouped.macs / 1e6:.0f} M MACs grouped, {workloads['dense'].macs / 1e6:.0f} M MACs with dense depthwise")
    table: dict[tuple, NetworkCost] = {}
    for design, folder in DESIGNS.items():
        tl, _, _ = load_reference(folder)
        print(f"\n{design}: {folder.name}; energies: {tl.accelerator.energy_source}")
        for convention in ("fork", "jaqmoo"):
            accel = dataclasses.replace(tl.accelerator, convention=convention)
            print(f"  convention {convention}")
            print(f"    {'w/a':6s} {'depthwise':9s} {'energy uJ':>11s} {'dw uJ':>9s} {'cycles':>10s} {'weights KiB':>12s}")
            for mode, workload in workloads.items():
                mapper = Mapper(metric="edp")
                for w in weight_bits:
                    cost = network_cost(workload, accel, bits=(w, 8, 8), metric="edp", mapper=mapper)
                    table[design, convention, mode, w] = cost
                    print(f"    w{w}/a8  {mode:9s} {cost.energy_pj / 1e6:11.2f} {depthwise_energy(cost, dw) / 1e6:9.2f} "
                          f"{cost.cycles:10d} {cost.weight_memory_bits / 8192:12.1f}")
            for mode in workloads:
                e8 = table[design, convention, mode, 8].energy_pj
                savings = ", ".join(f"w{w} {1 - table[design, convention, mode, w].energy_pj / e8:.1%}"
                                    for w in weight_bits if w != 8)
                print(f"    saving vs w8 ({mode}): {savings}")
            over = [depthwise_energy(table[design, convention, "dense", w], dw)
                    / depthwise_energy(table[design, convention, "grouped", w], dw) for w in weight_bits]
            print("    dense/grouped depthwise energy: " + ", ".join(
                f"w{w} {o:.2f}x" for w, o in zip(weight_bits, over, strict=True)))
    key = ("eyeriss-like", "fork")
    e = {w: table[(*key, "dense", w)].energy_pj / 1e6 for w in (8, 4, 2)}
    saving_grouped = 1 - table[(*key, "grouped", 4)].energy_pj / table[(*key, "grouped", 8)].energy_pj
    over8 = depthwise_energy(table[(*key, "dense", 8)], dw) / depthwise_energy(table[(*key, "grouped", 8)], dw)
    return {"energy_uj_w8": e[8], "energy_uj_w4": e[4], "energy_uj_w2": e[2], "saving_w4_vs_w8": 1 - e[4] / e[8],
            "dense_dw_overstatement": over8, "saving_w4_vs_w8_grouped": saving_grouped}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", choices=("fork", "true", "both"), default="both",
                        help="the fork's own layer shapes, jaqmoo's true MobileNetV1 shapes, or both (default)")
    parser.add_argument("--quick", action="store_true", help="true shapes: weights 8, 4, 2 only")
    parser.add_argument("--budget", type=int, default=SEARCH_BUDGET,
                        help=f"fork shapes: factor splits the mapper samples per layer (default {SEARCH_BUDGET})")
    args = parser.parse_args()
    start = time.perf_counter()
    result: dict[str, float] = {}
    if args.shapes in ("fork", "both"):
        result.update(fork_shapes_table(args.budget))
    if args.shapes in ("true", "both"):
        print()
        result.update(true_shapes_table((8, 4, 2) if args.quick else (8, 7, 6, 5, 4, 3, 2)))
    print(f"\n{time.perf_counter() - start:.0f} s, load average {os.getloadavg()[0]:.2f} (shared machine)")
    print("RESULT " + " ".join(f"{k}={v:.4f}" if isinstance(v, float) and abs(v) < 10 else
                               f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))


if __name__ == "__main__":
    main()
