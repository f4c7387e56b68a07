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

Run: ``python benchmarks/fork_table.py`` (``--quick``: w8/w4/w2 only). The last line is
``RESULT energy_uj_w8=.. energy_uj_w4=.. energy_uj_w2=.. saving_w4_vs_w8=..
dense_dw_overstatement=.. saving_w4_vs_w8_grouped=..``: Eyeriss-like, fork convention; the
energies and ``saving_w4_vs_w8`` with depthwise as the fork models it (the seed's table),
``saving_w4_vs_w8_grouped`` with true depthwise, and ``dense_dw_overstatement`` = energy of
the 13 depthwise layers modelled dense / modelled grouped, at w8.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "JAQMOO_THREADS"):
    os.environ.setdefault(_var, "1")

from jaqmoo.cost import NetworkCost, network_cost  # noqa: E402
from jaqmoo.mapping.mapper import Mapper  # noqa: E402
from jaqmoo.models import model_workload  # noqa: E402
from jaqmoo.timeloop.check import load_reference  # noqa: E402
from jaqmoo.workload import Workload  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "timeloop_quant"
DESIGNS = {"eyeriss-like": DATA / "mobilenet-l3-eyeriss-16bit_int-w4-a8",
           "simba-like": DATA / "mobilenet-l3-simba-16bit_int-w2-a8"}


def dense_depthwise(workload: Workload) -> Workload:
    """The fork's model of a depthwise layer: a dense conv with C = M = the channels."""
    layers = tuple(dataclasses.replace(layer, kind="conv", G=1, K=layer.G, C=layer.G) if layer.kind == "depthwise"
                   else layer for layer in workload.layers)
    return Workload(workload.name + "-dense-dw", layers)


def depthwise_energy(cost: NetworkCost, names: frozenset[str]) -> float:
    """pJ of the layers named ``names`` (the depthwise ones, dense or grouped) of a network cost."""
    return sum(lc.energy_pj for lc in cost.layers if lc.name in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="weights 8, 4, 2 only")
    args = parser.parse_args()
    weight_bits = (8, 4, 2) if args.quick else (8, 7, 6, 5, 4, 3, 2)
    grouped = model_workload("mobilenet_v1", (3, 224, 224))
    assert len(grouped) == 28, len(grouped)
    dw = frozenset(layer.name for layer in grouped.layers if layer.kind == "depthwise")
    workloads = {"dense": dense_depthwise(grouped), "grouped": grouped}
    print(f"MobileNetV1 @224: {len(grouped)} layers ({len(dw)} depthwise), "
          f"{grouped.macs / 1e6:.0f} M MACs grouped, {workloads['dense'].macs / 1e6:.0f} M MACs with dense depthwise")
    table: dict[tuple, NetworkCost] = {}
    start = time.perf_counter()
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
    print(f"\n{time.perf_counter() - start:.0f} s")
    key = ("eyeriss-like", "fork")
    e = {w: table[(*key, "dense", w)].energy_pj / 1e6 for w in (8, 4, 2)}
    saving = 1 - e[4] / e[8]
    saving_grouped = 1 - table[(*key, "grouped", 4)].energy_pj / table[(*key, "grouped", 8)].energy_pj
    over8 = depthwise_energy(table[(*key, "dense", 8)], dw) / depthwise_energy(table[(*key, "grouped", 8)], dw)
    print(f"RESULT energy_uj_w8={e[8]:.2f} energy_uj_w4={e[4]:.2f} energy_uj_w2={e[2]:.2f} "
          f"saving_w4_vs_w8={saving:.4f} dense_dw_overstatement={over8:.2f} saving_w4_vs_w8_grouped={saving_grouped:.4f}")


if __name__ == "__main__":
    main()
