"""The uniform contract, checked on every registered model (on the meta device: shapes and
structure without allocating weights or activations). Each family's own tests check numbers."""

import pytest
import torch

import cnnzoo
from cnnzoo.contract import AuxOutputs, ZooModel
from cnnzoo.registry import get_entry

# family "test": small models that other test modules register for themselves
NAMES = [n for n in cnnzoo.list_models() if get_entry(n).family != "test"]


def _meta(name, **kw):
    with torch.device("meta"):
        return cnnzoo.create_model(name, **kw)


def test_zoo_is_not_empty():
    assert len(NAMES) > 0


@pytest.mark.parametrize("name", NAMES)
def test_metadata_complete(name):
    e = get_entry(name)
    assert e.paper.title and e.paper.authors and e.paper.year > 1980 and e.paper.url.startswith("http")
    assert len(e.input_size) == 3 and all(s > 0 for s in e.input_size)
    assert e.description
    for pub in e.published:
        assert pub.source, f"{name}: a published figure without its source"


@pytest.mark.parametrize("name", NAMES)
def test_contract_on_meta(name):
    e = get_entry(name)
    c, h, w = e.input_size
    m = _meta(name, num_classes=7, in_chans=2)
    assert isinstance(m, ZooModel)
    assert m.num_features > 0 and m.feature_info, "num_features and feature_info must be set"
    x = torch.empty(2, 2, h, w, device="meta")
    m.eval()
    with torch.no_grad():
        f = m.forward_features(x)
        assert f.shape[0] == 2 and f.shape[1] == m.num_features
        assert m.forward_head(f).shape == (2, 7)
        pre = m.forward_head(f, pre_logits=True)
        assert pre.shape[0] == 2 and pre.dim() == 2
        m.train()  # the full forward once, in training mode (auxiliary heads, if any)
        out = m(x)
        logits = out.logits if isinstance(out, AuxOutputs) else out
        assert logits.shape == (2, 7)
        if isinstance(out, AuxOutputs):
            assert all(a.shape == (2, 7) for a in out.aux) and 0 < out.aux_weight < 1
        m.eval()
        m.reset_classifier(4)
        assert m.forward_head(f).shape == (2, 4)
        m.reset_classifier(0)
        assert m.forward_head(f).shape == pre.shape
        m.reset_classifier(5)  # and back again
        assert m.forward_head(f).shape == (2, 5)


def test_a_process_can_compile_many_zoo_models_without_an_eager_fallback():
    """Each class has its own forward code object: sharing ZooModel.forward across families made
    dynamo hit its recompile limit (8) after a few models and run the rest eager."""
    import torch._dynamo

    torch._dynamo.reset()
    models = [("lenet5", 32), ("lenet5_modern", 32), ("resnet20", 32), ("alexnet", 64),
              ("squeezenet1_1", 64), ("mobilenet_v2", 32), ("shufflenet_v2_x0_5", 32),
              ("vgg11", 32), ("resnet18", 32)]
    with torch._dynamo.config.patch(fail_on_recompile_limit_hit=True):
        for name, size in models:
            m = cnnzoo.create_model(name, num_classes=10)
            compiled = torch.compile(m, backend="eager", fullgraph=True)
            x = torch.randn(2, m.in_chans, size, size)
            compiled.train()
            compiled(x)
            compiled.eval()
            compiled(x)
