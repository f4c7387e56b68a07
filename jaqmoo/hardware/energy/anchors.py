"""The built-in energy and area tables' numbers: anchors, exponents, DRAM pJ/bit (used when no ERT is given).

When a design comes with an Accelergy ERT/ART, those numbers win (the Timeloop loader reads
them). Otherwise every component gets per-action energies (pJ) and an area (um^2) from the
small analytical tables below, one per component *kind*:

================  ======================================================================
kind              model
================  ======================================================================
``dram``          energy per access = pJ/bit(type) x ``width``; no leakage, no on-chip area.
                  LPDDR4 8 pJ/bit (both Timeloop references: 512 pJ per 64-bit and
                  2048 pJ per 256-bit access). GDDR5 14 and HBM2 3.9 pJ/bit (O'Connor et
                  al., MICRO'17), DDR3 70 pJ/bit (Malladi et al., ISCA'12).
``sram``          CACTI-like: E(D, W) = E_ref x (W / W_ref) x (D / D_ref) ** 0.5
                  (linear in the word width = bits read per access, square root in the
                  depth = bit-line/word-line length); leakage per cycle and area are
                  proportional to the capacity D x W.
``regfile``       same form with a depth exponent of 0.84 (register files are flip-flop
                  arrays whose decode/compare logic grows almost linearly with the number
                  of entries). 0.84 is the least-squares fit over the three Eyeriss
                  scratchpads (12x16, 16x16, 192x16); leakage and area are proportional
                  to the capacity.
``register``      a depth-1 ``regfile`` (a plain register: no address decode, no compare):
                  energy and leakage proportional to the width (anchored at 45 nm, other
                  nodes by the node^2 rule below); area per bit as a regfile.
``intmac``        E = E_ref x (0.8 x (m_a x m_b) / 64 + 0.2 x adder / 16): an 8x8
                  multiplier with a 16-bit adder is the reference; 80 % of it is the
                  multiplier (array multiplier: partial products ~ m_a x m_b) and 20 % the
                  adder (ripple/carry-select: ~ width), the split of Horowitz (ISSCC'14,
                  45 nm: 8-bit multiply 0.2 pJ, 16-bit add 0.05 pJ). Area uses the same split.
``dummy``         Timeloop ``dummy_storage`` (a level that only hosts a spatial fan-out):
                  no energy, no area (Accelergy's dummy table reports 1 um^2; a level that
                  holds nothing is not hardware, and the hierarchical form has no entry).
================  ======================================================================

Each kind is anchored, per technology node, on one real Accelergy estimate taken from a
Timeloop/Accelergy reference output (``ANCHORS`` lists every number and where it comes from):

* 32 nm: the Eyeriss-like reference (``mapper-eyeriss-like-conv``): shared_glb
  16384x64 smartbuffer_SRAM, the three smartbuffer_RF scratchpads (fitted), the
  8/16-bit intmac.
* 40 nm: the ``model-*`` references: SRAM 32768x64 (read 43.35 pJ), regfile 64x8
  (0.426 pJ), 8-bit intmac (0.845 pJ).
* 45 nm: the Simba-like design of the timeloop-accelergy-exercises (GlobalBuffer
  2048x256 smartbuffer_SRAM, PEAccuBuffer 128x24 smartbuffer_RF, the 1x512
  PEWeightRegs register, 8/16-bit intmac).
* 65 nm: the 45 nm anchors scaled by (65/45)^2 for energy, leakage and area. The exponent
  2 is the least-squares fit of the three SRAM anchors brought to one size
  (32 nm : 40 nm : 45 nm = 0.50 : 0.84 : 1) to E ~ node^k (k = 2.0).

A value the reference ERT does not give (the 40 nm intmac has no leak action) is taken from
the nearest anchored node with the same node^2 rule. All rules are monotone: at a fixed
node a deeper or wider memory never costs less per access, and area grows with capacity.

Note: the 40 nm intmac anchor is Accelergy's Aladdin ``intmac`` primitive, whereas the 32
and 45 nm anchors are the exercises' compound ``intmac`` that models the multiplier with an
adder table; the 40 nm MAC is therefore ~3x the 45 nm one. Each node reproduces its own
reference; do not compare MAC energies across nodes.

The scaling rules are applied by :mod:`jaqmoo.hardware.energy.builtin`.
"""

from __future__ import annotations

from dataclasses import dataclass

SUPPORTED_NODES_NM: tuple[int, ...] = (32, 40, 45, 65)
"""Technology nodes with a built-in table."""

DEFAULT_NODE_NM = 45
"""Node assumed when a design names no technology at all (said in the energy source)."""

NODE_ENERGY_EXPONENT = 2.0
"""E ~ node ** k between nodes (fitted on the SRAM anchors, see module docstring)."""

SRAM_DEPTH_EXPONENT = 0.5
REGFILE_DEPTH_EXPONENT = 0.84
MAC_MULTIPLIER_SHARE = 0.8
"""Share of an 8x8-multiply/16-bit-add MAC's energy and area spent in the multiplier."""

