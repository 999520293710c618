"""Multi-scale backbones (create_model(..., features_only=True)): every registered model's
feature maps have the channels and reductions its feature_info claims."""

import pytest
import torch

import cnnzoo
from cnnzoo.errors import InvalidArgumentError
from cnnzoo.registry import get_entry, list_models

# the zoo's own models (test files in the same process register small test nets too)
ZOO = [n for n in list_models() if get_entry(n).builder.__module__.startswith("cnnzoo.models")]
# One model per model class and stage layout (every builder's feature_info and stem path);
# the slow test checks all the others. Meta-device forwards cost ~0.5 s per model on 2 cores.
FAST = ["alexnet", "zfnet", "bn_inception", "inception_resnet_v2", "inception_v3",
        "inception_v4", "densenet121", "googlenet", "lenet5", "mobilenet_v1", "mobilenet_v2",
        "resnet20", "preact_resnet164", "pyramidnet110_a48", "resnet50", "preact_resnet18",
        "shufflenet_v1_g3", "shufflenet_v2_x1_0", "squeezenet1_1", "vgg11_bn", "xception"]


def _check_claims(names):
    """Exact reduction check: with cumulative stride r, growing the input by 32 pixels grows a
    map by 32/r (valid-padded convolutions make a single size's ratio inexact). Meta device:
    shapes without arithmetic."""
    wrong = []
    for name in names:
        c, h, w = get_entry(name).input_size
        with torch.device("meta"):
            net = cnnzoo.create_model(name, features_only=True)
        info = net.feature_info
        assert len(info) >= 3 and info.reduction() == sorted(info.reduction()), name
        with torch.no_grad():
            small = net(torch.empty(1, c, h, w, device="meta"))
            big = net(torch.empty(1, c, h + 32, w + 32, device="meta"))
        got = [(s.shape[1], 32 // (b.shape[2] - s.shape[2]), 32 // (b.shape[3] - s.shape[3]))
               for s, b in zip(small, big)]
        want = [(ch, r, r) for ch, r in zip(info.channels(), info.reduction())]
        if got != want:
            wrong.append((name, got, want))
    assert not wrong


def test_each_kind_of_model_returns_the_maps_feature_info_claims():
    assert set(FAST) <= set(ZOO)
    _check_claims(FAST)


@pytest.mark.slow
def test_every_other_model_too():
    _check_claims([n for n in ZOO if n not in FAST])


def test_the_stem_is_included_as_timm_does():
    with torch.device("meta"):
        net = cnnzoo.create_model("resnet50", features_only=True)
        dense = cnnzoo.create_model("densenet121", features_only=True)
    assert net.feature_info.module_name() == ["relu", "layer1", "layer2", "layer3", "layer4"]
    assert net.feature_info.channels() == [64, 256, 512, 1024, 2048]
    assert net.feature_info.reduction() == [2, 4, 8, 16, 32]
    assert dense.feature_info.module_name(0) == "features.relu0"


def test_out_indices_pick_stages_negative_ones_too():
    net = cnnzoo.create_model("resnet20", features_only=True, out_indices=(-1, 0))
    assert net.feature_info.channels() == [16, 64] and net.feature_info.reduction() == [1, 4]
    maps = net.eval()(torch.randn(2, 3, 32, 32))
    assert [tuple(m.shape) for m in maps] == [(2, 16, 32, 32), (2, 64, 8, 8)]
    for bad in [(5,), (-4,), (0, 0), (), 1, ("a",)]:
        with pytest.raises(InvalidArgumentError, match="out_indices"):
            cnnzoo.create_model("resnet20", features_only=True, out_indices=bad)
    with pytest.raises(InvalidArgumentError, match="features_only=True"):
        cnnzoo.create_model("resnet20", out_indices=(1,))


def test_a_classifiers_weights_load_and_give_its_own_maps():
    torch.manual_seed(0)
    clf = cnnzoo.create_model("resnet20", num_classes=10).eval()
    net = cnnzoo.create_model("resnet20", num_classes=10, features_only=True).eval()
    net.load_state_dict(clf.state_dict())  # strict: only the head's keys are dropped
    assert not any(k.startswith("fc.") for k in net.state_dict())
    assert set(net.state_dict()) == {k for k in clf.state_dict() if not k.startswith("fc.")}
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        last = net(x)[-1]
        torch.testing.assert_close(last, clf.forward_features(x))
        torch.testing.assert_close(clf.forward_head(last), clf(x))


def test_a_deep_copy_collects_its_own_maps():
    import copy

    net = cnnzoo.create_model("lenet5_modern", features_only=True).eval()
    twin = copy.deepcopy(net)
    with torch.no_grad():
        for p in twin.parameters():
            p.add_(1.0)
        x = torch.randn(1, 1, 32, 32)
        a, b = net(x), twin(x)
    assert len(a) == len(b) == 5 and not torch.allclose(a[-1], b[-1])


def test_torch_compile_fullgraph():
    net = cnnzoo.create_model("lenet5_modern", features_only=True).eval()
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        want = net(x)
        got = torch.compile(net, fullgraph=True, backend="aot_eager")(x)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)


def test_onnx_export_gives_one_output_per_stage(tmp_path):
    import warnings

    import onnxruntime as ort

    net = cnnzoo.create_model("resnet20", features_only=True, out_indices=(1, 2)).eval()
    x = torch.randn(2, 3, 32, 32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(net, (x,), dynamo=True, verbose=False)
    prog.save(str(tmp_path / "b.onnx"))
    sess = ort.InferenceSession(str(tmp_path / "b.onnx"), providers=["CPUExecutionProvider"])
    outs = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})
    with torch.no_grad():
        want = net(x)
    assert [o.shape for o in outs] == [(2, 32, 16, 16), (2, 64, 8, 8)]
    for o, w in zip(outs, want):
        torch.testing.assert_close(torch.from_numpy(o), w, atol=1e-4, rtol=1e-4)


# Zoo models whose architecture timm also has, under timm's name where it differs (the legacy_*
# ports keep the authors' layouts). Every other zoo name timm lists is the same architecture.
TIMM_NAMES = {"mobilenet_v1": "mobilenetv1_100", "mobilenet_v2": "mobilenetv2_100",
              "se_resnet50": "legacy_seresnet50", "se_resnext50_32x4d": "seresnext50_32x4d",
              "xception": "legacy_xception"}


def test_stages_are_timms_for_every_shared_architecture():
    """A timm user's backbone code (FPN, U-Net) reads channels and reductions from feature_info:
    ours must give the same stages as timm's for the same architecture."""
    timm = pytest.importorskip("timm")
    known = set(timm.list_models())
    shared = {n: TIMM_NAMES.get(n, n) for n in ZOO if TIMM_NAMES.get(n, n) in known}
    assert len(shared) >= 30 and {"vgg16", "mobilenet_v2", "resnet50", "densenet121"} <= set(shared)
    wrong = []
    for ours, theirs in shared.items():
        with torch.device("meta"):
            a = cnnzoo.create_model(ours, features_only=True).feature_info
            b = timm.create_model(theirs, features_only=True, pretrained=False).feature_info
        if (a.channels(), a.reduction()) != (b.channels(), b.reduction()):
            wrong.append((ours, a.channels(), a.reduction(), theirs, b.channels(), b.reduction()))
    assert not wrong
