"""oneDNN linears for CPU inference: same outputs as PyTorch's kernels, training untouched."""

from __future__ import annotations

import pytest
import torch

from kazakh_ner_stance.cpu_kernels import apply_cpu_linear, onednn_linear_available, use_onednn_linears
from kazakh_ner_stance.errors import KnsError

needs_onednn = pytest.mark.skipif(not onednn_linear_available(), reason="no usable oneDNN linear in this torch build")


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.GELU(), torch.nn.Linear(32, 4, bias=False))


@needs_onednn
def test_onednn_linears_match_and_leave_training_alone():
    ref, fast = _model(), _model()
    assert use_onednn_linears(fast) == 2
    assert use_onednn_linears(fast) == 0  # never wrapped twice
    x = torch.randn(3, 7, 16)
    with torch.inference_mode():
        assert torch.allclose(fast(x), ref(x), atol=1e-5)
    # With autograd on (training), the oneDNN Function gives the same outputs and gradients,
    # for the parameters and for the input (a frozen first layer still passes gradients on).
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    fast[0].weight.requires_grad_(False)
    ref[0].weight.requires_grad_(False)
    ya, yb = fast(xa), ref(xb)
    assert torch.allclose(ya, yb, atol=1e-5)
    (ya * torch.arange(4.0)).sum().backward()
    (yb * torch.arange(4.0)).sum().backward()
    assert torch.allclose(xa.grad, xb.grad, atol=1e-4)
    assert fast[0].weight.grad is None
    for a, b in zip(fast.parameters(), ref.parameters()):
        if b.grad is not None:
            assert torch.allclose(a.grad, b.grad, atol=1e-4)
    # Other dtypes fall back too.
    with torch.inference_mode():
        assert fast.double()(x.double()).dtype == torch.float64


def test_apply_cpu_linear_choices():
    with pytest.raises(KnsError, match="cpu_linear must be one of"):
        apply_cpu_linear(_model(), "fast")
    assert apply_cpu_linear(_model(), "torch") == 0
    assert apply_cpu_linear(_model(), "auto", device="cuda") == 0  # only CPU inference is switched
    assert apply_cpu_linear(_model(), "auto") == (2 if onednn_linear_available() else 0)


@needs_onednn
def test_predictor_same_entities_with_either_kernel(tiny_ner_checkpoint):
    from kazakh_ner_stance.predict import Predictor

    texts = ["Қасым-Жомарт Тоқаев Астанада «Қазақстан темір жолы» басшыларымен кездесті .",
             "Бүгін 5 000 теңге , 12 % өсті .", "Алматы қаласы"] * 3
    fast = Predictor.from_pretrained(tiny_ner_checkpoint, cpu_linear="auto")
    plain = Predictor.from_pretrained(tiny_ner_checkpoint, cpu_linear="torch")
    assert any(getattr(m, "_kns_onednn", False) for m in fast.ner[0].modules())
    assert not any(getattr(m, "_kns_onednn", False) for m in plain.ner[0].modules())
    a, b = fast(texts), plain(texts)
    spans = lambda r: [(e["type"], e["char_start"], e["char_end"]) for e in r["entities"]]  # noqa: E731
    assert [spans(r) for r in a] == [spans(r) for r in b]
    for x, y in zip(a, b):  # scores equal up to float rounding
        assert [e["score"] for e in x["entities"]] == pytest.approx([e["score"] for e in y["entities"]], abs=1e-4)
