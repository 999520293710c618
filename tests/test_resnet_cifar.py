"""CIFAR ResNets (2015 section 4.2), pre-activation CIFAR nets and Wide ResNets: the papers'
parameter counts, option A shortcuts, the contract at 32x32, and a real training run on MNIST."""

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnzoo
from _helpers import assert_compiles_fullgraph, check_contract, count_macs, meta_model, n_params
from cnnzoo.errors import InvalidArgumentError
from cnnzoo.layers.residual import PadShortcut


def weights_only(model: nn.Module) -> int:
    """Conv and fc parameters, without BN (what the pre-activation paper's Table 3 counts)."""
    return sum(p.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))
               for p in m.parameters())


# the paper's Table 6 (rounded as printed) and our exact count, 10 classes
CIFAR = {"resnet20": (0.27, 269_722), "resnet32": (0.46, 464_154), "resnet44": (0.66, 658_586),
         "resnet56": (0.85, 853_018), "resnet110": (1.7, 1_727_962), "resnet1202": (19.4, 19_421_274)}


@pytest.mark.parametrize("name", list(CIFAR))
def test_cifar_resnet_params_match_paper(name):
    paper_m, exact = CIFAR[name]
    m = meta_model(name, num_classes=10)
    assert n_params(m) == exact
    assert round(exact / 1e6, 2 if exact < 1e6 else 1) == paper_m


def test_option_a_shortcuts_have_no_parameters():
    m = cnnzoo.create_model("resnet20", num_classes=10)
    shortcuts = [b.downsample for s in (m.layer1, m.layer2, m.layer3) for b in s if b.downsample is not None]
    assert len(shortcuts) == 2 and all(isinstance(s, PadShortcut) for s in shortcuts)
    assert sum(p.numel() for s in shortcuts for p in s.parameters()) == 0
    x = torch.randn(2, 16, 32, 32)
    y = shortcuts[0](x)  # 16 -> 32 channels, 32x32 -> 16x16: subsampled identity + zero channels
    assert y.shape == (2, 32, 16, 16)
    torch.testing.assert_close(y[:, :16], x[:, :, ::2, ::2])
    assert torch.all(y[:, 16:] == 0)
    b = meta_model("resnet20", shortcut="B").layer2[0].downsample  # option B for comparison
    assert isinstance(b[0], nn.Conv2d) and b[0].kernel_size == (1, 1)


def test_cifar_layout_and_macs():
    m = meta_model("resnet56", num_classes=10)
    assert [len(s) for s in (m.layer1, m.layer2, m.layer3)] == [9, 9, 9]
    assert [f["num_chs"] for f in m.feature_info] == [16, 32, 64]
    # 6n+2 weighted layers: stem, 2 per block, fc
    convs = [x for x in m.modules() if isinstance(x, nn.Conv2d)]
    assert len(convs) + 1 == 56
    # seed 004 prints 1.8/3.6/3.86/7.6/11.3 G ops for the CIFAR nets: those are the ImageNet
    # ResNet-18/34/50/101/152 figures; the CIFAR nets cost far less (docs list this).
    assert count_macs("resnet20", num_classes=10) == pytest.approx(40.55e6, rel=1e-3)
    assert count_macs("resnet110", num_classes=10) == pytest.approx(252.9e6, rel=1e-3)


@pytest.mark.parametrize("name,paper_m,exact", [("preact_resnet110", 1.7, 1_730_522),
                                                ("preact_resnet164", 1.7, 1_703_258),
                                                ("preact_resnet1001", 10.2, 10_327_706)])
def test_preact_cifar_params(name, paper_m, exact):
    m = meta_model(name, num_classes=10)
    assert n_params(m) == exact
    # the paper's 10.2M for ResNet-1001 counts conv/fc weights only (10.18M; 10.33M with BN)
    assert round(weights_only(m) / 1e6, 1) == paper_m


def test_preact_block_order():
    m = cnnzoo.create_model("preact_resnet164", num_classes=10)
    blk = m.layer2[0]
    assert isinstance(blk.downsample, nn.Conv2d)  # 1x1 projection, fed the pre-activated input
    assert blk.conv2.stride == (2, 2) and blk.bn4 is None
    assert [len(s) for s in (m.layer1, m.layer2, m.layer3)] == [18, 18, 18]
    assert isinstance(m.bn_final, nn.BatchNorm2d) and isinstance(m.bn1, nn.Identity)


@pytest.mark.parametrize("name,paper_m,exact", [("wrn28_10", 36.5, 36_479_194), ("wrn16_8", 11.0, 10_961_370)])
def test_wide_resnet_params_match_paper(name, paper_m, exact):
    m = meta_model(name, num_classes=10)
    assert n_params(m) == exact and round(exact / 1e6, 1) == paper_m


