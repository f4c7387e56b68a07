"""Data-parallel supernet training: 2 gloo processes against one, and resume (CPU)."""

from __future__ import annotations

import pytest
import torch

from jaqmoo.errors import JaqmooError
from jaqmoo.quant.distributed import DistContext, launch_local, shard
from jaqmoo.quant.train import TrainConfig, train_supernet

CPU = torch.device("cpu")


def _cfg(out, **over) -> TrainConfig:
    base = dict(model="simple_cnn", dataset="digits", out=str(out), float_epochs=1, epochs=1, batch_size=64, lr=5e-3,
                quant_lr=1e-3, n_random=1, csq_fraction=0.25, progress=False, seed=3, augment="crop-flip")
    return TrainConfig(**{**base, **over})


def _payload(path):
    return torch.load(path, weights_only=True)


@pytest.mark.slow
def test_two_gloo_processes_train_like_one_process_at_the_same_global_batch(tmp_path):
    """Float then CSQ sandwich steps (synced batch norm in both the plain layers and CSQ's fused
    blocks, averaged gradients, agreed channel ranking, global LSQ gradient scale).

    Float steps: every one of the first 20 losses of 2 processes within 1e-3 (relative) of one
    process (measured: ~1e-7, float summation order). Quantized steps: float-order differences
    of 1e-7 flip a few quantizer roundings, and those compound over the steps, so single steps
    drift further; the same happens to one process run with 2 threads instead of 1 (measured:
    up to 1.0e-3 per step, 1e-4 on the 20-step mean). Asserted: the 20-step mean loss within
    1e-3 and every step within 1e-2."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_supernet(_cfg(tmp_path / "one.pt"))
    finally:
        torch.set_num_threads(old)
    launch_local(train_supernet, (_cfg(tmp_path / "two.pt"),), 2, CPU, threads=1)
    h1, h2 = _payload(tmp_path / "one.pt")["history"], _payload(tmp_path / "two.pt")["history"]
    assert [r["phase"] for r in h2] == ["float", "quantized"]
    for r1, r2 in zip(h1, h2, strict=True):
        a, b = torch.tensor(r1["step_losses"][:20]), torch.tensor(r2["step_losses"][:20])
        assert len(a) == 20 and len(b) == 20
        rel = ((a - b).abs() / a.abs()).max()
        mean_rel = (a.mean() - b.mean()).abs() / a.mean()
        if r1["phase"] == "float":
            assert rel < 1e-3, float(rel)
        else:
            assert mean_rel < 1e-3 and rel < 1e-2, (float(mean_rel), float(rel))
    sens1 = {k: v for k, v in _payload(tmp_path / "one.pt")["state_dict"].items() if k.endswith(".sensitive")}
    sens2 = {k: v for k, v in _payload(tmp_path / "two.pt")["state_dict"].items() if k.endswith(".sensitive")}
    assert sens1.keys() == sens2.keys() and sens1


@pytest.mark.slow
def test_two_process_training_resumes_to_the_same_checkpoint(tmp_path):
    launch_local(train_supernet, (_cfg(tmp_path / "straight.pt"),), 2, CPU, threads=1)
    launch_local(train_supernet, (_cfg(tmp_path / "resumed.pt", epochs=0),), 2, CPU, threads=1)  # stops after float
    assert _payload(tmp_path / "resumed.pt")["epoch"] == 1
    launch_local(train_supernet, (_cfg(tmp_path / "resumed.pt", resume=True),), 2, CPU, threads=1)
    a, b = _payload(tmp_path / "straight.pt"), _payload(tmp_path / "resumed.pt")
    assert a["epoch"] == b["epoch"] == 2
    differing = [k for k in a["state_dict"] if not torch.equal(a["state_dict"][k], b["state_dict"][k])]
    assert not differing, differing[:5]


def test_uneven_batch_split_is_a_clear_error(tmp_path):
    with pytest.raises(JaqmooError, match="split evenly"):
        shard(torch.zeros(5, 3), DistContext(rank=0, world=2))
    with pytest.raises(JaqmooError, match="batch_size 63"):
        launch_local(train_supernet, (_cfg(tmp_path / "x.pt", batch_size=63),), 2, CPU, threads=1)
