"""The lecture notes' printed numbers that disagree with their own counting rules, found by the
analyzer: one entry each, with the models it concerns (the `serve` model page and
docs/analysis.md show them; tests/test_analysis_seeds.py has a test per entry).

Fields: where (seed file and the figure), printed (the seed's number), rule (what the seed's own
rule gives, which the analyzer follows), arithmetic (how), models (registry names concerned).
"""

from __future__ import annotations

from typing import NamedTuple


class Disagreement(NamedTuple):
    where: str
    printed: str
    rule: str
    arithmetic: str
    models: tuple[str, ...]


DISAGREEMENTS: tuple[Disagreement, ...] = (
    Disagreement('003, AlexNet conv4 flop',
                 '145 M',
                 '149.5 M (150)',
                 '256·13·13 × 384·3·3 = 43,264 × 3,456 = 149,520,384',
                 ('alexnet', 'alexnet_original')),
    Disagreement('003, AlexNet fc6 params (formula)',
                 '37,725,832',
                 '37,752,832',
                 '9216·4096 + 4096 = 37,748,736 + 4,096 = 37,752,832 (the printed sum is wrong)',
                 ('alexnet', 'alexnet_original')),
    Disagreement('003, AlexNet fc6 params (table)',
                 '37,749 k',
                 '37,753 k',
                 'the cell is the weights alone, 37,748,736 (= the fc6 flop)',
                 ('alexnet', 'alexnet_original')),
    Disagreement('003, AlexNet fc7 params',
                 '16,777 k',
                 '16,781 k',
                 '4096·4096 + 4096 = 16,781,312; 16,777,216 omits the biases',
                 ('alexnet', 'alexnet_original')),
    Disagreement('003, AlexNet fc8 params',
                 '4,096 k',
                 '4,097 k',
                 '4096·1000 + 1000 = 4,097,000',
                 ('alexnet', 'alexnet_original')),
    Disagreement('003, "AlexNet total: 1.9 MB" memory',
                 '1.9 MB',
                 '2.28 MB',
                 "the table's rows: 784+182.25+546.75+126.75+253.5+169+169+36+36+16+16+3.9 = 2,339 KB = 2.28 MB; 1.9 MB is the five conv outputs alone (1,922 KB = 1.88 MB)",
                 ('alexnet', 'alexnet_original')),
    Disagreement('003, GoogLeNet stem "MFLOP: 418"',
                 '418 M',
                 '481 M',
                 '118,013,952 + 1,806,336 + 12,845,056 + 346,816,512 + 1,354,752 = 480,836,608: the rows sum to 481 (digits swapped)',
                 ('googlenet', 'googlenet_tv')),
    Disagreement('003, GoogLeNet fc memory',
                 '0 KB',
                 '3.9 KB',
                 '1000 × 4 / 1024 = 3.9',
                 ('googlenet', 'googlenet_tv')),
    Disagreement('003, "Compare VGG-16" with the stem "224 to 28"',
                 '42.9 MB, 1.1 M, 7485 M',
                 '51.3 MB, 1.7 M, 9,341 M',
                 "the printed figures are VGG-16's first six convs (conv1_1..conv3_2, up to 56x56, pools left out): 43,904 KB = 42.9 MB, 1,145,408 params, 7,485 M; through pool3 (28x28) the rule gives 52,528 KB, 1,735,488 params, 9,341 M",
                 ('vgg16',)),
    Disagreement('003, "VGG-16 total: 13.6 GFLOP"',
                 '13.6 G',
                 '15.5 G MACs',
                 "convs 15,346,630,656 + FC 123,633,664 + pools 6,146,560 = 15,476,410,880; seed 004's summary (15.3 + 0.12) and the MobileNet paper (15,300 M) agree with the rule",
                 ('vgg16',)),
    Disagreement('003, "VGG-16 total: 48.6 MB"',
                 '48.6 MB',
                 '57.5 MB',
                 'no sum of rows gives 48.6 MB: conv outputs 13,547,520 values = 51.7 MiB; with the pools 15,077,888 = 57.5 MiB; every row and the input 58.2 MiB',
                 ('vgg16',)),
    Disagreement('003, VGG-16 fc6/fc7/fc8 params ("Compare with VGG-16")',
                 '102,760 / 16,777 / 4,096 k',
                 '102,765 / 16,781 / 4,097 k',
                 'biases omitted: 25088·4096 + 4096 = 102,764,544',
                 ('vgg16',)),
    Disagreement('001/004, "TOTAL memory: 24M" (VGG-16)',
                 '24 M values',
                 '15.2 M',
                 'input 150,528 + convs 13,547,520 + pools 1,530,368 + FCs 9,192 = 15,237,608 values = 61 MB; also "24M × 4 bytes ~= 93MB" (001) vs "~= 96MB" (004): 24e6 × 4 = 96 MB = 91.6 MiB',
                 ('vgg16',)),
    Disagreement('001, VGG-16 params per layer',
                 'weights only',
                 '+ biases',
                 'the list says "not counting biases": conv1_1 1,728 + 64 = 1,792, ... (its 138M total is right either way: 138,344,128 weights, 138,357,544 with biases)',
                 ('vgg16',)),
    Disagreement('003, ResNet-34 GFLOP',
                 '3.6',
                 '3.66 (3.7)',
                 'torchvision ResNet-34: 3,665,592,832 MACs (convs 3,663,249,408 + fc 512,000 + pools 1,831,424)',
                 ('resnet34',)),
    Disagreement('001/003, ResNet-50 GFLOP (v1)',
                 '3.8',
                 '3.86 (3.9)',
                 "v1 (stride in the first 1x1): 3,859,879,936 MACs; torchvision's v1.5 costs 4,091,090,944. ResNet-101 v1 7.57 (7.6 ✓), ResNet-152 v1 11.28 (11.3 ✓), ResNet-18 1.82 (1.8 ✓)",
                 ('resnet50_v1', 'resnet101_v1', 'resnet152_v1', 'resnet18')),
    Disagreement('001, GoogLeNet table conv1',
                 '2.7 K, 34 M',
                 '9.4 K, 118 M',
                 '7·7·3·64 = 9,408 weights; × 112·112 = 118,013,952 (2.7 K × 12,544 = 34 M: the two printed cells agree with each other, not with the layer)',
                 ('googlenet', 'googlenet_tv')),
    Disagreement('001, GoogLeNet table params column',
                 '112, 159, 380, 364, 437, 463, 580, 840, 1072, 1388, 1000 K',
                 '115, 163, 388, 376, 449, 509, 605, 867, 1042, 1443, 1024 K',
                 'weights of each row, e.g. 3a: 192·64 + 192·96 + 96·128·9 + 192·16 + 16·32·25 + 192·32 = 163,328; the ops column agrees with the rule (3a: 163,328 × 28·28 = 128 M) except 4a (73.6 M printed 73) and 5a (51.1 M printed 54)',
                 ('googlenet', 'googlenet_tv')),
    Disagreement('001/004, "Only 5 million params" (GoogLeNet)',
                 '5 M',
                 '7.0 M',
                 "the table's own layers: 6,998,552 with biases (6.99 M weights); seed 004's MobileNet table prints 6.8 M and 1,550 M mult-adds (rule: 1,583 M in convs + fc)",
                 ('googlenet', 'googlenet_tv')),
    Disagreement('003, AlexNet pool1 flop cell',
                 '0',
                 '0.4 M',
                 "64·27·27 × 3·3 = 419,904: the slide's own text says 0.4 MFLOP; the table rounds it to 0 (all pools: 0.4, 0.3, 0.08 M)",
                 ('alexnet', 'alexnet_original')),
    Disagreement('004, summary table, AlexNet GOP conv / FC',
                 '0.67 / 0.05',
                 '0.66 / 0.06',
                 'at 224: convs 655,566,528, FCs 9216·4096 + 4096·4096 + 4096·1000 = 58,621,952',
                 ('alexnet',)),
    Disagreement('004, summary table, VGG-11 / 13 / 19 conv GOP',
                 '6.5 / 10.2 / 16.8',
                 '7.49 / 11.18 / 19.51',
                 "conv multiply-adds of configurations A / B / E at 224 (VGG-16's 15.3 agrees: 15.35)",
                 ('vgg11', 'vgg13', 'vgg19')),
    Disagreement('004, summary table, ResNet-20 / 32 / 56 / 110 / 1202 GOP',
                 '1.8 / 3.6 / 3.86 / 7.6 / 11.3',
                 '0.04 / 0.07 / 0.13 / 0.25 / 2.83',
                 "the CIFAR rows carry ImageNet ResNet-18 / 34 / 50 / 101 / 152's GFLOPs; the zoo's CIFAR models at 32x32: 40,618,496 ... 2,829,306,368 MACs",
                 ('resnet20', 'resnet32', 'resnet56', 'resnet110', 'resnet1202')),
)


def disagreements_for(model: str) -> list[Disagreement]:
    """The entries that concern `model` (a registry name)."""
    return [d for d in DISAGREEMENTS if model in d.models]


def markdown_table() -> str:
    """The table of docs/analysis.md, generated from the entries."""
    lines = ["| # | where | printed | by the rule | arithmetic |", "|---|---|---|---|---|"]
    lines += [f"| {i} | {d.where} | {d.printed} | {d.rule} | {d.arithmetic} |"
              for i, d in enumerate(DISAGREEMENTS, 1)]
    return "\n".join(lines)
