"""Genome encoding: per-layer weight/activation bits, mapping genes and hardware genes.

A genome is a vector of non-negative integers, each an index into a list of choices:

* for every layer whose bits are searched, a weight-bit gene and an activation-bit gene
  (indices into :attr:`GenomeSpace.weight_choices` / :attr:`GenomeSpace.act_choices`);
* in ``outer`` mapping mode, one mapping gene per layer: an index into that layer's list of
  mapping candidates (see :mod:`jaqmoo.search.mapping_genes`); in ``inner`` mode there are
  none and the mapper picks each layer's best mapping for the decoded bits and hardware;
* one gene per searched hardware parameter: an index into its allowed values.

:meth:`GenomeSpace.decode` turns an ``[n, n_var]`` integer matrix into :class:`Candidate`
objects (a :class:`~jaqmoo.quant.policy.QuantPolicy`, a full hardware-parameter dict and the
mapping genes); :meth:`GenomeSpace.encode` does the reverse, and
:meth:`GenomeSpace.uniform_seeds` builds the uniform 8/6/4-bit policies on the template's
default hardware that seed the first population.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from jaqmoo.errors import JaqmooError
from jaqmoo.quant.policy import QuantPolicy


@dataclass(frozen=True)
class HardwareGene:
    """A searched hardware parameter and the values its gene indexes into."""

    name: str
    choices: tuple[int, ...]
    default: int

    @property
    def default_index(self) -> int:
        """Index of the default value (or of the nearest choice when the default is not one)."""
        arr = np.asarray(self.choices)
        return int(np.argmin(np.abs(arr - self.default)))


@dataclass(frozen=True)
class Candidate:
    """One decoded genome."""

    policy: QuantPolicy
    hardware: Mapping[str, int]  # every overridden template parameter (fixed + searched)
    mapping_genes: tuple[int, ...] | None = None  # outer mode only

    def hardware_key(self) -> tuple[tuple[str, int], ...]:
        return tuple(sorted(self.hardware.items()))


@dataclass(frozen=True)
class GenomeSpace:
    """The search space: which genes exist and what each index means."""

    layer_names: tuple[str, ...]
    weight_choices: tuple[int, ...]
    act_choices: tuple[int, ...]
    fixed_layers: Mapping[int, tuple[int, int]] = field(default_factory=dict)  # layer index -> (w, a)
    hardware_genes: tuple[HardwareGene, ...] = ()
    hardware_fixed: Mapping[str, int] = field(default_factory=dict)
    mapping_mode: str = "inner"
    mapping_candidates: int = 1
    last_output_bits: int = 8

    def __post_init__(self) -> None:
        if self.mapping_mode not in ("inner", "outer"):
            raise JaqmooError(f"mapping mode must be 'inner' or 'outer' (got {self.mapping_mode!r})")
        for i in self.fixed_layers:
            if not 0 <= i < len(self.layer_names):
                raise JaqmooError(f"fixed layer index {i} is out of range for {len(self.layer_names)} layers")

    # ------------------------------------------------------------------ layout
    @property
    def free_layers(self) -> tuple[int, ...]:
        """Indices of the layers whose bits are genes."""
        return tuple(i for i in range(len(self.layer_names)) if i not in self.fixed_layers)

    @property
    def n_bit_genes(self) -> int:
        return 2 * len(self.free_layers)

    @property
    def n_mapping_genes(self) -> int:
        return len(self.layer_names) if self.mapping_mode == "outer" else 0

    @property
    def n_var(self) -> int:
        return self.n_bit_genes + self.n_mapping_genes + len(self.hardware_genes)

    @property
    def upper_bounds(self) -> np.ndarray:
        """Inclusive upper bound of every gene (lower bounds are all 0)."""
        ub = []
        for _ in self.free_layers:
            ub += [len(self.weight_choices) - 1, len(self.act_choices) - 1]
        ub += [self.mapping_candidates - 1] * self.n_mapping_genes
        ub += [len(g.choices) - 1 for g in self.hardware_genes]
        return np.asarray(ub, dtype=int)

    @property
    def level_genes(self) -> np.ndarray:
        """Boolean mask of the bit-width genes (their index order is the bit order)."""
        return np.arange(self.n_var) < self.n_bit_genes

    def gene_names(self) -> list[str]:
        """A readable name per gene (``w.<layer>``, ``a.<layer>``, ``mapgene.<layer>``, ``hw.<param>``)."""
        names = []
        for i in self.free_layers:
            names += [f"w.{self.layer_names[i]}", f"a.{self.layer_names[i]}"]
        names += [f"mapgene.{n}" for n in self.layer_names[: self.n_mapping_genes]]
        names += [f"hw.{g.name}" for g in self.hardware_genes]
        return names

    # ------------------------------------------------------------------ decode / encode
    def clip(self, X: np.ndarray) -> np.ndarray:
        """Round and clip a (possibly real-valued) matrix into valid gene indices."""
        X = np.atleast_2d(np.asarray(X, dtype=float))
        if X.shape[1] != self.n_var:
            raise JaqmooError(f"genome has {X.shape[1]} genes; this search space has {self.n_var}")
        return np.clip(np.rint(X), 0, self.upper_bounds).astype(int)

    def decode_one(self, x: np.ndarray) -> Candidate:
        x = self.clip(x)[0]
        n = len(self.layer_names)
        w_bits = [0] * n
        a_bits = [0] * n
        for i, (w, a) in self.fixed_layers.items():
            w_bits[i], a_bits[i] = w, a
        for j, i in enumerate(self.free_layers):
            w_bits[i] = self.weight_choices[x[2 * j]]
            a_bits[i] = self.act_choices[x[2 * j + 1]]
        pos = self.n_bit_genes
        genes = tuple(int(v) for v in x[pos: pos + self.n_mapping_genes]) if self.mapping_mode == "outer" else None
        pos += self.n_mapping_genes
        hw = dict(self.hardware_fixed)
        for g, v in zip(self.hardware_genes, x[pos:], strict=True):
            hw[g.name] = g.choices[v]
        policy = QuantPolicy(self.layer_names, tuple(w_bits), tuple(a_bits), self.last_output_bits)
        return Candidate(policy, hw, genes)

    def decode(self, X: np.ndarray) -> list[Candidate]:
        """Decode an ``[n, n_var]`` matrix into candidates."""
        return [self.decode_one(x) for x in self.clip(X)]

    def encode(self, policy: QuantPolicy, hardware: Mapping[str, int] | None = None,
               mapping_genes: Sequence[int] | None = None) -> np.ndarray:
        """The genome of ``policy`` on ``hardware`` (searched parameters default to the template's)."""
        policy = policy.with_layers(self.layer_names)
        x: list[int] = []
        for i in self.free_layers:
            x.append(_index_of(self.weight_choices, policy.weight_bits[i], f"layer {self.layer_names[i]} weight bits"))
            x.append(_index_of(self.act_choices, policy.act_bits[i], f"layer {self.layer_names[i]} activation bits"))
        if self.mapping_mode == "outer":
            genes = list(mapping_genes) if mapping_genes is not None else [0] * len(self.layer_names)
            x += [min(max(int(g), 0), self.mapping_candidates - 1) for g in genes]
        hardware = hardware or {}
        for g in self.hardware_genes:
            x.append(_index_of(g.choices, hardware[g.name], f"hardware {g.name}") if g.name in hardware else g.default_index)
        return np.asarray(x, dtype=int)

    def uniform_genome(self, w: int, a: int) -> np.ndarray:
        """The genome of the uniform ``w``/``a``-bit policy (fixed layers kept) on the default hardware."""
        n = len(self.layer_names)
        wb, ab = [w] * n, [a] * n
        for i, (fw, fa) in self.fixed_layers.items():
            wb[i], ab[i] = fw, fa
        return self.encode(QuantPolicy(self.layer_names, tuple(wb), tuple(ab), self.last_output_bits))

    def uniform_seeds(self, bits: Sequence[int]) -> np.ndarray:
        """Uniform ``b``/``b``-bit policies (fixed layers kept) on the default hardware, one row each."""
        rows = [self.uniform_genome(b, b) for b in bits]
        return np.asarray(rows, dtype=int).reshape(len(rows), self.n_var)

    def random(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` uniformly random genomes."""
        return rng.integers(0, self.upper_bounds + 1, size=(n, self.n_var))


def _index_of(choices: Sequence[int], value: int, what: str) -> int:
    try:
        return list(choices).index(value)
    except ValueError:
        raise JaqmooError(f"{what}: {value} is not one of the allowed values {list(choices)}") from None
