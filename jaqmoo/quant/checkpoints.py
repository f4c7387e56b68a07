"""Reading a supernet checkpoint of either kind (fixed network or elastic) back into a supernet.

:mod:`jaqmoo.quant.supernet` reads and writes the file format (:func:`read_checkpoint`) and
rebuilds fixed-network supernets; :mod:`jaqmoo.quant.elastic` rebuilds elastic ones. This
module sits above both and picks the right one from what the checkpoint records, so neither
of them needs the other.
"""

from __future__ import annotations

from pathlib import Path

import torch

from jaqmoo.errors import JaqmooError
from jaqmoo.models.elastic_space import ElasticSpace
from jaqmoo.quant.elastic import elastic_of_payload, load_elastic_supernet
from jaqmoo.quant.supernet import Supernet, read_checkpoint, supernet_from_payload


def load_supernet(path: str | Path, expect_model: str | None = None, device: str | torch.device = "cpu") -> Supernet:
    """Rebuild a :class:`~jaqmoo.quant.supernet.Supernet` from a checkpoint written by training or
    :meth:`Supernet.save`.

    Its :attr:`Supernet.meta` carries model name, dataset, width_mult, input shape and bits.
    An elastic checkpoint (``jaqmoo supernet train --elastic``, a spec with ``model.elastic``)
    gives its :class:`~jaqmoo.quant.elastic.ElasticSupernet` with the largest sub-network selected.
    """
    payload = read_checkpoint(path)
    if elastic_of_payload(payload) is not None:
        model = (payload.get("meta") or {}).get("model")
        if expect_model is not None and model != expect_model:
            raise JaqmooError(f"checkpoint {path} is for model {model!r}, not {expect_model!r}")
        return load_elastic_supernet(path, device=device)
    supernet = supernet_from_payload(payload, str(path), expect_model)
    return supernet.to(device)


def load_for_resume(path: str | Path, payload: dict, expect_model: str,
                    expect_space: ElasticSpace | None) -> Supernet:
    """The supernet of a training checkpoint (``payload``, read from ``path``) to resume: a fixed
    network of ``expect_model``, or an elastic one of ``expect_space`` when that is given."""
    if expect_space is None:
        return supernet_from_payload(payload, str(path), expect_model=expect_model)
    return load_elastic_supernet(path, expect_space=expect_space)


__all__ = ["load_for_resume", "load_supernet"]
