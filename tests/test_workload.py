"""Workload extraction: MAC counts of the reference networks, groups kept, linear as 1x1."""

from __future__ import annotations

import pytest

from jaqmoo.models import model_workload


@pytest.mark.parametrize(
    "name, macs",
    [("mobilenet_v2", 300.8e6), ("resnet18", 1.814e9), ("mobilenet_v1", 568.7e6)],
)
def test_mac_counts_at_224(name, macs):
    wl = model_workload(name, (3, 224, 224))
    assert wl.macs == pytest.approx(macs, rel=0.002)


def test_depthwise_kept_as_groups_and_linear_as_1x1():
    wl = model_workload("mobilenet_v2", (3, 224, 224))
    dw = [layer for layer in wl.layers if layer.kind == "depthwise"]
    assert len(dw) == 17
    for layer in dw:
        assert layer.K == 1 and layer.C == 1 and layer.G > 1 and layer.R == layer.S == 3
    fc = wl.layers[-1]
    assert fc.kind == "linear"
    assert (fc.K, fc.C, fc.P, fc.Q, fc.R, fc.S) == (1000, 1280, 1, 1, 1, 1)
    first = wl.layers[0]
    assert (first.kind, first.K, first.C, first.P, first.stride_h) == ("conv", 32, 3, 112, 2)
    # a dense model of the same net would have far more MACs: groups are not densified
    dense = sum(layer.G * layer.G * layer.P * layer.Q * layer.R * layer.S for layer in dw)
    assert sum(layer.macs for layer in dw) * 10 < dense
