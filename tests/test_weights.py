import pickle

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file

import cnnzoo
from _hostile import Evil
from _zoo_testmodels import ensure_registered
from cnnzoo.errors import ModelFileError
from cnnzoo.weights import load_weights

ensure_registered()


def _same(a, b, x):
    a.eval(), b.eval()
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x))


def test_torchvision_pth_by_name_through_create_model(tmp_path):
    tv = torchvision.models.resnet18()
    torch.save(tv.state_dict(), tmp_path / "r18.pth")
    ours = cnnzoo.create_model("_tv_resnet18_test", weights=str(tmp_path / "r18.pth"))
    _same(tv, ours, torch.randn(2, 3, 64, 64))


def test_wrapped_and_ddp_prefixed_state_dict(tmp_path):
    tv = torchvision.models.resnet18(num_classes=10)
    state = {"epoch": 3, "state_dict": {f"module.{k}": v for k, v in tv.state_dict().items()}}
    torch.save(state, tmp_path / "ckpt.pth")
    ours = cnnzoo.create_model("_tv_resnet18_test", num_classes=10)
    report = load_weights(ours, tmp_path / "ckpt.pth")
    assert report.ok and report.loaded == len(tv.state_dict()) and report.method == "by name"
    _same(tv, ours, torch.randn(1, 3, 64, 64))


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_timm_resnet_loads_by_name(tmp_path, suffix):
    src = timm.create_model("resnet18", pretrained=False, num_classes=10)
    path = tmp_path / f"timm_r18{suffix}"
    if suffix == ".pth":
        torch.save(src.state_dict(), path)
    else:
        save_file(src.state_dict(), str(path))
    ours = cnnzoo.create_model("_tv_resnet18_test", num_classes=10, weights=str(path))
    _same(src, ours, torch.randn(2, 3, 64, 64))


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_timm_mobilenetv2_maps_by_position(tmp_path, suffix):
    # timm names it conv_stem/blocks.i.j.conv_pw/...; torchvision features.i.conv.j...
    src = timm.create_model("mobilenetv2_100", pretrained=False, num_classes=7).eval()
    path = tmp_path / f"mnv2{suffix}"
    if suffix == ".pth":
        torch.save(src.state_dict(), path)
    else:  # safetensors sorts keys by name: module order has to be restored
        save_file(src.state_dict(), str(path))
    dst = torchvision.models.mobilenet_v2(num_classes=7)
    report = load_weights(dst, path)
    assert report.ok and report.method.startswith("by position"), report.summary()
    _same(src, dst, torch.randn(2, 3, 96, 96))


@pytest.mark.slow  # 133M parameters; position mapping is covered fast by the MobileNet test
def test_timm_vgg_conv_pre_logits_become_linear_layers(tmp_path):
    # timm stores VGG's fc6/fc7 as 7x7 and 1x1 convolutions (pre_logits.fc1/fc2), fc8 as head.fc
    src = timm.create_model("vgg11", pretrained=False, num_classes=5).eval()
    save_file(src.state_dict(), str(tmp_path / "vgg11.safetensors"))
    dst = torchvision.models.vgg11(num_classes=5)
    report = load_weights(dst, tmp_path / "vgg11.safetensors")
    assert report.ok and dst.classifier[0].weight.shape == (4096, 512 * 7 * 7)
    _same(src, dst, torch.randn(1, 3, 224, 224))


@pytest.mark.slow  # 133M parameters
@pytest.mark.skipif("vgg11" not in cnnzoo.list_models(), reason="vgg11 not on this branch")
def test_timm_vgg_into_our_vgg11_with_another_class_count(tmp_path, cli):
    src = timm.create_model("vgg11", pretrained=False, num_classes=5).eval()
    save_file(src.state_dict(), str(tmp_path / "v.safetensors"))
    with pytest.raises(ModelFileError, match=r"(?s)by position.*only the classifier \(classifier.6\) "
                                              r"differs: the file has 5 classes"):
        cnnzoo.create_model("vgg11", weights=str(tmp_path / "v.safetensors"))
    r = cli("convert", tmp_path / "v.safetensors", tmp_path / "v5.safetensors",  # convert reads the class count from the file
            "--model", "vgg11")
    assert r.code == 0, r.err
    ours, _ = cnnzoo.load_model(tmp_path / "v5.safetensors")
    _same(src, ours, torch.randn(1, 3, 224, 224))


