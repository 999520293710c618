import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import cnnzoo
from cnnzoo.errors import InputShapeError, InvalidArgumentError
from cnnzoo.models.lenet import EuclideanRBF, PartialConv2d, Squash, Subsample, c3_table, rbf_codes

SEED_004 = Path(__file__).resolve().parents[2] / "shared/seeds/004_be66231043799828.txt"

# The paper's Table I, typed from the paper: rows = S2 maps 0-5, columns = C3 maps 0-15.
PAPER_TABLE_I = """
X...XXX..XXXX.XX
XX...XXX..XXXX.X
XXX...XXX..X.XXX
.XXX..XXXX..X.XX
..XXX..XXXX.XX.X
...XXX..XXXX.XXX
"""


def trainable(m):
    return sum(p.numel() for p in m.parameters() if p.requires_grad)


def test_c3_table_is_the_papers_table_i():
    rows = PAPER_TABLE_I.split()
    paper = [sorted(r for r in range(6) if rows[r][c] == "X") for c in range(16)]
    assert c3_table() == paper
    assert sum(map(len, c3_table())) == 60


def test_seed_004_table_is_a_corrupted_transcription():
    if not SEED_004.exists():
        pytest.skip("seed 004 not beside the checkout")
    text = SEED_004.read_text()
    start = text.index("\t0\t1\t2\t3")
    rows = [line.split("\t")[1:17] for line in text[start:].splitlines()[1:7]]
    marks = sum(cell.strip() == "X" for row in rows for cell in row)
    assert marks == 63  # the paper's table has 60; the rule-built one is used instead
    seed = [sorted(r for r in range(6) if rows[r][c].strip() == "X") for c in range(16)]
    # Only C3 maps 0-2 survive; from column 3 on the rows are shifted (the paper's row 0
    # "X...XXX..XXXX.XX" reads "X..XXX..XXXXXX.." in the seed).
    assert seed[:3] == c3_table()[:3]
    assert all(seed[c] != c3_table()[c] for c in range(3, 16))


def test_lenet5_has_exactly_60000_trainable_parameters():
    with torch.device("meta"):
        m = cnnzoo.create_model("lenet5")
    assert (m.num_classes, m.in_chans) == (10, 1)  # the registry's defaults for LeNet-5
    per_layer = {name: sum(p.numel() for p in mod.parameters())
                 for name, mod in m.named_children()}
    assert per_layer == {"act": 0, "c1": 156, "s2": 12, "c3": 1516, "s4": 32, "c5": 48120,
                         "f6": 10164, "output": 0}
    assert trainable(m) == 60_000 == cnnzoo.model_info("lenet5")["published"][0]["params"]
    # the RBF codes are a fixed buffer: saved with the model, never trained
    assert "output.codes" in m.state_dict() and m.output.codes.shape == (10, 84)
    # other class counts leave the count unchanged (the output layer has no trainable parameter)
    with torch.device("meta"):
        assert trainable(cnnzoo.create_model("lenet5", num_classes=1000)) == 60_000


def test_lenet5_modern_parameters():
    with torch.device("meta"):
        m = cnnzoo.create_model("lenet5_modern")
    # C1 156 + C3 (full) 16*(6*25+1) + C5 48,120 + F6 10,164 + output 84*10+10
    assert trainable(m) == 156 + 2416 + 48120 + 10164 + 850 == 61_706


def test_squash_and_subsampling_follow_the_paper():
    f = Squash()
    torch.testing.assert_close(f(torch.tensor([1.0, -1.0, 0.0])), torch.tensor([1.0, -1.0, 0.0]),
                               atol=1e-4, rtol=0)
    s = Subsample(2)
    with torch.no_grad():
        s.weight.copy_(torch.tensor([0.5, -2.0]))
        s.bias.copy_(torch.tensor([0.1, 0.2]))
    x = torch.arange(32.0).view(1, 2, 4, 4)
    sums = x.view(1, 2, 2, 2, 2, 2).sum((3, 5))  # 2x2 block sums
    expect = sums * torch.tensor([0.5, -2.0]).view(1, 2, 1, 1) + torch.tensor([0.1, 0.2]).view(1, 2, 1, 1)
    torch.testing.assert_close(s(x), expect)


