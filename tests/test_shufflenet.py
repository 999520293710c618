"""ShuffleNet v1 (the paper's Table 1 with groups as an argument) and v2 (torchvision equality)."""

import math

import pytest
import torch
import torchvision

import cnnzoo
from _helpers import assert_compiles_fullgraph, from_torchvision, meta_model, n_params, total_macs
from cnnzoo.errors import InvalidArgumentError
from cnnzoo.layers.shuffle import channel_shuffle
from cnnzoo.registry import get_entry


def test_channel_shuffle():
    x = torch.arange(6.0).view(1, 6, 1, 1)
    # groups of (0 1 2)(3 4 5) interleaved: 0 3 1 4 2 5
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 3, 1, 4, 2, 5]
    assert channel_shuffle(x, 3).flatten().tolist() == [0, 2, 4, 1, 3, 5]


def test_v1_g3_counts():
    m = meta_model("shufflenet_v1_g3")
    macs, params = total_macs(m), n_params(m)
    assert (macs, params) == (137_460_672, 1_865_728)
    (pub,) = get_entry("shufflenet_v1_g3").published
    assert math.isclose(macs, pub.macs, rel_tol=0.01) and round(params / 1e6, 1) == pub.params / 1e6
    # The paper's "140 MFLOPs" is the design budget shared by every g (rounded): within 2%
    assert math.isclose(macs, 140e6, rel_tol=0.02)


@pytest.mark.parametrize("groups,macs,params", [(1, 143_078_976, 1_531_936), (2, 140_836_512, 1_733_848),
                                                (4, 134_339_776, 1_968_344), (8, 138_365_952, 2_434_768)])
def test_v1_group_argument(groups, macs, params):
    m = meta_model("shufflenet_v1_g3", groups=groups)
    assert (total_macs(m), n_params(m)) == (macs, params)
    assert math.isclose(macs, 140e6, rel_tol=0.05)  # every g is built to the same ~140M budget
    if groups == 8:  # the authors' repo: 1.0x g=8 138M, 2.4M
        assert math.isclose(macs, 138e6, rel_tol=0.01) and round(params / 1e6, 1) == 2.4
    convs = [c for c in m.stages.modules() if isinstance(c, torch.nn.Conv2d) and c.kernel_size == (1, 1)]
    assert convs[0].groups == 1 and all(c.groups == groups for c in convs[1:])  # Sec. 3.3


def test_v1_bad_groups_and_forward():
    with pytest.raises(InvalidArgumentError, match="groups must be one of"):
        cnnzoo.create_model("shufflenet_v1_g3", groups=5)
    m = cnnzoo.create_model("shufflenet_v1_g3", num_classes=10, in_chans=1).eval()
    with torch.no_grad():
        assert m(torch.randn(1, 1, 224, 224)).shape == (1, 10)
        feats = m.forward_features(torch.randn(1, 1, 64, 64))
        assert feats.shape == (1, 960, 2, 2) and m.forward_head(feats, pre_logits=True).shape == (1, 960)
    assert [f["num_chs"] for f in m.feature_info] == [24, 240, 480, 960]
    out = m.train()(torch.randn(2, 1, 64, 64))
    out.sum().backward()
    assert m.conv1.conv.weight.grad is not None


WIDTHS = ["x0_5", "x1_0", "x1_5", "x2_0"]
# conv + FC mult-adds; the paper's Table 8 prints 41, 146, 299, 591 MFLOPs (0.7-1.3% higher)
V2_MACS = {"x0_5": 40_476_448, "x1_0": 144_907_992, "x1_5": 295_759_392, "x2_0": 583_253_464}
V2_PAPER = {"x0_5": 41e6, "x1_0": 146e6, "x1_5": 299e6, "x2_0": 591e6}


@pytest.mark.parametrize("width", WIDTHS)
def test_v2_counts(width):
    name = f"shufflenet_v2_{width}"
    m = meta_model(name)
    with torch.device("meta"):
        tv = getattr(torchvision.models, name)()
    (pub,) = get_entry(name).published
    assert n_params(m) == n_params(tv) == pub.params
    macs = total_macs(m)
    assert macs == V2_MACS[width]
    # torchvision prints GFLOPS with 2-3 decimals: within 1%, or half a unit of the last decimal
    assert math.isclose(macs, pub.macs, rel_tol=0.01, abs_tol=0.5e6)
    assert math.isclose(macs, V2_PAPER[width], rel_tol=0.015)


@pytest.mark.parametrize("width", WIDTHS)
def test_v2_outputs_equal_torchvision(width):
    tv = getattr(torchvision.models, f"shufflenet_v2_{width}")()
    m = from_torchvision(tv, f"shufflenet_v2_{width}")
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(m.eval()(x), tv.eval()(x))
        assert m(torch.randn(1, 3, 48, 48)).shape == (1, 1000)


def test_compiles_fullgraph():
    m = cnnzoo.create_model("shufflenet_v2_x0_5", num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64)
    assert_compiles_fullgraph(m, x)


@pytest.mark.parametrize("name", ["shufflenet_v2_x0_5", "shufflenet_v1_g3"])
def test_channels_last_and_bf16_autocast(name):
    """The GPU paths on CPU: channel shuffle must accept a channels_last tensor; bf16 autocast runs."""
    m = cnnzoo.create_model(name, num_classes=10).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = m(x)
        out = m.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = m(x)
    assert low.dtype == torch.bfloat16
    torch.testing.assert_close(low.float(), ref, rtol=0.1, atol=0.1)
