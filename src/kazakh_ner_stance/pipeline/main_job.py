"""The main job (`make run`): the whole mission on the embedded default, as one plain function.

Prepare the encoder(s); build the NER dataset and the stance data; train the NER model and the
stance model; evaluate both on their test splits; stage both dry-run releases; then run the
Predictor with both models on raw Kazakh text and print entities, each target's stance with its
probability, the headline scores and where every output went.

Each step is the verb a user would run by hand (the same plain functions), composed from the
same configs, and wrapped in pipeline.steps: a re-run skips what is done with the same inputs and
configuration, redoes what is stale or half-written, and resumes an interrupted training from its
last complete checkpoint. `fresh=true` redoes everything.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from ..config import compose
from ..errors import KnsError
from ..training.checkpoints import write_json_atomic
from .steps import Step, StepContext, StepRunner, format_duration

# Train overrides of quick=true: the same steps on a few sentences, for a smoke test of the
# whole job in minutes (its run names end in _quick, so the real runs are never touched).
QUICK_TRAIN = ["trainer=debug", "max_train_samples=64", "max_eval_samples=64"]
QUICK_EVALUATE = ["bootstrap.n=50"]


@dataclass
class ModelPlan:
    """One model of the job: its composed train config and where its outputs go."""

    role: str            # "ner" | "stance": the key under `models`
    overrides: list[str]
    cfg: DictConfig

    @property
    def run_dir(self) -> Path:
        return Path(self.cfg.run_dir)

    @property
    def model_dir(self) -> Path:
        return self.run_dir / "model"

    @property
    def eval_dir(self) -> Path:
        return self.run_dir / "eval_test"

    @property
    def release_dir(self) -> Path:
        return Path(self.cfg.paths.releases_dir) / str(self.cfg.run_name)


def _plain(cfg) -> object:
    return OmegaConf.to_container(cfg, resolve=True)


def existing_paths(node, exclude: list[Path] = (), produced: list[Path] = (),
                   artifacts_dir: Path | None = None) -> list[Path]:
    """The inputs a step reads, found without listing them by hand: every string leaf of a config
    node that names a file or folder. Outside `artifacts_dir` (source data, committed layers), one
    that exists; inside it (the job's own products), only one an earlier step produces: a path
    there that no earlier step makes is written by this step itself (a builder's side output,
    such as the KazNERD stance layer the v2 builder makes first), not read by it."""
    found: set[Path] = set()
    excluded = {Path(p).resolve() for p in exclude}
    made = [Path(p).resolve() for p in produced]
    artifacts = Path(artifacts_dir).resolve() if artifacts_dir else None

    def is_input(path: Path) -> bool:
        if path in excluded:
            return False
        if artifacts is not None and (path == artifacts or artifacts in path.parents):
            return any(path == m or m in path.parents for m in made)
        return path.exists() or path in made

    def walk(value):
        if isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)
        elif isinstance(value, str) and ("/" in value or "\\" in value):
            path = Path(value).expanduser().resolve()
            if is_input(path):
                found.add(path)

    walk(_plain(node) if OmegaConf.is_config(node) else node)
    return sorted(found)


def plan_models(job: DictConfig) -> list[ModelPlan]:
    plans = []
    for role, overrides in job.models.items():
        overrides = [*map(str, overrides), *map(str, job.get("overrides") or [])]
        cfg = compose("train", overrides)
        if job.get("quick"):
            overrides = [*overrides, *QUICK_TRAIN, f"run_name={cfg.run_name}_quick"]
            cfg = compose("train", overrides)
        if int(OmegaConf.select(cfg, "cv.folds", default=0) or 0):
            raise KnsError(f"models.{role}: cv.folds is set; the main job trains one model per role")
        plans.append(ModelPlan(str(role), overrides, cfg))
    return plans


def _prepare_step(model_cfg) -> Step:
    from ..models.prepare import run_prepare_model

    cfg = compose("prepare_model", [])
    with open_dict(cfg):
        cfg.model = model_cfg
        cfg.out_dir = None
    if model_cfg.get("path") in (None, ""):
        raise KnsError(f"model '{model_cfg.get('name')}' has no path: the main job prepares it there (model.path=DIR)")
    # Where the step will put it (resolve_model_dir would insist that it is already there).
    out = Path(str(model_cfg.path)).expanduser()
    return Step(key=f"prepare_{model_cfg.name}", title=f"prepare the encoder ({model_cfg.name})",
                run=lambda ctx: run_prepare_model(cfg), config=_plain(cfg.model), outputs=[out])


def _build_step(overrides: list[str], quick: bool, produced: list[Path]) -> Step:
    from ..data.build import run_build_dataset

    cfg = compose("build_dataset", list(overrides) + ["progress=false"] * bool(quick))
    outputs = [Path(cfg.out_dir)] + ([Path(cfg.data.extra_dir)] if OmegaConf.select(cfg, "data.extra_dir") else [])
    return Step(key=f"build_{cfg.data.name}", title=f"build the dataset {cfg.data.name}",
                run=lambda ctx: run_build_dataset(cfg), config=_plain(cfg),
                inputs=existing_paths(cfg.data, exclude=outputs, produced=produced,
                                      artifacts_dir=Path(cfg.paths.artifacts_dir)),
                outputs=outputs)


def _train_step(plan: ModelPlan, produced: list[Path]) -> Step:
    from ..training.train import run_train

    cfg = plan.cfg

    def run(ctx: StepContext) -> None:
        # An interrupted attempt with the same fingerprint continues from its last complete
        # checkpoint; anything else starts over in a clean run_dir.
        extra = ["trainer.resume=true", "overwrite=false"] if ctx.resume else ["overwrite=true", "trainer.resume=false"]
        run_train(compose("train", [*plan.overrides, *extra]), callbacks=[_progress_callback(ctx)])

    inputs = existing_paths({"data": _plain(cfg.data), "task": _plain(cfg.task), "model": _plain(cfg.model)},
                            exclude=[plan.run_dir], produced=produced, artifacts_dir=Path(cfg.paths.artifacts_dir))
    return Step(key=f"train_{plan.role}", title=f"train the {plan.role} model ({cfg.run_name})", run=run,
                config=_plain(cfg), inputs=inputs, outputs=[plan.model_dir])


def _evaluate_step(plan: ModelPlan, quick: bool) -> Step:
    from ..evaluation.run import run_evaluate

    overrides = [f"checkpoint={plan.model_dir}", f"data={plan.cfg.data.name}", f"dataset_dir={plan.cfg.data.dataset_dir}",
                 "split=test", f"out_dir={plan.eval_dir}", *(QUICK_EVALUATE if quick else [])]
    cfg = compose("evaluate", overrides)
    return Step(key=f"evaluate_{plan.role}", title=f"evaluate the {plan.role} model on the test split",
                run=lambda ctx: run_evaluate(cfg), config=_plain(cfg),
                inputs=[plan.model_dir, Path(plan.cfg.data.dataset_dir)], outputs=[plan.eval_dir / "metrics.json"])


def _publish_step(plan: ModelPlan, extra: list[str]) -> Step:
    from ..publish import run_publish

    cfg = compose("publish", [f"checkpoint={plan.model_dir}", f"metrics={plan.eval_dir / 'metrics.json'}",
                              f"out_dir={plan.release_dir}", f"repo_id=kazakh-ner-stance/{plan.cfg.run_name}",
                              "dry_run=true", *extra])
    return Step(key=f"publish_{plan.role}", title=f"stage the {plan.role} release (dry run)",
                run=lambda ctx: run_publish(cfg), config=_plain(cfg),
                inputs=[plan.model_dir, plan.eval_dir / "metrics.json"], outputs=[plan.release_dir])


def _progress_callback(ctx: StepContext):
    """A TrainerCallback that reports the share of optimizer steps done (the progress line's ETA)."""
    from transformers import TrainerCallback

    class StepProgress(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            # The starting point of the ETA (past 0 when resumed from a checkpoint).
            if state.max_steps:
                ctx.report(state.global_step / state.max_steps, "")

        def on_step_end(self, args, state, control, **kwargs):
            if state.max_steps:
                ctx.report(state.global_step / state.max_steps, f"step {state.global_step}/{state.max_steps}")

    return StepProgress()


def build_steps(job: DictConfig, plans: list[ModelPlan]) -> list[Step]:
    quick = bool(job.get("quick"))
    steps: list[Step] = []
    seen_models = set()
    for plan in plans:
        if plan.cfg.model.name not in seen_models:
            seen_models.add(plan.cfg.model.name)
            steps.append(_prepare_step(plan.cfg.model))
    for overrides in job.datasets:
        steps.append(_build_step(list(map(str, overrides)), quick, [p for s in steps for p in s.outputs]))
    steps += [_train_step(p, [p for s in steps for p in s.outputs]) for p in plans]
    steps += [_evaluate_step(p, quick) for p in plans]
    steps += [_publish_step(p, list(map(str, job.get("publish_overrides") or []))) for p in plans]
    return steps


def run_main_job(job: DictConfig, out=print) -> dict:
    """Run the whole mission; returns the summary it also writes to `out_dir/summary.json`."""
    if not job.get("models"):
        raise KnsError("the main job needs at least one model under `models` (e.g. models.ner=[experiment=...])")
    started = time.monotonic()
    out_dir = Path(job.out_dir) / ("quick" if job.get("quick") else "full")
    plans = plan_models(job)
    steps = build_steps(job, plans)
    runner = StepRunner(out_dir / "state", total=len(steps) + 1, fresh=bool(job.get("fresh")), out=out,
                        progress_every=float(job.get("progress_every") or 30))
    for step in steps:
        runner.run(step)
    # The last step always runs: it is what a user looks at.
    runner.index += 1
    example_started = time.monotonic()
    predictions = predict_examples(plans, [str(t) for t in job.examples])
    examples_file = out_dir / "example_predictions.json"
    write_json_atomic(examples_file, predictions)
    example_seconds = time.monotonic() - example_started
    out(f"[{runner.index}/{runner.total}] predict the examples with both models: done in {format_duration(example_seconds)}")
    out("")
    out(format_predictions(predictions))
    headline = headline_scores(plans)
    outputs = where_outputs_went(plans, steps, examples_file)
    timings = [{"step": r.title, "status": r.status, "seconds": round(r.seconds, 1),
                "recorded_seconds": round(r.recorded_seconds, 1), "resumed": r.resumed} for r in runner.records]
    timings.append({"step": "predict the examples", "status": "ran", "seconds": round(example_seconds, 1),
                    "recorded_seconds": round(example_seconds, 1), "resumed": False})
    summary = {"quick": bool(job.get("quick")), "total_seconds": round(time.monotonic() - started, 1),
               "steps": timings, "headline": headline, "outputs": outputs, "examples": str(examples_file)}
    write_json_atomic(out_dir / "summary.json", summary)
    out("")
    out(format_headline(headline))
    out("")
    out(format_outputs(outputs))
    out("")
    out(format_timings(timings, summary["total_seconds"]))
    return summary


def predict_examples(plans: list[ModelPlan], texts: list[str]) -> list[dict]:
    """The raw-text Predictor with the NER model (entities) and the stance model (each entity's
    stance), as a user would call it."""
    from ..predict import Predictor

    by_role = {p.role: p for p in plans}
    ner, stance = by_role.get("ner"), by_role.get("stance")
    if ner is None:
        raise KnsError("predicting raw text needs the NER model (models.ner): it finds the targets")
    predictor = Predictor.from_pretrained(ner.model_dir, stance_checkpoint=stance.model_dir if stance else None)
    return predictor(texts)


def format_predictions(results: list[dict]) -> str:
    lines = []
    for res in results:
        lines.append(f"text: {res['text']}")
        lines.append("  entities: " + (", ".join(f"{e['text']} ({e['type']})" for e in res["entities"]) or "none"))
        for t in res["targets"]:
            probs = t.get("probs") or {}
            lines.append(f"  stance toward {t['text']}: {t['label']} ({probs.get(t['label'], float('nan')):.2f}; "
                         + ", ".join(f"{k} {v:.2f}" for k, v in sorted(probs.items())) + ")")
        if not res["targets"]:
            lines.append("  stance: no target entity found")
    return "\n".join(lines)


def headline_scores(plans: list[ModelPlan]) -> list[dict]:
    """Each model's test score with its CI, read from its evaluation (entity micro-F1 where the
    metrics are per entity, macro-F1 and the two polar classes where they are per class)."""
    rows = []
    for plan in plans:
        m = json.loads((plan.eval_dir / "metrics.json").read_text(encoding="utf-8"))
        base = {"model": plan.role, "run": str(plan.cfg.run_name)}
        if isinstance(m.get("micro"), dict):
            rows.append({**base, "metric": "test entity micro-F1 (strict IOB2)", "value": m["micro"].get("f1"),
                         "ci": m["micro"].get("f1_ci"), "items": m.get("n_sentences")})
            continue
        macro = m.get("macro") or {}
        rows.append({**base, "metric": "test macro-F1 (FAVOR/AGAINST/NONE)", "value": macro.get("f1"),
                     "ci": macro.get("f1_ci"), "items": m.get("n_sentences")})
        per_class = m.get("per_class") or {}
        for label in ("FAVOR", "AGAINST"):
            row = per_class.get(label)
            if isinstance(row, dict) and row.get("f1") is not None:
                rows.append({**base, "metric": f"test F1 {label}", "value": row["f1"], "ci": row.get("f1_ci"),
                             "items": row.get("support")})
    return rows


def format_headline(rows: list[dict]) -> str:
    width = max([len(r["metric"]) for r in rows] + [6])
    lines = [f"{'model':<7} {'metric':<{width}} {'value':>6}  {'95% CI':<16} items", "-" * (width + 40)]
    for r in rows:
        ci = f"[{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]" if r.get("ci") else ""
        value = f"{r['value']:.3f}" if r.get("value") is not None else "n/a"
        lines.append(f"{r['model']:<7} {r['metric']:<{width}} {value:>6}  {ci:<16} {r.get('items') or ''}")
    return "\n".join(lines)


def where_outputs_went(plans: list[ModelPlan], steps: list[Step], examples_file: Path) -> dict:
    outputs = {}
    for step in steps:
        if step.key.startswith(("prepare_", "build_")):
            outputs[step.title] = [str(p) for p in step.outputs]
    for plan in plans:
        outputs[f"{plan.role} model"] = [str(plan.model_dir)]
        outputs[f"{plan.role} test report"] = [str(plan.eval_dir / "report.html")]
        outputs[f"{plan.role} staged release"] = [str(plan.release_dir)]
    outputs["example predictions"] = [str(examples_file)]
    return outputs


def format_outputs(outputs: dict) -> str:
    width = max(len(k) for k in outputs)
    return "\n".join(f"{k:<{width}}  {', '.join(v)}" for k, v in outputs.items())


def format_timings(timings: list[dict], total: float) -> str:
    width = max(len(t["step"]) for t in timings)
    lines = [f"{'step':<{width}}  {'this run':>9}  status"]
    for t in timings:
        note = t["status"] + (" (resumed)" if t["resumed"] else "")
        if t["status"] == "skipped":
            note += f", took {format_duration(t['recorded_seconds'])} when it ran"
        lines.append(f"{t['step']:<{width}}  {format_duration(t['seconds']):>9}  {note}")
    lines.append(f"{'total':<{width}}  {format_duration(total):>9}")
    return "\n".join(lines)