def test_wrn_widths_and_dropout():
    m = cnnzoo.create_model("wrn16_8", num_classes=10, drop_rate=0.3)
    assert [f["num_chs"] for f in m.feature_info] == [128, 256, 512]
    assert m.conv1.out_channels == 16 and m.layer1[0].drop.p == 0.3
    with pytest.raises(InvalidArgumentError, match="block='wide' only"):
        cnnzoo.create_model("resnet20", drop_rate=0.3)


@pytest.mark.parametrize("name", ["resnet20", "preact_resnet164", "wrn16_8"])
def test_contract_at_32x32(name):
    kw = {"depth": 11} if name == "preact_resnet164" else {}
    m = cnnzoo.create_model(name, num_classes=10, **kw)
    assert [f["reduction"] for f in m.feature_info] == [1, 2, 4]
    check_contract(m, 32)


def test_zero_init_residual_cifar():
    m = cnnzoo.create_model("resnet20", num_classes=10, zero_init_residual=True).eval()
    blk = m.layer2[1]
    x = torch.rand(1, 32, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(blk(x), x)
    w = cnnzoo.create_model("wrn16_8", num_classes=10, zero_init_residual=True).eval()
    x = torch.randn(1, 128, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(w.layer1[1](x), x)  # pre-activation: exact identity


def test_bad_depth_says_what_is_allowed():
    with pytest.raises(InvalidArgumentError, match=r"6n\+2"):
        cnnzoo.create_model("resnet20", depth=21)
    with pytest.raises(InvalidArgumentError, match=r"9n\+2"):
        cnnzoo.create_model("preact_resnet164", depth=111)
    with pytest.raises(InvalidArgumentError, match="choose from"):
        cnnzoo.create_model("resnet20", block="dense")


def test_torch_compile_fullgraph_cifar():
    for name, kw in (("resnet20", dict(depth=8)), ("wrn16_8", dict(depth=10, widen=1))):
        m = cnnzoo.create_model(name, num_classes=10, **kw).eval()
        x = torch.randn(2, 3, 32, 32)
        assert_compiles_fullgraph(m, x)


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST's format): magic (2 zero bytes, dtype, ndim), big-endian dims, data."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\0\0" or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def mnist_32(mnist_dir: Path, split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """First n images of a split, normalised and zero-padded from 28x28 to 32x32 (CIFAR size)."""
    x = torch.from_numpy(read_idx(mnist_dir / f"{split}-images-idx3-ubyte.gz")[:n].copy()).float()
    y = torch.from_numpy(read_idx(mnist_dir / f"{split}-labels-idx1-ubyte.gz")[:n].astype(np.int64))
    x = F.pad((x / 255 - 0.1307) / 0.3081, (2, 2, 2, 2))
    return x.unsqueeze(1), y


def test_resnet20_learns_mnist(real_mnist_dir):
    x, y = mnist_32(real_mnist_dir, "train", 4000)
    xt, yt = mnist_32(real_mnist_dir, "t10k", 1000)
    m = cnnzoo.create_model("resnet20", num_classes=10, in_chans=1)
    opt = torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(100):  # 100 steps of 24 random images from 4000 (about 10 s of CPU)
        i = torch.randint(0, len(x), (24,), generator=g)
        loss = F.cross_entropy(m(x[i]), y[i])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = np.mean(losses[:10]), np.mean(losses[-20:])
    assert first > 2.0 and last < 0.8, (first, last)
    m.eval()
    with torch.no_grad():
        acc = (m(xt).argmax(1) == yt).float().mean().item()
    assert acc > 0.5, acc  # held-out test images; chance is 0.1


@pytest.mark.parametrize("depth,params", [(20, 269_722), (32, 464_154), (44, 658_586), (56, 853_018),
                                          (110, 1_727_962)])
def test_plain_cifar_nets_are_the_resnets_without_shortcuts(depth, params):
    """He et al. 2015 Fig. 6: plain-n has ResNet-n's layers; option-A shortcuts have no
    parameters, so the counts are equal and only the additions differ."""
    plain, res = cnnzoo.create_model(f"plain{depth}"), cnnzoo.create_model(f"resnet{depth}")
    assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in res.parameters()) == params
    res.load_state_dict(plain.state_dict())
    plain.eval(), res.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert plain(x).shape == (2, 10)
        assert not torch.allclose(plain(x), res(x))  # the same weights, no shortcut sums
    assert cnnzoo.analyze(f"plain{depth}").total_macs == cnnzoo.analyze(f"resnet{depth}").total_macs
