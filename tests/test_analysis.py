"""The analyzer's mechanics: agreement with FlopCounterMode, receptive fields, branches and skips,
functional ops, grouping, training memory, untouched user models, and clear errors."""

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import cnnzoo
from cnnzoo.analysis import analyze, min_input_size, receptive_field
from cnnzoo.errors import InputShapeError, InvalidArgumentError, UnknownModelError


def tv(name, **kw):
    with torch.device("meta"):
        return getattr(torchvision.models, name)(**kw)


TV_MODELS = [("alexnet", {}, 224), ("vgg11", {}, 224), ("resnet18", {}, 224),
             ("googlenet", {"aux_logits": False, "init_weights": False}, 224),
             ("mobilenet_v2", {}, 224), ("inception_v3", {"aux_logits": False, "init_weights": False}, 299)]


@pytest.mark.parametrize("name,kw,size", TV_MODELS)
def test_conv_and_linear_agree_with_flop_counter(name, kw, size):
    m = tv(name, **kw).eval()
    report = analyze(m, (3, size, size))
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        m(torch.empty(1, 3, size, size, device="meta"))
    ours = sum(r.macs for r in report.rows if r.kind in ("conv", "linear"))
    assert 2 * ours == counter.get_total_flops()
    assert report.total_params == sum(p.numel() for p in m.parameters())


def test_flop_counter_agreement_with_batch():
    m = tv("resnet18").eval()
    report = analyze(m, (3, 64, 64), batch_size=4)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        m(torch.empty(4, 3, 64, 64, device="meta"))
    assert 2 * sum(r.macs for r in report.rows if r.kind in ("conv", "linear")) == counter.get_total_flops()
    one = analyze(m, (3, 64, 64))
    assert report.total_macs == 4 * one.total_macs and report.total_memory == 4 * one.total_memory
    assert report.total_params == one.total_params


def test_stacked_3x3_convs_receptive_field():
    # seed 003: two 3x3 convs see what one 5x5 sees; three see what one 7x7 sees
    two = nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
    three = nn.Sequential(*two, nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1))
    assert receptive_field(two, (8, 32, 32)) == (5, 5)
    assert receptive_field(three, (8, 32, 32)) == (7, 7)
    assert receptive_field(nn.Conv2d(8, 8, 5), (8, 32, 32)) == (5, 5)
    # and fewer parameters: 2 * 9C^2 = 18C^2 < 25C^2 (C=8, no bias)
    two_nb = nn.Sequential(nn.Conv2d(8, 8, 3, bias=False), nn.Conv2d(8, 8, 3, bias=False))
    assert analyze(two_nb, (8, 32, 32)).total_params == 18 * 64


def test_receptive_field_with_strides_and_dilation():
    m = nn.Sequential(nn.Conv2d(3, 8, 11, 4, 2), nn.MaxPool2d(3, 2), nn.Conv2d(8, 8, 3, dilation=2))
    rows = analyze(m, (3, 227, 227)).rows
    assert [(r.rf[0], r.eff_stride[0]) for r in rows] == [(11, 4), (19, 8), (19 + 2 * 2 * 8, 8)]


