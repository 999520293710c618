"""ImageNet ResNets (v1.5, v1, pre-activation, ResNeXt, Wide, SE): exact parameter counts,
torchvision output equality, the paper's multiply-adds, the model contract, zero-init, compile."""

import pytest
import torch
import torchvision
from torch import nn

import cnnzoo
from _helpers import (
    assert_compiles_fullgraph,
    check_contract,
    conv_fc_macs,
    count_macs,
    meta_model,
    n_params,
    randomize_bn,
)
from cnnzoo.errors import InvalidArgumentError
from cnnzoo.registry import get_entry

TV_COMPATIBLE = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d",
                 "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2"]


def assert_matches_torchvision(name: str, size: int = 64) -> None:
    ref = randomize_bn(getattr(torchvision.models, name)()).eval()
    ours = meta_model(name)  # no init cost: torchvision's tensors are assigned
    ours.load_state_dict(ref.state_dict(), strict=True, assign=True)
    ours.eval()
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x))
        torch.testing.assert_close(ours.forward_head(ours.forward_features(x), pre_logits=True),
                                   torch.flatten(ref.avgpool(_tv_features(ref, x)), 1))


def _tv_features(ref: nn.Module, x: torch.Tensor) -> torch.Tensor:
    x = ref.maxpool(ref.relu(ref.bn1(ref.conv1(x))))
    return ref.layer4(ref.layer3(ref.layer2(ref.layer1(x))))


@pytest.mark.parametrize("name", TV_COMPATIBLE)
def test_param_count_equals_torchvision(name):
    with torch.device("meta"):
        ref = getattr(torchvision.models, name)()
    ours = meta_model(name)
    assert n_params(ours) == n_params(ref)
    assert list(ours.state_dict()) == list(ref.state_dict())  # same checkpoint keys, same order


@pytest.mark.parametrize("name", TV_COMPATIBLE)
def test_outputs_equal_torchvision(name):
    # 64x64 leaves layer4 at 2x2 (every 3x3 tap used); the deepest nets run at 32x32 (1x1 at
    # layer4) to keep CPU time low: their blocks are the same code as the 64x64-tested ones.
    assert_matches_torchvision(name, size=32 if ("101" in name or "152" in name) else 64)


def test_published_torchvision_figures_match_torchvision_metadata():
    for name in TV_COMPATIBLE:
        meta = torchvision.models.get_model_weights(name).IMAGENET1K_V1.meta
        pub = next(p for p in get_entry(name).published if p.source.startswith("torchvision"))
        assert pub.params == meta["num_params"] == n_params(meta_model(name))
        acc = meta["_metrics"]["ImageNet-1K"]
        assert pub.top1_err == pytest.approx(100 - acc["acc@1"], abs=1e-6)
        assert pub.top5_err == pytest.approx(100 - acc["acc@5"], abs=1e-6)


@pytest.mark.parametrize("name,paper_gmacs", [("resnet50_v1", 3.8), ("resnet101_v1", 7.6),
                                              ("resnet152_v1", 11.3)])
def test_v1_multiply_adds_match_paper(name, paper_gmacs):
    macs = count_macs(name)
    assert abs(macs / 1e9 - paper_gmacs) < 0.1, macs
    # v1.5 costs more: the stride moved from the 1x1 to the 3x3, which now runs at full resolution
    v15 = name.removesuffix("_v1")
    assert count_macs(v15) > macs
    meta = torchvision.models.get_model_weights(v15).IMAGENET1K_V1.meta
    assert round(conv_fc_macs(v15) / 1e9, 3) == meta["_ops"]  # torchvision's own figure


def test_resnet18_34_multiply_adds_match_paper():
    assert count_macs("resnet18") / 1e9 == pytest.approx(1.8, abs=0.05)
    assert count_macs("resnet34") / 1e9 == pytest.approx(3.6, abs=0.1)


