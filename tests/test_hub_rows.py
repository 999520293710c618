"""The published weights' rows (cnnzoo.hub.table) are the one record of torchvision's figures:
every row equals the installed torchvision's metadata (offline: it ships in the package), and
the registry's torchvision `Published` entries are derived from them."""

from __future__ import annotations

import pytest
from torchvision.models import get_model_weights

from cnnzoo.hub import TABLE
from cnnzoo.registry import get_entry, list_models, torchvision_published

TV_ROWS = [e for rows in TABLE.values() for e in rows if e.source == "torchvision"]


def _weights(entry):
    return get_model_weights(entry.publisher_name)[entry.tag.upper()]


@pytest.mark.parametrize("entry", TV_ROWS, ids=lambda e: f"{e.model}-{e.tag}")
def test_every_torchvision_row_equals_torchvision_metadata(entry):
    w = _weights(entry)
    meta = w.meta
    acc = meta["_metrics"]["ImageNet-1K"]
    assert entry.url == w.url
    assert (entry.top1, entry.top5) == (acc["acc@1"], acc["acc@5"])
    assert entry.params == meta["num_params"]
    assert entry.gmacs == meta["_ops"]
    assert entry.size_mb == meta["_file_size"]
    assert entry.sha256 and w.url.rsplit("-", 1)[1].startswith(entry.sha256)
    t = w.transforms()
    if hasattr(t, "resize_size"):
        assert [entry.resize] == list(t.resize_size) and [entry.crop] == list(t.crop_size)
        assert entry.interpolation == t.interpolation.value
        assert (list(entry.mean), list(entry.std)) == (list(t.mean), list(t.std))


def test_each_model_lists_all_of_torchvisions_imagenet_weights_default_first():
    by_model: dict[str, list] = {}
    for e in TV_ROWS:
        by_model.setdefault(e.model, []).append(e)
    for model, rows in by_model.items():
        enum = get_model_weights(rows[0].publisher_name)
        assert [e.tag for e in rows][0] == enum.DEFAULT.name.lower(), model
        classifiers = [w for w in enum if w.meta.get("categories")]  # not vgg16's FEATURES
        assert sorted(e.tag for e in rows) == sorted(w.name.lower() for w in classifiers), model


@pytest.mark.parametrize("name", sorted(TABLE))
def test_registry_quotes_torchvision_from_the_rows(name):
    """One torchvision `Published` per model that has a torchvision row, equal to the
    IMAGENET1K_V1 row's figures (errors = 100 - accuracy), after the papers' own figures."""
    tv = [p for p in get_entry(name).published if p.source.startswith("torchvision")]
    rows = [e for e in TABLE[name] if e.source == "torchvision" and e.tag == "imagenet1k_v1"]
    if not rows:
        assert tv == []
        return
    (row,), (pub,) = rows, tv
    assert get_entry(name).published[-1] is pub
    assert pub.params == row.params and pub.macs == pytest.approx(row.gmacs * 1e9)
    assert pub.top1_err == pytest.approx(100 - row.top1, abs=1e-9)
    assert pub.top5_err == pytest.approx(100 - row.top5, abs=1e-9)
    assert pub.dataset == "ImageNet" and row.publisher_name in pub.source


def test_no_model_without_a_row_quotes_torchvision():
    for name in list_models():
        if torchvision_published(name):
            continue
        assert not [p for p in get_entry(name).published if p.source.startswith("torchvision")], name


def test_figures_shown_are_those_of_before():
    """The figures `cnnzoo info` / `compare` show for a few models, as they were when the
    registry wrote them by hand (errors in percent)."""
    for name, params, top1, top5 in (("alexnet", 61_100_840, 43.478, 20.934),
                                     ("resnet50", 25_557_032, 23.87, 7.138),
                                     ("googlenet_tv", 6_624_904, 30.222, 10.47),
                                     ("densenet169", 14_149_480, 24.4, 7.194),
                                     ("vgg16_bn", 138_365_992, 26.64, 8.484)):
        (pub,) = torchvision_published(name)
        assert (pub.params, pub.top1_err, pub.top5_err) == (params, top1, top5)


def test_a_source_names_all_its_rows_a_tag_one_row():
    from cnnzoo.hub import SOURCES, entries_for, entries_named

    assert entries_named("resnet50") == entries_for("resnet50")
    for key, source in SOURCES.items():
        rows = [e for e in TABLE.get("resnet50", ()) if e.source == source]
        if rows:
            assert entries_named("resnet50", key.upper()) == rows
    assert [e.tag for e in entries_named("resnet50", "imagenet1k_v1")] == ["imagenet1k_v1"]
    assert entries_named("xception", "timm") == entries_for("xception")


def test_cnnzoo_weights_lists_the_rows_hub_names(cli):
    """`cnnzoo weights MODEL --tag T` shows exactly the rows cnnzoo.hub.entries_named gives."""
    from cnnzoo.hub import entries_named

    for tag in ("tv", "torchvision", "imagenet1k_v2", None):
        argv = ["weights", "resnet50", "--format", "json"] + (["--tag", tag] if tag else [])
        res = cli(*argv)
        rows = res.json()
        assert res.code == 0
        assert [(r["source"], r["tag"]) for r in rows] == \
            [(e.source, e.tag) for e in entries_named("resnet50", tag)], tag