class Residual(nn.Module):
    """A 3x3 conv pair beside a 1x1 shortcut, then functional add, cat, relu, pool and view."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(4, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)
        self.short = nn.Conv2d(4, 4, 1)
        self.fc = nn.Linear(8 * 4 * 4, 10)

    def forward(self, x):
        y = self.b(F.relu(self.a(x)))
        s = self.short(x)
        z = torch.cat([y + s, s], dim=1)
        z = F.max_pool2d(F.relu(z), 2)
        return self.fc(z.view(z.size(0), -1))


def test_skip_connections_and_functional_ops():
    r = analyze(Residual(), (4, 8, 8))
    names = [row.name for row in r.rows]
    assert names == ["a", "b", "short", "max_pool2d", "flatten", "fc"]
    pool = r.find("max_pool2d")
    # add and cat merge branches: the field is the widest branch's (5), the pool widens it to 6
    assert r.find("b").rf == (5, 5) and r.find("short").rf == (1, 1)
    assert pool.rf == (6, 6) and pool.eff_stride == (2, 2)
    assert pool.in_shape == (8, 8, 8) and pool.out_shape == (8, 4, 4)
    assert pool.macs == 8 * 4 * 4 * 4 and pool.kernel == (2, 2) and pool.stride == (2, 2)
    flat = r.find("flatten")
    assert flat.out_shape == (128,) and flat.memory == 128 * 4 and flat.rf == (6 + 3 * 2,) * 2
    assert r.find("fc").macs == 128 * 10


def test_inception_and_residual_models_rows_in_execution_order():
    g = analyze(tv("googlenet", aux_logits=False, init_weights=False), (3, 224, 224))
    names = [row.name for row in g.rows]
    assert names.index("inception3a.branch1.conv") < names.index("inception3a.branch4.1.conv")
    assert names.index("inception3a.branch4.1.conv") < names.index("inception3b.branch1.conv")
    assert g.find("inception3a.branch4.0").type == "MaxPool2d"
    assert g.find("inception5b.branch4.1.conv").out_shape == (128, 7, 7)
    r = analyze(tv("resnet18"), (3, 224, 224))
    # the block's ReLU is called twice: one row per call, the second named relu#2
    assert r.find("layer1.0.relu#2").out_shape == (64, 56, 56)
    # the downsample path's field is smaller; after the add the block has the larger one
    assert r.find("layer2.0.downsample.0").rf[0] < r.find("layer2.0.bn2").rf[0]


def test_aggregate_groups_blocks_and_stages():
    m = tv("googlenet", aux_logits=False, init_weights=False)
    g = analyze(m, (3, 224, 224))
    by_module = g.aggregate(1)
    row = by_module.find("inception3a")
    assert row.params == sum(p.numel() for p in m.inception3a.parameters())
    assert row.type == "Inception" and row.out_shape == (256, 28, 28)
    assert by_module.total_params == g.total_params and by_module.total_macs == g.total_macs
    assert by_module.total_memory == g.total_memory
    r = tv("resnet34")
    stages = analyze(r, (3, 224, 224)).aggregate(1)
    assert [stages.find(f"layer{i}").params for i in range(1, 5)] == [
        sum(p.numel() for p in getattr(r, f"layer{i}").parameters()) for i in range(1, 5)]
    assert stages.find("layer2").out_shape == (128, 28, 28)
    blocks = analyze(r, (3, 224, 224)).aggregate(2)
    assert len([x for x in blocks.rows if x.name.startswith("layer3.")]) == 6
    with pytest.raises(InvalidArgumentError, match="depth"):
        stages.aggregate(0)


def test_bn_params_on_their_own_rows_and_activations_hidden():
    m = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
                      nn.Dropout(0.5))
    r = analyze(m, (3, 10, 10))
    bn = r.rows[1]
    assert (bn.kind, bn.params, bn.macs, bn.memory) == ("norm", 16, 0, 8 * 8 * 8 * 4)
    assert [x.kind for x in r.visible_rows()] == ["conv", "norm"]
    assert [x.kind for x in r.visible_rows(all_layers=True)] == ["conv", "norm", "act", "dropout"]
    assert r.rows[2].memory == 0 and r.rows[3].memory == 0


def test_shared_module_params_counted_once():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)

        def forward(self, x):
            return self.conv(self.conv(x))

    r = analyze(Twice(), (4, 8, 8))
    assert [x.name for x in r.rows] == ["conv", "conv#2"]
    assert r.total_params == 4 * 4 * 9 + 4 and r.rows[1].params == 0
    assert r.rows[0].macs == r.rows[1].macs == 4 * 64 * 4 * 9


def test_unused_modules_are_reported_not_counted():
    # in eval mode GoogLeNet does not run its auxiliary classifiers (seed tables leave them out)
    m = tv("googlenet", aux_logits=True, init_weights=False)
    r = analyze(m, (3, 224, 224))
    aux = sum(p.numel() for p in m.aux1.parameters()) + sum(p.numel() for p in m.aux2.parameters())
    assert r.unused_params == aux
    assert r.total_params == sum(p.numel() for p in m.parameters()) - aux


def test_real_model_untouched_and_nothing_computed():
    m = torchvision.models.resnet18().train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    hooks = len(m.conv1._forward_hooks)
    r = analyze(m, (3, 224, 224))
    assert m.training and all(mod.training for mod in m.modules())
    after = m.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN stats not updated
    assert not any(p.is_meta for p in m.parameters())
    assert len(m.conv1._forward_hooks) == hooks
    assert r.total_macs == analyze(tv("resnet18"), (3, 224, 224)).total_macs


def test_training_memory_estimate():
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16, 10))
    r = analyze(m, (3, 4, 4))
    p = 8 * 3 * 9 + 8 + 128 * 10 + 10
    acts = 3 * 16 * 4 + 8 * 16 * 4 + 128 * 4 + 10 * 4  # input, conv, flatten, fc outputs
    sgd = r.training_memory(batch_size=32)
    assert sgd.activations == 32 * acts and sgd.activation_grads == 32 * acts
    assert (sgd.params, sgd.grads, sgd.optimizer_state) == (4 * p, 4 * p, 0)
    adam = r.training_memory(batch_size=32, optimizer="adam")
    assert adam.optimizer_state == 8 * p and adam.total == sgd.total + 8 * p
    assert r.training_memory(optimizer="momentum").optimizer_state == 4 * p
    assert "adam" in str(adam) and adam.as_dict()["total"] == adam.total
    with pytest.raises(InvalidArgumentError, match="unknown optimizer 'lbfgs'"):
        r.training_memory(optimizer="lbfgs")


def test_input_too_small_names_the_layer():
    with pytest.raises(InputShapeError) as err:
        analyze(tv("alexnet"), (3, 20, 20))
    msg = str(err.value)
    assert "3x20x20 is too small for AlexNet" in msg
    assert "'features.5' (MaxPool2d 3x3, stride 2x2, pad 0x0)" in msg
    assert "its input is 192x1x1, its output would be 0x0" in msg
    assert "needs at least 3x63x63" in msg
    assert min_input_size(tv("alexnet"), 3) == 63


def test_wrong_size_for_fixed_classifier_is_explained():
    m = tv("vgg11")
    m.avgpool = nn.Identity()
    with pytest.raises(InputShapeError, match=r"does not fit VGG: layer 'classifier.0' \(Linear\)"):
        analyze(m, (3, 160, 160))


@pytest.mark.parametrize("bad", [(3, 0, 224), (3, -1), "3x224x224", (3, 224.0, 224), (True, 4, 4), ()])
def test_bad_input_size(bad):
    with pytest.raises(InvalidArgumentError, match="input_size must be positive integers"):
        analyze(nn.Conv2d(3, 4, 3), bad)


def test_one_dimensional_input():
    r = analyze(nn.Sequential(nn.Conv1d(2, 4, 5, stride=2), nn.MaxPool1d(2)), (2, 100))
    assert [x.out_shape for x in r.rows] == [(4, 48), (4, 24)]
    assert r.rows[0].macs == 4 * 48 * 2 * 5 and r.rows[1].rf == (7,) and r.rows[1].eff_stride == (4,)


def test_other_bad_arguments():
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        analyze(nn.Conv2d(3, 4, 3), (3, 8, 8), batch_size=0)
    with pytest.raises(InvalidArgumentError, match="input_size is required"):
        analyze(nn.Conv2d(3, 4, 3))
    with pytest.raises(UnknownModelError, match="unknown model 'no-such-net'"):
        analyze("no-such-net")
    with pytest.raises(InvalidArgumentError, match="nn.Module or a model name"):
        analyze(42, (3, 8, 8))


def test_registered_name_is_built_on_meta_at_native_size():
    from cnnzoo.registry import _REGISTRY, Paper, register, unregister

    if "_analysis_tiny" not in _REGISTRY:
        register("_analysis_tiny", lambda num_classes, in_chans: nn.Sequential(
            nn.Conv2d(in_chans, 4, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes)),
            family="test", paper=Paper("t", "t", 2024, "-"), input_size=(3, 12, 12))
    try:
        r = cnnzoo.analyze("_analysis_tiny")
    finally:
        unregister("_analysis_tiny")
    assert r.model_name == "_analysis_tiny" and r.input_size == (3, 12, 12)
    assert r.rows[0].out_shape == (4, 10, 10) and r.rows[1].macs == 4 * 100
    assert r.total_params == 4 * 27 + 4 + 4 * 1000 + 1000


def test_registered_name_is_built_for_the_input_channels():
    from cnnzoo.registry import Paper, register, unregister

    register("_analysis_chans", lambda num_classes, in_chans: nn.Sequential(
        nn.Conv2d(in_chans, 4, 3), nn.Flatten()),
        family="test", paper=Paper("t", "t", 2024, "-"), input_size=(3, 12, 12))
    try:
        r = cnnzoo.analyze("_analysis_chans", input_size=(1, 12, 12))
    finally:
        unregister("_analysis_chans")
    assert r.rows[0].in_shape == (1, 12, 12) and r.rows[0].params == 4 * 9 + 4


def test_text_forms_are_consistent():
    r = analyze(tv("alexnet"), (3, 227, 227))
    import csv
    import io
    import json

    d = json.loads(r.to_json())
    assert d["totals"]["params"] == r.total_params and d["totals"]["flops"] == 2 * r.total_macs
    rows = list(csv.DictReader(io.StringIO(r.to_csv())))
    assert sum(int(x["macs"]) for x in rows) == r.total_macs
    assert rows[0]["in_shape"] == "3x227x227" and rows[0]["kernel"] == "11x11"
    table = r.to_table(flops=True)
    assert "FLOP (M)" in table and "1,435" in table  # 2 x 717.6 M
    md = r.to_markdown()
    assert md.count("\n| features.") == 8 and "| **total** |" in md


class MaskedConv(nn.Module):
    """A custom leaf (no children) that runs F.conv2d and a pool itself, like LeNet-5's C3."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(16, 6, 5, 5))

    def forward(self, x):
        return F.avg_pool2d(F.conv2d(x, self.weight), 2)


