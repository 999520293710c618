"""The third-party cost counters reconcile.py sets beside cnnzoo's figures: fvcore, ptflops (its
'pytorch' and 'aten' backends), thop and calflops, each run once on a CPU model with random
weights and one image. None is a dependency: `pip install cnnzoo[counters]` installs them; a
counter that is not installed is listed as such, with the reason.

Every counter's figure is in multiply-adds: fvcore counts "one fused multiply-add as one flop",
ptflops and thop report MACs, calflops reports MACs beside FLOPs (we take its MACs).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import logging
import warnings
from typing import Callable, NamedTuple

import torch
from torch import nn


class Counted(NamedTuple):
    params: int
    macs: int


def _fvcore(model: nn.Module, x: torch.Tensor) -> Counted:
    from fvcore.nn import FlopCountAnalysis, parameter_count

    flops = FlopCountAnalysis(model, x)
    flops.unsupported_ops_warnings(False)
    flops.uncalled_modules_warnings(False)
    return Counted(int(parameter_count(model)[""]), int(flops.total()))


def _ptflops(backend: str) -> Callable[[nn.Module, torch.Tensor], Counted]:
    def run(model: nn.Module, x: torch.Tensor) -> Counted:
        from ptflops import get_model_complexity_info

        macs, params = get_model_complexity_info(model, tuple(x.shape[1:]), as_strings=False,
                                                 print_per_layer_stat=False, backend=backend)
        return Counted(int(params), int(macs))
    return run


def _thop(model: nn.Module, x: torch.Tensor) -> Counted:
    import thop

    try:
        macs, params = thop.profile(model, inputs=(x,), verbose=False)
    finally:  # thop leaves its counting buffers on the containers: take them off
        for m in model.modules():
            m._buffers.pop("total_ops", None)
            m._buffers.pop("total_params", None)
    return Counted(int(params), int(macs))


def _calflops(model: nn.Module, x: torch.Tensor) -> Counted:
    from calflops import calculate_flops

    _, macs, params = calculate_flops(model, input_shape=tuple(x.shape), output_as_string=False,
                                      print_results=False, print_detailed=False)
    return Counted(int(params), int(macs))


class Counter(NamedTuple):
    name: str  # as the table shows it
    module: str  # what must be importable
    run: Callable[[nn.Module, torch.Tensor], Counted]


COUNTERS: tuple[Counter, ...] = (
    Counter("fvcore", "fvcore", _fvcore),
    Counter("ptflops (pytorch)", "ptflops", _ptflops("pytorch")),
    Counter("ptflops (aten)", "ptflops", _ptflops("aten")),
    Counter("thop", "thop", _thop),
    Counter("calflops", "calflops", _calflops),
)


def missing(counter: Counter) -> str | None:
    """Why `counter` cannot run here (None: it can)."""
    if importlib.util.find_spec(counter.module) is None:
        return f"{counter.module} is not installed (pip install 'cnnzoo[counters]')"
    if counter.module == "calflops" and importlib.util.find_spec("transformers") is None:
        return "calflops imports transformers, which is not installed (pip install transformers)"
    return None


def run(counter: Counter, model: nn.Module, input_size: tuple[int, ...]) -> Counted:
    """`counter`'s params and multiply-adds for one image; its printing and warnings muted."""
    x = torch.randn(1, *input_size)
    quiet = io.StringIO()
    was = model.training
    model.eval()
    logging.disable(logging.WARNING)
    try:
        with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(quiet), \
                contextlib.redirect_stderr(quiet):
            warnings.simplefilter("ignore")
            return counter.run(model, x)
    finally:
        logging.disable(logging.NOTSET)
        model.train(was)
