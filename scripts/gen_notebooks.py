"""Write the lecture notebooks (notebooks/*.ipynb) from the cells below, and run them.

    python scripts/gen_notebooks.py            # rewrite notebooks/ (outputs empty)
    python scripts/gen_notebooks.py --check    # exit 1 if notebooks/ differs from this file
    python scripts/gen_notebooks.py --run [NAME ...]  # execute in a fresh kernel, fail on any error

One notebook per lecture of the course. Each runs top to bottom from the installed package on
the embedded MNIST subset (no download) in about 90 seconds on 2 CPU cores. The first cell
installs cnnzoo where it is missing (a hosted notebook): from CNNZOO_SOURCE if set (a git URL
or a path), else from PyPI's name.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "notebooks"
TIMEOUT_S = 300  # per cell; the whole notebook is expected near 90 s

INSTALL = '''# Installs cnnzoo when it is missing (Colab, Kaggle, a fresh kernel).
import importlib.util, os, subprocess, sys
if importlib.util.find_spec("cnnzoo") is None:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q",
                           os.environ.get("CNNZOO_SOURCE", "cnnzoo")])
import tempfile
from pathlib import Path

import torch
import cnnzoo
from cnnzoo.analysis.compare import compare
from cnnzoo.display import Table

torch.manual_seed(0)
WORK = Path(tempfile.mkdtemp(prefix="cnnzoo-notebook-"))  # runs and exports go here
print("cnnzoo", cnnzoo.__version__, "| torch", torch.__version__, "| work folder", WORK)'''

NOTEBOOKS: dict[str, list[tuple[str, str]]] = {
    "01-layer-arithmetic-and-lenet5": [
        ("md", "# 1. The layer arithmetic and LeNet-5\n\nEvery number in a CNN's cost table "
               "follows from four rules (seed 000):\n\n- output size: `(W - K + 2P) / S + 1`, "
               "rounded down\n- parameters of a conv layer: `Cout * (Cin/groups * K * K + 1)`\n"
               "- multiply-adds: `Cout * Hout * Wout * Cin/groups * K * K`\n- memory: output "
               "elements x 4 bytes (float32)\n\nThis notebook checks the rules against PyTorch, "
               "then reads LeNet-5's table and trains it."),
        ("code", INSTALL),
        ("code", '''def out_size(w, k, s=1, p=0):
    return (w - k + 2 * p) // s + 1

rows = []
for w, k, s, p in [(32, 5, 1, 0), (227, 11, 4, 0), (224, 7, 2, 3), (56, 3, 2, 1), (28, 1, 1, 0)]:
    conv = torch.nn.Conv2d(3, 8, k, s, p)
    torch_w = conv(torch.zeros(1, 3, w, w)).shape[-1]
    rows.append({"W": w, "K": k, "S": s, "P": p, "formula": out_size(w, k, s, p), "PyTorch": torch_w})
    assert out_size(w, k, s, p) == torch_w
Table(rows, caption="(W - K + 2P) / S + 1, rounded down, against a real Conv2d")'''),
        ("md", "LeNet-5 as LeCun et al. (1998) built it: 60,000 trainable parameters. The table "
               "shows each layer's output, memory, parameters and multiply-adds."),
        ("code", '''report = cnnzoo.analyze("lenet5")
report'''),
        ("code", '''c1 = next(r for r in report.rows if r.name == "c1")
assert c1.params == 6 * (1 * 5 * 5 + 1) and c1.macs == 6 * 28 * 28 * 5 * 5
print(f"params {report.total_params:,} (paper: 60,000), multiply-adds {report.total_macs:,}")'''),
        ("md", "## Train it\n\nTwo epochs on the embedded MNIST subset (10,000 real digits "
               "shipped in the package): validation held out, the test set scored once."),
        ("code", '''from cnnzoo.train import PrintReporter, fit

result = fit("lenet5", data="embedded", epochs=2, out=WORK / "lenet5", reporter=PrintReporter())
{k: result[k] for k in ("val_acc_pct", "test_acc_pct", "test_top1_err_pct") if k in result}'''),
        ("code", '''from IPython.display import Image
Image(filename=str(WORK / "lenet5" / "training_curves.png"))'''),
    ],
    "02-alexnet-zfnet-vgg": [
        ("md", "# 2. AlexNet, ZFNet and VGG: costs and filters\n\nSeed 003's observation: the "
               "convolutions hold most of the memory and the operations, the fully connected "
               "layers most of the parameters. VGG's answer to large kernels: stacks of 3x3."),
        ("code", INSTALL),
        ("code", '''compare(["alexnet", "zfnet", "vgg16"])'''),
        ("code", '''def split(name):
    rep = cnnzoo.analyze(name)
    conv = [r for r in rep.rows if r.kind == "conv"]
    fc = [r for r in rep.rows if r.kind == "linear"]
    return {"model": name,
            "conv share of memory (%)": round(100 * sum(r.memory for r in conv) / rep.total_memory, 1),
            "conv share of MACs (%)": round(100 * sum(r.macs for r in conv) / rep.total_macs, 1),
            "FC share of params (%)": round(100 * sum(r.params for r in fc) / rep.total_params, 1)}

Table([split(n) for n in ("alexnet", "zfnet", "vgg16")])'''),
        ("md", "## Two 3x3 convolutions see what one 5x5 sees, for less\n\nSimonyan & Zisserman "
               "sec. 2.3: with C channels, 2 x 9C² weights instead of 25C²."),
        ("code", '''C = 64
one = torch.nn.Conv2d(C, C, 5, padding=2, bias=False)
two = torch.nn.Sequential(torch.nn.Conv2d(C, C, 3, padding=1, bias=False), torch.nn.ReLU(),
                          torch.nn.Conv2d(C, C, 3, padding=1, bias=False))
a, b = cnnzoo.analyze(one, (C, 56, 56)), cnnzoo.analyze(two, (C, 56, 56))
assert a.total_params == 25 * C * C and b.total_params == 18 * C * C
Table([{"block": "one 5x5", "params": a.total_params, "MACs": a.total_macs},
       {"block": "two 3x3", "params": b.total_params, "MACs": b.total_macs}])'''),
        ("md", "## Filters\n\nThe first layer's filters before and after one epoch of training "
               "(lenet5_modern on the embedded digits; with `pretrained=True` the same call shows "
               "AlexNet's published filters, where the weights can be downloaded)."),
        ("code", '''from cnnzoo.train import PrintReporter, fit
from cnnzoo.visual.visualize import save_filters

untrained = cnnzoo.create_model("lenet5_modern")
save_filters(untrained, WORK / "filters_init.png", title="c1 at initialisation")
fit("lenet5_modern", data="embedded", epochs=1, out=WORK / "modern", reporter=PrintReporter())
trained, _record = cnnzoo.load_model(WORK / "modern" / "model.safetensors")
save_filters(trained, WORK / "filters_trained.png", title="c1 after one epoch")'''),
        ("code", '''from IPython.display import Image, display
display(Image(filename=str(WORK / "filters_init.png")), Image(filename=str(WORK / "filters_trained.png")))'''),
    ],
    "03-googlenet-1x1-and-inception": [
        ("md", "# 3. GoogLeNet, 1x1 convolutions and the inception reduction\n\nA 1x1 "
               "convolution mixes channels at each position (Network In Network, Lin et al. "
               "2013). GoogLeNet puts one before each 3x3 and 5x5 convolution to cut the "
               "channels first: seed 002's example, 28x28x192 to 28x28x32 with a 5x5."),
        ("code", INSTALL),
        ("code", '''nn = torch.nn
direct = nn.Conv2d(192, 32, 5, padding=2, bias=False)
reduced = nn.Sequential(nn.Conv2d(192, 16, 1, bias=False), nn.Conv2d(16, 32, 5, padding=2, bias=False))
a, b = cnnzoo.analyze(direct, (192, 28, 28)), cnnzoo.analyze(reduced, (192, 28, 28))
print(f"direct 5x5: {a.total_macs / 1e6:.1f} M multiply-adds; 1x1 to 16 first: {b.total_macs / 1e6:.1f} M "
      f"({a.total_macs / b.total_macs:.1f}x fewer)")'''),
        ("md", "## The whole module: naive against reduced\n\nInception (3a)'s shape, as in "
               "Szegedy et al. Fig. 2 and Table 1."),
        ("code", '''real = cnnzoo.create_model("googlenet").inception3a
rep = cnnzoo.analyze(real, (192, 28, 28))
print(f"inception (3a) as built: {rep.total_params:,} params, {rep.total_macs / 1e6:.0f} M multiply-adds")
print("the paper's Table 1: 159K params, 128M ops")'''),
        ("code", '''cnnzoo.analyze("googlenet").aggregate(1)'''),
        ("md", "## Network In Network: 1x1 layers everywhere, no fully connected layer"),
        ("code", '''nin = cnnzoo.analyze("nin_cifar")
ones = [r.name for r in nin.rows if r.kind == "conv" and r.kernel == (1, 1)]
print(len(ones), "of", sum(r.kind == "conv" for r in nin.rows), "convolutions are 1x1:", ", ".join(ones))
nin'''),
    ],
    "04-resnet-and-degradation": [
        ("md", "# 4. ResNet and the degradation problem\n\nHe et al. (2016) saw a deeper plain "
               "network reach a *higher training error* than a shallower one, which is not "
               "overfitting. Identity shortcuts fixed it. First the costs, then a small run."),
        ("code", INSTALL),
        ("code", '''compare(["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"])'''),
        ("md", "The bottleneck block (1x1 down, 3x3, 1x1 up) keeps ResNet-50 near ResNet-34's "
               "cost with three times the layers:"),
        ("code", '''r50 = cnnzoo.create_model("resnet50")
block = r50.layer3[1]
print(block)
print(f"{cnnzoo.analyze(block, (1024, 14, 14)).total_params:,} params in one layer3 bottleneck")'''),
        ("md", "## A small degradation run\n\nplain-20 and ResNet-20 (the CIFAR networks, "
               "section 4.2), the same recipe, 1,000 embedded digits for 2 epochs. At this size the "
               "curves are short: `cnnzoo experiment degradation` runs the measured version."),
        ("code", '''from cnnzoo.train import PrintReporter, fit

runs = {}
for name in ("plain20", "resnet20"):
    runs[name] = fit(name, data="embedded", epochs=2, out=WORK / name,
                     overrides={"limit_train": 1000, "batch_size": 64, "lr": 0.05, "schedule": "constant"},
                     reporter=PrintReporter())
Table([{"model": n, **{k: r[k] for k in ("train_acc_pct", "val_acc_pct", "test_acc_pct") if k in r}}
       for n, r in runs.items()])'''),
        ("code", '''from IPython.display import Image, display
display(*[Image(filename=str(WORK / n / "training_curves.png")) for n in runs])'''),
    ],
    "05-mobile-networks-and-deployment": [
        ("md", "# 5. MobileNet, ShuffleNet, SqueezeNet and deployment\n\nNetworks for phones: "
               "fewer multiply-adds and parameters at a small cost in accuracy. Then a model "
               "leaves PyTorch: ONNX, checked against eager, and int8."),
        ("code", INSTALL),
        ("code", '''compare(["resnet18", "mobilenet_v1", "mobilenet_v2", "shufflenet_v2_x1_0", "squeezenet1_1"])'''),
        ("md", "## Depthwise separable convolutions\n\nA 3x3 convolution from M to N channels "
               "costs `9MN` per position; depthwise (9M) then pointwise (MN) costs "
               "`9M + MN`, a ratio of `1/N + 1/9` (Howard et al. sec. 3.1)."),
        ("code", '''nn = torch.nn
M, N, S = 256, 256, 14
full = nn.Conv2d(M, N, 3, padding=1, bias=False)
sep = nn.Sequential(nn.Conv2d(M, M, 3, padding=1, groups=M, bias=False), nn.Conv2d(M, N, 1, bias=False))
a, b = cnnzoo.analyze(full, (M, S, S)), cnnzoo.analyze(sep, (M, S, S))
print(f"ratio {b.total_macs / a.total_macs:.4f}, formula 1/N + 1/9 = {1 / N + 1 / 9:.4f}")'''),
        ("code", '''rows = []
for name in ("mobilenet_v1", "mobilenet_v1_075", "mobilenet_v1_050", "mobilenet_v1_025"):
    rep = cnnzoo.analyze(name)
    rows.append({"model": name, "params": rep.total_params, "M multiply-adds": round(rep.total_macs / 1e6)})
Table(rows, caption="the width multiplier: cost falls roughly with alpha squared (Howard et al. Table 6)")'''),
        ("md", "## Export and check\n\nA LeNet-5 trained for one epoch goes to ONNX; ONNX "
               "Runtime's outputs are compared with PyTorch's, then an int8 copy is measured."),
        ("code", '''from cnnzoo.train import PrintReporter, fit
from cnnzoo.deploy.export import export_model

fit("lenet5_modern", data="embedded", epochs=1, out=WORK / "run", reporter=PrintReporter())
model, _record = cnnzoo.load_model(WORK / "run" / "model.safetensors")
report = export_model(model, WORK / "lenet5_modern.onnx", "onnx")
print("max |ONNX - eager| =", report["max_abs_diff"])'''),
        ("code", '''from cnnzoo.deploy.quantize import quantize_model

q = quantize_model(WORK / "run" / "model.safetensors", mode="static", calibrate="embedded",
                   check_images=1000, out=WORK / "lenet5_modern.int8.onnx")
{k: v for k, v in q.items() if "pct" in k or "bytes" in k}'''),
    ],
}


def build(name: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, text in NOTEBOOKS[name]:
        nb.cells.append(nbformat.v4.new_markdown_cell(text) if kind == "md" else nbformat.v4.new_code_cell(text))
    for i, c in enumerate(nb.cells):
        c["id"] = f"c{i:02d}"  # stable ids: regenerating gives the same file
    return nb


def _text(nb: nbformat.NotebookNode) -> str:
    return nbformat.writes(nb) + "\n"


def run(names: list[str]) -> int:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    failed = 0
    for name in names:
        path = OUT / f"{name}.ipynb"
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        try:
            NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3",
                           resources={"metadata": {"path": str(OUT)}}).execute()
        except CellExecutionError as err:
            failed += 1
            print(f"FAILED {path.name}:\n{str(err)[-3000:]}", file=sys.stderr)
            continue
        print(f"ok {path.name} ({time.perf_counter() - start:.0f} s)")
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--run"]:
        return run(argv[1:] or list(NOTEBOOKS))
    stale = [n for n in NOTEBOOKS if not (OUT / f"{n}.ipynb").is_file()
             or (OUT / f"{n}.ipynb").read_text() != _text(build(n))]
    if argv[:1] == ["--check"]:
        for n in stale:
            print(f"notebooks/{n}.ipynb is stale: run python scripts/gen_notebooks.py", file=sys.stderr)
        return 1 if stale else 0
    OUT.mkdir(exist_ok=True)
    for n in NOTEBOOKS:
        (OUT / f"{n}.ipynb").write_text(_text(build(n)))
    print(f"wrote {len(NOTEBOOKS)} notebooks to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
