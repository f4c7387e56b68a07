"""Templates and design fixtures through the Timeloop loader: the same ``Accelerator``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from jaqmoo.errors import JaqmooError
from jaqmoo.hardware.templates import TEMPLATES, get_template, load_accelerator_spec
from jaqmoo.timeloop.inputs import load_timeloop_input

timeloop_yaml = pytest.importorskip("jaqmoo.hardware.timeloop_yaml")

REFERENCE = Path("/work/shared/reference/timeloop")
if not REFERENCE.is_dir():
    REFERENCE = Path(__file__).resolve().parents[1] / "reference" / "timeloop"
needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(),
                                     reason="Timeloop reference folders not available")
DESIGNS = Path(__file__).parent / "data" / "designs"
EYERISS_REF = REFERENCE / "mapper-eyeriss-like-conv"
FIXTURES = {"eyeriss": "eyeriss_like", "simba": "simba_like",
            "weight_stationary": "simple_weight_stationary",
            "output_stationary": "simple_output_stationary"}
_ENERGY_FIELDS = ("read_energy", "write_energy", "update_energy", "leak_energy", "area",
                  "energy_source")


def _implied_by_dummy(constraint, dummies) -> bool:
    """Flattened dumps spell out what a dummy level implies (no temporal loops, nothing
    kept); the hierarchical form leaves it implicit."""
    if constraint.target not in dummies:
        return False
    if constraint.type == "bypass":
        return not constraint.keep
    return constraint.type == "temporal" and all(v == 1 for _, v in constraint.factors) \
        and len(constraint.factors) >= 7


def structure(accel):
    """The accelerator without its name, energies, areas and accumulator width; constraints
    as a sorted set without the ones a dummy level implies."""
    dummies = {lvl.name for lvl in accel.levels if lvl.is_dummy}
    constraints = tuple(sorted({c for c in accel.constraints
                                if not _implied_by_dummy(c, dummies)}, key=repr))
    levels = tuple(dataclasses.replace(lvl, **{f: type(getattr(lvl, f))() for f in
                                               _ENERGY_FIELDS}) for lvl in accel.levels)
    compute = dataclasses.replace(accel.compute, energy=0.0, leak_energy=0.0, area=0.0,
                                  energy_source="")
    # a Timeloop file has no partial-sum width: the template's accumulator_bits is its own knowledge
    return dataclasses.replace(accel, name="", levels=levels, compute=compute,
                               energy_source="", extra=(), constraints=constraints, accumulator_bits=None)


@needs_reference
def test_eyeriss_template_equals_the_loaded_reference_folder():
    ours = get_template("eyeriss").build()
    ref = load_accelerator_spec(EYERISS_REF)
    assert structure(ours) == structure(ref)
    assert "ERT" in ref.energy_source
    assert ours.energy_source.startswith("built-in eyeriss table")
    assert "32nm" in ours.energy_source


@needs_reference
def test_eyeriss_builtin_energies_close_to_reference_per_level():
    ours = get_template("eyeriss").build()
    ref = load_accelerator_spec(EYERISS_REF)
    for mine, theirs in zip(ours.levels, ref.levels, strict=True):
        for field in ("read_energy", "write_energy", "update_energy"):
            expected = getattr(theirs, field)
            if expected:
                assert getattr(mine, field) == pytest.approx(expected, rel=0.05), \
                    (mine.name, field)
    assert ours.compute.energy == pytest.approx(ref.compute.energy, rel=1e-6)


def _with_template_dataflow(loaded, template: str):
    """The WS/OS templates spread output channels across X where the exercises (and so the
    fixtures) put only N there (see ``simple.SPATIAL_PERMUTATION``): swap that one
    constraint for the template's."""
    if template not in ("weight_stationary", "output_stationary"):
        return loaded
    ours = [c for c in TEMPLATES[template].build().constraints
            if c.target == "inter_PE_spatial" and c.type == "spatial"]
    swapped = []
    for c in loaded.constraints:
        if c.target == "inter_PE_spatial" and c.type == "spatial":
            assert c.permutation[0] == "N" and c.split == 1
            c = ours[0]
        swapped.append(c)
    return dataclasses.replace(loaded, constraints=tuple(swapped))


def _same_energies(a, b):
    for x, y in zip(a.levels, b.levels, strict=True):
        for field in _ENERGY_FIELDS[:-1]:
            assert getattr(x, field) == pytest.approx(getattr(y, field)), (x.name, field)
    assert a.compute.energy == pytest.approx(b.compute.energy)
    assert a.area_um2 == pytest.approx(b.area_um2)


@pytest.mark.parametrize("template", sorted(FIXTURES))
def test_hierarchical_fixture_loads_to_the_template_defaults(template):
    path = DESIGNS / FIXTURES[template] / "arch.yaml"
    assert structure(_with_template_dataflow(timeloop_yaml.load_accelerator(path), template)) \
        == structure(TEMPLATES[template].build())
    # no ERT next to the fixture: load_accelerator_spec uses the same built-in tables
    loaded = _with_template_dataflow(load_accelerator_spec(path), template)
    built = TEMPLATES[template].build()
    assert structure(loaded) == structure(built)
    _same_energies(loaded, built)
    assert loaded.energy_source.startswith("built-in") and "no ERT next to" in \
        loaded.energy_source


@pytest.mark.parametrize("template", ["simba", "weight_stationary", "output_stationary"])
def test_flattened_fixture_loads_to_the_template_defaults(template):
    path = DESIGNS / FIXTURES[template] / "flattened.yaml"
    loaded = _with_template_dataflow(load_accelerator_spec(path), template)
    built = TEMPLATES[template].build()
    assert structure(loaded) == structure(built)
    _same_energies(loaded, built)
    hierarchical = _with_template_dataflow(
        load_accelerator_spec(DESIGNS / FIXTURES[template] / "arch.yaml"), template)
    assert structure(hierarchical) == structure(loaded)