class FunctionalHead(nn.Module):
    """A container with its own parameter used through F.linear (no leaf module for it)."""

    def __init__(self):
        super().__init__()
        self.body = MaskedConv()
        self.w = nn.Parameter(torch.zeros(10, 16 * 5 * 5))

    def forward(self, x):
        return F.linear(torch.flatten(self.body(x), 1), self.w)


def test_custom_leaf_and_functional_layers_are_counted():
    r = analyze(FunctionalHead(), (6, 14, 14))
    assert [x.name for x in r.rows] == ["body", "flatten", "linear", "functionalhead.<own>"]
    body = r.find("body")
    assert body.kind == "other" and body.params == 16 * 6 * 25
    assert body.macs == 16 * 10 * 10 * 6 * 25 + 16 * 5 * 5 * 4  # the conv, then the 2x2 pool
    assert (body.filters, body.kernel, body.rf, body.eff_stride) == (16, (5, 5), (6, 6), (2, 2))
    assert r.find("linear").macs == 400 * 10 and r.find("linear").kind == "linear"
    assert r.total_params == 16 * 6 * 25 + 4000 and r.unused_params == 0


class TinyAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(32, 4, batch_first=True)
        self.mlp = nn.Linear(32, 64)

    def forward(self, x):
        return self.mlp(self.attn(x, x, x, need_weights=False)[0] + x)


