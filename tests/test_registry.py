import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.contract import ZooModel
from cnnzoo.errors import InputShapeError, InvalidArgumentError, UnknownModelError
from cnnzoo.registry import Paper, register, unregister


class _Tiny(ZooModel):
    classifier_name = "fc"

    def __init__(self, num_classes=10, in_chans=1, width=4):
        super().__init__(num_classes, in_chans)
        self.conv = nn.Conv2d(in_chans, width, 5)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(width, num_classes)
        self.num_features = width

    def forward_features(self, x):
        return self.pool(self.conv(x))

    def forward_head(self, x, pre_logits=False):
        x = x.mean((2, 3))
        return x if pre_logits else self.fc(x)


@pytest.fixture(scope="module", autouse=True)
def tiny():
    register("_tiny_test", _Tiny, family="test", paper=Paper("t", "a", 2000, "u"), input_size=(1, 28, 28))
    yield
    unregister("_tiny_test")


def test_unknown_name_suggests_close_names():
    with pytest.raises(UnknownModelError, match="_tiny_test"):
        cnnzoo.create_model("_tiny_tset")


def test_wrong_kwarg_lists_accepted():
    with pytest.raises(InvalidArgumentError, match="accepts: num_classes, in_chans, width"):
        cnnzoo.create_model("_tiny_test", depth=3)


def test_bad_num_classes():
    with pytest.raises(InvalidArgumentError, match="num_classes must be a positive integer"):
        cnnzoo.create_model("_tiny_test", num_classes=0)


def test_duplicate_registration_raises():
    with pytest.raises(ValueError, match="registered twice"):
        register("_tiny_test", _Tiny, family="test", paper=Paper("t", "a", 1, "u"), input_size=(1, 1, 1))


def test_contract_and_input_errors():
    m = cnnzoo.create_model("_tiny_test", num_classes=7, in_chans=2, width=8)
    assert m(torch.randn(2, 2, 28, 28)).shape == (2, 7)
    assert m.forward_head(m.forward_features(torch.randn(1, 2, 28, 28)), pre_logits=True).shape == (1, 8)
    with pytest.raises(InputShapeError, match="built for 2 input channel"):
        m(torch.randn(1, 3, 28, 28))
    with pytest.raises(InputShapeError, match="4-D batch"):
        m(torch.randn(2, 28, 28))
    with pytest.raises(InputShapeError, match="at least 6x6"):
        m(torch.randn(1, 2, 5, 5))
    m.reset_classifier(3)
    assert m(torch.randn(1, 2, 28, 28)).shape == (1, 3)
    m.reset_classifier(0)
    assert m(torch.randn(1, 2, 28, 28)).shape == (1, 8)


def test_save_and_load_roundtrip(tmp_path):
    m = cnnzoo.create_model("_tiny_test", num_classes=5, in_chans=1, width=6)
    rec = cnnzoo.save_model(tmp_path / "m.safetensors", m, note="x")
    m2, rec2 = cnnzoo.load_model(tmp_path / "m.safetensors")
    assert rec2 == rec and rec2["arch_kwargs"] == {"width": 6}
    x = torch.randn(1, 1, 28, 28)
    torch.testing.assert_close(m.eval()(x), m2.eval()(x))
    assert not list(tmp_path.glob(".*tmp"))


def test_unregister_removes_a_temporary_network():
    from cnnzoo.registry import list_models, unregister

    register("_tmp_unreg", _Tiny, family="test", paper=Paper("t", "a", 2000, "u"), input_size=(1, 28, 28))
    assert "_tmp_unreg" in list_models()
    unregister("_tmp_unreg")
    unregister("_tmp_unreg")  # absent: nothing
    assert "_tmp_unreg" not in list_models()
    with pytest.raises(UnknownModelError):
        cnnzoo.create_model("_tmp_unreg")
