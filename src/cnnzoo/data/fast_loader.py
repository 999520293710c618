"""The fast image-folder loader: decoding with torchvision's JPEG decoder, crops on uint8, and
the per-pixel work batched on the device (data/batch_augment.py).

decode="cpu": each worker reads, decodes (libjpeg-turbo; PIL for other files) and crops+resizes
    its images as uint8, so a batch crosses from the workers as a quarter of the bytes of float32
    and is flipped, lit and normalised in one go where the model runs.
decode="cuda": the workers only read the files (and decode the rare non-JPEG with PIL); the main
    process decodes the batch's JPEGs with nvJPEG in one call and crops+resizes them on the GPU.
decode="dali": as "cuda", with NVIDIA DALI's decoder doing decode+crop+resize (data/dali_decode.py).

Every image's crop box comes from its own seed (the batch's seed and its place in the batch), and
the flips and lighting from the batch's seed: the same batch gets the same pixels after a resume,
with any number of workers. Corrupt files are skipped and reported, or fail the pass, as with
FolderLoader (data/folder.py), whose iteration, error handling and counting this loader shares.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import torch
from torch.utils.data import Dataset

from ..errors import InvalidArgumentError
from .batch_augment import finish_batch
from .datasets import FolderData
from .fastjpeg import crop_resize, decode_cpu, decode_cuda, quiet_decoders, read_encoded
from .folder import FolderLoader, read_or_mark
from .transforms import augmentation, crop_box, fast_augmentations

DECODERS = ("cpu", "cuda", "dali")


@dataclass(frozen=True)
class FastSpec:
    """What the fast loader makes of an image: augmentation kind ('none' for evaluation),
    the model's input size, the eval resize (shorter side) and the normalisation."""
    kind: str
    size: tuple[int, int]
    resize: int
    mean: tuple[float, ...]
    std: tuple[float, ...]


def item_seed(batch_seed: int, position: int) -> int:
    """One image's seed from its batch's seed and its position in the batch."""
    h = hashlib.blake2b(f"{batch_seed}/{position}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little")


class _FastImages(Dataset):
    """Items are (index, image seed, batch seed). decode 'cpu': (uint8 crop, label, batch seed);
    otherwise the read file (fastjpeg.Encoded), label, image seed and path, for the main process."""

    def __init__(self, data: FolderData, spec: FastSpec, decode: str, on_error: str) -> None:
        if on_error not in ("skip", "fail"):
            raise InvalidArgumentError(f"on_error must be 'skip' or 'fail', got {on_error!r}")
        self.samples, self.spec, self.decode, self.on_error = data.samples, spec, decode, on_error

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, item: tuple[int, int, int]) -> tuple:
        i, seed, batch_seed = item
        path, label = self.samples[i]
        if self.decode != "cpu":
            enc = read_or_mark(path, read_encoded, self.on_error)
            return enc if isinstance(enc, tuple) else (enc, label, seed, path)
        quiet_decoders()
        crop = read_or_mark(path, lambda p: self._crop(decode_cpu(read_encoded(p), p), seed), self.on_error)
        return crop if isinstance(crop, tuple) else (crop, label, batch_seed)

    def _crop(self, x: torch.Tensor, seed: int) -> torch.Tensor:
        s = self.spec
        return crop_resize(x, crop_box(x.shape[1], x.shape[2], s.kind, s.size, s.resize, random.Random(seed)), s.size)


class _Collate:
    """A batch from its items, in the worker. With `finish` (a CPU run) the worker also does the
    batched flip/lighting/normalisation: on the CPU the workers are where the parallelism is,
    and the main process then only hands the batch over."""

    def __init__(self, spec: FastSpec, finish: bool) -> None:
        self.spec, self.finish = spec, finish

    def __call__(self, items: list) -> tuple[Any, Any, list[str]]:
        bad = [it[1] for it in items if isinstance(it[0], str)]
        good = [it for it in items if not isinstance(it[0], str)]
        if not good:
            return None, None, bad
        labels = torch.tensor([g[1] for g in good])
        if not isinstance(good[0][0], torch.Tensor):  # decoded in the main process
            return [(g[0], g[2], g[3]) for g in good], labels, bad  # (encoded, seed, path) each
        x = torch.stack([g[0] for g in good])  # uint8 crops of one size
        if self.finish:
            s = self.spec
            x = finish_batch(x, s.kind, good[0][2], s.mean, s.std, torch.device("cpu"))
        return x, labels, bad