@pytest.mark.parametrize("model,size", [(TinyAttention, (10, 32)), (None, (3, 224, 224))])
def test_attention_agrees_with_flop_counter(model, size):
    # nn.MultiheadAttention runs its projections functionally (out_proj is never called)
    with torch.device("meta"):
        m = (model() if model else torchvision.models.vit_b_16()).eval()
    r = analyze(m, size)
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        m(torch.empty(1, *size, device="meta"))
    assert 2 * sum(x.macs for x in r.rows if x.kind in ("conv", "linear")) == counter.get_total_flops()
    assert r.total_params == sum(p.numel() for p in m.parameters()) and r.unused_params == 0


def test_print_report_prints_the_table_and_a_batch_shape_works():
    r = cnnzoo.analyze("lenet5_modern", input_size=(8, 1, 32, 32))
    assert r.batch_size == 8 and r.input_size == (1, 32, 32)
    assert str(r) == r.to_table() and "Layer" in str(r)
    with pytest.raises(cnnzoo.InvalidArgumentError, match="per image"):
        cnnzoo.analyze("lenet5_modern", input_size=(8, 1, 32, 32), batch_size=4)


def test_a_layer_pytorch_cannot_run_is_an_input_shape_error_not_a_crash():
    # stride 0: nn.Conv2d builds it, its forward divides by zero
    with pytest.raises(InputShapeError, match="stride 0x0"):
        analyze(nn.Conv2d(1, 1, 3, stride=0), (1, 8, 8))