@pytest.mark.parametrize("folder", sorted(FIXTURES.values()))
def test_fixtures_are_complete_timeloop_inputs(folder):
    for path in sorted((DESIGNS / folder).glob("*.yaml")):
        tl = load_timeloop_input(path)
        assert tl.problem.macs == 8 * 16 * 3 * 3 * 8 * 8
        assert tl.accelerator.compute.instances >= 1


def test_overrides_reach_the_accelerator():
    accel = load_accelerator_spec("eyeriss", pe_x=16, pe_y=8, glb_depth=32768)
    assert accel.compute.instances == 128
    glb = accel.levels[accel.level_index("shared_glb")]
    assert glb.depth == 32768
    default_glb = get_template("eyeriss").build().levels[1]
    assert glb.read_energy > default_glb.read_energy  # deeper SRAM costs more per access
    simba = load_accelerator_spec("simba", lanes=8, weight_buffer_width=128)
    wb = simba.levels[simba.level_index("PEWeightBuffer")]
    assert (wb.instances, wb.width) == (128, 128)
    assert simba.compute.instances == 512


def test_load_accelerator_spec_accepts_names_files_and_folders(tmp_path):
    assert load_accelerator_spec("ws").compute.instances == 256
    by_file = load_accelerator_spec(DESIGNS / "simba_like" / "flattened.yaml")
    assert by_file.compute.instances == 256
    folder = tmp_path / "design"
    folder.mkdir()
    (folder / "arch.yaml").write_text((DESIGNS / "simba_like" / "arch.yaml").read_text())
    assert structure(load_accelerator_spec(folder)) == structure(by_file)


def test_load_accelerator_spec_errors(tmp_path):
    with pytest.raises(JaqmooError, match="not a template.*no such file"):
        load_accelerator_spec("tpu_v9")
    with pytest.raises(JaqmooError, match="apply to templates only"):
        load_accelerator_spec(DESIGNS / "simba_like" / "flattened.yaml", pe_x=4)
    with pytest.raises(JaqmooError, match="pe_x=0 is impossible"):
        load_accelerator_spec("eyeriss", pe_x=0)
    with pytest.raises(JaqmooError, match="not one of"):
        load_accelerator_spec("eyeriss", strict=True, pe_x=13)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(JaqmooError, match="expected parsed-processed-input.yaml"):
        load_accelerator_spec(empty)


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_every_template_maps_a_conv_and_a_depthwise_layer(template):
    mapper = pytest.importorskip("jaqmoo.mapping.mapper")
    from jaqmoo.workload import Layer

    accel = TEMPLATES[template].build()
    for layer in (Layer("conv", "conv", K=16, C=8, P=8, Q=8, R=3, S=3),
                  Layer("dw", "depthwise", G=16, K=1, C=1, P=8, Q=8, R=3, S=3)):
        result = mapper.find_best_mapping(layer, accel, (8, 8, 8))
        assert float(result.costs.energy[0]) > 0
        # a spatial fan-out is used: fewer cycles than MACs
        assert int(result.costs.cycles[0]) < layer.macs


class _FakeHwComponents:
    """Stands in for the optional ``hwcomponents`` package (not installable here): it has a
    model for SRAMs only and answers in SI units, like the real one."""

    @staticmethod
    def _check(name, attrs):
        if "sram" not in name.lower():
            raise RuntimeError(f"no model for {name}")
        assert attrs["technology"] == "32nm"

    def get_energy(self, name, attrs, action, arguments):
        self._check(name, attrs)
        return {"read": 2e-12, "write": 1e-12}[action]

    def get_area(self, name, attrs):
        self._check(name, attrs)
        return 1e-9  # m^2 = 1000 um^2

    def get_leak_power(self, name, attrs):
        self._check(name, attrs)
        return 1e-3  # W -> 1 pJ per 1 ns cycle


def test_hwcomponents_energy_model_with_builtin_fallback(monkeypatch):
    from jaqmoo.hardware.templates.build import build_cached

    build_cached.cache_clear()
    monkeypatch.setitem(__import__("sys").modules, "hwcomponents", _FakeHwComponents())
    try:
        accel = load_accelerator_spec("eyeriss", energy_model="hwcomponents")
        builtin = load_accelerator_spec("eyeriss")
    finally:
        build_cached.cache_clear()
    glb = accel.levels[accel.level_index("shared_glb")]
    assert (glb.read_energy, glb.write_energy, glb.update_energy) == pytest.approx((2, 1, 1))
    assert glb.leak_energy == pytest.approx(1.0) and glb.area == pytest.approx(1000.0)
    assert accel.energy_source.startswith("hwcomponents (shared_glb) + built-in 32nm table")
    for mine, ref in zip(accel.levels[2:], builtin.levels[2:], strict=True):
        assert mine.read_energy == ref.read_energy  # not covered: built-in tables
    assert structure(accel) == structure(builtin)


def test_hwcomponents_energy_model_needs_the_package(monkeypatch):
    from jaqmoo.hardware.templates.build import build_cached

    build_cached.cache_clear()
    monkeypatch.setitem(__import__("sys").modules, "hwcomponents", None)  # import fails
    with pytest.raises(JaqmooError, match="hwcomponents.*not installed"):
        load_accelerator_spec("eyeriss", energy_model="hwcomponents")
    with pytest.raises(JaqmooError, match="energy model 'accelergy'"):
        load_accelerator_spec("eyeriss", energy_model="accelergy")
