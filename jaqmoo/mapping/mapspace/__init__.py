"""The mapspace (BatchTile): every constrained mapping of one layer, as arrays.

Split by job: :mod:`~jaqmoo.mapping.mapspace.constraints` (rules, envelope),
:mod:`~jaqmoo.mapping.mapspace.factorisation` (factor splits),
:mod:`~jaqmoo.mapping.mapspace.enumeration` (:class:`Mapspace`, loop orders, membership) and
:mod:`~jaqmoo.mapping.mapspace.neighbours` (local-search moves); this package re-exports them.

A mapping of a layer onto an accelerator assigns every problem dimension's size to
temporal loops at the storage levels and to spatial fan-outs (X and Y) below them, picks a
loop order per level and, where the hardware leaves it open, which tensors each level keeps.
This module enumerates those choices for one layer as plain integer arrays (the
:class:`~jaqmoo.mapping.mapping.MappingBatch` layout ``[M, L, 8]``), chunk by chunk, so the
analytical model can evaluate all of them in one vectorized pass.

What is enumerated
  * **Factor splits**: every ordered factorization of each dimension (prime exponents
    distributed over the slots the constraints leave free: one temporal slot per storage
    level, one spatial-X and one spatial-Y slot per fan-out). Fixed factors from the
    constraints are applied first. Groups (G) may go wherever K or C may.
  * **Loop orders**: only orders that differ in reuse. For a convolution every dimension
    but G is irrelevant to exactly one tensor (N, P, Q to Weights; K to Inputs; C, R, S to
    Outputs), and a level's reuse depends only on which of these groups the innermost
    non-unit loop belongs to, so each level gets one order per group present among its
    non-unit loops (``orders="reuse"``, <= 3 per level). ``orders="halo"`` also varies the
    innermost dimension inside that group (sliding-window reuse of Inputs). Unit loops
    never matter and are not varied. Constrained permutations are kept as given
    (a partial permutation fixes the innermost loops; the rest follow).
  * **Bypass**: tensors whose keep/bypass the constraints leave open get both choices.

What is pruned (all before any array of the full space exists)
  * spatial fit: the product of spatial factors on each axis of each fan-out must not
    exceed that axis' mesh size;
  * capacity: each bounded level's tile (the sum over the tensors it keeps, in words) must
    fit into a *capacity envelope* (:class:`CapacityEnvelope`): the largest depth and the
    most values per word of every hardware/bit-width combination requested so far (the
    mapper widens it when a request has larger buffers or fewer bits), so cached
    candidates stay valid for any smaller buffer or wider value; the exact feasibility
    check is the cost model's;
  * levels that keep no tensor (dummy levels used only for a fan-out) get no temporal loops
    unless a constraint asks for one (such loops would only duplicate the level above).

How it is searched (:class:`Mapspace`)
  * small spaces (at most ``exhaustive_limit`` factor splits before the joint checks) are
    enumerated exhaustively, unit by unit with the checks applied as soon as they can fail;
  * larger ones are *sampled*, stratified over the parallelizations: every spatial
    assignment that fits the fan-outs (and the utilization floor) is enumerated exactly,
    and temporal splits are drawn for each in turn, dimension by dimension, rejecting
    options whose tiles overflow the envelope. The mapper then refines the best samples by
    local search (:func:`neighbors`), so mappings outside the sample are reached too.
"""

from jaqmoo.mapping.mapspace.constraints import (
    AXIS_ANY,
    AXIS_X,
    AXIS_Y,
    DIM_INDEX,
    FREE,
    GROUP_DIMS,
    IRRELEVANT_TO,
    KEEP_FREE,
    KEEP_NO,
    KEEP_YES,
    N_DIMS,
    RELEVANT,
    TIMELOOP_DIMS,
    CapacityEnvelope,
    LevelRules,
    MapspaceSpec,
    envelope_for,
    fits_envelope,
    for_layer,
    forced_keep,
    spec_from_accelerator,
    spec_from_constraints,
)
from jaqmoo.mapping.mapspace.enumeration import Mapspace, empty_batch, expand_orders, satisfies
from jaqmoo.mapping.mapspace.factorisation import (
    ordered_factorizations,
    prime_factors,
    prime_list,
    row_hash,
    tiles_of,
)
from jaqmoo.mapping.mapspace.neighbours import free_slots, neighbors

__all__ = ["AXIS_ANY", "AXIS_X", "AXIS_Y", "DIM_INDEX", "FREE", "GROUP_DIMS", "IRRELEVANT_TO", "KEEP_FREE", "KEEP_NO",
           "KEEP_YES", "N_DIMS", "RELEVANT", "TIMELOOP_DIMS", "CapacityEnvelope", "LevelRules", "Mapspace",
           "MapspaceSpec", "empty_batch", "envelope_for", "expand_orders", "fits_envelope", "for_layer",
           "forced_keep", "free_slots", "neighbors", "ordered_factorizations", "prime_factors", "prime_list",
           "row_hash", "satisfies", "spec_from_accelerator", "spec_from_constraints", "tiles_of"]