def test_v1_and_v15_differ_only_in_stride_placement():
    v1, v15 = meta_model("resnet50_v1"), meta_model("resnet50")
    assert list(v1.state_dict()) == list(v15.state_dict())
    b1, b15 = v1.layer2[0], v15.layer2[0]
    assert (b1.conv1.stride, b1.conv2.stride) == ((2, 2), (1, 1))
    assert (b15.conv1.stride, b15.conv2.stride) == ((1, 1), (2, 2))


@pytest.mark.parametrize("name,published_m", [("se_resnet50", 28.1), ("se_resnext50_32x4d", 27.6)])
def test_se_params_match_paper(name, published_m):
    m = meta_model(name)
    assert round(n_params(m) / 1e6, 1) == published_m
    base = meta_model("resnet50_v1" if name == "se_resnet50" else "resnext50_32x4d")
    # each bottleneck adds fc1 (C -> C/16, bias) and fc2 (C/16 -> C, bias)
    extra = sum(2 * c * (c // 16) + c + c // 16
                for c, n in zip((256, 512, 1024, 2048), (3, 4, 6, 3)) for _ in range(n))
    assert n_params(m) - n_params(base) == extra
    assert isinstance(m.layer3[5].se.fc2, nn.Conv2d) and m.layer3[5].se.fc1.out_channels == 64


def test_resnext101_32x4d_params_and_macs_match_seed_table():
    # seed 004: 44.3 M parameters, 7.99 G ops; the architecture gives 44.18 M (see docs)
    assert n_params(meta_model("resnext101_32x4d")) == 44_177_704
    assert count_macs("resnext101_32x4d") / 1e9 == pytest.approx(7.99, abs=0.05)


def test_preact_imagenet_param_counts():
    # same convs and fc as the post-activation nets; BNs move in front of the convs
    assert n_params(meta_model("preact_resnet18")) == 11_687_720
    assert n_params(meta_model("preact_resnet50")) == 25_549_352
    m = meta_model("preact_resnet50")
    assert isinstance(m.bn1, nn.Identity) and isinstance(m.bn_final, nn.BatchNorm2d)


@pytest.mark.parametrize("name", ["resnet18", "resnet50_v1", "preact_resnet18", "se_resnext50_32x4d"])
def test_contract_feature_info(name):
    m = cnnzoo.create_model(name, num_classes=7, layers=(1, 2, 1, 1))  # same blocks, fewer of them
    assert [f["reduction"] for f in m.feature_info] == [4, 8, 16, 32]
    assert [f["module"] for f in m.feature_info] == ["layer1", "layer2", "layer3", "layer4"]
    check_contract(m, 64)


def test_any_num_classes_and_in_chans():
    m = cnnzoo.create_model("resnet18", num_classes=5, in_chans=1).eval()
    assert m.conv1.in_channels == 1 and m.fc.out_features == 5
    with torch.no_grad():
        assert m(torch.randn(1, 1, 40, 40)).shape == (1, 5)


def test_he_init():
    m = cnnzoo.create_model("resnet50", layers=(1, 1, 1, 1))
    w = m.layer1[0].conv2.weight  # fan_out = 64 * 3 * 3
    assert w.std().item() == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.05)
    assert torch.all(m.layer1[0].bn3.weight == 1)


@pytest.mark.parametrize("name,last", [("resnet18", "bn2"), ("resnet50", "bn3"), ("preact_resnet18", "bn2"),
                                       ("preact_resnet50", "bn3"), ("se_resnet50", "bn3")])
