"""The analyzer against the seeds' own tables, and every disagreement between a printed number and
the seed's rule (docs/analysis.md lists them with the arithmetic). Models are built on the meta
device: nothing is computed, nothing is allocated."""

import pytest
import torch
import torchvision
from torch import nn

from cnnzoo.analysis import analyze

KB = 1024


def tv(name, **kw):
    with torch.device("meta"):
        return getattr(torchvision.models, name)(**kw)


# seed 003, the AlexNet table: layer, in C, in H/W, filters, kernel, stride, pad, out C, out H/W,
# memory (KB), params (k), flop (M)  -- as printed
SEED_ALEXNET = [
    ("conv1", 3, 227, 64, 11, 4, 2, 64, 56, 784, 23, 73),
    ("pool1", 64, 56, None, 3, 2, 0, 64, 27, 182, 0, 0),
    ("conv2", 64, 27, 192, 5, 1, 2, 192, 27, 547, 307, 224),
    ("pool2", 192, 27, None, 3, 2, 0, 192, 13, 127, 0, 0),
    ("conv3", 192, 13, 384, 3, 1, 1, 384, 13, 254, 664, 112),
    ("conv4", 384, 13, 256, 3, 1, 1, 256, 13, 169, 885, 145),
    ("conv5", 256, 13, 256, 3, 1, 1, 256, 13, 169, 590, 100),
    ("pool5", 256, 13, None, 3, 2, 0, 256, 6, 36, 0, 0),
    ("flatten", 256, 6, None, None, None, None, 9216, None, 36, 0, 0),
    ("fc6", 9216, None, 4096, None, None, None, 4096, None, 16, 37749, 38),
    ("fc7", 4096, None, 4096, None, None, None, 4096, None, 16, 16777, 17),
    ("fc8", 4096, None, 1000, None, None, None, 1000, None, 4, 4096, 4),
]
# the zoo's `alexnet` (torchvision-compatible names) has the seed's layers, plus an
# AdaptiveAvgPool2d(6) that is an identity at 227: left out of the comparison
TV_ALEXNET_NAMES = ["features.0", "features.2", "features.3", "features.5", "features.6",
                    "features.8", "features.10", "features.12", "flatten", "classifier.1",
                    "classifier.4", "classifier.6"]
# printed numbers that disagree with the seed's own rule: (layer, column) -> value by the rule
ALEXNET_DISAGREE = {("conv4", "flop"): 150, ("fc6", "params"): 37753, ("fc7", "params"): 16781,
                    ("fc8", "params"): 4097}


@pytest.fixture(scope="module")
def alexnet():
    return analyze("alexnet", (3, 227, 227))  # `cnnzoo summary alexnet --input 3x227x227`


def test_zoo_alexnet_equals_torchvision_alexnet(alexnet):
    tv_rows = analyze(tv("alexnet"), (3, 227, 227)).rows
    assert [r.as_dict() for r in alexnet.rows] == [r.as_dict() for r in tv_rows]


def _hw(shape):
    return shape[1] if len(shape) > 1 else None


def test_alexnet_table_row_by_row(alexnet):
    for seed, name in zip(SEED_ALEXNET, TV_ALEXNET_NAMES):
        r = alexnet.find(name)
        layer, c, hw, filters, k, s, p, oc, ohw, mem, params, flop = seed
        assert (r.in_shape[0], _hw(r.in_shape), r.filters) == (c, hw, filters), layer
        assert (r.out_shape[0], _hw(r.out_shape)) == (oc, ohw), layer
        assert (r.kernel and r.kernel[0], r.stride and r.stride[0], r.pad and r.pad[0]) == (k, s, p), layer
        assert round(r.memory / KB) == mem, layer
        got = {"params": round(r.params / 1000), "flop": round(r.macs / 1e6)}
        for col, printed in (("params", params), ("flop", flop)):
            assert got[col] == ALEXNET_DISAGREE.get((layer, col), printed), (layer, col)


def test_alexnet_exact_values_of_the_worked_examples(alexnet):
    # the seed's arithmetic: 200,704 output elements, 784 KB, 23,296 params, 72,855,552 flop
    conv1 = alexnet.find("features.0")
    assert conv1.memory == 200_704 * 4 and conv1.memory / KB == 784
    assert conv1.params == 23_296 and conv1.macs == 72_855_552
    pool1 = alexnet.find("features.2")
    assert pool1.memory / KB == 182.25 and pool1.macs == 419_904  # "0.4 MFLOP" (table: 0)
    assert alexnet.find("flatten").out_shape == (9216,)
    assert alexnet.find("classifier.1").macs == 37_748_736