DUMMY_AREA_UM2 = 0.0

DRAM_PJ_PER_BIT: dict[str, float] = {
    "LPDDR4": 8.0,  # Timeloop references: 512 pJ / 64-bit, 2048 pJ / 256-bit access
    "HBM2": 3.9,  # O'Connor et al., "Fine-grained DRAM", MICRO 2017
    "GDDR5": 14.0,  # O'Connor et al., MICRO 2017
    "DDR3": 70.0,  # Malladi et al., "Towards energy-proportional datacenter memory", ISCA 2012
}
DEFAULT_DRAM_TYPE = "LPDDR4"

KINDS: tuple[str, ...] = ("dram", "sram", "regfile", "register", "intmac", "dummy")


@dataclass(frozen=True)
class Anchor:
    """One Accelergy estimate a table is scaled from.

    ``size`` is ``(depth, width)`` for memories and ``(multiplier_width, adder_width)`` for
    MACs; ``energies`` maps actions to pJ (``leak`` is pJ per cycle); ``area`` is um^2.
    """

    kind: str
    node_nm: int
    size: tuple[int, int]
    energies: tuple[tuple[str, float], ...]
    area_um2: float
    origin: str

    def energy(self, action: str) -> float | None:
        """Anchored energy of ``action`` or None when the reference does not give it."""
        for name, value in self.energies:
            if name == action:
                return value
        return None


# Eyeriss 32 nm smartbuffer_RF: E(16 deep, 16 wide) fitted jointly with the 0.84 exponent on
# ifmap_spad 12x16 (read 0.202442, write 0.176713), psum_spad 16x16 (0.2513, 0.2191) and
# weights_spad 192x16 (1.976602, 1.881657); leakage 5.23e-7 pJ/bit/cycle (mean of the three);
# area from weights_spad (5816.44 um^2 for 3072 bits), the scratchpad that dominates a PE.
ANCHORS: tuple[Anchor, ...] = (
    Anchor("sram", 32, (16384, 64),
           (("read", 18.183829), ("write", 14.137929), ("leak", 0.005652)),
           217363.36892, "mapper-eyeriss-like-conv ERT/ART: shared_glb smartbuffer_SRAM"),
    Anchor("sram", 40, (32768, 64),
           (("read", 43.353054), ("write", 30.878292), ("leak", 0.007972)),
           707084.0, "model-conv1d-2level-os ERT/ART: MainMemory SRAM"),
    Anchor("sram", 45, (2048, 256),
           (("read", 51.843193), ("write", 66.283193), ("leak", 0.001668)),
           199069.98324, "timeloop-accelergy-exercises simba_like: GlobalBuffer smartbuffer_SRAM"),
    Anchor("regfile", 32, (16, 16),
           (("read", 0.251352), ("write", 0.225751), ("leak", 0.000133886)),
           5816.44278 * 256 / 3072,
           "mapper-eyeriss-like-conv ERT/ART: smartbuffer_RF scratchpads (least-squares fit)"),
    Anchor("regfile", 40, (64, 8),
           (("read", 0.42564), ("write", 0.42564), ("leak", 0.000861)),
           887.84, "model-conv1d-1level ERT/ART: Buffer regfile"),
    Anchor("regfile", 45, (128, 24),
           (("read", 3.073534), ("write", 2.857534), ("leak", 0.002415)),
           25268.00388, "timeloop-accelergy-exercises simba_like: PEAccuBuffer smartbuffer_RF"),
    Anchor("register", 45, (1, 512),
           (("read", 0.257632), ("write", 0.077872), ("leak", 2.6e-05)),
           3144.39484, "timeloop-accelergy-exercises simba_like: PEWeightRegs (depth 1)"),
    Anchor("intmac", 32, (8, 16), (("compute", 0.207692), ("leak", 0.002374)),
           191.82, "mapper-eyeriss-like-conv ERT/ART: mac intmac (8-bit multiplier, 16-bit adder)"),
    Anchor("intmac", 40, (8, 16), (("compute", 0.845),),
           332.25, "model-conv1d-1level ERT/ART: MACC intmac (width 8)"),
    Anchor("intmac", 45, (8, 16), (("compute", 0.315), ("leak", 0.0036)),
           417.0, "timeloop-accelergy-exercises simba_like: mac intmac (8/16)"),
)


__all__ = ["ANCHORS", "DEFAULT_DRAM_TYPE", "DEFAULT_NODE_NM", "DRAM_PJ_PER_BIT", "DUMMY_AREA_UM2", "KINDS",
           "MAC_MULTIPLIER_SHARE", "NODE_ENERGY_EXPONENT", "REGFILE_DEPTH_EXPONENT", "SRAM_DEPTH_EXPONENT",
           "SUPPORTED_NODES_NM", "Anchor"]
