"""Every CLI verb: the module that defines it (commands/MODULE.py, `register(app)`), its one-line
help for `cnnzoo --help`, and the examples that end its own `--help`. Light on purpose: reading
this table imports nothing, so `cnnzoo --help` starts in a fraction of `import torch`.

Adding a verb: write commands/NAME.py with its command function (options as `Annotated[...]`,
shared ones from `_options.py` and `_model_args.py`) and `register(app)` calling
`_lazy.verb(app, NAME, function)` (or `_lazy.group(...)` for sub-verbs); add its row here (a test
fails for a commands module missing from this table, for a verb without examples, and for a verb
added any other way)."""

from __future__ import annotations

from typing import NamedTuple


class Verb(NamedTuple):
    module: str
    help: str
    examples: tuple[str, ...]


VERBS: dict[str, Verb] = {
    "list": Verb("models", "List registered models: name, family, parameters, native input.", (
        "cnnzoo list",
        "cnnzoo list 'resnet*' --format json",
        "cnnzoo list --family vgg",
    )),
    "info": Verb("models", "Paper, native input size and published figures of a model.", (
        "cnnzoo info resnet50_v1",
        "cnnzoo info lenet5 --format json",
    )),
    "summary": Verb("analyze", "The lecture's per-layer cost table (memory, params, MACs, receptive "
                    "field) of a model or model file, computed on the meta device.", (
        "cnnzoo summary alexnet --input 3x227x227",
        "cnnzoo summary resnet50_v1 --depth 1 --format markdown",
        "cnnzoo summary lenet5 --rf --train-memory adam --batch-size 64",
    )),
    "compare": Verb("analyze", "Totals side by side (params, MACs, memory, published errors) and the "
                    "\"comparing complexity\" chart.", (
        "cnnzoo compare resnet34 plain34",
        "cnnzoo compare alexnet vgg16 googlenet resnet50 --plot complexity.png",
        "cnnzoo compare runs/lenet5-1/model.safetensors lenet5 --format json",
    )),
    "reconcile": Verb("analyze", "Why the cost counters disagree: cnnzoo beside torchvision's _ops, the "
                      "paper, fvcore, ptflops, thop and calflops, each difference a named rule.", (
        "cnnzoo reconcile resnet50",
        "cnnzoo reconcile alexnet --input 3x224x224 --format markdown",
        "cnnzoo reconcile mobilenet_v2 --counters fvcore,thop --json",
    )),
    "train": Verb("train", "Train a model on real data with its paper's recipe; resumable checkpoints.", (
        "cnnzoo train lenet5",
        "cnnzoo train resnet20 --data cifar10:~/data/cifar10 --epochs 30 --set label_smoothing=0.1",
        "cnnzoo train --list-fields",
    )),
    "eval": Verb("train", "Top-1/top-5 error (centre crop or 10-crop), per-class accuracy, confusion "
                 "matrix; several models: an ensemble.", (
        "cnnzoo eval runs/lenet5-1",
        "cnnzoo eval runs/lenet5-1 --data mnist:~/data/mnist --plot-confusion cm.png",
        "cnnzoo eval runs/a runs/b runs/c --combine mean --format json",
    )),
    "features": Verb("transfer", "Write the activations of a layer for a dataset (safetensors).", (
        "cnnzoo features digits04.safetensors --layer f6 --classes 5-9 --out f_train.safetensors",
        "cnnzoo features runs/lenet5-1 --data mnist:~/data/mnist --layer c5 --split test --out f.safetensors",
    )),
    "linear-probe": Verb("transfer", "Train a linear classifier on extracted features.", (
        "cnnzoo linear-probe f_train.safetensors --val f_test.safetensors",
        "cnnzoo linear-probe f_train.safetensors --val f_test.safetensors --format json",
    )),
    "finetune": Verb("transfer", "Fine-tune a trained model on new classes (or train from scratch, "
                     "--scratch).", (
        "cnnzoo finetune digits04.safetensors --classes 5-9 --per-class 5 --epochs 30",
        "cnnzoo finetune lenet5_modern --scratch --classes 0-4 --out digits04.safetensors",
    )),
    "convert": Verb("convert", "Convert a torchvision/timm weights file into a cnnzoo model file.", (
        "cnnzoo convert resnet18-f37072fd.pth r18.safetensors --model resnet18",
        "cnnzoo convert timm_resnet18.safetensors r18.safetensors --model resnet18 --format json",
    )),
    "export": Verb("export", "Export a model file (ONNX, TorchScript, ExportedProgram) with a dynamic "
                   "batch size, checked against the model.", (
        "cnnzoo export runs/lenet5-1 --out lenet5.onnx",
        "cnnzoo export digits04.safetensors --to torchscript --out digits04.torchscript --json",
        "cnnzoo export runs/lenet5-1 --int8 --calibrate mnist:~/data/mnist",
    )),
    "predict": Verb("predict", "Classify images with the preprocessing the model was trained with.", (
        "cnnzoo predict runs/lenet5-1 digit.png",
        "cnnzoo predict digits04.safetensors a.png b.png --top 3 --format json",
    )),
    "visualize": Verb("visualize", "PNG figures of what a network learned: filters, feature maps, "
                      "top-9 patches, deconvnet, Grad-CAM.", (
        "cnnzoo visualize filters runs/lenet5-1 --out filters.png",
        "cnnzoo visualize gradcam runs/lenet5-1 digit.png --out cam.png",
    )),
    "weights": Verb("weights", "Published ImageNet weights by model: source, top-1/top-5, "
                    "preprocessing; --download fetches them into the cache.", (
        "cnnzoo weights",
        "cnnzoo weights resnet50 --format json",
        "cnnzoo weights resnet18 --download",
    )),
    "data": Verb("data", "Data sets fetched and verified against their publishers' checksums: "
                 "fetch, list, verify.", (
        "cnnzoo data fetch cifar10",
        "cnnzoo data list --format json",
        "cnnzoo data verify",
    )),
    "bench": Verb("bench", "Time ours against the reference, interleaved: models (same architecture "
                  "and weights), training to an accuracy, the image-folder loader, mobile runtimes.", (
        "cnnzoo bench models --quick",
        "cnnzoo bench to-accuracy 99 --data mnist:~/data/mnist",
        "cnnzoo bench loader folder:photos --make-folder 3000",
    )),
    "experiment": Verb("experiment", "Rerun a claim from the lectures (degradation, ensembles, LRN, "
                       "3x3 vs 5x5, 1x1 reductions, auxiliary heads).", (
        "cnnzoo experiment --list",
        "cnnzoo experiment inception-reduction",
        "cnnzoo experiment degradation --quick --out results/deg",
    )),
    "serve": Verb("serve", "The zoo in a browser: model table, bubble chart, per-layer tables, "
                  "uploads with Grad-CAM, live training curves.", (
        "cnnzoo serve",
        "cnnzoo serve --port 8080 --runs runs",
    )),
}