class FastFolderLoader(FolderLoader):
    """Iterates (images, labels) float32 batches on `device`, like FolderLoader; batch k's
    randomness is `batch_seeds[k]`. `skipped` lists the corrupt files met so far."""

    def __init__(self, data: FolderData, spec: FastSpec, index_batches: Iterable[torch.Tensor],
                 batch_seeds: Sequence[int], workers: int, on_error: str, device: torch.device,
                 decode: str = "cpu") -> None:
        if not augmentation(spec.kind).fast:
            raise InvalidArgumentError(
                f"the fast loader does the augmentations {', '.join(fast_augmentations())}, not {spec.kind!r}: "
                "use --set loader=pil (or loader=auto, which picks it)")
        if decode not in DECODERS:
            raise InvalidArgumentError(f"decode must be one of {', '.join(DECODERS)}, got {decode!r}")
        if decode != "cpu" and device.type != "cuda":
            raise InvalidArgumentError(f"decoding with {decode} needs a CUDA device, got {device}")
        super().__init__(data, None, index_batches, workers, on_error, device)
        self.ds = _FastImages(data, spec, decode, on_error)
        self.spec, self.decode, self.on_error = spec, decode, on_error
        self.batch_seeds = [int(s) for s in batch_seeds]
        if len(self.batch_seeds) != len(self.index_batches):
            raise ValueError("one seed per batch")
        self._dali = None
        self.collate = _Collate(spec, finish=device.type == "cpu")

    def _sampler_batches(self, start: int) -> list:
        return [[(int(i), item_seed(s, j), s) for j, i in enumerate(b.tolist())]
                for b, s in zip(self.index_batches[start:], self.batch_seeds[start:])]

    def _finish(self, x: Any, y: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = self.spec
        if self.decode != "cpu":
            x, keep = self._decode_on_device(x)
            y = y[keep]
        if x.dtype == torch.uint8 and len(x):  # not finished in the worker
            x = finish_batch(x, s.kind, self.batch_seeds[k], s.mean, s.std, self.device)
        return x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def _decode_on_device(self, items: list) -> tuple[torch.Tensor, list[int]]:
        """The batch's files decoded, cropped and resized on the GPU: uint8 (N, 3, H, W), and
        which items they are (a file no decoder reads is skipped and named, or fails the pass)."""
        quiet_decoders()
        s = self.spec
        encs, seeds, paths = [it[0] for it in items], [it[1] for it in items], [it[2] for it in items]
        hws = [e.hw if e.pixels is None else tuple(e.pixels.shape[1:]) for e in encs]
        boxes = [crop_box(h, w, s.kind, s.size, s.resize, random.Random(sd)) for (h, w), sd in zip(hws, seeds)]
        crops: list[torch.Tensor | None] = [None] * len(encs)
        jpegs = [i for i, e in enumerate(encs) if e.pixels is None]
        if self.decode == "dali" and jpegs:
            crops = self._dali_crops(encs, boxes, jpegs, crops)
        todo = [i for i in jpegs if crops[i] is None]
        for i, pic in zip(todo, decode_cuda([encs[i] for i in todo], self.device)):
            crops[i] = None if pic is None else crop_resize(pic, boxes[i], s.size)
        for i, c in enumerate(crops):
            if c is None:  # PIL's pixels, or a JPEG the GPU refused: PIL decides, as in the workers
                pic = read_or_mark(paths[i], lambda p, e=encs[i]: decode_cpu(e, p), self.on_error)
                if isinstance(pic, tuple):
                    self.skipped.append(paths[i])
                else:
                    crops[i] = crop_resize(pic.to(self.device, non_blocking=True), boxes[i], s.size)
        keep = [i for i, c in enumerate(crops) if c is not None]
        if not keep:
            return torch.empty(0, 3, *s.size, dtype=torch.uint8, device=self.device), keep
        return torch.stack([crops[i] for i in keep]), keep

    def _dali_crops(self, encs: list, boxes: list, jpegs: list[int], crops: list) -> list:
        from .dali_decode import DaliDecoder

        if self._dali is None:
            self._dali = DaliDecoder(self.spec.size, self.device)
        try:
            out = self._dali.decode([encs[i] for i in jpegs], [boxes[i] for i in jpegs])
        except RuntimeError:  # a file DALI refuses fails its whole batch: the torch path, file by file
            return crops
        for j, i in enumerate(jpegs):
            crops[i] = out[j]
        return crops

def choose_decoder(loader: str, augment: str, device: torch.device) -> str | None:
    """The recipe's `loader` for an image folder -> the fast loader's decode ('cpu', 'cuda',
    'dali') or None for the PIL loader. auto: DALI when installed and the device is CUDA, else
    torch's decoders; PIL for the augmentations the fast path does not do (no `box` in
    transforms.AUGMENTS: cifar, shift)."""
    from .dali_decode import dali_available, require_dali

    cuda = device.type == "cuda"
    fast = augmentation(augment).fast
    if loader == "pil" or (loader == "auto" and not fast):
        return None
    if not fast:
        raise InvalidArgumentError(
            f"loader={loader} does the augmentations {', '.join(fast_augmentations())}, not {augment!r}: "
            "use --set loader=pil or loader=auto")
    if loader == "dali":
        require_dali()
        if not cuda:
            raise InvalidArgumentError(f"loader=dali needs a CUDA device, the run is on {device}: "
                                       "use --set loader=torch or loader=auto")
        return "dali"
    if loader == "auto" and cuda and dali_available():
        return "dali"
    return "cuda" if cuda else "cpu"
