"""Faster fp32 linear layers for CPU inference (oneDNN instead of the BLAS behind `F.linear`).

On this project's reference CPU (AMD EPYC, AVX-512, one thread; `kns-bench cpu_kernels`)
90% of an e5-small forward pass is `aten::addmm`, the fp32 GEMMs of the linear layers, which
the PyTorch CPU wheel hands to Intel MKL. The same GEMM through oneDNN, which the wheel also
ships and which PyTorch's own compiler (inductor) uses for CPU linears, ran 2.26x faster
(1280x384 @ 384x1536: 14.0 ms vs 6.2 ms), results equal to 4e-6; forward plus backward (an
autograd Function whose three GEMMs all run in oneDNN) 2.28x; a whole training step 1.66x.
The Predictor became 1.86x faster with the same entities (`kns-bench predict`).

`use_onednn_linears(model)` routes every `nn.Linear` of a model through
`torch.ops.mkldnn._linear_pointwise` when the input is a CPU float32 tensor (with that
Function when autograd needs gradients); anything else (CUDA, half precision) takes the usual
`F.linear`. The op is a private PyTorch op, so it is probed once (exists, runs, matches
`F.linear`) and never used when the probe fails: at worst the model runs at the usual speed.
"""

from __future__ import annotations

import functools
import logging
import types

import torch

from .errors import KnsError

log = logging.getLogger(__name__)

CPU_LINEAR_CHOICES = ("auto", "onednn", "torch")


@functools.lru_cache(maxsize=1)
def onednn_linear_available() -> bool:
    """True when the oneDNN linear op exists here and matches `F.linear` on a random input."""
    try:
        if not torch.backends.mkldnn.is_available():
            return False
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(2, 3, 16, generator=gen)
        w = torch.randn(8, 16, generator=gen)
        b = torch.randn(8, generator=gen)
        with torch.inference_mode():
            got = torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")
            got_nobias = torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], "")
            want = torch.nn.functional.linear(x, w, b)
        return bool(torch.allclose(got, want, atol=1e-4) and torch.allclose(got_nobias, want - b, atol=1e-4))
    except Exception as err:  # an older/newer torch without the op, or a build without oneDNN
        log.debug("oneDNN linear not usable: %s", err)
        return False


def _linear(x, weight, bias):
    return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


class OneDnnLinear(torch.autograd.Function):
    """y = xW' + b whose three GEMMs (forward, dx = dy W, dW = dy' x) all run in oneDNN."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = _linear(grad, weight.t().contiguous(), None)
        if ctx.needs_input_grad[1] or (ctx.has_bias and ctx.needs_input_grad[2]):
            g2 = grad.reshape(-1, grad.shape[-1])
            if ctx.needs_input_grad[1]:
                x2 = x.reshape(-1, x.shape[-1])
                grad_w = _linear(g2.t().contiguous(), x2.t().contiguous(), None)
            if ctx.has_bias and ctx.needs_input_grad[2]:
                grad_b = g2.sum(0)
        return grad_x, grad_w, grad_b


def _onednn_forward(self, x):
    if x.device.type == "cpu" and x.dtype == torch.float32 and self.weight.dtype == torch.float32:
        if torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad
                                        or (self.bias is not None and self.bias.requires_grad)):
            return OneDnnLinear.apply(x, self.weight, self.bias)
        return _linear(x, self.weight, self.bias)
    return torch.nn.functional.linear(x, self.weight, self.bias)


def use_onednn_linears(model) -> int:
    """Route the model's `nn.Linear` layers through oneDNN on CPU (forward, and backward when
    autograd is on); returns how many layers were switched (0 when oneDNN is not usable here).
    Only the forward method of each layer changes: parameters, state_dict and saved
    checkpoints are exactly as before."""
    if not onednn_linear_available():
        return 0
    n = 0
    for module in model.modules():
        if type(module) is torch.nn.Linear and not getattr(module, "_kns_onednn", False):
            module.forward = types.MethodType(_onednn_forward, module)
            module._kns_onednn = True
            n += 1
    return n


def apply_cpu_linear(model, choice: str = "auto", device: str | None = None) -> int:
    """The loaders' switch: `auto` uses oneDNN on CPU when it is usable, `onednn` insists (an
    error when it is not usable), `torch` leaves the model alone."""
    choice = str(choice or "auto")
    if choice not in CPU_LINEAR_CHOICES:
        raise KnsError(f"cpu_linear must be one of {CPU_LINEAR_CHOICES}, not {choice!r}")
    if choice == "torch" or (device and not str(device).startswith("cpu")):
        return 0
    if choice == "onednn" and not onednn_linear_available():
        raise KnsError("cpu_linear=onednn: this torch build has no usable oneDNN linear op; use auto or torch")
    return use_onednn_linears(model)
