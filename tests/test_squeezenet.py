"""SqueezeNet 1.0 / 1.1: torchvision equality, the paper's parameter count, conv classifier."""

import math

import pytest
import torch
import torchvision

import cnnzoo
from _helpers import assert_compiles_fullgraph, meta_model, n_params, total_macs
from cnnzoo.errors import InputShapeError, InvalidArgumentError
from cnnzoo.registry import get_entry


@pytest.mark.parametrize("name,params", [("squeezenet1_0", 1_248_424), ("squeezenet1_1", 1_235_496)])
def test_counts(name, params):
    m = meta_model(name)
    with torch.device("meta"):
        tv = getattr(torchvision.models, name)()
    assert n_params(m) == n_params(tv) == params
    pub = [p for p in get_entry(name).published if p.macs][0]
    assert math.isclose(total_macs(m, 224), pub.macs, rel_tol=0.01)
    if name == "squeezenet1_0":  # the paper's Table 1 total
        assert get_entry(name).published[0].params == params


@pytest.mark.parametrize("name", ["squeezenet1_0", "squeezenet1_1"])
def test_outputs_equal_torchvision(name):
    tv = getattr(torchvision.models, name)().eval()
    m = cnnzoo.create_model(name).eval()
    m.load_state_dict(tv.state_dict(), strict=True)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(m(x), tv(x))


def test_contract_and_sizes():
    m = cnnzoo.create_model("squeezenet1_1", num_classes=10, in_chans=1).eval()
    with torch.no_grad():
        feats = m.forward_features(torch.randn(1, 1, 224, 224))
        assert feats.shape == (1, m.num_features, 13, 13)
        assert m.forward_head(feats, pre_logits=True).shape == (1, 512)
        assert m(torch.randn(1, 1, 64, 64)).shape == (1, 10)
    assert [f["num_chs"] for f in m.feature_info] == [64, 128, 256, 512]
    m.reset_classifier(3)  # the classifier is a 1x1 conv
    assert isinstance(m.classifier[1], torch.nn.Conv2d) and m.classifier[1].out_channels == 3
    with torch.no_grad():
        assert m(torch.randn(1, 1, 64, 64)).shape == (1, 3)
    with pytest.raises(InputShapeError, match="at least 17x17"):
        m(torch.randn(1, 1, 16, 16))


def test_bad_version():
    with pytest.raises(InvalidArgumentError, match="version must be one of"):
        cnnzoo.create_model("squeezenet1_0", version="2_0")


def test_compiles_fullgraph():
    m = cnnzoo.create_model("squeezenet1_1", num_classes=10).eval()
    x = torch.randn(1, 3, 64, 64)
    assert_compiles_fullgraph(m, x)
