"""Quantization side of jaqmoo: policies, fake quantization, the CSQ supernet, estimators.

Modules (imported explicitly; this package imports nothing heavy on its own):

* :mod:`~jaqmoo.quant.policy` — :class:`QuantPolicy` (per-layer weight/activation bits).
* :mod:`~jaqmoo.quant.fakequant` — LSQ fake quantization (fused default, lean and autograd references).
* :mod:`~jaqmoo.quant.csq` — CSQ's fused conv-BN-activation training blocks.
* :mod:`~jaqmoo.quant.layers` — bit-switchable ``QuantConv2d`` / ``QuantLinear``.
* :mod:`~jaqmoo.quant.supernet` — :class:`Supernet`, ``build_supernet``, the checkpoint format.
* :mod:`~jaqmoo.quant.elastic` — the elastic (architecture + bits) supernet.
* :mod:`~jaqmoo.quant.checkpoints` — ``load_supernet`` (either kind of checkpoint).
* :mod:`~jaqmoo.quant.sandwich` — the sandwich rule's configurations and one step with in-place distillation.
* :mod:`~jaqmoo.quant.augment` — seeded, batched random crop / flip for training batches.
* :mod:`~jaqmoo.quant.distributed` — data-parallel training (gloo / NCCL, synced batch norm).
* :mod:`~jaqmoo.quant.sensitivity` — measured per-channel sensitivity for CSQ.
* :mod:`~jaqmoo.quant.train` — sandwich-rule supernet training (``train_supernet``).
* :mod:`~jaqmoo.quant.sampling` — level + noise bit draws (the search's first population, predictor samples).
* :mod:`~jaqmoo.quant.qat` — one policy's QAT fine-tune (resumable), calibrated float starts.
* :mod:`~jaqmoo.quant.estimators` — ``SupernetEstimator``, ``PredictorEstimator``, ``PTQEstimator``,
  ``QATEstimator``.
* :mod:`~jaqmoo.quant.truth` — the converged QAT truth, cached per float start, policy, recipe, seed, data.
* :mod:`~jaqmoo.quant.league` — the rule that picks the search's in-loop estimator from the league.
* :mod:`~jaqmoo.quant.memory` — saved-for-backward bytes and peak-RSS measurement.
* :mod:`~jaqmoo.quant.fidelity` — Kendall tau / gap of estimates against ground truth, within-band
  tau and its paired bootstrap, the truth's convergence check, iso-cost bands.
"""
