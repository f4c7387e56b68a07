"""Supernet identity: the keys that define a supernet's network and training, and their hash.

A supernet checkpoint may only score candidates of the network it was trained for. Its
identity is everything that changes the network or its weights: model, width multiplier,
input shape, number of classes, dataset, bit set, the layers held at fixed bits, quantizer
granularity, CSQ fraction, pretrained start, the training recipe (epochs, optimizer,
learning rate, ...), the train/validation split seed and the elastic architecture space when there
is one. The training seed is *not* part of it (a search with another seed may share the supernet), nor are locations
and run-time options (device, progress, validation subset).

:func:`identity_of_checkpoint` reads it from a checkpoint payload (the ``meta`` and
``config`` entries every checkpoint carries), :func:`identity_hash` names cache files, and
:func:`identity_differences` lists the differing keys for the error message.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

#: TrainConfig fields that change the trained weights (the recipe part of the identity)
RECIPE_KEYS = ("epochs", "float_epochs", "batch_size", "lr", "weight_decay", "optimizer", "n_random", "distill",
               "sensitivity_batches", "max_train")
#: recipe fields added later, part of the identity only when they differ from these defaults (so
#: checkpoints trained before they existed keep their identity)
OPTIONAL_RECIPE_KEYS = {"augment": "none", "quant_lr": None, "teacher": "inplace"}


def make_identity(meta: dict, config: dict | None, pretrained: str | None = None,
                  elastic: Any = None) -> dict[str, Any]:
    """The identity from a :class:`SupernetMeta` dict and a :class:`TrainConfig` dict.

    ``config`` may be ``None`` (a checkpoint saved outside training): the identity then has no
    ``recipe`` and ``pretrained`` entries, and comparisons skip them.
    """
    ident: dict[str, Any] = {
        "model": meta.get("model"),
        "width_mult": float(meta.get("width_mult", 1.0)),
        "input_shape": [int(meta.get("in_channels", 0)), int(meta.get("input_size", 0)), int(meta.get("input_size", 0))],
        "num_classes": int(meta.get("num_classes", 0)),
        "dataset": meta.get("dataset"),
        "bits": sorted(int(b) for b in meta.get("bits", ())),
        "fixed_first_last": meta.get("fixed_first_last"),
        "per_channel": bool(meta.get("per_channel", True)),
        "csq_fraction": float(meta.get("csq_fraction", 0.0)),
        "elastic": elastic,
    }
    if config is not None:
        ident["recipe"] = {k: config.get(k) for k in RECIPE_KEYS}
        ident["recipe"].update({k: config[k] for k, default in OPTIONAL_RECIPE_KEYS.items()
                                if config.get(k, default) != default})
        extra = config.get("extra") or {}
        ident["pretrained"] = extra.get("pretrained") if isinstance(extra, dict) else None
        # the train/validation split (checkpoints from before it was recorded used split 0)
        ident["split_seed"] = int(extra.get("split_seed") or 0) if isinstance(extra, dict) else 0
    return ident


def identity_of_checkpoint(payload: dict) -> dict[str, Any]:
    """The identity a checkpoint payload records (see :func:`make_identity`)."""
    config = payload.get("config")
    extra = (config or {}).get("extra") if isinstance(config, dict) else None
    elastic = extra.get("elastic") if isinstance(extra, dict) else None
    return make_identity(dict(payload.get("meta") or {}), config if isinstance(config, dict) else None,
                         elastic=elastic)


def identity_hash(identity: dict[str, Any], length: int = 12) -> str:
    """A short hex digest of the identity (canonical JSON), for cache file names."""
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def identity_differences(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """``key: stored -> wanted`` for each differing key present in both identities."""
    out = []
    for key in wanted:
        if key not in stored:
            continue
        a, b = stored[key], wanted[key]
        if isinstance(a, dict) and isinstance(b, dict):
            out += [f"{key}.{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            out.append(f"{key}: {a!r} -> {b!r}")
    return out
