import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import cnnzoo
from _helpers import meta_model, n_params
from cnnzoo.errors import InputShapeError, InvalidArgumentError
from cnnzoo.layers.basic import LocalResponseNorm

TV_NAMES = ["vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn"]
ALL_NAMES = TV_NAMES + ["vgg11_lrn", "vgg16_c"]

# The paper's Table 1, typed column by column ("|" separates the five stages).
PAPER_TABLE_1 = {
    "A": "conv3-64 | conv3-128 | conv3-256 conv3-256 | conv3-512 conv3-512 | conv3-512 conv3-512",
    "A-LRN": "conv3-64 LRN | conv3-128 | conv3-256 conv3-256 | conv3-512 conv3-512 "
             "| conv3-512 conv3-512",
    "B": "conv3-64 conv3-64 | conv3-128 conv3-128 | conv3-256 conv3-256 | conv3-512 conv3-512 "
         "| conv3-512 conv3-512",
    "C": "conv3-64 conv3-64 | conv3-128 conv3-128 | conv3-256 conv3-256 conv1-256 "
         "| conv3-512 conv3-512 conv1-512 | conv3-512 conv3-512 conv1-512",
    "D": "conv3-64 conv3-64 | conv3-128 conv3-128 | conv3-256 conv3-256 conv3-256 "
         "| conv3-512 conv3-512 conv3-512 | conv3-512 conv3-512 conv3-512",
    "E": "conv3-64 conv3-64 | conv3-128 conv3-128 | conv3-256 conv3-256 conv3-256 conv3-256 "
         "| conv3-512 conv3-512 conv3-512 conv3-512 | conv3-512 conv3-512 conv3-512 conv3-512",
}
CFG_OF = {"vgg11": "A", "vgg11_lrn": "A-LRN", "vgg13": "B", "vgg16_c": "C", "vgg16": "D", "vgg19": "E"}


def table_params(cfg: str) -> int:
    """Weights + biases of the paper's column: every conv, then FC-4096, FC-4096, FC-1000."""
    total, cin = 0, 3
    for layer in PAPER_TABLE_1[cfg].split():
        if layer.startswith("conv"):
            k, cout = (int(v) for v in layer[4:].split("-"))
            total += k * k * cin * cout + cout
            cin = cout
    return total + (cin * 7 * 7 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)


def test_paper_table_2_parameter_counts():
    exact = {name: n_params(meta_model(name)) for name in CFG_OF}
    assert exact == {"vgg11": 132_863_336, "vgg11_lrn": 132_863_336, "vgg13": 133_047_848,
                     "vgg16_c": 133_638_952, "vgg16": 138_357_544, "vgg19": 143_667_240}
    for name, cfg in CFG_OF.items():
        assert exact[name] == table_params(cfg)  # our table == the paper's table, typed separately
    # ... which round to the paper's Table 2: 133, 133, 133, 134, 138, 144 million
    assert [round(exact[n] / 1e6) for n in CFG_OF] == [133, 133, 133, 134, 138, 144]
    for name in CFG_OF:
        assert round(exact[name] / 1e6) * 1e6 == cnnzoo.model_info(name)["published"][0]["params"]


@pytest.mark.parametrize("name", TV_NAMES)
def test_parameters_and_state_dict_keys_equal_torchvision(name):
    with torch.device("meta"):
        tv = getattr(torchvision.models, name)()
    ours = meta_model(name)
    assert n_params(ours) == n_params(tv) == cnnzoo.model_info(name)["published"][-1]["params"]
    sd_ours, sd_tv = ours.state_dict(), tv.state_dict()
    assert [(k, v.shape) for k, v in sd_ours.items()] == [(k, v.shape) for k, v in sd_tv.items()]
    tv.load_state_dict(sd_ours, strict=True, assign=True)  # and back


def random_torchvision(name):
    """torchvision's net with random weights: built on meta, then one uniform pass at
    +-sqrt(3/fan_in) (half the cost of its own two-pass init); BN statistics randomised too."""
    with torch.device("meta"):
        tv = getattr(torchvision.models, name)()
    tv = tv.to_empty(device="cpu").eval()
    with torch.no_grad():
        for m in tv.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.uniform_(-1, 1).mul_((3 / m.weight[0].numel()) ** 0.5)
                m.bias.uniform_(-0.1, 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 1.5)
                m.num_batches_tracked.zero_()
    return tv