def test_disagreement_alexnet_conv4_flop(alexnet):
    # printed 145 M; rule: 256*13*13 * 384*3*3 = 43,264 * 3,456 = 149,520,384
    assert alexnet.find("features.8").macs == 256 * 13 * 13 * 384 * 3 * 3 == 149_520_384


def test_disagreement_alexnet_fc_params_omit_biases(alexnet):
    # fc6: printed formula "9216*4096 + 4096 = 37,725,832" is wrong arithmetic, its table cell
    # 37,749 is the weights alone (37,748,736); weights + biases = 37,752,832
    assert alexnet.find("classifier.1").params == 9216 * 4096 + 4096 == 37_752_832
    # fc7 printed 16,777 (= 4096*4096 weights only), fc8 printed 4,096 (= 4096*1000)
    assert alexnet.find("classifier.4").params == 16_781_312
    assert alexnet.find("classifier.6").params == 4_097_000


def test_disagreement_alexnet_memory_total(alexnet):
    # seed 003: "AlexNet total: 1.9 MB". The rows of its own table sum to 2,339 KB = 2.28 MB;
    # 1.9 MB is the five conv outputs alone (1,922 KB = 1.88 MB).
    seed_rows = [alexnet.find(n) for n in TV_ALEXNET_NAMES]
    assert round(sum(r.memory for r in seed_rows) / KB) == 2339
    conv = sum(r.memory for r in seed_rows if r.kind == "conv")
    assert round(conv / KB) == 1922 and round(conv / 2**20, 1) == 1.9
    assert round(sum(r.memory for r in seed_rows) / 2**20, 2) == 2.28


def test_alexnet_totals_agree(alexnet):
    # "AlexNet total: 61M" params, "0.7 GFLOP" (multiply-adds)
    assert round(alexnet.total_params / 1e6) == 61
    assert round(alexnet.total_macs / 1e9, 1) == 0.7


# seed 003, the GoogLeNet stem (as printed): memory KB, params k, flop M
SEED_STEM = [(64, 112, 3136, 9, 118), (64, 56, 784, 0, 2), (64, 56, 784, 4, 13),
             (192, 56, 2352, 111, 347), (192, 28, 588, 0, 1)]


@pytest.fixture(scope="module")
def stem():
    with torch.device("meta"):
        m = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3), nn.MaxPool2d(3, 2, 1),
                          nn.Conv2d(64, 64, 1), nn.Conv2d(64, 192, 3, 1, 1), nn.MaxPool2d(3, 2, 1))
    return analyze(m, (3, 224, 224))


def test_googlenet_stem_rows(stem):
    for r, (c, hw, mem, params, flop) in zip(stem.rows, SEED_STEM):
        assert (r.out_shape[0], r.out_shape[1]) == (c, hw)
        assert (round(r.memory / KB), round(r.params / 1000), round(r.macs / 1e6)) == (mem, params, flop)
    assert round(stem.total_memory / 2**20, 1) == 7.5  # "Memory: 7.5 MB"
    assert round(stem.total_params / 1000) == 124  # "Params: 124K"


def test_disagreement_googlenet_stem_mflop_total(stem):
    # printed "MFLOP: 418"; its own rows sum to 118+2+13+347+1 = 481 (exactly 480,836,608):
    # 418 is 481 with two digits swapped
    assert stem.total_macs == 118_013_952 + 1_806_336 + 12_845_056 + 346_816_512 + 1_354_752
    assert round(stem.total_macs / 1e6) == 481


@pytest.fixture(scope="module")
def vgg16():
    return analyze("vgg16", (3, 224, 224))  # the zoo's VGG-16 (configuration D)


def test_zoo_vgg16_equals_torchvision_vgg16(vgg16):
    assert [r.as_dict() for r in vgg16.rows] == [r.as_dict() for r in analyze(tv("vgg16"), (3, 224, 224)).rows]


