"""Data kinds and augmentations as registries (data/kinds.py, data/transforms.AUGMENTS): every
help and error string that lists kinds comes from the descriptors, the fast loader's choice and
the mirror rule come from the augmentation entries, the mirror rule holds in the library (not only
on the CLI), and limit_train works on image folders."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cnnzoo.data import kinds, transforms
from cnnzoo.data.datasets import LabelledImages, load_split, parse_spec, stratified_sample
from cnnzoo.data.fast_loader import choose_decoder
from cnnzoo.data.kinds import KINDS, DataKind, InMemory, spec_help, spec_list
from cnnzoo.data.nature import MirrorError, check_ten_crop, flip_warning
from cnnzoo.data.preprocess import Preprocess
from cnnzoo.errors import InvalidArgumentError

SRC = Path(__file__).resolve().parents[1] / "src"
CPU = torch.device("cpu")


def _toy_reader(path, split):
    n = 8 if split == "train" else 4
    images = np.arange(n * 4 * 4, dtype=np.uint8).reshape(n, 4, 4)
    return InMemory(images, np.arange(n) % 2, ["even", "odd"])


TOY = DataKind("toy", _toy_reader, "toy images in PATH", channels=1, class_names=("even", "odd"))


@pytest.fixture
def toy_kind(monkeypatch):
    monkeypatch.setitem(KINDS, "toy", TOY)
    return TOY


# -- kinds ----------------------------------------------------------------------------------------
def test_an_unknown_kind_is_refused_listing_exactly_the_registered_kinds(toy_kind):
    with pytest.raises(InvalidArgumentError) as err:
        parse_spec("nope:/x")
    msg = str(err.value)
    listed = re.search(r"KIND one of ([\w, -]+) \(", msg).group(1).split(", ")
    assert listed == [k.name for k in KINDS.values() if k.takes_path]
    assert "toy" in listed and all(f"{k.name!r}" in msg for k in KINDS.values() if not k.takes_path)


def test_help_strings_list_every_kind_with_its_syntax(toy_kind):
    assert spec_list() == ("mnist:PATH, fashion-mnist:PATH, cifar10:PATH, cifar100:PATH, folder:PATH, "
                           "imagenette:PATH, embedded or toy:PATH")
    assert spec_help().startswith(spec_list()) and "default embedded" in spec_help()
    assert spec_list(lambda k: not k.in_memory) == "folder:PATH or imagenette:PATH"
    assert "mnist, fashion-mnist, cifar10, cifar100, imagenette alone: the verified cache" in spec_help()
    assert "toy:PATH" in kinds.spec_table() and "toy images in PATH" in kinds.spec_table()


def test_a_registered_kind_is_read_through_its_reader(tmp_path, toy_kind):
    spec = parse_spec(f"toy:{tmp_path}")
    train = load_split(spec, "train")
    assert isinstance(train, LabelledImages) and train.in_memory
    assert len(train) == 8 and train.classes == ["even", "odd"] and train.shape == (1, 4, 4)
    assert train.labels.tolist() == [0, 1] * 4 and len(train.limit(3)) == 3


def test_a_missing_path_of_a_fetchable_kind_says_how_to_fetch_it(tmp_path):
    with pytest.raises(InvalidArgumentError, match="does not exist.*`cnnzoo data fetch mnist --dir "):
        parse_spec(f"mnist:{tmp_path / 'nope'}")
    with pytest.raises(InvalidArgumentError, match="does not exist.*`cnnzoo data fetch cifar10 --dir "):
        parse_spec(f"cifar10:{tmp_path / 'nope'}")
    with pytest.raises(InvalidArgumentError, match="does not exist$"):
        parse_spec(f"folder:{tmp_path / 'nope'}")


def test_no_hand_written_list_of_kinds_is_left_in_the_sources():
    written = re.compile(r"(mnist|cifar10|cifar100|folder):PATH[,)]? *(,|or) *\w+:PATH")
    hits = [f"{p.relative_to(SRC)}:{i}" for p in SRC.rglob("*.py") if p.name != "kinds.py"
            for i, line in enumerate(p.read_text().splitlines(), 1) if written.search(line)]
    assert hits == []


def test_adding_a_descriptor_makes_it_appear_in_every_data_option_help():
    """A new process: the verbs' modules build their options after the kind is registered."""
    code = """
import sys
from pathlib import Path
from cnnzoo.cli import main
from cnnzoo.data.kinds import DataKind, register_kind
register_kind(DataKind("toy", lambda p, s: None, "toy images in PATH"))
for argv in (["train"], ["eval"], ["features"], ["finetune"], ["experiment"],
             ["visualize", "top9"], ["export"], ["bench", "to-accuracy"]):
    try:
        main(argv + ["--help"])
    except SystemExit:
        pass
    print("=== END", " ".join(argv), flush=True)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "400"}).stdout
    chunks = out.split("=== END")[:-1]
    assert len(chunks) == 8
    for chunk in chunks:
        assert "toy:PATH" in chunk, chunk[-400:]


# -- augmentations --------------------------------------------------------------------------------
def test_the_augmentation_registry_drives_the_fast_loader_choice(monkeypatch):
    assert transforms.fast_augmentations() == ("none", "alexnet", "vgg", "imagenet")
    assert choose_decoder("auto", "cifar", CPU) is None and choose_decoder("auto", "vgg", CPU) == "cpu"
    base = transforms.AUGMENTS["none"]
    monkeypatch.setitem(transforms.AUGMENTS, "boxed", dataclasses.replace(base, name="boxed"))
    monkeypatch.setitem(transforms.AUGMENTS, "unboxed", dataclasses.replace(base, name="unboxed", box=None))
    assert choose_decoder("auto", "boxed", CPU) == "cpu" and choose_decoder("auto", "unboxed", CPU) is None
    with pytest.raises(InvalidArgumentError, match="loader=torch does the augmentations .*boxed"):
        choose_decoder("torch", "unboxed", CPU)
    with pytest.raises(InvalidArgumentError, match="unknown augmentation 'nope'; choose one of none, "):
        choose_decoder("auto", "nope", CPU)


def test_flips_and_the_big_base_are_read_from_the_registry(monkeypatch):
    assert [a.name for a in transforms.AUGMENTS.values() if a.flips] == ["shift-flip", "cifar", "alexnet", "vgg",
                                                                              "imagenet"]
    base = transforms.AUGMENTS["shift"]
    monkeypatch.setitem(transforms.AUGMENTS, "mirror", dataclasses.replace(base, name="mirror", flips=True,
                                                                            big_base=True))
    assert "flips images" in flip_warning("embedded", "mirror") and flip_warning("embedded", "shift") is None
    prep = Preprocess(1, (28, 28), (28, 28), 0, None, [0.5], [0.5])
    x = torch.zeros(2, 1, 28, 28, dtype=torch.uint8)
    assert prep.base(x, "mirror", True).shape[-1] == 32 and prep.base(x, "shift", True).shape[-1] == 28


# -- the mirror rule in the library ---------------------------------------------------------------
def test_ten_crop_on_digits_is_refused_by_the_library():
    with pytest.raises(MirrorError, match="not mirror-symmetric.*allow_mirror"):
        check_ten_crop("mnist:/x")
    check_ten_crop("mnist:/x", allow_mirror=True)
    check_ten_crop("cifar10:/x")


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    from cnnzoo.train import fit

    out = tmp_path_factory.mktemp("run") / "lenet"
    fit("lenet5", data="embedded", out=out, seed=0, epochs=1, overrides={"limit_train": 320})
    return out


def test_ten_crop_on_digits_is_refused_with_the_way_to_force_it(cli):
    r = cli("eval", "no_such_model.safetensors", "--data", "embedded", "--ten-crop")
    assert r.code == 2
    err = r.err
    assert "mirror" in err and "--allow-mirror" in err


def test_flipping_augmentation_on_digits_is_named():
    from cnnzoo.data.nature import flip_warning

    assert "augment=shift" in flip_warning("mnist:/x", "cifar")
    assert flip_warning("cifar10:/x", "cifar") is None and flip_warning(None, "none") is None


def test_evaluate_file_refuses_ten_crop_on_mnist_unless_forced(digits_run):
    from cnnzoo.train.ensemble_eval import evaluate_ensemble
    from cnnzoo.train.evaluation import evaluate_file

    with pytest.raises(MirrorError):
        evaluate_file(digits_run, ten_crop=True)  # the data it was trained on: the embedded digits
    with pytest.raises(MirrorError):
        evaluate_file(digits_run, "embedded", ten_crop=True)
    with pytest.raises(MirrorError):
        evaluate_ensemble([digits_run, digits_run], ten_crop=True)
    res = evaluate_file(digits_run, ten_crop=True, allow_mirror=True, batch_size=1000)
    assert res["view"] == "10-crop"


# -- limit_train on image folders -----------------------------------------------------------------
def _folder(root, per_class=(6, 4, 2)):
    from PIL import Image

    for split in ("train", "val"):
        for c, n in enumerate(per_class):
            d = root / split / f"c{c}"
            d.mkdir(parents=True)
            for i in range(n):
                Image.fromarray(np.full((8, 8, 3), 40 * c + i, dtype=np.uint8)).save(d / f"{i}.png")
    return root


def test_limit_train_on_a_folder_takes_a_fixed_sample_of_every_class(tmp_path):
    from cnnzoo.train.feed import load_data
    from cnnzoo.train.recipes import get_recipe

    spec = f"folder:{_folder(tmp_path)}"
    _, train, val, _, _ = load_data(spec, get_recipe("lenet", {"limit_train": 6}))
    assert len(train) == 6 and len(val) == 12
    assert torch.bincount(train.labels).tolist() == [3, 2, 1]  # in proportion, every class
    _, again, _, _, _ = load_data(spec, get_recipe("lenet", {"limit_train": 6}))
    assert again.samples == train.samples  # the same images every run
    _, whole, _, _, _ = load_data(spec, get_recipe("lenet", {"limit_train": 100}))
    assert len(whole) == 12


def test_stratified_sample_is_fixed_and_proportional():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    pick = stratified_sample(labels, 10)
    assert torch.equal(pick, stratified_sample(labels, 10)) and torch.equal(pick, pick.sort().values)
    assert torch.bincount(labels[pick]).tolist() == [5, 3, 2]


# -- Fashion-MNIST ----------------------------------------------------------------------------------
def _fashion_folder(tmp_path, n: int = 20) -> str:
    from _datasets import write_fashion_mnist

    return write_fashion_mnist(tmp_path, n)


def test_fashion_mnist_is_a_kind_with_its_class_names_and_flips_allowed(tmp_path):
    from cnnzoo.data.nature import mirror_problem

    spec = _fashion_folder(tmp_path)
    kind = kinds.kind_of(spec)
    assert kind.class_names[0] == "T-shirt/top" and kind.class_names[9] == "Ankle boot"
    assert kind.channels == 1 and mirror_problem(spec) is None  # a mirrored coat is a coat
    split = kind.reader(tmp_path, "test")
    assert split.images.shape == (20, 28, 28) and split.classes == list(kinds.CLOTHES)


def test_fashion_mnist_gets_mnists_checks_with_its_own_name(tmp_path):
    from cnnzoo.data.mnist import write_idx

    spec = _fashion_folder(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.full(20, 12))
    with pytest.raises(InvalidArgumentError, match="Fashion-MNIST labels must be 0-9, found 12"):
        kinds.kind_of(spec).reader(tmp_path, "test")
    (tmp_path / "train-images-idx3-ubyte.gz").unlink()
    with pytest.raises(InvalidArgumentError, match="Fashion-MNIST file train-images"):
        kinds.kind_of(spec).reader(tmp_path, "train")
