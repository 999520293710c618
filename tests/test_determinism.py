"""`--deterministic` on CUDA: no model's training step may use an op whose CUDA backward has no
deterministic version (PyTorch raises at the first backward). Checked on the CPU by listing the
aten ops of one forward and backward; tests/test_cuda.py runs the real CUDA step."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

import cnnzoo
from cnnzoo.contract import classification_loss
from cnnzoo.layers.basic import AdaptiveAvgPool2d, LocalResponseNorm

# Ops that torch.use_deterministic_algorithms(True) refuses in a CUDA backward (PyTorch docs).
NONDETERMINISTIC_ON_CUDA = {
    "_adaptive_avg_pool2d_backward", "_adaptive_avg_pool3d_backward", "avg_pool3d_backward",
    "adaptive_max_pool2d_backward", "adaptive_max_pool3d_backward", "max_pool3d_with_indices_backward",
    "fractional_max_pool2d_backward", "upsample_bilinear2d_backward", "upsample_bicubic2d_backward",
    "reflection_pad2d_backward", "replication_pad2d_backward", "embedding_dense_backward",
}


class _Ops(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("name", ["alexnet", "alexnet_original", "zfnet", "vgg11", "vgg11_lrn",
                                  "googlenet", "googlenet_tv", "resnet18"])
def test_training_step_uses_no_op_without_a_deterministic_cuda_backward(name):
    m = cnnzoo.create_model(name, num_classes=10).train()
    size = cnnzoo.model_info(name)["input_size"]
    x, y = torch.randn(2, *size), torch.tensor([1, 2])
    with _Ops() as ops:
        loss, _ = classification_loss(m(x), y)
        loss.backward()
    assert not ops.names & NONDETERMINISTIC_ON_CUDA, sorted(ops.names & NONDETERMINISTIC_ON_CUDA)


def test_lrn_and_pool_equal_the_pytorch_ops_they_replace():
    torch.manual_seed(0)
    x = torch.randn(2, 16, 13, 13)
    lrn = LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)
    ref = torch.nn.functional.local_response_norm(x, 5, alpha=5e-4, beta=0.75, k=2.0)
    torch.testing.assert_close(lrn(x), ref)
    torch.testing.assert_close(lrn(x.contiguous(memory_format=torch.channels_last)), ref)
    for out, hw in ((6, 12), (6, 6), (7, 14), (6, 13), (4, 14)):  # divisible and not
        z = torch.randn(2, 8, hw, hw)
        torch.testing.assert_close(AdaptiveAvgPool2d(out)(z), torch.nn.functional.adaptive_avg_pool2d(z, out))
