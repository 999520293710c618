"""PyramidNet: per-block additive widening, the paper's block (BN-conv-BN-ReLU-conv-BN, no
ReLU after the sum), zero-padded average-pooled shortcuts, and parameter counts."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnzoo
from _helpers import assert_compiles_fullgraph, check_contract, meta_model, n_params
from cnnzoo.errors import InvalidArgumentError
from cnnzoo.layers.residual import PadShortcut
from cnnzoo.models.pyramidnet import pyramid_widths

# seed 004 / paper Table 4 figure, and the exact count of the architecture the authors' code
# builds (an independent implementation, osmr/imgclsmob, lists the same four numbers)
COUNTS = {"pyramidnet110_a48": (1.7e6, 1_772_706), "pyramidnet110_a84": (3.8e6, 3_904_446),
          "pyramidnet110_a270": (28.3e6, 28_485_477),
          "pyramidnet164_a270_bottleneck": (27.0e6, 27_216_021)}


@pytest.mark.parametrize("name", list(COUNTS))
def test_param_counts(name):
    table, exact = COUNTS[name]
    m = meta_model(name, num_classes=10)
    assert n_params(m) == exact
    # The table's figures are 0.6-4% below the architecture's count (see docs/models-residual.md)
    assert 0 < (exact - table) / table < 0.045


def test_additive_widening():
    w = pyramid_widths(110, 48, bottleneck=False)
    flat = [c for stage in w for c in stage]
    assert len(flat) == 54 and flat[0] == 17 and flat[-1] == 16 + 48
    assert all(0 <= b - a <= 1 for a, b in zip(flat, flat[1:]))  # grows by alpha/N = 0.89 per block
    assert pyramid_widths(110, 270, False)[2][-1] == 286
    m = meta_model("pyramidnet164_a270_bottleneck", num_classes=10)
    assert m.num_features == 286 * 4 and [len(s) for s in (m.layer1, m.layer2, m.layer3)] == [18, 18, 18]


def test_block_structure_and_shortcut():
    m = cnnzoo.create_model("pyramidnet110_a270", num_classes=10, depth=20).eval()
    assert isinstance(m.bn1, nn.BatchNorm2d) and isinstance(m.relu, nn.Identity)  # stem: conv, BN
    blk = m.layer2[0]
    assert blk.first_relu is False and isinstance(blk.bn3, nn.BatchNorm2d)
    assert isinstance(blk.downsample, PadShortcut) and not list(blk.downsample.parameters())
    x = torch.randn(1, blk.bn1.num_features, 16, 16)
    y = blk.downsample(x)
    torch.testing.assert_close(y[:, : x.shape[1]], F.avg_pool2d(x, 2))
    assert torch.all(y[:, x.shape[1]:] == 0)
    with torch.no_grad():
        out = blk(x)
    assert out.shape == (1, blk.conv2.out_channels, 8, 8)
    assert (out < 0).any()  # no ReLU after the addition


def test_zero_init_gives_padded_identity():
    m = cnnzoo.create_model("pyramidnet110_a270", num_classes=10, depth=20, zero_init_residual=True).eval()
    blk = m.layer1[1]
    x = torch.randn(1, blk.bn1.num_features, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(blk(x), F.pad(x, (0, 0, 0, 0, 0, blk.conv2.out_channels - x.shape[1])))


@pytest.mark.parametrize("bottleneck", [False, True])
def test_contract_at_32x32(bottleneck):
    m = cnnzoo.create_model("pyramidnet110_a48", num_classes=10, depth=20, bottleneck=bottleneck)
    assert [f["reduction"] for f in m.feature_info] == [1, 2, 4]
    check_contract(m, 32)


def test_bad_depth():
    with pytest.raises(InvalidArgumentError, match=r"9n\+2 for bottleneck"):
        cnnzoo.create_model("pyramidnet164_a270_bottleneck", depth=111)


def test_torch_compile_fullgraph():
    m = cnnzoo.create_model("pyramidnet110_a48", num_classes=10, depth=8).eval()
    x = torch.randn(2, 3, 32, 32)
    assert_compiles_fullgraph(m, x)
