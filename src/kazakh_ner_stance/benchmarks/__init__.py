"""Every benchmark behind one command, `kns-bench NAME [--options]` (`cli`; also
`python scripts/benchmarks.py NAME` and `python -m kazakh_ner_stance.benchmarks NAME`).

One module per benchmark, each with `add_arguments(parser)` and `run_benchmark(args)`: `train`,
`predict`, `serve`, `data`, `tokenizer`, `trim`, `cpu_kernels`, `stance_batches`, `stance_probe`,
`stance_recipes`, `stance_data`. `suite` (`kns-bench suite`, `make bench`) runs the measured ones
each in its own process and records them in one results file, which `results_page` renders.
What they share: the pinned run_ner.py baseline (`baseline`) and provenance records that decide
when an earlier measurement may be reused (`provenance`)."""