def test_partial_conv_matches_per_map_convolutions():
    conv = PartialConv2d(c3_table(), 6, 5)
    assert [(c.in_channels, c.out_channels, c.groups) for c in conv.convs] == [
        (18, 6, 6), (36, 9, 9), (6, 1, 1)]  # fan-in 3, 4 and 6
    x = torch.randn(2, 6, 14, 14)
    out = conv(x)
    dense = conv.dense_weight()
    bias = torch.cat([c.bias for c in conv.convs])
    for o, ins in enumerate(c3_table()):
        unused = [i for i in range(6) if i not in ins]
        assert dense[o, unused].abs().sum() == 0
        ref = F.conv2d(x[:, ins], dense[o:o + 1, ins], bias[o:o + 1])
        torch.testing.assert_close(out[:, o:o + 1], ref)
    assert out.shape == (2, 16, 10, 10)
    torch.testing.assert_close(out, F.conv2d(x, dense, bias))  # the dense equivalent


def test_rbf_output_is_negative_squared_distance():
    m = cnnzoo.create_model("lenet5").eval()
    x = torch.randn(3, 1, 32, 32)
    with torch.no_grad():
        f6 = m.forward_head(m.forward_features(x), pre_logits=True)
        logits = m(x)
    assert f6.shape == (3, 84)
    manual = -((f6[:, None, :] - m.output.codes[None]) ** 2).sum(-1)
    torch.testing.assert_close(logits, manual)
    assert isinstance(m.output, EuclideanRBF)


def test_rbf_codes():
    c10, c15 = rbf_codes(10), rbf_codes(15)
    assert set(c15.unique().tolist()) == {-1.0, 1.0}
    torch.testing.assert_close(c15[:10], c10)  # digit bitmaps first
    torch.testing.assert_close(rbf_codes(15), c15)  # deterministic
    hamming = (torch.cdist(c15, c15, p=1) / 2)[~torch.eye(15, dtype=torch.bool)]
    assert hamming.min() >= 10  # every pair of codes is far apart
    # a digit code is a 7x12 drawing: '1' has its stem in the middle column
    one = c10[1].view(12, 7)
    assert (one[2:10, 3] == 1).all()


@pytest.mark.parametrize("name", ["lenet5", "lenet5_modern"])
@pytest.mark.parametrize("num_classes,in_chans", [(10, 1), (3, 3), (26, 1), (1, 2)])
def test_shapes_classes_channels(name, num_classes, in_chans):
    m = cnnzoo.create_model(name, num_classes=num_classes, in_chans=in_chans)
    for mode in (m.train, m.eval):
        mode()
        assert m(torch.randn(2, in_chans, 32, 32)).shape == (2, num_classes)
        assert m(torch.randn(2, in_chans, 44, 40)).shape == (2, num_classes)  # another valid size
    assert m.forward_features(torch.randn(1, in_chans, 32, 32)).shape == (1, m.num_features, 1, 1)


@pytest.mark.parametrize("name", ["lenet5", "lenet5_modern"])
def test_gradients_reach_every_parameter(name):
    m = cnnzoo.create_model(name).train()
    F.cross_entropy(m(torch.randn(4, 1, 32, 32)), torch.tensor([0, 1, 2, 3])).backward()
    for n, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, n
    # only the connected C3 kernels exist as parameters: 60 of them
    if name == "lenet5":
        assert sum(c.weight.grad.shape[0] * c.weight.grad.shape[1] for c in m.c3.convs) == 60


@pytest.mark.parametrize("name", ["lenet5", "lenet5_modern"])
def test_reset_classifier(name):
    m = cnnzoo.create_model(name).eval()
    m.reset_classifier(4)
    x = torch.randn(2, 1, 32, 32)
    assert m(x).shape == (2, 4)
    if name == "lenet5":
        assert m.output.codes.shape == (4, 84)
    m.reset_classifier(0)
    assert m(x).shape == (2, 84)  # F6's output


