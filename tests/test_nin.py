"""Network In Network: the authors' CIFAR-10 and ImageNet definitions, layer by layer."""

from __future__ import annotations

import pytest
import torch

import cnnzoo
from cnnzoo.analysis import analyze
from cnnzoo.errors import InvalidArgumentError


def _conv(c_in: int, c_out: int, k: int) -> int:
    return k * k * c_in * c_out + c_out


# Every conv of the released definitions: (in, out, kernel). The paper gives no parameter count;
# these are the counts its layers imply.
CIFAR = [(3, 192, 5), (192, 160, 1), (160, 96, 1), (96, 192, 5), (192, 192, 1), (192, 192, 1),
         (192, 192, 3), (192, 192, 1), (192, 10, 1)]
IMAGENET = [(3, 96, 11), (96, 96, 1), (96, 96, 1), (96, 256, 5), (256, 256, 1), (256, 256, 1),
            (256, 384, 3), (384, 384, 1), (384, 384, 1), (384, 1024, 3), (1024, 1024, 1),
            (1024, 1000, 1)]


@pytest.mark.parametrize("name,layers,total", [("nin_cifar", CIFAR, 966_986),
                                               ("nin_imagenet", IMAGENET, 7_595_176)])
def test_parameters_layer_by_layer(name: str, layers: list, total: int) -> None:
    m = cnnzoo.create_model(name)
    convs = [mod for mod in m.modules() if isinstance(mod, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in convs] == layers
    assert sum(p.numel() for p in m.parameters()) == sum(_conv(*c) for c in layers) == total
    assert not any(isinstance(mod, torch.nn.Linear) for mod in m.modules())  # no FC layer


def test_one_by_one_convolutions_and_caffe_sizes() -> None:
    """Six of nine convs are 1x1; Caffe's ceil pooling gives 32 -> 16 -> 8 (floor would give 15, 7)."""
    rows = analyze("nin_cifar").rows
    convs = [r for r in rows if r.kind == "conv"]
    assert sum(1 for r in convs if r.kernel == (1, 1)) == 6
    pools = [r.out_shape[-1] for r in rows if r.kind == "pool"]
    assert pools[:2] == [16, 8]
    imnet = [r.out_shape[-1] for r in analyze("nin_imagenet").rows if r.kind in ("conv", "pool")]
    assert imnet[0] == 54 and imnet[3] == 27 and 13 in imnet and imnet[-1] == 1


def test_other_inputs_and_features() -> None:
    m = cnnzoo.create_model("nin_cifar", in_chans=1).eval()  # Fashion-MNIST's 28x28 grey
    assert m(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    assert m.forward_features(torch.randn(1, 1, 28, 28)).shape == (1, 192, 7, 7)
    feats = cnnzoo.create_model("nin_imagenet", features_only=True).eval()(torch.randn(1, 3, 224, 224))
    assert [f.shape[1:] for f in feats] == [(96, 54, 54), (256, 27, 27), (384, 13, 13), (1024, 6, 6)]
    with pytest.raises(InvalidArgumentError, match="config"):
        cnnzoo.create_model("nin_cifar", config="mnist")


def test_published_cifar_errors() -> None:
    errs = sorted(p.top1_err for p in cnnzoo.registry.get_entry("nin_cifar").published)
    assert errs == [8.81, 10.41]
