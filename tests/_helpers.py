"""Helpers shared by the model test files: meta-device models, parameter and multiply-add counts,
randomised weights for equality tests, the model contract and the fullgraph compile check."""

import contextlib

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

import cnnzoo
from cnnzoo.analysis import analyze
from cnnzoo.registry import get_entry


def meta_model(name: str, **kw) -> nn.Module:
    """A model on the meta device (no allocation, no init cost), in training mode as created."""
    with torch.device("meta"):
        return cnnzoo.create_model(name, **kw)


def n_params(model: nn.Module, skip: str | None = None) -> int:
    """Parameter count, leaving out parameters whose name starts with `skip` (e.g. aux heads)."""
    return sum(p.numel() for k, p in model.named_parameters() if not (skip and k.startswith(skip)))


def total_macs(model: nn.Module, size: int = 224) -> int:
    """Conv and linear multiply-adds of one eval forward at size x size, counted on the meta device."""
    with FlopCounterMode(display=False) as fc:
        model.eval()(torch.empty(1, model.in_chans, size, size, device="meta"))
    return fc.get_total_flops() // 2  # FlopCounterMode counts 2 per multiply-add


def count_macs(name: str, **kw) -> int:
    """The analyzer's multiply-adds at the native input size (convs, fc and pooling windows)."""
    return analyze(meta_model(name, **kw), input_size=get_entry(name).input_size).total_macs


def conv_fc_macs(name: str, **kw) -> float:
    """Multiply-adds of convs and linear layers only: torchvision's "GFLOPS" convention."""
    model = meta_model(name, **kw)
    with FlopCounterMode(display=False) as counter:
        model(torch.empty(1, *get_entry(name).input_size, device="meta"))
    return counter.get_total_flops() / 2  # it counts a multiply-add as 2 FLOPs


def randomize_bn(model: nn.Module, seed: int = 1) -> nn.Module:
    """Random BN affine and running statistics, so that a swapped BN would change the output."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.normal_(0, 0.1, generator=g)
                m.running_mean.normal_(0, 0.1, generator=g)
                m.running_var.uniform_(0.5, 1.5, generator=g)
    return model


def randomize_state(sd: dict, seed: int = 1) -> dict:
    """Random BN variances and perturbed weights, so that equality by position is not trivial."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, v in sd.items():
        if k.endswith("running_var"):
            v = torch.rand(v.shape, generator=g) + 0.5
        elif v.dtype.is_floating_point:
            v = v + 0.05 * torch.randn(v.shape, generator=g)
        out[k] = v
    return out


def from_torchvision(ref: nn.Module, name: str, **kw) -> nn.Module:
    """Randomise `ref`'s BN layers and load its state_dict, strictly, into a new zoo model `name`."""
    randomize_bn(ref)
    ours = cnnzoo.create_model(name, **kw)
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ours


@contextlib.contextmanager
def feature_shapes(model: nn.Module):
    """Yields a dict that collects the output shape of every feature_info module while inside."""
    seen = {}
    hooks = [model.get_submodule(f["module"]).register_forward_hook(
        lambda m, i, o, k=f["module"]: seen.__setitem__(k, o.shape)) for f in model.feature_info]
    try:
        yield seen
    finally:
        for h in hooks:
            h.remove()


def check_contract(model: nn.Module, size: int) -> None:
    """forward_features/forward_head/reset_classifier/feature_info behave the same on every model."""
    model.eval()
    x = torch.randn(2, model.in_chans, size, size)
    with feature_shapes(model) as seen, torch.no_grad():
        feats = model.forward_features(x)
        assert model(x).shape == (2, model.num_classes)
    for f in model.feature_info:
        assert seen[f["module"]] == (2, f["num_chs"], size // f["reduction"], size // f["reduction"]), f
    assert feats.shape[1] == model.num_features == model.feature_info[-1]["num_chs"]
    with torch.no_grad():
        assert model.forward_head(feats, pre_logits=True).shape == (2, model.num_features)
        model.reset_classifier(3)
        assert model(x).shape == (2, 3)
        model.reset_classifier(0)
        assert model(x).shape == (2, model.num_features)


def assert_compiles_fullgraph(model: nn.Module, x: torch.Tensor) -> None:
    """torch.compile with fullgraph=True (no graph breaks) gives the eager logits."""
    compiled = torch.compile(model, backend="aot_eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x))


def assert_matches_by_position(ours: nn.Module, ref: nn.Module, seed: int = 1, size: int = 107) -> None:
    """`ref` (a port with the same layers in the same order under other names) gets randomised
    weights, `ours` loads them by position, and both give the same logits."""
    ref.load_state_dict(randomize_state(ref.state_dict(), seed))
    sd = ref.state_dict()
    assert [v.shape for v in ours.state_dict().values()] == [v.shape for v in sd.values()]
    ours.load_state_dict(dict(zip(ours.state_dict(), sd.values())), strict=True)
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), ref.eval()(x))