@pytest.mark.parametrize("name", ["lenet5", "lenet5_modern"])
def test_input_errors(name):
    m = cnnzoo.create_model(name)
    with pytest.raises(InputShapeError, match="at least 32x32"):
        m(torch.randn(1, 1, 28, 28))  # raw MNIST: the paper pads it to 32x32
    with pytest.raises(InputShapeError, match="built for 1 input channel"):
        m(torch.randn(1, 3, 32, 32))
    with pytest.raises(InvalidArgumentError, match="act must be one of squash, relu"):
        cnnzoo.create_model(name, act="sigmoid")


@pytest.mark.parametrize("name", ["lenet5", "lenet5_modern"])
def test_torch_compile_fullgraph(name):
    m = cnnzoo.create_model(name).eval()
    x = torch.randn(2, 1, 32, 32)
    compiled = torch.compile(m, backend="aot_eager", fullgraph=True)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), m(x))


def _idx(path: Path) -> np.ndarray:
    data = gzip.open(path).read()
    nd = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * nd).reshape(shape)


def _mnist(d: Path, split: str, n: int):
    x = torch.tensor(_idx(d / f"{split}-images-idx3-ubyte.gz")[:n]).float()
    y = torch.tensor(_idx(d / f"{split}-labels-idx1-ubyte.gz")[:n]).long()
    # the paper's input: 28x28 digit centred in 32x32, background -0.1, ink 1.175
    x = F.pad(x / 255 * 1.275 - 0.1, (2, 2, 2, 2), value=-0.1).unsqueeze(1)
    return x, y


@pytest.mark.parametrize("name,max_err", [("lenet5", 0.4), ("lenet5_modern", 0.3)])
def test_learns_real_mnist(name, max_err, real_mnist_dir):
    """200 Adam steps on 6,400 real training digits; error on 1,000 test digits (chance: 90%).
    Measured: lenet5 ~19%, lenet5_modern ~8% (one epoch of 32,000 digits: ~10% and ~3.5%)."""
    torch.set_num_threads(1)
    x, y = _mnist(real_mnist_dir, "train", 6400)
    xt, yt = _mnist(real_mnist_dir, "t10k", 1000)
    m = cnnzoo.create_model(name)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    for i in range(0, len(x), 32):
        loss = F.cross_entropy(m(x[i:i + 32]), y[i:i + 32])
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    with torch.no_grad():
        err = (m(xt).argmax(1) != yt).float().mean().item()
    assert err < max_err


@pytest.mark.parametrize("name", ["lenet5", "lenet5_modern"])
def test_bf16_autocast_and_channels_last(name):
    """The GPU paths (bf16 autocast, channels_last), exercised on the CPU."""
    m = cnnzoo.create_model(name).eval()
    x = torch.randn(4, 1, 32, 32)
    with torch.no_grad():
        ref = m(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = m(x)
        cl = m.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    # bf16 keeps ~3 significant digits; the RBF distances are ~84 in size
    torch.testing.assert_close(low.float(), ref, rtol=2e-2, atol=2e-2 * ref.abs().max().item())
    torch.testing.assert_close(cl, ref)


def test_save_load_keeps_the_fixed_codes(tmp_path):
    m = cnnzoo.create_model("lenet5", num_classes=12).eval()
    cnnzoo.save_model(tmp_path / "l.safetensors", m)
    m2, record = cnnzoo.load_model(tmp_path / "l.safetensors")
    assert (record["num_classes"], record["in_chans"]) == (12, 1)
    torch.testing.assert_close(m2.output.codes, m.output.codes)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(m2.eval()(x), m(x))


def test_cost_reproduces_the_papers_340908_connections():
    """The paper: "LeNet-5 ... 340,908 connections". Multiply-adds from the cost analyser, plus one
    bias term per unit, plus the RBF's 84 x 10 squared differences, give exactly that."""
    macs = cnnzoo.analyze("lenet5").total_macs
    # C1 28*28*6*25 + S2 14*14*6*4 + C3 10*10*60*25 + S4 5*5*16*4 + C5 120*400 + F6 84*120
    assert macs == 117_600 + 4_704 + 150_000 + 1_600 + 48_000 + 10_080 == 331_984
    # bias terms: C1 4,704 units; S2's coefficient and bias are its 5th connection per unit
    # (14*14*6 = 1,176); C3 1,600; S4 400; C5 120; F6 84
    biases = 4_704 + 1_176 + 1_600 + 400 + 120 + 84
    assert macs + biases + 84 * 10 == 340_908
