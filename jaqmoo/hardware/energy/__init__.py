"""Per-component energies and areas when a design comes without an Accelergy ERT/ART, by source.

* :mod:`.anchors`: the built-in tables' numbers (the 32/40/45 nm Accelergy anchors, 65 nm by
  node scaling; DRAM pJ/bit; the scaling exponents) and where each comes from;
* :mod:`.components`: the estimate type and reading a component's class and technology;
* :mod:`.builtin`: the built-in tables' scaling rules per kind (SRAM, regfile, register, MAC, DRAM);
* :mod:`.hwcomponents_model`: the optional ``hwcomponents`` package;
* :mod:`.architecture`: a whole architecture's ERT/ART from either source.

:mod:`jaqmoo.hardware.energy_tables` re-exports all of them under their old path.
"""
