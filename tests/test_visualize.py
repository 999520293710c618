
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import cnnzoo
from _zoo_testmodels import ensure_registered
from cnnzoo.errors import InvalidArgumentError
from cnnzoo.visual.visualize import grad_cam, layer_activations, reconstruct, save_filters, top_activations

ensure_registered()


def _png(path):
    img = Image.open(path)
    assert img.format == "PNG" and min(img.size) >= 150
    return img


@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("m") / "small.safetensors"
    cnnzoo.save_model(path, cnnzoo.create_model("_small_cnn_test", num_classes=10, in_chans=1),
                      classes=[f"digit {i}" for i in range(10)],
                      preprocess={"input_size": [1, 28, 28], "resize": None, "mean": [0.1307],
                                  "std": [0.3081], "grayscale": True})
    return path


def test_feature_maps_are_the_layer_output_and_the_model_is_untouched():
    m = cnnzoo.create_model("_small_cnn_test", num_classes=10, in_chans=1).eval()
    x = torch.randn(1, 1, 28, 28)
    act = layer_activations(m, x, "features.1")
    torch.testing.assert_close(act, torch.relu(m.features[0](x)))
    assert m.features[1].inplace  # our copy, not the caller's model, was changed
    with pytest.raises(InvalidArgumentError, match=r"no layer named 'features.9'.*did you mean"):
        layer_activations(m, x, "features.9")


class _TwoPath(nn.Module):
    """x -> conv a (1->2 ch, weights +1, -1) -> ReLU -> conv b (2->1, weights +1, +1)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 2, 1, bias=False)
        self.relu = nn.ReLU()
        self.b = nn.Conv2d(2, 1, 1, bias=False)
        with torch.no_grad():
            self.a.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
            self.b.weight.fill_(1.0)

    def forward(self, x):
        return self.b(self.relu(self.a(x)))


def test_deconvnet_rectifies_the_signal_coming_down_not_the_forward_mask():
    # x = 2: a -> [2, -2], ReLU -> [2, 0], b -> 2. Fed down with its value (2), b^T gives [2, 2]:
    #   gradient:  ReLU passes [2, 0] (forward mask) -> a^T: 2*1 + 0*(-1) = 2
    #   deconvnet: ReLU passes relu([2, 2]) = [2, 2]  -> a^T: 2*1 + 2*(-1) = 0
    #   guided:    relu([2, 2]) * mask = [2, 0]        -> 2
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 1, 1] = 2.0
    m = _TwoPath()
    got = {k: reconstruct(m, x, "b", 0, k, position=(1, 1))[0][0, 1, 1].item()
           for k in ("gradient", "deconvnet", "guided")}
    assert got == {"gradient": 2.0, "deconvnet": 0.0, "guided": 2.0}
    # x = -2: a -> [-2, 2], ReLU -> [0, 2], b -> 2; only the second path is open forward
    x[0, 0, 1, 1] = -2.0
    got = {k: reconstruct(m, x, "b", 0, k, position=(1, 1))[0][0, 1, 1].item()
           for k in ("gradient", "deconvnet", "guided")}
    assert got == {"gradient": -2.0, "deconvnet": 0.0, "guided": -2.0}


def test_reconstruction_goes_through_max_pool_switches():
    m = cnnzoo.create_model("_small_cnn_test", num_classes=10, in_chans=1).eval()
    x = torch.randn(1, 1, 28, 28)
    rec, info = reconstruct(m, x, "features.2", method="deconvnet")  # after the first max-pool
    assert info["channel"] == int(layer_activations(m, x, "features.2")[0].amax((1, 2)).argmax())
    # one pooled unit comes from one 2x2 window's argmax: a 5x5 patch around it at most
    ys, xs = rec[0].nonzero(as_tuple=True)
    assert 0 < len(ys) <= 25 and ys.max() - ys.min() <= 4 and xs.max() - xs.min() <= 4


def test_top9_finds_the_strongest_images_and_their_patches():
    m = cnnzoo.create_model("_small_cnn_test", num_classes=10, in_chans=1).eval()
    with torch.no_grad():
        m.features[0].weight.abs_()  # channel responses grow with brightness
        m.features[0].bias.zero_()
    g = torch.Generator().manual_seed(0)
    images = torch.rand(40, 1, 28, 28, generator=g) * torch.linspace(0.1, 1.0, 40).view(-1, 1, 1, 1)
    images[7] *= 5  # the brightest by far
    top = top_activations(m, images, "features.1", channel=3, k=9)
    assert [t["index"] for t in top][0] == 7 and len(top) == 9
    assert [t["value"] for t in top] == sorted((t["value"] for t in top), reverse=True)
    for t in top:  # conv 5x5, padding 2: a 5x5 field, clipped at the border
        y0, x0, y1, x1 = t["box"]
        assert 3 <= y1 - y0 <= 5 and 3 <= x1 - x0 <= 5
        assert y0 <= t["position"][0] < y1 and x0 <= t["position"][1] < x1
    with pytest.raises(InvalidArgumentError, match=r"channel 8 is out of range: layer "
                                                   r"'features.1' has 8 channels"):
        top_activations(m, images, "features.1", channel=8)


def test_grad_cam_default_layer_is_the_last_feature_map():
    m = cnnzoo.create_model("_small_cnn_test", num_classes=10, in_chans=1).eval()
    x = torch.randn(1, 1, 28, 28)
    cam, info = grad_cam(m, x)
    assert cam.shape == (28, 28) and float(cam.max()) == pytest.approx(1.0) and cam.min() >= 0
    assert info["target"] == int(m(x).argmax())
    cam2, _ = grad_cam(m, x, layer="features.5")  # the module producing forward_features
    torch.testing.assert_close(cam, cam2)
    with pytest.raises(InvalidArgumentError, match="class 10 out of range 0..9"):
        grad_cam(m, x, target=10)


def test_filters_grid_of_a_three_channel_first_layer(tmp_path):
    m = cnnzoo.create_model("_tv_resnet18_test", num_classes=10)
    _png(save_filters(m, tmp_path / "f.png"))


def test_visualize_cli_writes_pngs(small_file, tmp_path, cli):
    img = tmp_path / "digit.png"
    arr = np.zeros((28, 28), np.uint8)
    arr[6:22, 12:16] = 255
    Image.fromarray(arr).save(img)
    runs = {
        "filters": ["filters", str(small_file)],
        "features": ["features", str(small_file), str(img), "--layer", "features.1"],
        "deconv": ["deconv", str(small_file), str(img), "--layer", "features.4"],
        "gradcam": ["gradcam", str(small_file), str(img)],
        "top9": ["top9", str(small_file), "--data", "embedded", "--limit", "100", "--layer",
                 "features.1", "--channel", "2"],
    }
    for name, args in runs.items():
        out = tmp_path / f"{name}.png"
        r = cli("visualize", *args, "--out", out, "--json")
        assert r.code == 0, name
        info = r.json()
        assert info["out"] == str(out)
        if name == "top9":
            assert len(info["top"]) == 9 and all(t["label"] in "0123456789" for t in info["top"])
        _png(out)
    r = cli("visualize", "features", small_file, img, "--layer", "nope", "--out", tmp_path / "x.png")
    assert r.code == 2 and "no layer named 'nope'" in r.err
