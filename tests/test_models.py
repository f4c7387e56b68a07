import pytest
import torch

from jaqmoo.errors import JaqmooError
from jaqmoo.models import MODELS, build_model
from jaqmoo.workload import extract_workload, quantizable_layers


@pytest.mark.parametrize("name", sorted(MODELS))
def test_small_input_variants_run_and_align_with_workload(name):
    model = build_model(name, num_classes=10, in_channels=1, input_size=28,
                        width_mult=1.0 if name == "resnet18" else 0.5)
    out = model(torch.zeros(2, 1, 28, 28))
    assert out.shape == (2, 10)
    workload = extract_workload(model, (1, 28, 28))
    # the workload's layers are exactly the quantizable modules, in the same order
    assert [layer.name for layer in workload.layers] == [n for n, _ in quantizable_layers(model)]


def test_depthwise_layers_keep_their_groups():
    workload = extract_workload(build_model("mobilenet_v1"), (3, 224, 224))
    dw = [layer for layer in workload.layers if layer.kind == "depthwise"]
    assert len(dw) == 13
    assert all(layer.K == 1 and layer.C == 1 and layer.G > 1 for layer in dw)


def test_unknown_model_is_a_clear_error():
    with pytest.raises(JaqmooError, match="unknown model 'vgg'.*mobilenet_v2"):
        build_model("vgg")