def test_googlenet_stem_compare_vgg16_figures(vgg16):
    # "Compare VGG-16: Memory 42.9 MB, Params 1.1M, MFLOP 7485": these are VGG-16's first six
    # convs (conv1_1 .. conv3_2, up to 56x56, pools left out), not "224 to 28" as captioned
    convs = [r for r in vgg16.rows if r.kind == "conv"][:6]
    assert round(sum(r.memory for r in convs) / 2**20, 1) == 42.9
    assert round(sum(r.params for r in convs) / 1e6, 1) == 1.1
    assert round(sum(r.macs for r in convs) / 1e6) == 7485
    # really 224 -> 28 (through pool3): 51.3 MB, 1.7M params, 9,341 M multiply-adds
    upto28 = vgg16.rows[: [r.name for r in vgg16.rows].index("features.16") + 1]
    assert round(sum(r.memory for r in upto28) / 2**20, 1) == 51.3
    assert round(sum(r.params for r in upto28) / 1e6, 1) == 1.7
    assert round(sum(r.macs for r in upto28) / 1e6) == 9341


def test_googlenet_head_rows_and_fc_memory():
    # seed 003: avg-pool 1024x7 -> 1: 4 KB, 0 params, 0 flop; fc 1024 -> 1000: params 1025 k,
    # flop 1 M, memory printed 0 -- by the rule 1000*4/1024 = 3.9 KB (a disagreement)
    with torch.device("meta"):
        m = nn.Sequential(nn.AvgPool2d(7, 1), nn.Flatten(), nn.Linear(1024, 1000))
    r = analyze(m, (1024, 7, 7))
    pool, fc = r.rows[0], r.rows[2]
    assert (round(pool.memory / KB), pool.params, round(pool.macs / 1e6)) == (4, 0, 0)
    assert pool.macs == 1024 * 49
    assert (fc.params, round(fc.macs / 1e6)) == (1_025_000, 1)
    assert fc.memory / KB == pytest.approx(3.906, abs=1e-3)


# seed 001's VGG-16 list: output elements and weights ("params: 0 (not counting biases)")
SEED_VGG16 = [(3_211_264, 1_728), (3_211_264, 36_864), (802_816, 0), (1_605_632, 73_728),
              (1_605_632, 147_456), (401_408, 0), (802_816, 294_912), (802_816, 589_824),
              (802_816, 589_824), (200_704, 0), (401_408, 1_179_648), (401_408, 2_359_296),
              (401_408, 2_359_296), (100_352, 0), (100_352, 2_359_296), (100_352, 2_359_296),
              (100_352, 2_359_296), (25_088, 0), (4_096, 102_760_448), (4_096, 16_777_216),
              (1_000, 4_096_000)]


def test_vgg16_rows_of_seed_001(vgg16):
    rows = [r for r in vgg16.rows if r.kind in ("conv", "pool", "linear") and r.name != "avgpool"]
    assert len(rows) == len(SEED_VGG16)
    for r, (elems, weights) in zip(rows, SEED_VGG16):
        assert r.memory == elems * 4, r.name
        bias = r.filters if r.kind != "pool" else 0  # the seed leaves biases out; the rule counts them
        assert r.params == weights + bias, r.name
    assert round(vgg16.total_params / 1e6) == 138  # "TOTAL params: 138M parameters"


def test_disagreement_vgg16_total_memory(vgg16):
    # "TOTAL memory: 24M * 4 bytes ~= 93MB / image" (seed 004: ~= 96MB). The listed rows,
    # input included, sum to 15,237,608 values = 61 MB (58.1 MiB).
    rows = [r for r in vgg16.rows if r.kind in ("conv", "pool", "linear") and r.name != "avgpool"]
    values = 3 * 224 * 224 + sum(r.memory for r in rows) // 4
    assert values == 15_237_608 and round(values / 1e6, 1) == 15.2
    assert 24e6 * 4 / 1e6 == 96  # and 93 MB is neither 96 MB nor 96e6 / 2**20 = 91.6 MiB


def test_disagreement_vgg16_gflop(vgg16):
    # seed 003: "VGG-16 total: 13.6 GFLOP"; by the rule 15.5 G multiply-adds (convs 15.35 G,
    # as seed 004's summary (15.3 + 0.12) and the MobileNet paper (15,300 M) print)
    assert round(vgg16.total_macs / 1e9, 1) == 15.5
    conv = sum(r.macs for r in vgg16.rows if r.kind == "conv")
    fc = sum(r.macs for r in vgg16.rows if r.kind == "linear")
    assert round(conv / 1e9, 2) == 15.35 and round(fc / 1e9, 2) == 0.12