def test_zero_init_residual_makes_blocks_identity(name, last):
    m = cnnzoo.create_model(name, zero_init_residual=True, layers=(2, 1, 1, 1)).eval()
    for stage in (m.layer1, m.layer2, m.layer3, m.layer4):
        for blk in stage:
            assert torch.all(getattr(blk, last).weight == 0)
    blk = m.layer1[1]  # an identity-shortcut block: output == input (after the final ReLU if any)
    x = torch.rand(1, blk.conv1.in_channels, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(blk(x), x)


def test_invalid_arguments_say_what_is_allowed():
    with pytest.raises(InvalidArgumentError, match="choose from basic, bottleneck"):
        cnnzoo.create_model("resnet50", block="dense")
    with pytest.raises(InvalidArgumentError, match="bottleneck blocks only"):
        cnnzoo.create_model("resnet18", groups=32)
    with pytest.raises(InvalidArgumentError, match="positive block counts"):
        cnnzoo.create_model("resnet18", layers=(2, 0, 2, 2))


def test_torch_compile_fullgraph():
    m = cnnzoo.create_model("se_resnext50_32x4d", layers=(1, 1, 1, 1), num_classes=4).eval()
    x = torch.randn(2, 3, 64, 64)
    assert_compiles_fullgraph(m, x)


def _assert_loads_and_matches(src: nn.Module, ours: nn.Module, state: dict, size: int = 64) -> None:
    ours.load_state_dict(state, strict=True, assign=True)
    ours.eval()
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), src(x))


def test_se_models_equal_timm():
    """The shared SE block and its placement agree with an independent implementation (timm)."""
    import timm

    # timm's seresnet50 strides on the 3x3 (v1.5); its seresnext50_32x4d is ours exactly
    for timm_name, name, kw in (("seresnet50", "se_resnet50", dict(stride_in_1x1=False)),
                                ("seresnext50_32x4d", "se_resnext50_32x4d", {})):
        src = randomize_bn(timm.create_model(timm_name, pretrained=False)).eval()
        _assert_loads_and_matches(src, meta_model(name, **kw), src.state_dict())
    # timm's port of the authors' Caffe SE-ResNet-50 strides on the first 1x1, like ours
    src = randomize_bn(timm.create_model("legacy_seresnet50", pretrained=False)).eval()
    # its stem pool is Caffe's 3x3/2 ceil-mode pool without padding; use the standard one to
    # compare the blocks (our ImageNet stem is torchvision's in every model)
    src.pool0 = nn.MaxPool2d(3, stride=2, padding=1)
    renames = (("layer0.", ""), ("se_module.", "se."), ("last_linear.", "fc."))
    state = {}
    for k, v in src.state_dict().items():
        for old, new in renames:
            k = k.replace(old, new)
        state[k] = v
    _assert_loads_and_matches(src, meta_model("se_resnet50"), state)


def test_torchvision_weights_file_through_create_model(tmp_path):
    ref = randomize_bn(torchvision.models.resnet18(num_classes=10)).eval()
    torch.save(ref.state_dict(), tmp_path / "r18.pth")
    ours = cnnzoo.create_model("resnet18", num_classes=10, weights=str(tmp_path / "r18.pth")).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x))


def test_channels_last_and_bf16_autocast_on_cpu():
    """The GPU fast path (channels_last memory, bf16 autocast) runs and stays close on CPU."""
    m = cnnzoo.create_model("resnext50_32x4d", layers=(1, 1, 1, 1), num_classes=10).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = m(x)
        m = m.to(memory_format=torch.channels_last)
        out = m(x.to(memory_format=torch.channels_last))
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = m(x.to(memory_format=torch.channels_last))
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), ref, rtol=0.1, atol=0.1)


@pytest.mark.parametrize("depth,params", [(18, 11_515_688), (34, 21_623_848)])
def test_plain_imagenet_nets_have_no_shortcut_at_all(depth, params):
    """He et al. 2015 Table 2's plain-18/34: ResNet-18/34 minus the shortcuts, projections
    included (173,824 parameters: three 1x1 convs and their batch norms)."""
    plain = cnnzoo.create_model(f"plain{depth}")
    assert sum(p.numel() for p in plain.parameters()) == params
    assert not [n for n, _ in plain.named_modules() if "downsample" in n]
    assert plain(torch.randn(1, 3, 224, 224)).shape == (1, 1000)
    with pytest.raises(cnnzoo.InvalidArgumentError, match="post-activation"):
        cnnzoo.create_model("preact_resnet18", shortcut="none")