def test_classifier_mismatch_is_reported_with_a_hint_and_partial_load(tmp_path):
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), tmp_path / "r.pth")
    ours = cnnzoo.create_model("_tv_resnet18_test", num_classes=3)
    with pytest.raises(ModelFileError) as err:
        load_weights(ours, tmp_path / "r.pth")
    msg = str(err.value)
    assert "fc.weight file (10, 512) vs model (3, 512)" in msg
    assert "only the classifier (fc) differs: the file has 10 classes" in msg
    assert "strict=False" in msg
    before = ours.fc.weight.clone()
    report = load_weights(ours, tmp_path / "r.pth", strict=False)
    assert [k for k, _, _ in report.mismatched] == ["fc.weight", "fc.bias"]
    assert report.loaded == len(ours.state_dict()) - 2
    torch.testing.assert_close(ours.fc.weight, before)  # left as initialised


def test_missing_and_unexpected_keys_are_listed(tmp_path):
    state = torchvision.models.resnet18().state_dict()
    del state["layer4.1.bn2.weight"]
    state["extra.head.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "r.pth")
    with pytest.raises(ModelFileError, match=r"(?s)missing from the file \(1\): layer4.1.bn2.weight"
                       r".*unexpected in the file \(1\): extra.head.weight"):
        cnnzoo.create_model("_tv_resnet18_test", weights=str(tmp_path / "r.pth"))


def test_grayscale_model_from_rgb_weights_sums_the_first_conv(tmp_path):
    tv = torchvision.models.resnet18().eval()
    torch.save(tv.state_dict(), tmp_path / "r.pth")
    gray = cnnzoo.create_model("_tv_resnet18_test", in_chans=1).eval()
    report = load_weights(gray, tmp_path / "r.pth")
    assert report.adapted == ["conv1.weight: (64, 3, 7, 7) -> (64, 1, 7, 7) (in_chans)"]
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():  # a gray image is R=G=B
        torch.testing.assert_close(gray(x), tv(x.expand(1, 3, 64, 64)), rtol=1e-4, atol=1e-4)


def test_malicious_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    with open(tmp_path / "evil.pth", "wb") as f:  # protocol 2, as torch.save writes
        pickle.dump({"conv1.weight": Evil(marker)}, f, protocol=2)
    with pytest.raises(ModelFileError, match=r"refusing to load .*evil.pth: it is a pickle that "
                                              r"would run code .*GLOBAL posix.system"):
        cnnzoo.create_model("_tv_resnet18_test", weights=str(tmp_path / "evil.pth"))
    assert not marker.exists()
    with open(tmp_path / "evil4.pth", "wb") as f:  # newer protocols are refused outright
        pickle.dump({"conv1.weight": Evil(marker)}, f, protocol=4)
    with pytest.raises(ModelFileError, match="not a readable PyTorch weights file"):
        load_weights(torchvision.models.resnet18(), tmp_path / "evil4.pth")
    assert not marker.exists()


def test_not_a_weights_file(tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"\x00not a pickle at all")
    with pytest.raises(ModelFileError, match="not a readable PyTorch weights file"):
        load_weights(torchvision.models.resnet18(), tmp_path / "junk.pth")
    torch.save({"epoch": 3, "optimizer": "sgd", "lr": 0.1}, tmp_path / "other.pth")
    with pytest.raises(ModelFileError, match="not a state dict"):
        load_weights(torchvision.models.resnet18(), tmp_path / "other.pth")
    with pytest.raises(ModelFileError, match="no such weights file"):
        load_weights(torchvision.models.resnet18(), tmp_path / "absent.pth")


def test_convert_cli_writes_a_model_file(tmp_path, cli):
    src = timm.create_model("resnet18", pretrained=False, num_classes=4).eval()
    save_file(src.state_dict(), str(tmp_path / "timm.safetensors"))
    out = tmp_path / "r18.safetensors"
    r = cli("convert", tmp_path / "timm.safetensors", out, "--model", "_tv_resnet18_test", "--format", "json")
    assert r.code == 0
    rep = r.json()
    assert rep["num_classes"] == 4 and rep["report"]["ok"]  # inferred from the file
    model, record = cnnzoo.load_model(out)
    assert record["preprocess"]["input_size"] == [3, 224, 224]
    _same(src, model, torch.randn(1, 3, 64, 64))
    r = cli("convert", tmp_path / "timm.safetensors", out, "--model", "_tv_resnet18_test", "--num-classes", "9",
            "--overwrite")  # an existing OUT needs it (cnnzoo.outputs)
    assert r.code == 2
    assert "only the classifier (fc) differs" in r.err


def _registered(name):
    return pytest.mark.skipif(name not in cnnzoo.list_models(), reason=f"{name} not on this branch")


@pytest.mark.parametrize("name,tv_name,tv_kwargs,size", [
    pytest.param("alexnet", "alexnet", {}, 224, marks=_registered("alexnet")),
    pytest.param("resnet18", "resnet18", {}, 64, marks=_registered("resnet18")),
    pytest.param("mobilenet_v2", "mobilenet_v2", {}, 64, marks=_registered("mobilenet_v2")),
    pytest.param("googlenet_tv", "googlenet", {"init_weights": False, "aux_logits": True}, 64,
                 marks=[_registered("googlenet_tv"), pytest.mark.slow]),
    pytest.param("squeezenet1_0", "squeezenet1_0", {}, 96, marks=_registered("squeezenet1_0")),
    pytest.param("vgg11", "vgg11", {}, 224, marks=_registered("vgg11")),
])
def test_zoo_models_load_torchvision_files(tmp_path, name, tv_name, tv_kwargs, size):
    tv = getattr(torchvision.models, tv_name)(**tv_kwargs).eval()
    torch.save(tv.state_dict(), tmp_path / "tv.pth")
    ours = cnnzoo.create_model(name, weights=str(tmp_path / "tv.pth")).eval()
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), tv(x))


