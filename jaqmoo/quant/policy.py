"""Quantization policies: per-layer weight and activation bit-widths.

A :class:`QuantPolicy` names every quantizable layer (Conv2d/Linear, in the order of
:func:`jaqmoo.workload.quantizable_layers`) with its weight bits and its input-activation
bits. Bits are integers in :data:`SUPPORTED_BITS` or :data:`FLOAT_BITS` (32: not
quantized). The cost model reads a layer's tensors at ``(weight, input, output)`` bits
from :meth:`QuantPolicy.tensor_bits`: a layer's *completed* output is stored at the next
layer's activation bits (the last layer's at ``last_output_bits``). Partial sums are not
activations: wherever an output is still being reduced, the cost model keeps it at the
accelerator's accumulator width (``Accelerator.accumulator_bits``: the template's psum
width, or ``quantization.accumulator_bits``), whatever the policy.

Policy files (``--bits-file``) are YAML::

    # either a mapping layer name -> bits ...
    layers:
      features.0.0: {w: 8, a: 8}
      features.1.conv.0.0: {w: 4, a: 6}
    # ... or one spec for all: "4/8" means weights 4, activations 8
    default: 8/8
    last_output_bits: 8        # the last layer's output (optional, default 8)
    # written by `jaqmoo export RUN --point K --bits-file F` (optional; the policy ignores them):
    hardware: {pe_x: 14, glb_depth: 16384}   # the point's hardware; `jaqmoo cost --bits-file` applies it
    point: {...}                             # where the point came from and its stored figures

A policy file (``jaqmoo export RUN --point K --policy-file F``, read by ``jaqmoo cost
--policy-file``) is a bits file whose layers also carry their ``mapping`` (Timeloop mapping
directives, :func:`jaqmoo.mapping.timeloop_map.mapping_directives`); the policy ignores them,
so a policy file is also a valid bits file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from jaqmoo.errors import JaqmooError, did_you_mean
from jaqmoo.safe_write import atomic_write_text
from jaqmoo.strict import load_yaml_text, shown
from jaqmoo.textfile import read_utf8

SUPPORTED_BITS: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8)
#: top-level keys of a policy (bits) file; ``hardware`` and ``point`` are read by other tools
POLICY_FILE_KEYS = ("layers", "default", "last_output_bits", "hardware", "point")
FLOAT_BITS = 32


def check_bits(value: object, what: str) -> int:
    """Return ``value`` as a supported bit-width or raise a :class:`JaqmooError` naming ``what``."""
    if isinstance(value, str) and value.strip().lower() in ("float", "fp32", "32"):
        return FLOAT_BITS
    if isinstance(value, bool) or not isinstance(value, int):
        raise JaqmooError(f"{what}: bits must be an integer in 2..8 or 'float' (got {shown(value)})")
    if value != FLOAT_BITS and value not in SUPPORTED_BITS:
        raise JaqmooError(f"{what}: {value} bits is out of range; supported: 2..8, or 32/'float'")
    return value


def parse_bits_spec(text: str, what: str = "--bits") -> tuple[int, int]:
    """Parse ``"8"`` (both) or ``"4/8"`` (weights/activations) into ``(w, a)``."""
    parts = str(text).split("/")
    if len(parts) not in (1, 2):
        raise JaqmooError(f"{what}: expected BITS or WBITS/ABITS such as 4/8 (got {shown(text)})")
    vals = []
    for p in parts:
        p = p.strip()
        vals.append(check_bits(int(p) if p.isdigit() else p, what))
    return (vals[0], vals[-1])


def _check_policy_keys(data: dict, allowed: Sequence[str], where: str) -> None:
    """Unknown keys of a policy mapping are errors (with "did you mean")."""
    unknown = [str(k) for k in data if k not in allowed]
    if unknown:
        raise JaqmooError(f"{where}: unknown keys {unknown}; {did_you_mean(unknown[0], allowed)}"
                          f"allowed keys: {', '.join(allowed)}")


@dataclass(frozen=True)
class QuantPolicy:
    """Per-layer weight and activation bits, addressed by layer name."""

    layer_names: tuple[str, ...]
    weight_bits: tuple[int, ...]
    act_bits: tuple[int, ...]
    last_output_bits: int = 8

    def __post_init__(self) -> None:
        n = len(self.layer_names)
        if len(self.weight_bits) != n or len(self.act_bits) != n:
            raise JaqmooError(
                f"policy has {n} layer names but {len(self.weight_bits)} weight and "
                f"{len(self.act_bits)} activation bit-widths; give one of each per layer"
            )
        for name, w, a in zip(self.layer_names, self.weight_bits, self.act_bits, strict=True):
            check_bits(w, f"layer {name!r} weight bits")
            check_bits(a, f"layer {name!r} activation bits")
        check_bits(self.last_output_bits, "last_output_bits")

    def __len__(self) -> int:
        return len(self.layer_names)

    @classmethod
    def uniform(cls, layer_names: Sequence[str], w: int, a: int | None = None) -> QuantPolicy:
        """The same ``w``-bit weights and ``a``-bit (default ``w``) activations everywhere."""
        a = w if a is None else a
        n = len(layer_names)
        return cls(tuple(layer_names), (w,) * n, (a,) * n, last_output_bits=min(a, 8) if a != FLOAT_BITS else 8)

    def tensor_bits(self, i: int) -> tuple[int, int, int]:
        """``(weight, input, completed output)`` bits of layer ``i`` for the cost model
        (partial sums are at the accelerator's accumulator width, not these bits)."""
        out = self.act_bits[i + 1] if i + 1 < len(self) else self.last_output_bits
        return self.weight_bits[i], self.act_bits[i], out

    def with_layers(self, layer_names: Sequence[str], strict: bool = True) -> QuantPolicy:
        """Check that this policy covers exactly ``layer_names`` (in that order)."""
        if tuple(layer_names) == self.layer_names:
            return self
        missing = [n for n in layer_names if n not in self.layer_names]
        extra = [n for n in self.layer_names if n not in layer_names]
        if strict or missing:
            raise JaqmooError(
                f"policy does not match the model: {len(self.layer_names)} policy layers vs "
                f"{len(layer_names)} model layers; missing {missing[:5]}, unknown {extra[:5]}"
            )
        idx = {n: i for i, n in enumerate(self.layer_names)}
        return QuantPolicy(
            tuple(layer_names),
            tuple(self.weight_bits[idx[n]] for n in layer_names),
            tuple(self.act_bits[idx[n]] for n in layer_names),
            self.last_output_bits,
        )

    def to_dict(self) -> dict:
        return {
            "layers": {n: {"w": w, "a": a} for n, w, a in zip(self.layer_names, self.weight_bits, self.act_bits, strict=True)},
            "last_output_bits": self.last_output_bits,
        }

    @classmethod
    def from_dict(cls, data: object, layer_names: Sequence[str], source: str = "policy") -> QuantPolicy:
        """Build a policy for ``layer_names`` from a parsed policy file (see module doc)."""
        if not isinstance(data, dict):
            raise JaqmooError(f"{source}: expected a mapping with 'layers' and/or 'default'")
        _check_policy_keys(data, POLICY_FILE_KEYS, source)
        default = parse_bits_spec(str(data["default"]), f"{source}: default") if "default" in data else None
        layers = data.get("layers") or {}
        if not isinstance(layers, dict):
            raise JaqmooError(f"{source}: 'layers' must map layer names to {{w: .., a: ..}}")
        unknown_layers = [n for n in layers if n not in layer_names]
        if unknown_layers:
            hint = did_you_mean(str(unknown_layers[0]), layer_names)
            raise JaqmooError(
                f"{source}: layers {unknown_layers[:5]} are not in the model; {hint}its layers are "
                f"{list(layer_names)[:5]}... ({len(layer_names)} in all)"
            )
        w_bits, a_bits = [], []
        for name in layer_names:
            entry = layers.get(name)
            if entry is None:
                if default is None:
                    raise JaqmooError(f"{source}: layer {name!r} has no bits and there is no 'default'")
                w, a = default
            elif isinstance(entry, dict):
                _check_policy_keys(entry, ("w", "a", "mapping"), f"{source}: layers.{name}")
                w = check_bits(entry.get("w", default[0] if default else None), f"{source}: {name}.w")
                a = check_bits(entry.get("a", default[1] if default else None), f"{source}: {name}.a")
            else:
                w, a = parse_bits_spec(str(entry), f"{source}: {name}")
            w_bits.append(w)
            a_bits.append(a)
        last = check_bits(data.get("last_output_bits", 8), f"{source}: last_output_bits")
        return cls(tuple(layer_names), tuple(w_bits), tuple(a_bits), last)

    @classmethod
    def load(cls, path: str | Path, layer_names: Sequence[str]) -> QuantPolicy:
        """Read a policy YAML file for a model with ``layer_names``."""
        path = Path(path)
        if not path.is_file():
            raise JaqmooError(f"policy file {path} {'is a folder' if path.is_dir() else 'does not exist'}; "
                              "give a policy YAML file")
        data = load_yaml_text(read_utf8(path, "a YAML policy file"), str(path))
        return cls.from_dict(data, layer_names, source=str(path))

    def save(self, path: str | Path) -> None:
        atomic_write_text(Path(path), yaml.safe_dump(self.to_dict(), sort_keys=False), "the bits policy")
