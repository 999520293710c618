"""Xception: the paper's parameter count, equality with timm's port of the Keras reference."""

import pytest
import timm
import torch
from torch.utils.flop_counter import FlopCounterMode

import cnnzoo
from cnnzoo.layers.separable import SeparableConv2d
from cnnzoo.registry import get_entry


@pytest.fixture(autouse=True, scope="module")
def _one_thread():  # 2 shared cores: one intra-op thread per xdist worker is much faster
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_param_count_is_the_papers():
    with torch.device("meta"):
        m = cnnzoo.create_model("xception").eval()
    n = sum(p.numel() for p in m.parameters())
    assert n == 22_855_952 == get_entry("xception").published[0].params  # Table 3
    with FlopCounterMode(display=False) as fc:
        m(torch.empty(1, 3, 299, 299, device="meta"))
    assert fc.get_total_flops() // 2 == 8_357_403_496  # not in the paper; pinned (8.4 G)


def test_structure():
    m = cnnzoo.create_model("xception")
    seps = [s for s in m.modules() if isinstance(s, SeparableConv2d)]
    # 36 conv layers = 2 full + 34 separable; the 4 1x1 shortcut convs are not counted
    assert len(seps) == 34
    assert all(s.conv_dw.groups == s.conv_dw.in_channels for s in seps)
    assert sum(isinstance(b.skip, torch.nn.Identity) for b in m.blocks) == 8  # the middle flow


def test_outputs_equal_reference_port():
    ref = timm.create_model("legacy_xception").eval()
    g = torch.Generator().manual_seed(0)
    sd = {k: (torch.rand(v.shape, generator=g) + 0.5 if k.endswith("running_var") else
              v + 0.05 * torch.randn(v.shape, generator=g) if v.dtype.is_floating_point else v)
          for k, v in ref.state_dict().items()}
    ref.load_state_dict(sd)
    m = cnnzoo.create_model("xception").eval()
    assert [v.shape for v in m.state_dict().values()] == [v.shape for v in sd.values()]
    m.load_state_dict(dict(zip(m.state_dict(), sd.values())), strict=True)
    x = torch.randn(1, 3, 107, 107)
    with torch.no_grad():
        torch.testing.assert_close(m(x), ref(x))


def test_forward_native_small_and_contract():
    m = cnnzoo.create_model("xception", num_classes=5, in_chans=1).eval()
    with torch.no_grad():
        assert m(torch.randn(1, 1, 299, 299)).shape == (1, 5)
        seen = {}
        hooks = [m.get_submodule(f["module"]).register_forward_hook(
            lambda mod, i, o, n=f["module"]: seen.__setitem__(n, o.shape)) for f in m.feature_info]
        feats = m.forward_features(torch.randn(1, 1, 96, 96))
        assert m.forward_head(feats, pre_logits=True).shape == (1, 2048)
    for h in hooks:
        h.remove()
    assert feats.shape[1] == m.num_features == 2048
    assert [seen[f["module"]][1] for f in m.feature_info] == [f["num_chs"] for f in m.feature_info]
    m.reset_classifier(2)
    with torch.no_grad():
        assert m(torch.randn(1, 1, 96, 96)).shape == (1, 2)


def test_compiles_fullgraph():
    m = cnnzoo.create_model("xception", num_classes=10).eval()
    x = torch.randn(1, 3, 71, 71)
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(m, backend="aot_eager", fullgraph=True)(x), m(x))
