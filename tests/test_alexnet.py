import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import cnnzoo
from _helpers import assert_compiles_fullgraph, meta_model, n_params
from cnnzoo.errors import InputShapeError, InvalidArgumentError
from cnnzoo.layers.basic import LocalResponseNorm

NAMES = ["alexnet", "alexnet_original", "zfnet"]


@pytest.fixture(scope="module")
def models():
    """One default model per name, built once (zfnet's 107M-parameter init is the slow part)."""
    return {name: cnnzoo.create_model(name).eval() for name in NAMES}


def test_alexnet_parameters_equal_torchvision():
    with torch.device("meta"):
        tv = torchvision.models.alexnet()
    assert n_params(meta_model("alexnet")) == n_params(tv) == 61_100_840
    assert cnnzoo.model_info("alexnet")["published"][0]["params"] == 61_100_840


def test_alexnet_original_parameters_by_hand():
    conv1 = 96 * 3 * 11 * 11 + 96  # 34,944
    conv2 = 256 * (96 // 2) * 5 * 5 + 256  # 307,456: each GPU's 128 kernels read its own 48 maps
    conv3 = 384 * 256 * 3 * 3 + 384  # 885,120: conv3 reads both GPUs' maps
    conv4 = 384 * (384 // 2) * 3 * 3 + 384  # 663,936
    conv5 = 256 * (384 // 2) * 3 * 3 + 256  # 442,624
    fc6 = 256 * 6 * 6 * 4096 + 4096  # 37,752,832
    fc7 = 4096 * 4096 + 4096  # 16,781,312
    fc8 = 4096 * 1000 + 1000  # 4,097,000
    total = conv1 + conv2 + conv3 + conv4 + conv5 + fc6 + fc7 + fc8
    assert total == 60_965_224  # "60 million parameters" (the paper's abstract)
    m = meta_model("alexnet_original")
    assert n_params(m) == total
    convs = [c for c in m.features if isinstance(c, nn.Conv2d)]
    assert [c.groups for c in convs] == [1, 2, 1, 2, 2]
    assert [n_params(c) for c in convs] == [conv1, conv2, conv3, conv4, conv5]
    # the paper rounds it to "60 million"
    assert cnnzoo.model_info("alexnet_original")["published"][0]["params"] == 60e6
    assert abs(total - 60e6) / 60e6 < 0.02


def test_zfnet_parameters_by_hand():
    total = (96 * 3 * 7 * 7 + 96 + 256 * 96 * 5 * 5 + 256 + 512 * 256 * 9 + 512
             + 1024 * 512 * 9 + 1024 + 512 * 1024 * 9 + 512
             + 512 * 6 * 6 * 4096 + 4096 + 4096 * 4096 + 4096 + 4096 * 1000 + 1000)
    assert n_params(meta_model("zfnet")) == total == 107_627_624


def _sizes(model, size):
    """(type, C, H) after every layer of `features`, on the meta device."""
    out, x = [], torch.empty(1, 3, size, size, device="meta")
    m = model.to("meta")
    for layer in m.features:
        x = layer(x)
        out.append((type(layer).__name__, x.shape[1], x.shape[2]))
    return out


def test_alexnet_original_layout_follows_the_paper():
    s = _sizes(meta_model("alexnet_original"), 227)
    convs = [(c, h) for t, c, h in s if t == "Conv2d"]
    assert convs == [(96, 55), (256, 27), (384, 13), (384, 13), (256, 13)]
    kinds = [t for t, _, _ in s]
    # LRN follows the ReLU of conv1 and conv2 and precedes their pooling (sec. 3.3, 3.5)
    assert kinds[:8] == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"] * 2
    assert s[-1] == ("MaxPool2d", 256, 6)
    pools = [m for m in meta_model("alexnet_original").features if isinstance(m, nn.MaxPool2d)]
    assert all(p.kernel_size == 3 and p.stride == 2 for p in pools)  # overlapping pooling
    drops = [m.p for m in meta_model("alexnet_original").classifier if isinstance(m, nn.Dropout)]
    assert drops == [0.5, 0.5]


def test_zfnet_layout_follows_fig3():
    s = _sizes(meta_model("zfnet"), 224)
    convs = [(c, h) for t, c, h in s if t == "Conv2d"]
    assert convs == [(96, 110), (256, 26), (512, 13), (1024, 13), (512, 13)]
    pools = [(c, h) for t, c, h in s if t == "MaxPool2d"]
    assert pools == [(96, 55), (256, 13), (512, 6)]


def test_seed_003_alexnet_table_sizes():
    # seed 003: 227 input, conv1 64@11x11/4 pad 2 -> 56, pool1 27, conv2 27, pool2 13, pool5 6
    s = _sizes(meta_model("alexnet"), 227)
    assert [(c, h) for t, c, h in s if t in ("Conv2d", "MaxPool2d")] == [
        (64, 56), (64, 27), (192, 27), (192, 13), (384, 13), (256, 13), (256, 13), (256, 6)]


def test_lrn_is_the_papers_formula():
    lrn = LocalResponseNorm()  # k=2, n=5, alpha=1e-4, beta=0.75
    a = torch.randn(2, 8, 3, 3) * 20
    sq = F.pad(a.pow(2), (0, 0, 0, 0, 2, 2))  # sum over channels i-2..i+2, clipped at the ends
    s = sum(sq[:, j:j + 8] for j in range(5))
    torch.testing.assert_close(lrn(a), a / (2 + 1e-4 * s) ** 0.75)


def test_state_dict_roundtrip_with_torchvision_same_outputs():
    x = torch.randn(2, 3, 224, 224)
    tv = torchvision.models.alexnet().eval()
    ours = cnnzoo.create_model("alexnet").eval()
    ours.load_state_dict(tv.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), tv(x))
    # and back: our randomly initialised weights into torchvision's model
    ours2 = cnnzoo.create_model("alexnet").eval()
    tv.load_state_dict(ours2.state_dict(), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(tv(x), ours2(x))


def test_min_size_matches_torchvision_metadata():
    assert torchvision.models.AlexNet_Weights.IMAGENET1K_V1.meta["min_size"] == (63, 63)
    assert cnnzoo.create_model("alexnet").min_input_size() == 63


@pytest.mark.parametrize("name", NAMES)
def test_native_and_other_sizes(name, models):
    m = models[name]
    size = cnnzoo.model_info(name)["input_size"][1]
    with torch.no_grad():
        f = m.forward_features(torch.randn(1, 3, size, size))
        assert f.shape == (1, m.num_features, 6, 6)
        assert m.forward_head(f).shape == (1, 1000)
        assert m.forward_head(f, pre_logits=True).shape == (1, 4096)
        assert m(torch.randn(1, 3, 131, 160)).shape == (1, 1000)  # another valid size


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("num_classes,in_chans", [(10, 1), (2, 4)])  # (1000, 3): `models`
def test_classes_channels_train_eval_gradients(name, num_classes, in_chans):
    m = cnnzoo.create_model(name, num_classes=num_classes, in_chans=in_chans)
    x = torch.randn(2, in_chans, 99, 99)
    m.train()
    y = m(x)
    assert y.shape == (2, num_classes)
    F.cross_entropy(y, torch.tensor([0, num_classes - 1])).backward()
    for n, p in m.named_parameters():  # gradients reach every parameter
        assert p.grad is not None and p.grad.abs().sum() > 0, n
    m.eval()
    with torch.no_grad():
        y1, y2 = m(x), m(x)
    assert y1.shape == (2, num_classes)
    torch.testing.assert_close(y1, y2)  # eval: dropout off


@pytest.mark.parametrize("name", NAMES)
def test_reset_classifier(name, models):
    m = models[name]
    old = m.classifier[6]
    x = torch.randn(1, 3, 99, 99)
    try:
        m.reset_classifier(7)
        assert m(x).shape == (1, 7)
        m.reset_classifier(0)
        assert m(x).shape == (1, 4096)
    finally:
        m.classifier[6], m.num_classes = old, 1000


@pytest.mark.parametrize("name,smallest", [("alexnet", 63), ("alexnet_original", 67), ("zfnet", 63)])
def test_input_errors(name, smallest, models):
    m = models[name]
    with pytest.raises(InputShapeError, match=f"at least {smallest}x{smallest}"):
        m(torch.randn(1, 3, smallest - 1, smallest - 1))
    assert m(torch.randn(1, 3, smallest, smallest)).shape == (1, 1000)
    with pytest.raises(InputShapeError, match="built for 3 input channel"):
        m(torch.randn(1, 1, 227, 227))
    with pytest.raises(InvalidArgumentError, match="cfg must be one of"):
        cnnzoo.create_model(name, cfg="vgg")


def test_paper_initialisation(models):
    m = models["alexnet_original"]
    convs = [c for c in m.features if isinstance(c, nn.Conv2d)]
    fcs = [c for c in m.classifier if isinstance(c, nn.Linear)]
    assert [c.bias.mean().item() for c in convs] == [0.0, 1.0, 0.0, 1.0, 1.0]
    assert [c.bias.mean().item() for c in fcs] == [1.0, 1.0, 0.0]
    assert abs(fcs[0].weight.std().item() - 0.01) < 1e-3


@pytest.mark.parametrize("name", ["alexnet_original", "zfnet"])
def test_torch_compile_fullgraph(name, models):
    m = models[name]
    x = torch.randn(1, 3, 99, 99)
    assert_compiles_fullgraph(m, x)