@pytest.mark.parametrize("name,timm_name,suffix", [
    pytest.param("resnet18", "resnet18", ".safetensors", marks=_registered("resnet18")),
    pytest.param("mobilenet_v2", "mobilenetv2_100", ".safetensors", marks=_registered("mobilenet_v2")),
    pytest.param("densenet121", "densenet121", ".pth",
                 marks=[_registered("densenet121"), pytest.mark.slow]),
])
def test_zoo_models_load_timm_files(tmp_path, name, timm_name, suffix):
    src = timm.create_model(timm_name, pretrained=False).eval()
    path = tmp_path / f"w{suffix}"
    save_file(src.state_dict(), str(path)) if suffix == ".safetensors" else torch.save(src.state_dict(), path)
    ours = cnnzoo.create_model(name, weights=str(path)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), src(x))


@pytest.mark.slow  # the missing/unexpected report is covered fast by test_missing_and_unexpected
def test_timm_inception_v3_lacks_the_aux_head_partial_load(tmp_path):
    if "inception_v3" not in cnnzoo.list_models():
        pytest.skip("inception_v3 not on this branch")
    src = timm.create_model("inception_v3", pretrained=False)
    torch.save(src.state_dict(), tmp_path / "inc.pth")
    with pytest.raises(ModelFileError, match=r"missing from the file \(\d+\): AuxLogits"):
        cnnzoo.create_model("inception_v3", weights=str(tmp_path / "inc.pth"))
    ours = cnnzoo.create_model("inception_v3")
    report = load_weights(ours, tmp_path / "inc.pth", strict=False)
    assert report.missing and all(k.startswith("AuxLogits.") for k in report.missing)
    assert not report.unexpected and not report.mismatched