# Sub-verbs of a verb that is a group (`cnnzoo visualize filters ...`): their examples.
SUB_EXAMPLES: dict[str, tuple[str, ...]] = {
    "bench models": (
        "cnnzoo bench models --quick",
        "cnnzoo bench models --models resnet50,mobilenet_v2 --batch 8 --format json",
        "cnnzoo bench models --device cuda --models resnet50 --no-loop",
    ),
    "bench to-accuracy": (
        "cnnzoo bench to-accuracy 99 --data mnist:~/data/mnist",
        "cnnzoo bench to-accuracy 99 --data mnist:~/data/mnist --repeats 5 --format json",
    ),
    "bench mobile": (
        "cnnzoo bench mobile",
        "cnnzoo bench mobile --models mobilenet_v2 --reps 50 --json",
    ),
    "bench loader": (
        "cnnzoo bench loader folder:photos --make-folder 3000 --images 1024 --reps 8",
        "cnnzoo bench loader folder:~/data/imagenet --workers 12 --device cuda --json",
    ),
    "data fetch": (
        "cnnzoo data fetch mnist",
        "cnnzoo data fetch imagenette --variant 320px --dir ~/data/imagenette",
        "cnnzoo data fetch cifar100 --dir ~/data/cifar100",
    ),
    "data list": (
        "cnnzoo data list",
        "cnnzoo data list --format json",
    ),
    "data verify": (
        "cnnzoo data verify",
        "cnnzoo data verify cifar10 --format json",
    ),
    "visualize filters": (
        "cnnzoo visualize filters runs/lenet5-1 --out filters.png",
        "cnnzoo visualize filters alexnet --out alexnet_conv1_untrained.png",
    ),
    "visualize features": (
        "cnnzoo visualize features runs/lenet5-1 three.png --layer c3 --out maps.png",
        "cnnzoo visualize features digits04.safetensors three.png --layer c1 --per-map --out maps.png",
    ),
    "visualize top9": (
        "cnnzoo visualize top9 runs/lenet5-1 --layer c3 --channel 12 --out top9.png",
        "cnnzoo visualize top9 runs/lenet5-1 --data mnist:~/data/mnist --layer c5 --channel 3 --out t.png",
    ),
    "visualize deconv": (
        "cnnzoo visualize deconv runs/lenet5-1 three.png --layer c5 --out deconv.png",
        "cnnzoo visualize deconv runs/lenet5-1 three.png --layer c3 --channel 4 --out deconv.png",
    ),
    "visualize occlusion": (
        "cnnzoo visualize occlusion runs/lenet5-1 three.png --out occlusion.png",
        "cnnzoo visualize occlusion runs/lenet5-1 three.png --size 8 --stride 2 --format json",
        "cnnzoo visualize --pretrained occlusion resnet50 cat.jpg --size 32 --stride 8 --target 281",
    ),
    "visualize gradcam": (
        "cnnzoo visualize gradcam runs/lenet5-1 three.png --out cam.png",
        "cnnzoo visualize gradcam runs/lenet5-1 three.png --layer c3 --class 8 --out cam.png",
    ),
}