@pytest.mark.parametrize("name", TV_NAMES)
def test_same_outputs_as_torchvision(name):
    """torchvision's random weights loaded into ours (strict), same input, eval mode.
    64x64 keeps it cheap: both nets pool the 2x2 map up to 7x7 with the same AdaptiveAvgPool2d."""
    tv = random_torchvision(name)
    ours = meta_model(name)
    ours.load_state_dict(tv.state_dict(), strict=True, assign=True)
    ours.eval()
    sizes = [224, 64] if name == "vgg11" else [64]  # one run at the native size
    for s in sizes:
        x = torch.randn(1, 3, s, s)
        with torch.no_grad():
            y = tv(x)
            assert y.abs().max() > 1e-3  # a real signal reaches the logits
            torch.testing.assert_close(ours(x), y)


def test_layouts():
    c = meta_model("vgg16_c")
    convs = [m for m in c.features if isinstance(m, nn.Conv2d)]
    assert [m.kernel_size[0] for m in convs] == [3] * 6 + [1] + [3, 3, 1] * 2
    assert all(m.padding[0] == m.kernel_size[0] // 2 and m.stride == (1, 1) for m in convs)
    lrn = meta_model("vgg11_lrn")
    kinds = [type(m).__name__ for m in lrn.features[:4]]
    assert kinds == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"]
    assert isinstance(lrn.features[2], LocalResponseNorm) and lrn.features[2].paper_alpha == 1e-4
    for name in ALL_NAMES:
        m = meta_model(name)
        pools = [p for p in m.features if isinstance(p, nn.MaxPool2d)]
        assert len(pools) == 5 and all(p.kernel_size == 2 and p.stride == 2 for p in pools)
        # timm's stages: each block's output before its pool, then the last pool
        assert [f["reduction"] for f in m.feature_info] == [1, 2, 4, 8, 16, 32]
        assert [f["num_chs"] for f in m.feature_info] == [64, 128, 256, 512, 512, 512]
        drops = [d.p for d in m.classifier if isinstance(d, nn.Dropout)]
        assert drops == [0.5, 0.5]
        bns = sum(isinstance(b, nn.BatchNorm2d) for b in m.features)
        assert bns == (len([c for c in m.features if isinstance(c, nn.Conv2d)]) if "_bn" in name else 0)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_shapes_classes_channels_meta(name):
    """Shape logic at the native and other sizes, every mode, on the meta device (no compute)."""
    for num_classes, in_chans in [(1000, 3), (10, 1), (2, 5)]:
        m = meta_model(name, num_classes=num_classes, in_chans=in_chans)
        for mode in (m.train, m.eval):
            mode()
            for h, w in [(224, 224), (32, 32), (100, 60)]:
                x = torch.empty(2, in_chans, h, w, device="meta")
                assert m(x).shape == (2, num_classes)
        f = m.forward_features(torch.empty(1, in_chans, 224, 224, device="meta"))
        assert f.shape == (1, m.num_features, 7, 7)
        assert m.forward_head(f, pre_logits=True).shape == (1, 4096)
    m.reset_classifier(3)
    assert m(torch.empty(1, in_chans, 64, 64, device="meta")).shape == (1, 3)
    m.reset_classifier(0)
    assert m(torch.empty(1, in_chans, 64, 64, device="meta")).shape == (1, 4096)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_input_errors(name):
    m = meta_model(name)
    with pytest.raises(InputShapeError, match="at least 32x32"):
        m(torch.empty(1, 3, 31, 40, device="meta"))
    with pytest.raises(InputShapeError, match="built for 3 input channel"):
        m(torch.empty(1, 1, 224, 224, device="meta"))


def test_bad_config():
    with pytest.raises(InvalidArgumentError, match="cfg must be one of A, A-LRN, B, C, D, E"):
        meta_model("vgg16", cfg="F")


@pytest.mark.parametrize("name", ["vgg11_lrn", "vgg16_c"])
def test_train_eval_gradients_compile(name):
    """The two paper-only configurations with their real init: train mode reaches every
    parameter, eval is deterministic, torch.compile (fullgraph) gives the same logits."""
    m = cnnzoo.create_model(name, num_classes=10).train()
    x = torch.randn(2, 3, 32, 32)
    F.cross_entropy(m(x), torch.tensor([0, 9])).backward()
    for n, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, n
    m.eval()
    with torch.no_grad():
        y1, y2 = m(x), m(x)
        torch.testing.assert_close(y1, y2)
        assert torch.isfinite(y1).all() and y1.shape == (2, 10)
        compiled = torch.compile(m, backend="aot_eager", fullgraph=True)
        torch.testing.assert_close(compiled(x), y1)
