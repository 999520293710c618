"""Xception: the paper's parameter count, equality with timm's port of the Keras reference."""

import timm
import torch

import cnnzoo
from _helpers import (
    assert_compiles_fullgraph,
    assert_matches_by_position,
    feature_shapes,
    meta_model,
    n_params,
    total_macs,
)
from cnnzoo.layers.separable import SeparableConv2d
from cnnzoo.registry import get_entry


def test_param_count_is_the_papers():
    m = meta_model("xception")
    assert n_params(m) == 22_855_952 == get_entry("xception").published[0].params  # Table 3
    assert total_macs(m, 299) == 8_357_403_496  # not in the paper; pinned (8.4 G)


def test_structure():
    m = cnnzoo.create_model("xception")
    seps = [s for s in m.modules() if isinstance(s, SeparableConv2d)]
    # 36 conv layers = 2 full + 34 separable; the 4 1x1 shortcut convs are not counted
    assert len(seps) == 34
    assert all(s.conv_dw.groups == s.conv_dw.in_channels for s in seps)
    assert sum(isinstance(b.skip, torch.nn.Identity) for b in m.blocks) == 8  # the middle flow


def test_outputs_equal_reference_port():
    ref = timm.create_model("legacy_xception").eval()
    assert_matches_by_position(cnnzoo.create_model("xception").eval(), ref, seed=0)


def test_forward_native_small_and_contract():
    m = cnnzoo.create_model("xception", num_classes=5, in_chans=1).eval()
    with torch.no_grad():
        assert m(torch.randn(1, 1, 299, 299)).shape == (1, 5)
        with feature_shapes(m) as seen:
            feats = m.forward_features(torch.randn(1, 1, 96, 96))
            assert m.forward_head(feats, pre_logits=True).shape == (1, 2048)
    assert feats.shape[1] == m.num_features == 2048
    assert [seen[f["module"]][1] for f in m.feature_info] == [f["num_chs"] for f in m.feature_info]
    m.reset_classifier(2)
    with torch.no_grad():
        assert m(torch.randn(1, 1, 96, 96)).shape == (1, 2)


def test_compiles_fullgraph():
    m = cnnzoo.create_model("xception", num_classes=10).eval()
    x = torch.randn(1, 3, 71, 71)
    assert_compiles_fullgraph(m, x)
