"""Models by reference (torchvision:<name>, package.module:callable), the traced workload
extraction (what is not costed, what is refused) and float starts from a user's weights."""

from __future__ import annotations

import sys
import textwrap

import pytest
import torch
import torchvision
from torch import nn

from jaqmoo.errors import JaqmooError
from jaqmoo.experiment.spec import parse_spec
from jaqmoo.models import build_model, check_model_name, model_workload
from jaqmoo.models.weights import check_state_dict, read_state_dict
from jaqmoo.quant.supernet import Supernet, SupernetMeta, build_supernet
from jaqmoo.workload import extract_workload, quantizable_layers

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # conftest.py

USER_MODULE = '''
import torch
from torch import nn


class SE(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // 4, 1)
        self.fc2 = nn.Conv2d(c // 4, c, 1)

    def forward(self, x):
        s = torch.nn.functional.adaptive_avg_pool2d(x, 1)
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc1(s))))


class Net(nn.Module):
    def __init__(self, num_classes, in_channels, width):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, width, 3, stride=2, padding=1)
        self.dw = nn.Conv2d(width, width, 3, padding=2, dilation=2, groups=width)
        self.grouped = nn.Conv2d(width, width, 3, padding=1, groups=4)
        self.se = SE(width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = x + self.grouped(torch.relu(self.dw(x)))       # residual add
        x = self.se(x)                                    # squeeze-excitation multiply
        return self.head(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def build(num_classes, in_channels, width_mult=1.0):
    return Net(num_classes, in_channels, int(16 * width_mult))


def needs_depth(num_classes, depth):
    return Net(num_classes, 3, 16)


def not_a_module(num_classes):
    return "a string"


class Functional(nn.Module):
    def __init__(self, num_classes=10, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.head = nn.Linear(8, num_classes)

    def forward(self, x):
        x = nn.functional.conv2d(x, self.conv.weight)     # the hook never sees this conv
        return self.head(x.mean((2, 3)))


class Unused(nn.Module):
    def __init__(self, num_classes=10, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.aux = nn.Conv2d(8, 8, 1)
        self.head = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.head(self.conv(x).mean((2, 3)))


class Twice(Unused):
    def forward(self, x):
        x = self.conv(x)
        return self.head(self.aux(self.aux(x)).mean((2, 3)))


class Conv3d(nn.Module):
    def __init__(self, num_classes=10, **kwargs):
        super().__init__()
        self.conv = nn.Conv3d(3, 8, 3)
        self.head = nn.Linear(8, num_classes)
'''


