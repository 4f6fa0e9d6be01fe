"""PyTorch's default CPU GEMMs (MKL in the wheel) vs oneDNN (kazakh_ner_stance.cpu_kernels).

    kns-bench cpu_kernels [--threads 1] [--repeat 20] [--model-dir artifacts/models/e5_small_offline] [--json OUT.json]

Prints one table, each row timed both ways in the same run (median of repeats, after a
warm-up), with the ratio and the largest difference between the two results:
- one linear layer of e5-small's feed-forward block (batch 32 x 40 pieces, 384 -> 1536),
  forward only and forward + backward;
- one training step of the encoder with a token-classification head (frozen word embeddings,
  AdamW), when the model folder exists;
- the share of a forward pass spent in `aten::addmm` (torch.profiler), the reason for all this.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from pathlib import Path

from ..config import project_root
from .provenance import provenance


def _median_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=20, help="timed calls per row (the median counts)")
    ap.add_argument("--model-dir", type=Path, default=None,
                    help="the encoder of the training-step row (default: artifacts/models/e5_small_offline; "
                         "the row is left out when the folder holds no model)")
    ap.add_argument("--json", type=Path, help="also write the figures to this JSON file")


def run_benchmark(args: argparse.Namespace) -> int:
    warnings.filterwarnings("ignore")

    import torch

    from ..cpu_kernels import OneDnnLinear, _linear, onednn_linear_available, use_onednn_linears

    torch.set_num_threads(args.threads)
    if not onednn_linear_available():
        print("oneDNN linear is not usable in this torch build: nothing to compare")
        return 1
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    rows = []
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(32, 40, 384, generator=gen)
    w = torch.randn(1536, 384, generator=gen) * 0.05
    b = torch.randn(1536, generator=gen)
    with torch.inference_mode():
        ref, got = torch.nn.functional.linear(x, w, b), _linear(x, w, b)
        rows.append(("linear 1280x384 @ 384x1536, forward",
                     _median_ms(lambda: torch.nn.functional.linear(x, w, b), args.repeat),
                     _median_ms(lambda: _linear(x, w, b), args.repeat), float((ref - got).abs().max())))

    xg, wg, bg = (t.clone().requires_grad_(True) for t in (x, w, b))

    def fwd_bwd(fn):
        def step():
            for t in (xg, wg, bg):
                t.grad = None
            fn(xg, wg, bg).sum().backward()
        return step

    fwd_bwd(torch.nn.functional.linear)()
    grads_ref = [t.grad.clone() for t in (xg, wg, bg)]
    fwd_bwd(OneDnnLinear.apply)()
    diff = max(float((t.grad - g).abs().max()) for t, g in zip((xg, wg, bg), grads_ref))
    rows.append(("linear, forward + backward", _median_ms(fwd_bwd(torch.nn.functional.linear), args.repeat),
                 _median_ms(fwd_bwd(OneDnnLinear.apply), args.repeat), diff))

    model_dir = args.model_dir or project_root() / "artifacts" / "models" / "e5_small_offline"
    addmm_share = None
    if (model_dir / "config.json").is_file():
        from transformers import AutoModelForTokenClassification
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        ids = torch.randint(5, 30000, (32, 40), generator=gen)
        labels = torch.randint(0, 51, (32, 40), generator=gen)
        mask = torch.ones_like(ids)

        def build(onednn: bool):
            torch.manual_seed(0)
            m = AutoModelForTokenClassification.from_pretrained(model_dir, num_labels=51)
            m.get_input_embeddings().weight.requires_grad_(False)
            if onednn:
                use_onednn_linears(m)
            opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-4)
            m.train()
            last = {}

            def step():
                out = m(input_ids=ids, attention_mask=mask, labels=labels)
                out.loss.backward()
                opt.step()
                opt.zero_grad()
                last["loss"] = float(out.loss.detach())
            return m, step, last

        model, step_ref, loss_ref = build(False)
        step_ref()  # the first step of each model is its warm-up; both start from the same weights
        first_ref = loss_ref["loss"]
        ms_ref = _median_ms(step_ref, max(3, args.repeat // 4))
        _, step_fast, loss_fast = build(True)
        step_fast()
        first_fast = loss_fast["loss"]
        ms_fast = _median_ms(step_fast, max(3, args.repeat // 4))
        rows.append((f"training step, {model_dir.name} + token head (batch 32x40)", ms_ref, ms_fast,
                     abs(first_ref - first_fast)))

        from torch.profiler import profile

        model.eval()
        with torch.inference_mode(), profile() as prof:
            for _ in range(3):
                model(input_ids=ids, attention_mask=mask)
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        addmm = sum(e.self_cpu_time_total for e in events if e.key == "aten::addmm")
        addmm_share = addmm / total if total else None

    print()
    print("| what | PyTorch default ms | oneDNN ms | speed-up | max abs difference |")
    print("|---|---:|---:|---:|---:|")
    for name, ref_ms, fast_ms, d in rows:
        print(f"| {name} | {ref_ms:.2f} | {fast_ms:.2f} | {ref_ms / fast_ms:.2f}x | {d:.1e} |")
    print("(training step: the difference is that of the first step's loss)")
    if addmm_share is not None:
        print(f"\nforward pass of {model_dir.name} with PyTorch's default kernels: "
              f"{100 * addmm_share:.0f}% of CPU time in aten::addmm (the linear layers' GEMMs)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "threads": args.threads, "torch": torch.__version__, "addmm_share": addmm_share,
            "rows": [{"what": name, "torch_ms": ref_ms, "onednn_ms": fast_ms, "speedup": ref_ms / fast_ms,
                      "max_abs_diff": d} for name, ref_ms, fast_ms, d in rows],
            "provenance": provenance(project_root(), args.threads),
        }, indent=2) + "\n", encoding="utf-8")
    return 0
