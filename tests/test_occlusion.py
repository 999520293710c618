"""Occlusion sensitivity (Zeiler & Fergus 2014, Fig. 7) on a LeNet that recognises digits."""


import numpy as np
import pytest
import torch
from PIL import Image

from _trained_lenet import PP, train_lenet
from cnnzoo.data.preprocess import Preprocess
from cnnzoo.errors import InvalidArgumentError
from cnnzoo.transfer.core import load_image_set
from cnnzoo.visual.occlusion import default_window, occlusion_maps


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # small steps on a shared 2-core machine
    run = tmp_path_factory.mktemp("run")
    model = train_lenet(run / "model.safetensors")
    yield run, model
    torch.set_num_threads(before)


def test_covering_the_digit_lowers_its_probability_more_than_covering_background(trained):
    _, model = trained
    test = load_image_set("embedded", "test", Preprocess.from_record(PP), limit=40)
    with torch.no_grad():
        p = model(test.x).softmax(1)
    # confident, correct images (a trained model has many); the first 8
    picks = [i for i in range(len(test.x))
             if p[i].argmax() == test.y[i] and p[i].max() > 0.9][:8]
    assert len(picks) == 8
    size = 8
    for i in picks:
        x = test.x[i:i + 1]
        res = occlusion_maps(model, x, size=size, stride=2, target=int(test.y[i]))
        ink = (x[0, 0] > (0.5 - 0.1307) / 0.3081).float()  # stroke pixels (raw > 0.5)
        cover = np.array([[float(ink[r:r + size, c:c + size].mean()) for c in res["cols"]]
                          for r in res["rows"]])
        # squares over the most ink (a "1" never fills a square) against squares over none
        on_digit, background = res["prob"][cover >= 0.6 * cover.max()], res["prob"][cover == 0]
        assert len(on_digit) and len(background)
        # the drop from the unoccluded probability: several times larger on the strokes (a
        # confident model keeps p > 0.9 under most squares, so compare drops, not levels)
        drop_digit = res["unoccluded_prob"] - on_digit.mean()
        drop_background = res["unoccluded_prob"] - background.mean()
        assert on_digit.min() < background.min(), i
        assert drop_digit > 3 * max(drop_background, 0.0) and drop_digit > 0.001, \
            (i, drop_digit, drop_background)
        assert res["unoccluded_prob"] > 0.9 and res["prob"].shape == (13, 13)


def test_maps_cover_the_image_and_batching_does_not_change_them(trained):
    _, model = trained
    x = torch.randn(1, 1, 32, 32)
    a = occlusion_maps(model, x, size=7, stride=3, batch_size=5)
    b = occlusion_maps(model, x, size=7, stride=3, batch_size=64)
    np.testing.assert_allclose(a["prob"], b["prob"], atol=1e-5)
    assert a["rows"][-1] == 32 - 7 and a["cols"][0] == 0  # the last square touches the border
    assert (a["top_prob"] >= a["prob"] - 1e-6).all()
    assert default_window(32, 32) == (6, 2) and default_window(224, 224) == (45, 15)
    for bad in [dict(size=0), dict(size=33), dict(stride=0), dict(target=10), dict(batch_size=0),
                dict(batch_size=-1)]:
        with pytest.raises(InvalidArgumentError):
            occlusion_maps(model, x, **bad)


def test_cli_writes_the_figure_and_json(trained, tmp_path, cli):
    run, _ = trained
    raw = load_image_set("embedded", "test", Preprocess.from_record(PP), limit=1).x[0, 0]
    img = tmp_path / "digit.png"
    Image.fromarray(((raw * 0.3081 + 0.1307).clamp(0, 1) * 255).byte().numpy()).save(img)
    out = tmp_path / "occ.png"
    r = cli("visualize", "occlusion", run, img, "--out", out, "--target", "7",  # a run folder means its model.safetensors
            "--format", "json")
    assert r.code == 0
    rep = r.json()
    assert rep["target"] == 7 and rep["target_name"] == "7" and rep["size"] == 6
    assert np.array(rep["prob"]).shape == (14, 14) and rep["min_prob"] <= rep["unoccluded_prob"]
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width > 600
    r = cli("visualize", "occlusion", run, img, "--out", out, "--overwrite", "--target", "cat")
    assert r.code == 2 and "not a class" in r.err
