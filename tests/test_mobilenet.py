"""MobileNet v1 (seed 004's table, width and resolution multipliers, the paper's Table 6/7 costs)
and MobileNet v2 (torchvision equality)."""

import math

import pytest
import torch
import torchvision

import cnnzoo
from _helpers import assert_compiles_fullgraph, from_torchvision, meta_model, n_params, total_macs
from cnnzoo.errors import InvalidArgumentError
from cnnzoo.layers.separable import DepthwiseSeparableConv
from cnnzoo.registry import get_entry

# Seed 004's table (the paper's Table 1): (type, stride, filter shape, input size), 28 rows
# including the 5x repeated pair, avg pool, FC and softmax.
SEED_004 = [
    ("conv", 2, (3, 3, 3, 32), (224, 3)),
    ("dw", 1, (3, 3, 32), (112, 32)), ("pw", 1, (1, 1, 32, 64), (112, 32)),
    ("dw", 2, (3, 3, 64), (112, 64)), ("pw", 1, (1, 1, 64, 128), (56, 64)),
    ("dw", 1, (3, 3, 128), (56, 128)), ("pw", 1, (1, 1, 128, 128), (56, 128)),
    ("dw", 2, (3, 3, 128), (56, 128)), ("pw", 1, (1, 1, 128, 256), (28, 128)),
    ("dw", 1, (3, 3, 256), (28, 256)), ("pw", 1, (1, 1, 256, 256), (28, 256)),
    ("dw", 2, (3, 3, 256), (28, 256)), ("pw", 1, (1, 1, 256, 512), (14, 256)),
    *[("dw", 1, (3, 3, 512), (14, 512)), ("pw", 1, (1, 1, 512, 512), (14, 512))] * 5,
    ("dw", 2, (3, 3, 512), (14, 512)), ("pw", 1, (1, 1, 512, 1024), (7, 512)),
    # The seed prints "Conv dw / s2" here, on a 7x7 input whose next layer is also 7x7:
    # stride 1 is what its sizes (and the 569M mult-adds) need.
    ("dw", 1, (3, 3, 1024), (7, 1024)), ("pw", 1, (1, 1, 1024, 1024), (7, 1024)),
]


def test_v1_layers_match_seed_004_table():
    m = cnnzoo.create_model("mobilenet_v1").eval()
    convs = [mod for mod in m.modules() if isinstance(mod, torch.nn.Conv2d)]
    inputs = []
    hooks = [c.register_forward_hook(lambda mod, i, o: inputs.append(tuple(i[0].shape[1:3])))
             for c in convs]
    with torch.no_grad():
        m(torch.randn(1, 3, 224, 224))
    for h in hooks:
        h.remove()
    assert len(convs) == len(SEED_004) == 27
    for conv, inp, (kind, stride, shape, (hw, chs)) in zip(convs, inputs, SEED_004):
        assert inp == (chs, hw) and conv.stride == (stride, stride)
        if kind == "dw":
            assert conv.groups == conv.in_channels == shape[2] and conv.kernel_size == (3, 3)
        else:
            assert conv.groups == 1 and (conv.in_channels, conv.out_channels) == shape[2:]
            assert conv.kernel_size == shape[:2]
    assert m.fc.in_features == 1024 and m.num_features == 1024  # "FC / s1 1024 x 1000"
    assert sum(isinstance(mod, DepthwiseSeparableConv) for mod in m.modules()) == 13


@pytest.mark.parametrize("name,alpha", [("mobilenet_v1", 1.0), ("mobilenet_v1_075", 0.75),
                                        ("mobilenet_v1_050", 0.5), ("mobilenet_v1_025", 0.25)])
def test_v1_width_multiplier_rows(name, alpha):
    """Table 6: 569M/4.2M, 325M/2.6M, 149M/1.3M, 41M/0.5M."""
    m = meta_model(name)
    assert m.alpha == alpha
    (pub,) = get_entry(name).published
    macs, params = total_macs(m, 224), n_params(m)
    assert math.isclose(macs, pub.macs, rel_tol=0.01)
    assert round(params / 1e6, 1) == pub.params / 1e6  # the paper prints one decimal
    exact = {1.0: (568_740_352, 4_231_976), 0.75: (325_400_448, 2_585_560),
             0.5: (149_497_088, 1_331_592), 0.25: (41_030_272, 470_072)}
    assert (macs, params) == exact[alpha]


@pytest.mark.parametrize("rho,side,paper_macs", [(1.0, 224, 569e6), (192 / 224, 192, 418e6),
                                                 (160 / 224, 160, 290e6), (128 / 224, 128, 186e6)])
def test_v1_resolution_multiplier_rows(rho, side, paper_macs):
    """Table 7: resolution multiplier at alpha = 1 (parameters unchanged at 4.2M)."""
    m = meta_model("mobilenet_v1", rho=rho)
    assert m.input_size == (3, side, side)
    assert math.isclose(total_macs(m, side), paper_macs, rel_tol=0.01)
    assert n_params(m) == 4_231_976


def test_v1_arguments_and_forward():
    with pytest.raises(InvalidArgumentError, match="alpha"):
        cnnzoo.create_model("mobilenet_v1", alpha=0)
    with pytest.raises(InvalidArgumentError, match="rho"):
        cnnzoo.create_model("mobilenet_v1", rho=0.1)
    m = cnnzoo.create_model("mobilenet_v1_025", num_classes=10, in_chans=1, rho=0.5).eval()
    with torch.no_grad():
        assert m(torch.randn(1, 1, 224, 224)).shape == (1, 10)
        feats = m.forward_features(torch.randn(1, 1, 112, 112))
        assert feats.shape == (1, 256, 4, 4) and m.num_features == 256
        assert m.forward_head(feats, pre_logits=True).shape == (1, 256)
    assert [f["reduction"] for f in m.feature_info] == [2, 4, 8, 16, 32]
    m.reset_classifier(4)
    with torch.no_grad():
        assert m(torch.randn(1, 1, 64, 64)).shape == (1, 4)


# --- MobileNet v2 ----------------------------------------------------------------------------
def test_v2_counts():
    m = meta_model("mobilenet_v2")
    with torch.device("meta"):
        tv = torchvision.models.mobilenet_v2()
    assert n_params(m) == n_params(tv) == 3_504_872
    macs = total_macs(m, 224)
    assert macs == 300_774_272
    paper, tvpub = get_entry("mobilenet_v2").published
    assert math.isclose(macs, paper.macs, rel_tol=0.01) and math.isclose(macs, tvpub.macs, rel_tol=0.01)
    assert round(n_params(m) / 1e6, 1) == 3.5  # the paper's Table 4 prints 3.4M (a disagreement)


@pytest.mark.parametrize("width_mult", [1.0, 0.5])
def test_v2_outputs_equal_torchvision(width_mult):
    tv = torchvision.models.mobilenet_v2(width_mult=width_mult)
    m = from_torchvision(tv, "mobilenet_v2", width_mult=width_mult)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(m.eval()(x), tv.eval()(x))
        assert m(torch.randn(1, 3, 32, 32)).shape == (1, 1000)  # a smaller valid size


def test_compiles_fullgraph():
    m = cnnzoo.create_model("mobilenet_v1_025", num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64)
    assert_compiles_fullgraph(m, x)