def test_disagreement_alexnet_vs_vgg16_memory_totals(vgg16):
    # seed 003: "VGG-16 total: 48.6 MB (25x)". No sum of rows gives 48.6 MB: conv outputs alone
    # are 51.7 MiB, with pools 57.5 MiB, every row and the input 58.2 MiB.
    conv = sum(r.memory for r in vgg16.rows if r.kind == "conv")
    assert round(conv / 2**20, 1) == 51.7
    assert round(vgg16.total_memory / 2**20, 1) != 48.6


def test_vgg16_classifier_rows_of_seed_003(vgg16):
    # "Compare with VGG-16" (GoogLeNet slide): flatten 98 KB; fc6 printed 102,760 k params
    # (weights only; rule 102,765), fc7 16,777 (rule 16,781), fc8 4,096 (rule 4,097)
    assert round(vgg16.find("flatten").memory / KB) == 98
    assert [round(vgg16.find(n).params / 1000) for n in ("classifier.0", "classifier.3",
                                                          "classifier.6")] == [102_765, 16_781, 4_097]
    assert [round(vgg16.find(n).macs / 1e6) for n in ("classifier.0", "classifier.3",
                                                       "classifier.6")] == [103, 17, 4]


@pytest.mark.parametrize("name,gmacs", [("resnet18", 1.8), ("resnet34", 3.7)])
def test_resnet_basic_gflop(name, gmacs):
    # seed 003: ResNet-18 1.8, ResNet-34 3.6 GFLOP. ResNet-34 by the rule: 3.666 G -> 3.7
    # (the paper's 3.6 is truncated; a disagreement of 0.07 G)
    r = analyze(tv(name), (3, 224, 224))
    assert round(r.total_macs / 1e9, 1) == gmacs


@pytest.mark.parametrize("name,v1,published", [("resnet50", 3.86, 3.8), ("resnet101", 7.57, 7.6),
                                                ("resnet152", 11.28, 11.3)])
def test_resnet_bottleneck_v1_gflop(name, v1, published):
    # The paper's (v1) counts: stride 2 in the first 1x1 conv of a stage. torchvision is v1.5
    # (stride in the 3x3): moving the stride back gives v1. ResNet-50: 3.86 G by the rule,
    # printed 3.8 (truncated); v1.5 costs 4.09 G.
    m = tv(name)
    v15 = analyze(m, (3, 224, 224)).total_macs
    for layer in (m.layer2, m.layer3, m.layer4):
        layer[0].conv1.stride, layer[0].conv2.stride = (2, 2), (1, 1)
    macs = analyze(m, (3, 224, 224)).total_macs
    assert round(macs / 1e9, 2) == v1
    assert abs(macs / 1e9 - published) < 0.07
    assert v15 > macs


def test_mobilenet_v1_from_seed_004_table():
    # seed 004's MobileNet body table (conv/s2 then 13 depthwise-separable pairs), 224x224:
    # "569 Million Mult-Adds, 4.2 Million Parameters"
    def dw_pw(cin, cout, s):
        return [nn.Conv2d(cin, cin, 3, s, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU(),
                nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

    cfg = [(32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2)]
    cfg += [(512, 512, 1)] * 5 + [(512, 1024, 2), (1024, 1024, 1)]
    with torch.device("meta"):
        layers = [nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU()]
        for c in cfg:
            layers += dw_pw(*c)
        m = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1024, 1000))
    r = analyze(m, (3, 224, 224))
    conv_fc = sum(x.macs for x in r.rows if x.kind in ("conv", "linear"))
    assert round(conv_fc / 1e6) == 569  # 568.7 M: agrees
    no_bn = sum(x.params for x in r.rows if x.kind != "norm")
    assert round(no_bn / 1e6, 1) == 4.2  # 4,231,976 weights; BN adds 21,888 more (4.25 M)
    assert r.total_params - no_bn == 2 * sum(x.out_shape[0] for x in r.rows if x.kind == "norm")


