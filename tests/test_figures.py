"""Figures that do not mislead: bubble charts whose labels touch nothing and whose panels keep
datasets apart, confusion matrices and training curves that say what they plot, feature maps on
one scale, and visualisations that name what they show (random weights, the layer, the ranking)."""

from __future__ import annotations

import math

import torch

import cnnzoo


def _items(dataset2: str = "ImageNet") -> list[dict]:
    rows = [("alexnet", 0.72e9, 61.1e6, 56.5), ("squeezenet1_0", 0.82e9, 1.2e6, 58.1),
            ("resnet18", 1.8e9, 11.7e6, 69.8), ("mobilenet_v1", 0.57e9, 4.2e6, 70.6),
            ("resnet50", 4.1e9, 25.6e6, 76.1), ("inception_v3", 5.7e9, 23.8e6, 77.3),
            ("resnet152", 11.5e9, 60.2e6, 78.3)]
    items = [{"name": n, "macs": m, "params": p, "top1_acc_pct": a, "top5_err_pct": None, "dataset": "ImageNet"}
             for n, m, p, a in rows]
    items[-1]["dataset"] = dataset2
    items.append({"name": "googlenet", "macs": 1.5e9, "params": 6.6e6, "top1_acc_pct": None, "top5_err_pct": 10.07,
                  "dataset": "ImageNet"})
    return items


def test_bubble_labels_touch_no_bubble_and_no_other_label():
    from cnnzoo.analysis.bubbles import draw_compare

    fig = draw_compare(_items())
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    labels = [t for t in ax.texts if "params" in t.get_text()]
    assert len(labels) == 7
    boxes = [t.get_window_extent(renderer) for t in labels]
    for i, a in enumerate(boxes):
        assert ax.get_window_extent().contains(a.x0, a.y0) and ax.get_window_extent().contains(a.x1, a.y1)
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (labels[i].get_text(), "overlaps another label")
    for coll in ax.collections:  # the bubbles: centre and radius in pixels
        for (x, y), s in zip(coll.get_offsets(), coll.get_sizes()):
            cx, cy = ax.transData.transform((x, y))
            r = math.sqrt(s / math.pi) * fig.dpi / 72
            frame = ax.get_window_extent()
            assert frame.x0 <= cx - r and cx + r <= frame.x1 and frame.y0 <= cy - r and cy + r <= frame.y1, \
                "a bubble is clipped by the axes"
            for box in boxes:
                dx = max(box.x0 - cx, 0, cx - box.x1)
                dy = max(box.y0 - cy, 0, cy - box.y1)
                assert math.hypot(dx, dy) >= r, "a label lies on a bubble"
    assert any("googlenet (top-5 error only)" in t.get_text() for t in fig.texts)


def test_accuracies_from_different_datasets_get_their_own_panels():
    from cnnzoo.analysis.bubbles import draw_compare

    fig = draw_compare(_items(dataset2="CIFAR-10"))
    panels = [ax for ax in fig.axes if ax.get_ylabel().startswith("Top-1")]
    assert sorted(ax.get_ylabel() for ax in panels) == ["Top-1 accuracy (%, CIFAR-10)", "Top-1 accuracy (%, ImageNet)"]


def test_confusion_colours_and_numbers_are_one_labelled_quantity(tmp_path):
    from cnnzoo.train.logs import plot_confusion

    label = plot_confusion(tmp_path / "cm.png", [[8, 2], [1, 9]], ["a", "b"], "t")
    assert "%" in label and "true class" in label
    assert (tmp_path / "cm.png").stat().st_size > 0


def test_training_curves_say_what_they_plot(tmp_path):
    from cnnzoo.train.logs import plot_curves

    hist = [{"epoch": e, "train_loss": 1 / e, "train_acc": 0.5 + e / 20, "val_loss": 1.1 / e, "val_acc": 0.5 + e / 21}
            for e in range(1, 8)]
    got = plot_curves(tmp_path / "c.png", hist, "t", label_smoothing=0.1)
    assert all(float(t).is_integer() for t in got["xticks"])
    assert "label smoothing 0.1" in got["loss"]
    assert any("mean over the epoch" in t for t in got["legend"])
    assert any("end of epoch" in t for t in got["legend"])


def _capture_figures(monkeypatch) -> list:
    import cnnzoo.visual.visualize as vis

    figs: list = []
    monkeypatch.setattr(vis, "_save", lambda fig, out: figs.append(fig))
    return figs


def test_feature_maps_share_one_scale_with_a_colorbar(monkeypatch):
    from cnnzoo.visual.visualize import save_feature_maps

    figs = _capture_figures(monkeypatch)
    m = cnnzoo.create_model("lenet5_modern").eval()
    save_feature_maps(m, torch.rand(1, 1, 32, 32), "c1", "x.png")
    fig = figs[0]
    images = [im for ax in fig.axes for im in ax.images]
    assert len({im.get_clim() for im in images}) == 1  # one colour scale
    assert any("one scale" in ax.get_ylabel() for ax in fig.axes)  # the colorbar, labelled
    save_feature_maps(m, torch.rand(1, 1, 32, 32), "c1", "x.png", per_map=True)
    assert "own range" in figs[1]._suptitle.get_text()


def test_untrained_filters_say_random_initialisation(monkeypatch):
    from cnnzoo.visual.visualize import save_filters

    figs = _capture_figures(monkeypatch)
    save_filters(cnnzoo.create_model("lenet5_modern"), "x.png", untrained=True)
    assert "random initialisation" in figs[0]._suptitle.get_text()


def test_gradcam_default_layer_is_spatial_and_said():
    from cnnzoo.visual.visualize import grad_cam

    m = cnnzoo.create_model("lenet5").eval()  # forward_features is 1x1 here
    cam, info = grad_cam(m, torch.rand(1, 1, 32, 32))
    assert info["layer"] == "s4" and cam.shape == (32, 32)


def test_top9_says_what_it_ranks_and_warns_about_a_dead_channel():
    from cnnzoo.visual.checks import top9_notes

    m = cnnzoo.create_model("lenet5_modern").eval()
    x = torch.rand(1, 1, 32, 32)
    kind, warnings = top9_notes(m, x, "c1", 0, [{"value": -0.2}, {"value": -0.5}])
    assert "pre-activation" in kind and "ReLU" in kind
    assert warnings and "never fires" in warnings[0]
    assert top9_notes(m, x, "c1", 0, [{"value": 1.5}])[1] == []
