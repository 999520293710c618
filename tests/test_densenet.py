"""DenseNet-BC: torchvision parameter counts, checkpoint keys, identical outputs and multiply-adds."""

import pytest
import torch
import torchvision
from torch import nn

import cnnzoo
from _helpers import assert_compiles_fullgraph, check_contract, conv_fc_macs, meta_model, n_params, randomize_bn
from cnnzoo.errors import InvalidArgumentError

NAMES = ["densenet121", "densenet169", "densenet201", "densenet161"]


@pytest.mark.parametrize("name", NAMES)
def test_params_keys_and_macs_equal_torchvision(name):
    with torch.device("meta"):
        ref = getattr(torchvision.models, name)()
    ours = meta_model(name)
    assert list(ours.state_dict()) == list(ref.state_dict())
    meta = torchvision.models.get_model_weights(name).IMAGENET1K_V1.meta
    assert n_params(ours) == n_params(ref) == meta["num_params"] == cnnzoo.model_info(name)["published"][0]["params"]
    assert round(conv_fc_macs(name) / 1e9, 3) == meta["_ops"]  # torchvision's GFLOPS are multiply-adds


@pytest.mark.parametrize("name", NAMES)
def test_outputs_equal_torchvision(name):
    ref = randomize_bn(getattr(torchvision.models, name)()).eval()
    ours = meta_model(name)
    ours.load_state_dict(ref.state_dict(), strict=True, assign=True)
    ours.eval()
    x = torch.randn(1, 3, 64, 64)  # 64 -> 16, 8, 4, 2 at the four dense blocks
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x))
        torch.testing.assert_close(ours.forward_features(x), torch.relu(ref.features(x)))


def test_growth_and_compression():
    m = meta_model("densenet121")
    assert [f["num_chs"] for f in m.feature_info] == [256, 512, 1024, 1024]
    assert m.features.transition1.conv.out_channels == 128  # compression 0.5
    assert m.features.denseblock3.denselayer24.conv2.out_channels == 32  # growth rate k
    assert m.features.denseblock3.denselayer24.conv1.out_channels == 128  # bottleneck 4k
    assert meta_model("densenet161").num_features == 2208


def test_contract_small_densenet():
    m = cnnzoo.create_model("densenet121", block_config=(2, 2, 2, 2), num_classes=6, in_chans=1)
    assert [f["reduction"] for f in m.feature_info] == [4, 8, 16, 32]
    check_contract(m, 64)


def test_bad_config():
    with pytest.raises(InvalidArgumentError, match="positive layer counts"):
        cnnzoo.create_model("densenet121", block_config=(6, 0))
    with pytest.raises(InvalidArgumentError, match="compression"):
        cnnzoo.create_model("densenet121", compression=0)


def test_torch_compile_fullgraph():
    m = cnnzoo.create_model("densenet121", block_config=(2, 2), num_classes=3).eval()
    x = torch.randn(2, 3, 32, 32)
    assert_compiles_fullgraph(m, x)
    assert isinstance(m.features.denseblock2, nn.ModuleDict)


def test_too_small_input_names_the_minimum():
    from cnnzoo.errors import InputShapeError

    m = cnnzoo.create_model("densenet121", block_config=(1, 1, 1, 1), num_classes=3).eval()
    with pytest.raises(InputShapeError, match="at least"):
        with torch.no_grad():
            m(torch.randn(1, 3, 8, 8))