# seed 001's GoogLeNet table (the paper's Table 1): per inception module
# (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj), printed params (K) and ops (M)
SEED_INCEPTION = [("3a", (64, 96, 128, 16, 32, 32), 159, 128), ("3b", (128, 128, 192, 32, 96, 64), 380, 304),
                  ("4a", (192, 96, 208, 16, 48, 64), 364, 73), ("4b", (160, 112, 224, 24, 64, 64), 437, 88),
                  ("4c", (128, 128, 256, 24, 64, 64), 463, 100), ("4d", (112, 144, 288, 32, 64, 64), 580, 119),
                  ("4e", (256, 160, 320, 32, 128, 128), 840, 170), ("5a", (256, 160, 320, 32, 128, 128), 1072, 54),
                  ("5b", (384, 192, 384, 48, 128, 128), 1388, 71)]
# by the rule: weights (K, rounded) and conv multiply-adds (M, rounded) of each row
RULE_GOOGLENET = {"conv1": (9, 118), "conv2": (115, 360), "3a": (163, 128), "3b": (388, 304),
                  "4a": (376, 74), "4b": (449, 88), "4c": (509, 100), "4d": (605, 119),
                  "4e": (867, 170), "5a": (1042, 51), "5b": (1443, 71), "fc": (1024, 1)}
PRINTED_GOOGLENET = {"conv1": (2.7, 34), "conv2": (112, 360), "fc": (1000, 1),
                     **{n: (p, o) for n, _, p, o in SEED_INCEPTION}}


class _Inception(nn.Module):
    def __init__(self, cin, c):
        super().__init__()
        def cr(i, o, k, p=0):
            return nn.Sequential(nn.Conv2d(i, o, k, padding=p), nn.ReLU())
        self.b1 = cr(cin, c[0], 1)
        self.b2 = nn.Sequential(cr(cin, c[1], 1), cr(c[1], c[2], 3, 1))
        self.b3 = nn.Sequential(cr(cin, c[3], 1), cr(c[3], c[4], 5, 2))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), cr(cin, c[5], 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


@pytest.fixture(scope="module")
def paper_googlenet():
    from collections import OrderedDict

    with torch.device("meta"):
        layers = OrderedDict(conv1=nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3), nn.ReLU()),
                             pool1=nn.MaxPool2d(3, 2, ceil_mode=True),
                             conv2=nn.Sequential(nn.Conv2d(64, 64, 1), nn.ReLU(), nn.Conv2d(64, 192, 3, padding=1), nn.ReLU()),
                             pool2=nn.MaxPool2d(3, 2, ceil_mode=True))
        cin = 192
        for name, c, _, _ in SEED_INCEPTION:
            if name in ("4a", "5a"):
                layers[f"pool{name}"] = nn.MaxPool2d(3, 2, ceil_mode=True)
            layers[name] = _Inception(cin, c)
            cin = c[0] + c[2] + c[4] + c[5]
        layers.update(avgpool=nn.AvgPool2d(7, 1), flatten=nn.Flatten(), dropout=nn.Dropout(0.4),
                      fc=nn.Linear(1024, 1000))
        model = nn.Sequential(layers)
    return analyze(model, (3, 224, 224))


def test_googlenet_table_of_seed_001(paper_googlenet):
    r = paper_googlenet
    modules = r.aggregate(1)
    assert [modules.find(n).out_shape for n in ("3a", "3b", "4e", "5b")] == [
        (256, 28, 28), (480, 28, 28), (832, 14, 14), (1024, 7, 7)]
    for name, (weights_k, ops_m) in RULE_GOOGLENET.items():
        rows = [x for x in r.rows if x.name.split(".")[0] == name and x.kind in ("conv", "linear")]
        weights = sum(x.params - x.filters for x in rows)  # the paper's params leave biases out
        ops = sum(x.macs for x in rows)  # the paper's ops: convolutions (pooling not counted)
        assert (round(weights / 1000), round(ops / 1e6)) == (weights_k, ops_m), name
    # ops agree with the printed column except conv1 (34 M), 4a (73.6 M printed 73) and 5a
    # (51.1 M printed 54); the params column is below the rule in every row but 5a
    ops_agree = [n for n in RULE_GOOGLENET if RULE_GOOGLENET[n][1] == PRINTED_GOOGLENET[n][1]]
    assert sorted(set(RULE_GOOGLENET) - set(ops_agree)) == ["4a", "5a", "conv1"]
    assert all(RULE_GOOGLENET[n][0] != PRINTED_GOOGLENET[n][0] for n in RULE_GOOGLENET)
    # conv1: 2.7 K and 34 M are consistent with each other (2.7 K x 112 x 112 = 34 M) but the
    # layer has 7*7*3*64 = 9,408 weights: 118 M multiply-adds
    assert r.find("conv1.0").params - 64 == 9408 and r.find("conv1.0").macs == 118_013_952