@pytest.fixture()
def user_module(tmp_path, monkeypatch):
    (tmp_path / "jaqmoo_test_user_nets.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "jaqmoo_test_user_nets"
    sys.modules.pop("jaqmoo_test_user_nets", None)


def test_user_builder_with_residual_and_squeeze_excitation(user_module):
    name = f"{user_module}:build"
    assert check_model_name(name) == name
    wl = model_workload(name, (3, 32, 32), num_classes=10)
    w = 16
    kinds = [(layer.name, layer.kind) for layer in wl.layers]
    assert kinds == [("stem", "conv"), ("dw", "depthwise"), ("grouped", "grouped"), ("se.fc1", "conv"),
                     ("se.fc2", "conv"), ("head", "linear")]
    dw = wl.layers[1]
    assert (dw.G, dw.K, dw.C, dw.P, dw.dilation_h) == (w, 1, 1, 16, 2)
    grouped = wl.layers[2]
    assert (grouped.G, grouped.K, grouped.C) == (4, 4, 4)
    # hand count: stem 16x3x3x3 on 16x16; depthwise 16x9 on 16x16; grouped 4 groups of 4x4x9; SE 16x4 + 4x16; head
    hand = 16 * 3 * 9 * 256 + 16 * 9 * 256 + 4 * 4 * 4 * 9 * 256 + 16 * 4 + 4 * 16 + 16 * 10
    assert wl.macs == hand
    not_costed = {cat: ops for cat, ops, _ in wl.not_costed}
    assert not_costed["residual add"] == 1
    assert not_costed["element-wise multiply"] == 1
    assert not_costed["pooling"] == 2 and not_costed["activation"] >= 3
    # width_mult reaches the builder; the supernet wraps it with the workload's layer order
    assert model_workload(name, (3, 32, 32), 10, width_mult=0.5).layers[0].K == 8
    net = Supernet(build_model(name, 10, 3, 32), SupernetMeta(name, "", 10, 3, 32, bits=(4, 8)))
    assert net.layer_names == tuple(layer.name for layer in wl.layers)
    assert net.model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize(("ref", "message"), [
    ("jaqmoo_no_such_module_xyz:build", "cannot be imported"),
    ("{mod}:bulid", "has no attribute 'bulid'; did you mean 'build'"),
    ("{mod}:needs_depth", r"requires \['depth'\]"),
    ("{mod}:not_a_module", "returned a str, not a torch nn.Module"),
    ("{mod}:Functional", "conv2d.*outside a Conv2d/Linear module"),
    ("{mod}:Unused", r"\['aux'\] never run"),
    ("{mod}:Twice", "'aux' is called more than once"),
    ("{mod}:Conv3d", "3-D convolution"),
    ("not a reference:x", "package.module:callable"),
])
def test_user_builder_errors_name_what_is_missing(user_module, ref, message):
    with pytest.raises(JaqmooError, match=message):
        model_workload(ref.format(mod=user_module), (3, 16, 16), num_classes=10)


def test_user_builder_wrong_classes_is_an_error(user_module):
    with pytest.raises(JaqmooError, match="takes no width_mult"):
        model_workload(f"{user_module}:not_a_module", (3, 16, 16), 10, width_mult=0.5)
    net = build_model(f"{user_module}:build", 7, 3, 16)
    with pytest.raises(JaqmooError, match="not to 10 class logits"):
        extract_workload(net, (3, 16, 16), num_classes=10)


def _ops(name: str) -> float:
    return torchvision.models.get_model_weights(name).DEFAULT.meta["_ops"]


def test_torchvision_resnet50_workload_matches_torchvision_metadata():
    wl = model_workload("torchvision:resnet50", (3, 224, 224))
    assert len(wl) == 54  # 53 convs (49 in the bottlenecks + 4 downsample) and fc
    assert sum(layer.kind == "conv" for layer in wl.layers) == 53
    assert round(wl.macs / 1e9, 3) == _ops("resnet50") == 4.089
    assert dict((c, ops) for c, ops, _ in wl.not_costed)["residual add"] == 16  # 3 + 4 + 6 + 3 bottlenecks


def test_torchvision_efficientnet_b0_workload():
    wl = model_workload("torchvision:efficientnet_b0", (3, 224, 224))
    # stem + 16 MBConv (first without expansion: dw, 2 SE, project = 4; others 5) + head conv + classifier
    assert len(wl) == 1 + 4 + 15 * 5 + 1 + 1 == 82
    assert sum(layer.kind == "depthwise" for layer in wl.layers) == 16
    assert round(wl.macs / 1e9, 3) == _ops("efficientnet_b0") == 0.386
    counts = {c: ops for c, ops, _ in wl.not_costed}
    assert counts["element-wise multiply"] == 16 and counts["residual add"] == 9


def test_small_input_adaptation_generalises_the_builtins():
    # torchvision:resnet18 at 28x28 is the built-in resnet18's adaptation: 3x3 stride-1 stem, no max-pool
    ref = model_workload("torchvision:resnet18", (1, 28, 28), 10)
    builtin = model_workload("resnet18", (1, 28, 28), 10)
    assert [layer.shape_key for layer in ref.layers] == [layer.shape_key for layer in builtin.layers]
    stem = ref.layers[0]
    assert (stem.R, stem.stride_h, stem.P, stem.C) == (3, 1, 28, 1)
    big = model_workload("torchvision:resnet50", (1, 28, 28), 10)
    assert big.layers[0].P == 28 and big.layers[1].P == 28  # no stem pooling either
    mb = model_workload("torchvision:mobilenet_v2", (1, 28, 28), 10, width_mult=0.5)
    assert [layer.shape_key for layer in mb.layers] == [
        layer.shape_key for layer in model_workload("mobilenet_v2", (1, 28, 28), 10, width_mult=0.5).layers]


@pytest.mark.parametrize(("name", "message"), [
    ("torchvision:vit_b_16", "attention"),
    ("torchvision:swin_t", "applied to a 1x56x56x96 tensor"),
    ("torchvision:resnet", "did you mean 'resnet50'"),
    ("torchvision:resnet18", None),
])
def test_torchvision_refusals(name, message):
    if message is None:
        with pytest.raises(JaqmooError, match="has no width multiplier"):
            model_workload(name, (3, 224, 224), width_mult=0.5)
        return
    with pytest.raises(JaqmooError, match=message):
        model_workload(name, (3, 224, 224))


def test_googlenet_without_aux_heads():
    wl = model_workload("torchvision:googlenet", (3, 224, 224))
    assert not any("aux" in layer.name for layer in wl.layers)
    assert round(wl.macs / 1e9, 2) == round(_ops("googlenet"), 2)


def test_spec_takes_references(user_module):
    base = {"model": {"name": "torchvision:resnet50"}, "dataset": {"name": "digits"},
            "accelerator": {"template": "eyeriss"}}
    assert parse_spec(base).model.name == "torchvision:resnet50"
    with pytest.raises(JaqmooError, match="model.name: model 'torchvision:resnet5'.*did you mean"):
        parse_spec({**base, "model": {"name": "torchvision:resnet5"}})
    with pytest.raises(JaqmooError, match="model.name.*unknown model 'resnet5'.*torchvision:<name>"):
        parse_spec({**base, "model": {"name": "resnet5"}})


# ----------------------------------------------------------------------------- float weights


def test_state_dict_round_trip_into_the_supernet(tmp_path, user_module):
    from jaqmoo.experiment.accuracy import load_float_start

    name = f"{user_module}:build"
    torch.manual_seed(1)
    trained = build_model(name, 10, 3, 16)
    path = tmp_path / "float.pt"
    torch.save({"state_dict": trained.state_dict()}, path)
    net = build_supernet(name, 10, 3, 16, bits=(4, 8))
    load_float_start(net, path)
    for key, value in trained.state_dict().items():
        assert torch.equal(net.model.state_dict()[key], value), key
    # the float weights run as the float network does (the supernet at its largest bits is close)
    x = torch.randn(2, 3, 16, 16)
    trained.eval(), net.model.eval()
    assert net.model(x).shape == trained(x).shape


def test_wrong_state_dict_is_a_readable_diff(tmp_path):
    torch.manual_seed(0)
    imagenet = torchvision.models.resnet18(weights=None)  # what a torchvision weights file holds
    path = tmp_path / "resnet18.pth"
    torch.save(imagenet.state_dict(), path)
    state = read_state_dict(path)
    check_state_dict(build_model("torchvision:resnet18", 1000, 3, 224), state, "w", "torchvision:resnet18")
    with pytest.raises(JaqmooError) as err:
        check_state_dict(build_model("torchvision:resnet18", 10, 1, 28), state, "w", "torchvision:resnet18")
    text = str(err.value)
    assert "shapes differ (3)" in text and "fc.weight: file 1000x512, model 10x512" in text
    assert "conv1.weight: file 64x3x7x7, model 64x1x3x3" in text
    assert "classifier 'fc' has 1000 outputs, the model 10" in text and "small images" in text
    del state["fc.bias"]
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(JaqmooError, match=r"(?s)missing from the file \(1\):\n    fc.bias.*not in the model \(1\)"):
        check_state_dict(build_model("torchvision:resnet18", 1000, 3, 224), state, "w", "torchvision:resnet18")
    (tmp_path / "bad.pt").write_bytes(b"not a torch file")
    with pytest.raises(JaqmooError, match="weights_only=True"):
        read_state_dict(tmp_path / "bad.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(JaqmooError, match="expected a state_dict"):
        read_state_dict(tmp_path / "list.pt")


def test_float_epochs_skipped_with_a_float_start(tmp_path):
    from jaqmoo.data import load_dataset
    from jaqmoo.experiment.accuracy import train_config

    ckpt = tmp_path / "f.pt"
    torch.save(build_model("simple_cnn", 10, 1, 8).state_dict(), ckpt)
    spec = {"model": {"name": "simple_cnn"}, "dataset": {"name": "digits"}, "accelerator": {"template": "eyeriss"},
            "accuracy": {"train": {"float_epochs": 5, "epochs": 1}}}
    splits = load_dataset("digits")
    assert train_config(parse_spec(spec), splits, tmp_path / "s.pt").float_epochs == 5
    spec["model"]["checkpoint"] = str(ckpt)
    assert train_config(parse_spec(spec), splits, tmp_path / "s.pt").float_epochs == 0


def test_quantizable_layers_of_references_match_the_workload():
    model = build_model("torchvision:mobilenet_v3_large", 10, 1, 28, width_mult=0.5)
    wl = extract_workload(model, (1, 28, 28), num_classes=10)
    assert [n for n, _ in quantizable_layers(model)] == [layer.name for layer in wl.layers]
    assert isinstance(model.features[0][0], nn.Conv2d) and model.features[0][0].stride == (1, 1)


# ----------------------------------------------------------------------------- cost-only sweep


def test_cost_sweep_expands_validates_and_runs(tmp_path, user_module):
    from jaqmoo.sweep.cost_sweep import expand_cost_sweep, run_cost_sweep

    data = {"name": "tiny", "cost": {"input": "3x16x16", "num_classes": 10, "set": {"technology": 45}},
            "axes": {"model": ["simple_cnn", f"{user_module}:build"], "accelerator": ["eyeriss"], "bits": [8, "4/8"]}}
    plan = expand_cost_sweep(data, "tiny.yaml", out_dir=tmp_path / "out")
    assert [(p["model"], p["bits"]) for p in plan.points] == [
        ("simple_cnn", "8"), ("simple_cnn", "4/8"), (f"{user_module}:build", "8"), (f"{user_module}:build", "4/8")]
    summary, files = run_cost_sweep(plan)
    assert list(summary["status"]) == ["done"] * 4 and [f.name for f in files] == ["summary.csv", "layers.csv"]
    user = summary[summary["model"] == f"{user_module}:build"]
    assert (user["layers"] == 6).all() and "residual add: 1" in user["not_costed"].iloc[0]
    assert user["energy_uj"].iloc[1] < user["energy_uj"].iloc[0]  # 4-bit weights cost less than 8-bit
    for bad, message in (({"axes": {**data["axes"], "bits": [9]}}, "bits"),
                         ({"axes": {**data["axes"], "accelerator": ["eyerris"]}}, "eyeriss"),
                         ({"axes": {**data["axes"], "model": ["torchvision:resnet"]}}, "resnet50"),
                         ({"cost": {"metric": "speed"}}, "cost.metric")):
        with pytest.raises(JaqmooError, match=message):
            expand_cost_sweep({**data, **bad}, "tiny.yaml", out_dir=tmp_path / "out")


def test_shipped_zoo_cost_sweep_expands():
    from pathlib import Path

    from jaqmoo.sweep.cost_sweep import load_cost_sweep

    plan = load_cost_sweep(Path(__file__).parents[1] / "problems" / "zoo-cost.yaml", out_dir="unused")
    assert plan is not None and len(plan.points) == 6 * 2 * 2
    assert {p["model"] for p in plan.points} >= {"torchvision:resnet50", "torchvision:efficientnet_b0",
                                                 "torchvision:regnet_x_400mf", "torchvision:mobilenet_v3_large"}
