"""Published ImageNet-1k weights whose architecture equals a zoo model, with the facts a user
needs to trust and use them: where (URL), what (SHA-256), how good (the publisher's top-1/top-5
on ImageNet-1k val) and how to feed them (resize, crop, mean, std, interpolation).

This table is the one record of a published weight: the registry's torchvision `Published`
figures (`cnnzoo info`, `cnnzoo compare`) are derived from its rows (registry.register).
torchvision's rows are its weights metadata (`torchvision.models.get_model_weights(name)`: url,
`_metrics`, `num_params`, `_ops`, `_file_size` in MB, `transforms()`), tested equal, row by row,
to the installed package's (tests/test_hub_rows.py, offline).
The hex after the last '-' in torchvision's file names is the start of the file's SHA-256, the
digest torch.hub's `check_hash` verifies; timm's own release files follow the same convention
(its clean_checkpoint script names them with sha256[:8]). Where no digest is published (timm's
ports of Cadene's and TF-slim's weights, files on the Hugging Face hub) `sha256` is None: the
file is then checked by parsing it and by the strict, shape-checked load into the model.
timm's rows: models our tests show equal to timm's (tests/test_inception.py, test_xception.py,
test_resnet.py; checked again on randomly initialised timm models: max |logit difference| 0.0);
their crop and interpolation from timm's pretrained_cfg (resize = crop / crop_pct).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlparse

from ..data.preprocess import IMAGENET_MEAN, IMAGENET_STD

INCEPTION_MEAN = INCEPTION_STD = (0.5, 0.5, 0.5)  # TF-slim's [-1, 1] inputs


@dataclass(frozen=True)
class WeightsEntry:
    """One published weights file for one zoo model."""

    model: str
    tag: str  # the publisher's name for these weights, lower case (imagenet1k_v2, tf_in1k...)
    source: str  # torchvision | timm
    url: str
    sha256: str | None  # full digest or the prefix in the file name; None: none published
    top1: float | None = None  # percent, ImageNet-1k val, as the publisher reports it
    top5: float | None = None
    size_mb: float | None = None  # file size in MiB, where the publisher lists it
    resize: int = 256  # shorter side before the centre crop
    crop: int = 224
    interpolation: str = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    arch_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. transform_input for TF ports
    filename: str = ""  # the name in the cache and on a mirror; default: the URL's file name
    num_classes: int = 1000
    params: int | None = None  # parameter count, as the publisher lists it
    gmacs: float | None = None  # G multiply-adds at `crop` (torchvision's "GFLOPS" are these)
    publisher_model: str = ""  # the publisher's name for the architecture; default: `model`

    @property
    def publisher_name(self) -> str:
        return self.publisher_model or self.model

    @property
    def file_name(self) -> str:
        return self.filename or PurePosixPath(urlparse(self.url).path).name

    @property
    def full_digest(self) -> bool:
        return self.sha256 is not None and len(self.sha256) == 64

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "tag": self.tag, "source": self.source, "url": self.url,
                "file": self.file_name, "sha256": self.sha256, "top1_acc_pct": self.top1,
                "top5_acc_pct": self.top5, "size_mb": self.size_mb, "resize": self.resize,
                "crop": self.crop, "interpolation": self.interpolation, "mean": list(self.mean),
                "std": list(self.std), "arch_kwargs": dict(self.arch_kwargs)}


def _tv_sha(fname: str) -> str:
    return fname.rsplit("-", 1)[1].split(".")[0]


_TV = "https://download.pytorch.org/models/"
# model, torchvision weights name, file, acc@1, acc@5, parameters, GFLOPS (torchvision's `_ops`:
# multiply-adds), MB, resize, crop: each equal to torchvision's metadata (tests/test_hub_rows.py).
# Default (listed first for a model) = torchvision's DEFAULT, its best.
_TV_ROWS = (
    ("alexnet", "IMAGENET1K_V1", "alexnet-owt-7be5be79.pth", 56.522, 79.066, 61_100_840, 0.714, 233.087, 256, 224),
    ("vgg11", "IMAGENET1K_V1", "vgg11-8a719046.pth", 69.02, 88.628, 132_863_336, 7.609, 506.84, 256, 224),
    ("vgg13", "IMAGENET1K_V1", "vgg13-19584684.pth", 69.928, 89.246, 133_047_848, 11.308, 507.545, 256, 224),
    ("vgg16", "IMAGENET1K_V1", "vgg16-397923af.pth", 71.592, 90.382, 138_357_544, 15.47, 527.796, 256, 224),
    ("vgg19", "IMAGENET1K_V1", "vgg19-dcbb9e9d.pth", 72.376, 90.876, 143_667_240, 19.632, 548.051, 256, 224),
    ("vgg11_bn", "IMAGENET1K_V1", "vgg11_bn-6002323d.pth", 70.37, 89.81, 132_868_840, 7.609, 506.881, 256, 224),
    ("vgg13_bn", "IMAGENET1K_V1", "vgg13_bn-abd245e5.pth", 71.586, 90.374, 133_053_736, 11.308, 507.59, 256, 224),
    ("vgg16_bn", "IMAGENET1K_V1", "vgg16_bn-6c64b313.pth", 73.36, 91.516, 138_365_992, 15.47, 527.866, 256, 224),
    ("vgg19_bn", "IMAGENET1K_V1", "vgg19_bn-c79401a0.pth", 74.218, 91.842, 143_678_248, 19.632, 548.143, 256, 224),
    ("resnet18", "IMAGENET1K_V1", "resnet18-f37072fd.pth", 69.758, 89.078, 11_689_512, 1.814, 44.661, 256, 224),
    ("resnet34", "IMAGENET1K_V1", "resnet34-b627a593.pth", 73.314, 91.42, 21_797_672, 3.664, 83.275, 256, 224),
    ("resnet50", "IMAGENET1K_V2", "resnet50-11ad3fa6.pth", 80.858, 95.434, 25_557_032, 4.089, 97.79, 232, 224),
    ("resnet50", "IMAGENET1K_V1", "resnet50-0676ba61.pth", 76.13, 92.862, 25_557_032, 4.089, 97.781, 256, 224),
    ("resnet101", "IMAGENET1K_V2", "resnet101-cd907fc2.pth", 81.886, 95.78, 44_549_160, 7.801, 170.53, 232, 224),
    ("resnet101", "IMAGENET1K_V1", "resnet101-63fe2227.pth", 77.374, 93.546, 44_549_160, 7.801, 170.511, 256, 224),
    ("resnet152", "IMAGENET1K_V2", "resnet152-f82ba261.pth", 82.284, 96.002, 60_192_808, 11.514, 230.474, 232, 224),
    ("resnet152", "IMAGENET1K_V1", "resnet152-394f9c45.pth", 78.312, 94.046, 60_192_808, 11.514, 230.434, 256, 224),
    ("resnext50_32x4d", "IMAGENET1K_V2", "resnext50_32x4d-1a0047aa.pth", 81.198, 95.34, 25_028_904, 4.23, 95.833, 232, 224),
    ("resnext50_32x4d", "IMAGENET1K_V1", "resnext50_32x4d-7cdf4587.pth", 77.618, 93.698, 25_028_904, 4.23, 95.789, 256, 224),
    ("resnext101_32x8d", "IMAGENET1K_V2", "resnext101_32x8d-110c445d.pth", 82.834, 96.228, 88_791_336, 16.414, 339.673, 232, 224),
    ("resnext101_32x8d", "IMAGENET1K_V1", "resnext101_32x8d-8ba56ff5.pth", 79.312, 94.526, 88_791_336, 16.414, 339.586, 256, 224),
    ("resnext101_64x4d", "IMAGENET1K_V1", "resnext101_64x4d-173b62eb.pth", 83.246, 96.454, 83_455_272, 15.46, 319.318, 232, 224),
    ("wide_resnet50_2", "IMAGENET1K_V2", "wide_resnet50_2-9ba9bcbe.pth", 81.602, 95.758, 68_883_240, 11.398, 263.124, 232, 224),
    ("wide_resnet50_2", "IMAGENET1K_V1", "wide_resnet50_2-95faca4d.pth", 78.468, 94.086, 68_883_240, 11.398, 131.82, 256, 224),
    ("wide_resnet101_2", "IMAGENET1K_V2", "wide_resnet101_2-d733dc28.pth", 82.51, 96.02, 126_886_696, 22.753, 484.747, 232, 224),
    ("wide_resnet101_2", "IMAGENET1K_V1", "wide_resnet101_2-32ee1156.pth", 78.848, 94.284, 126_886_696, 22.753, 242.896, 256, 224),
    ("densenet121", "IMAGENET1K_V1", "densenet121-a639ec97.pth", 74.434, 91.972, 7_978_856, 2.834, 30.845, 256, 224),
    ("densenet161", "IMAGENET1K_V1", "densenet161-8d451a50.pth", 77.138, 93.56, 28_681_000, 7.728, 110.369, 256, 224),
    ("densenet169", "IMAGENET1K_V1", "densenet169-b2777c0a.pth", 75.6, 92.806, 14_149_480, 3.36, 54.708, 256, 224),
    ("densenet201", "IMAGENET1K_V1", "densenet201-c1103571.pth", 76.896, 93.37, 20_013_928, 4.291, 77.373, 256, 224),
    ("googlenet_tv", "IMAGENET1K_V1", "googlenet-1378be20.pth", 69.778, 89.53, 6_624_904, 1.498, 49.731, 256, 224),
    ("inception_v3", "IMAGENET1K_V1", "inception_v3_google-0cc3c7bd.pth", 77.294, 93.45, 27_161_264, 5.713, 103.903, 342, 299),
    ("mobilenet_v2", "IMAGENET1K_V2", "mobilenet_v2-7ebf99e0.pth", 72.154, 90.822, 3_504_872, 0.301, 13.598, 232, 224),
    ("mobilenet_v2", "IMAGENET1K_V1", "mobilenet_v2-b0353104.pth", 71.878, 90.286, 3_504_872, 0.301, 13.555, 256, 224),
    ("shufflenet_v2_x0_5", "IMAGENET1K_V1", "shufflenetv2_x0.5-f707e7126e.pth", 60.552, 81.746, 1_366_792, 0.04, 5.282, 256, 224),
    ("shufflenet_v2_x1_0", "IMAGENET1K_V1", "shufflenetv2_x1-5666bf0f80.pth", 69.362, 88.316, 2_278_604, 0.145, 8.791, 256, 224),
    ("shufflenet_v2_x1_5", "IMAGENET1K_V1", "shufflenetv2_x1_5-3c479a10.pth", 72.996, 91.086, 3_503_624, 0.296, 13.557, 232, 224),
    ("shufflenet_v2_x2_0", "IMAGENET1K_V1", "shufflenetv2_x2_0-8be3c8ee.pth", 76.23, 93.006, 7_393_996, 0.583, 28.433, 232, 224),
    ("squeezenet1_0", "IMAGENET1K_V1", "squeezenet1_0-b66bff10.pth", 58.092, 80.42, 1_248_424, 0.819, 4.778, 256, 224),
    ("squeezenet1_1", "IMAGENET1K_V1", "squeezenet1_1-b8a52dc0.pth", 58.178, 80.624, 1_235_496, 0.349, 4.729, 256, 224),
)
# torchvision turns transform_input on with these weights (trained on TF-style [-1, 1] inputs)
_TV_KWARGS = {"googlenet_tv": {"transform_input": True}, "inception_v3": {"transform_input": True}}
# zoo name -> torchvision's, where they differ (ours without BN and 5x5 branches is `googlenet`)
_TV_NAMES = {"googlenet_tv": "googlenet"}

_TIMM_GH = "https://github.com/rwightman/pytorch-image-models/releases/download/"
_HF = "https://huggingface.co/timm/{}/resolve/main/model.safetensors"
# Not listed: timm's legacy_seresnet50 (Caffe's 3x3/2 ceil-mode stem pool without padding, ours
# is torchvision's: logits differ) and timm's seresnet50 (v1.5 strides, ours v1).
_TIMM = (
    WeightsEntry("se_resnext50_32x4d", "racm_in1k", "timm",
                 _TIMM_GH + "v0.1-weights/seresnext50_32x4d_racm-a304a460.pth", "a304a460",
                 interpolation="bicubic"),
    WeightsEntry("xception", "tf_in1k", "timm", _TIMM_GH + "v0.1-cadene/xception-43020ad28.pth",
                 None, resize=333, crop=299, interpolation="bicubic", mean=INCEPTION_MEAN,
                 std=INCEPTION_STD),  # timm's legacy_xception (Keras weights via Cadene)
    WeightsEntry("inception_v4", "tf_in1k", "timm", _HF.format("inception_v4.tf_in1k"), None,
                 resize=342, crop=299, interpolation="bicubic", mean=INCEPTION_MEAN,
                 std=INCEPTION_STD, filename="timm-inception_v4.tf_in1k.safetensors"),
    WeightsEntry("inception_resnet_v2", "tf_in1k", "timm",
                 _HF.format("inception_resnet_v2.tf_in1k"), None, resize=333, crop=299,
                 interpolation="bicubic", mean=INCEPTION_MEAN, std=INCEPTION_STD,
                 filename="timm-inception_resnet_v2.tf_in1k.safetensors"),
)


def _build() -> dict[str, list[WeightsEntry]]:
    table: dict[str, list[WeightsEntry]] = {}
    for model, tag, fname, top1, top5, params, gmacs, mb, resize, crop in _TV_ROWS:
        table.setdefault(model, []).append(WeightsEntry(
            model, tag.lower(), "torchvision", _TV + fname, _tv_sha(fname), top1, top5, mb,
            resize, crop, arch_kwargs=_TV_KWARGS.get(model, {}), params=params, gmacs=gmacs,
            publisher_model=_TV_NAMES.get(model, "")))
    for e in _TIMM:
        table.setdefault(e.model, []).append(e)
    return table


# model name -> its weights, the default first. Tests add entries for files they serve.
TABLE: dict[str, list[WeightsEntry]] = _build()