def test_disagreement_googlenet_total_params(paper_googlenet):
    # seeds 001 and 004: "Only 5 million params!"; the table's own rows give 7.0 M (weights
    # and biases; 6.99 M weights). Seed 004's MobileNet table prints 6.8 M and 1550 M mult-adds:
    # by the rule 1.58 G in convs + fc (1.60 G with pooling)
    assert round(paper_googlenet.total_params / 1e6, 1) == 7.0
    conv_fc = sum(x.macs for x in paper_googlenet.rows if x.kind in ("conv", "linear"))
    assert round(conv_fc / 1e9, 2) == 1.58 and round(paper_googlenet.total_macs / 1e9, 2) == 1.60


def test_zoo_googlenet_stem_by_depth_1():
    # `cnnzoo summary googlenet --depth 1`: each conv block (conv + ReLU) reads as its conv, and the
    # stem rows are seed 003's (the paper's LRN rows in between cost no params or MACs)
    r = analyze("googlenet").aggregate(1)
    stem = [r.find(n) for n in ("conv1", "maxpool1", "conv2", "conv3", "maxpool2")]
    assert [(x.filters, x.kernel and x.kernel[0], x.stride and x.stride[0]) for x in stem] == [
        (64, 7, 2), (None, 3, 2), (64, 1, 1), (192, 3, 1), (None, 3, 2)]
    for x, (c, hw, mem, params, flop) in zip(stem, SEED_STEM):
        assert (x.out_shape[:2], round(x.memory / KB), round(x.params / 1000), round(x.macs / 1e6)) == (
            (c, hw), mem, params, flop)
    assert all(x.params == 0 and x.macs == 0 for x in (r.find("lrn1"), r.find("lrn2")))


def test_disagreement_seed004_summary_table():
    # seed 004's "Summary" table, GOP column (conv / FC, multiply-adds at 224):
    # AlexNet 0.67 / 0.05 -> rule 0.66 / 0.06 (conv 655,566,528; FC 58,621,952)
    r = analyze("alexnet", (3, 224, 224))
    conv = sum(x.macs for x in r.rows if x.kind == "conv")
    fc = sum(x.macs for x in r.rows if x.kind == "linear")
    assert (round(conv / 1e9, 2), round(fc / 1e9, 2)) == (0.66, 0.06)
    # VGG-11/13/19 conv 6.5 / 10.2 / 16.8 -> rule 7.49 / 11.18 / 19.51 (VGG-16's 15.3 agrees);
    # their params 133 / 133 / 144 M agree
    for name, gop, params in (("vgg11", 7.49, 133), ("vgg13", 11.18, 133), ("vgg16", 15.35, 138),
                              ("vgg19", 19.51, 144)):
        v = analyze(tv(name), (3, 224, 224))
        assert round(sum(x.macs for x in v.rows if x.kind == "conv") / 1e9, 2) == gop, name
        assert round(v.total_params / 1e6) == params, name
    # the CIFAR ResNet rows (20, 32, 56, 110, 1202 layers) carry ImageNet ResNet-18..152's GFLOPs
    # (1.8, 3.6, 3.86, 7.6, 11.3); by the rule at 32x32 they cost 0.04 .. 0.25 G
    for name, printed in (("resnet20", 1.8), ("resnet32", 3.6), ("resnet56", 3.86), ("resnet110", 7.6)):
        g = analyze(name).total_macs / 1e9
        assert g < 0.3 and printed / g > 25, name


def test_the_docs_table_of_disagreements_is_the_package_data():
    """docs/analysis.md's table is generated from cnnzoo.analysis.disagreements (the serve model
    page shows the same entries), so the two cannot drift apart."""
    from pathlib import Path

    from cnnzoo.analysis.disagreements import DISAGREEMENTS, disagreements_for, markdown_table

    doc = (Path(__file__).resolve().parents[1] / "docs" / "analysis.md").read_text()
    assert markdown_table() in doc and len(DISAGREEMENTS) == 23
    assert [d.where for d in disagreements_for("resnet34")] == ["003, ResNet-34 GFLOP"]
    from cnnzoo import list_models

    registered = set(list_models())
    assert all(m in registered for d in DISAGREEMENTS for m in d.models)
