"""`kns-stance-layers` (`python scripts/stance_layers.py`): make the issue-22 stance layers.

News gold layer (NTREX, FLORES, Akorda; `data=kazakh_news` for where the text is):

    stance_layers.py news-export --batches 6 --out WORK          # batch_K.txt/.ids + double_K.txt/.ids
    stance_layers.py news-disagreements --first WORK/ann[1-6].jsonl --second WORK/ann[78].jsonl --out WORK/disagreements.jsonl
    stance_layers.py news-assemble --first ... --second ... --adjudication WORK/adjudication.jsonl
        -> data/stance/kazakh_news_stance.jsonl, kazakh_news_stance_double.jsonl, kazakh_news_agreement.json

Reviews gold layer (KazSAnDRA review sentences that name an entity; `data=kazsandra_reviews`):
the same three commands with `--corpus reviews`
        -> data/stance/kazsandra_stance.jsonl, kazsandra_stance_double.jsonl, kazsandra_agreement.json

NER-proposed targets (the trained NER model's proposals that no annotator marked):

    stance_layers.py news-ner-audit --checkpoint RUN/model --out NERWORK    # audit.json + candidates_K / double_K
    stance_layers.py news-ner-assemble --work NERWORK --first NERWORK/lab*.jsonl --second NERWORK/dbl*.jsonl
        [--adjudication NERWORK/adjudication.jsonl]
        -> data/stance/kazakh_news_ner_targets.jsonl, kazakh_news_ner_audit.json

Counterfactual layer (sources from the built `data=kaznerd_stance` train split):

    stance_layers.py cf-select --batches 4 --out CFWORK          # tasks.jsonl + editor_K.txt/.ids
    stance_layers.py cf-checks-export --edits CFWORK/ed[12].jsonl --batches 2 --name a --out CFWORK
    stance_layers.py cf-assemble --edits CFWORK/ed*.jsonl --checks CFWORK/chk*.jsonl
        -> data/stance/kaznerd_counterfactual.jsonl, kaznerd_counterfactual_report.json

Every reader reports bad lines as FILE:LINE: problem and writes nothing then (exit 2).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from ..errors import DataValidationError, KnsError


# The text each gold layer is annotated over: its data config and the stem of its files in data/stance.
CORPORA = {"news": ("kazakh_news", "kazakh_news"), "reviews": ("kazsandra_reviews", "kazsandra")}


def _sentences(overrides=(), corpus: str = "news"):
    """{id: sentence} of a corpus: the news text, or the selected KazSAnDRA review sentences
    (with their proposed names)."""
    from ..config import compose

    cfg = compose("build_dataset", [f"data={CORPORA[corpus][0]}", *overrides])
    if corpus == "reviews":
        from ..data.kazsandra_reviews import selected_sentences

        return {s.id: s for s in selected_sentences(cfg.data)}, cfg
    from ..data.kazakh_news import read_sources

    return {s.id: s for s in read_sources(cfg.data)}, cfg


def _write_jsonl(path: Path, rows) -> None:
    from ..atomic import write_text_atomic

    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def _write_batch(out: Path, name: str, text: str, ids) -> None:
    """One annotation batch: NAME.txt (what the annotator reads) and NAME.ids (its ids, in order)."""
    (out / f"{name}.txt").write_text(text, encoding="utf-8")
    (out / f"{name}.ids").write_text("".join(i + "\n" for i in ids), encoding="utf-8")


def _root() -> Path:
    from ..config import compose

    return Path(str(compose("build_dataset", []).paths.root_dir))


def news_export(args) -> int:
    from .news_layer import batch_text, deal_documents, double_sample

    sentences, _ = _sentences(corpus=args.corpus)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sents = list(sentences.values())
    for k, b in enumerate(deal_documents(sents, args.batches, args.seed), 1):
        _write_batch(out, f"batch_{k}", batch_text(b), (s.id for s in b))
    sample = [sentences[i] for i in double_sample(sents, args.double_share, args.double_seed)]
    size = -(-len(sample) // args.double_parts)
    for j in range(args.double_parts):
        part = sample[j * size:(j + 1) * size]
        _write_batch(out, f"double_{j + 1}", batch_text(part), (s.id for s in part))
    print(f"{len(sents)} sentences in {args.batches} batches; double sample {len(sample)} sentences in "
          f"{args.double_parts} parts: {out}")
    return 0


def _read_rounds(args, sentences):
    from .news_layer import read_annotations

    first, p1, _ = read_annotations(map(Path, args.first), sentences)
    second, p2, _ = read_annotations(map(Path, args.second), sentences)
    if p1 or p2:
        raise DataValidationError(p1 + p2)
    missing = [sid for sid in sentences if sid not in first]
    if missing:
        raise KnsError(f"{len(missing)} sentences have no first annotation, e.g. {missing[:5]}")
    return first, second


def news_disagreements(args) -> int:
    from .news_layer import disagreements

    sentences, _ = _sentences(corpus=args.corpus)
    first, second = _read_rounds(args, sentences)
    rows = disagreements(first, second, sentences)
    _write_jsonl(Path(args.out), rows)
    print(f"{len(rows)} disagreements on {len(set(first) & set(second))} double-annotated sentences: {args.out}")
    return 0


def news_assemble(args) -> int:
    from .news_layer import (agreement_report, apply_adjudication, disagreements, layer_records, read_adjudication,
                             read_layer)

    sentences, _ = _sentences(corpus=args.corpus)
    first, second = _read_rounds(args, sentences)
    open_items = {d["key"]: d for d in disagreements(first, second, sentences)}
    decisions, problems = read_adjudication(Path(args.adjudication), open_items)
    if problems:
        raise DataValidationError(problems)
    final, double_rows = apply_adjudication(first, second, decisions, open_items)
    final = {sid: final[sid] for sid in sentences if sid in final}  # file order
    layer = layer_records(final, sentences)
    report = agreement_report(first, second, double_rows)
    out = Path(args.out_dir or _root() / "data" / "stance")
    out.mkdir(parents=True, exist_ok=True)
    stem = CORPORA[args.corpus][1]
    _write_jsonl(out / f"{stem}_stance.jsonl", layer)
    _write_jsonl(out / f"{stem}_stance_double.jsonl", double_rows)
    from ..atomic import write_text_atomic

    write_text_atomic(out / f"{stem}_agreement.json", json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    read_layer(out / f"{stem}_stance.jsonl", sentences)  # what was written reads back
    from collections import Counter

    print(f"{args.corpus} stance layer: {len(layer)} items {dict(Counter(r['label'] for r in layer))}")
    lab = report["labels"]
    print(f"double sample: target F1 {report['targets']['f1_span_and_type']} (span only "
          f"{report['targets']['f1_span']}); label kappa {lab['kappa']:.3f} over {lab['n']} shared targets; per class "
          + ", ".join(f"{k} {v:.3f}" for k, v in lab["per_class_kappa"].items() if v is not None))
    return 0


def news_ner_audit(args) -> int:
    """The NER model's target proposals against the news layer: audit.json, and the proposals no
    annotator marked as annotation batches (candidates_K.txt/.ids, double_K for a blind second round)."""
    from ..atomic import write_text_atomic
    from ..tasks.ner import load_ner_checkpoint, predict_word_tags
    from ..training.checkpoints import trained_inference
    from .ner_audit import candidate_text, candidates, compare, double_sample, proposals, split_batches
    from .news_layer import read_layer

    sentences, _ = _sentences()
    layer = read_layer(Path(args.layer or _root() / "data" / "stance" / "kazakh_news_stance.jsonl"), sentences)
    model, tokenizer, id2label = load_ner_checkpoint(args.checkpoint)
    trained = trained_inference(args.checkpoint)
    ids = list(sentences)
    tags = predict_word_tags(model, tokenizer, [sentences[i].tokens for i in ids], batch_size=32,
                             max_length=trained["max_length"], overlap=trained["overlap"] or 32, id2label=id2label,
                             decoding=args.decoding or trained["decoding"])
    proposed = proposals(dict(zip(ids, tags)))
    report = {"checkpoint": str(args.checkpoint), "decoding": args.decoding or trained["decoding"],
              **compare(proposed, layer)}
    cands = candidates(proposed, layer, sentences)
    report["candidates"] = len(cands)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "audit.json", json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    _write_jsonl(out / "candidates.jsonl", cands)
    for k, batch in enumerate(split_batches(cands, args.batches, args.seed), 1):
        _write_batch(out, f"candidates_{k}", candidate_text(batch, sentences), (c["id"] for c in batch))
    double = set(double_sample(cands, args.double_share, args.double_seed))
    dbl = [c for c in cands if c["id"] in double]
    for k, batch in enumerate(split_batches(dbl, args.double_parts, args.seed + 1), 1):
        _write_batch(out, f"double_{k}", candidate_text(batch, sentences), (c["id"] for c in batch))
    o = report["overall"]
    print(f"{report['sentences']} sentences: {o['proposals']} NER proposals, {o['layer_targets']} layer targets; "
          f"exact span {o['exact_span']} (recall {o['recall_span']}, precision {o['precision_span']}), "
          f"span+type F1 {o['f1_span_and_type']}; {len(cands)} proposals overlap no layer target "
          f"({len(dbl)} in the double sample) -> {out}")
    return 0


def news_ner_assemble(args) -> int:
    """The decided candidates -> data/stance/kazakh_news_ner_targets.jsonl and the audit with its agreement."""
    from ..atomic import write_text_atomic
    from .ner_audit import accepted_items, agreement, read_decisions
    from .news_layer import read_layer

    sentences, _ = _sentences()
    work = Path(args.work)
    from ..data.stance_layer import read_jsonl

    problems = []
    items = {row["id"]: row for _, row in read_jsonl(work / "candidates.jsonl", problems)}
    if problems:
        raise DataValidationError(problems)
    first, problems = read_decisions([Path(p) for p in args.first], items)
    double_ids = {line.strip() for p in sorted(work.glob("double_*.ids")) for line in p.read_text().splitlines() if line.strip()}
    second, more = read_decisions([Path(p) for p in args.second], {i: items[i] for i in double_ids})
    problems += more
    adjudicated = {}
    if args.adjudication:
        shared = {i: items[i] for i in set(first) & set(second)
                  if (first[i]["is_target"], first[i].get("type"), first[i].get("label"))
                  != (second[i]["is_target"], second[i].get("type"), second[i].get("label"))}
        adj, more = read_decisions([Path(args.adjudication)], shared)
        problems += more
        adjudicated = adj
    if problems:
        raise DataValidationError(problems)
    rows = accepted_items(items, first, second, adjudicated)
    order = {sid: k for k, sid in enumerate(sentences)}
    rows.sort(key=lambda r: (order[r["sent_id"]], r["start"]))
    out = Path(args.out_dir or _root() / "data" / "stance")
    out.mkdir(parents=True, exist_ok=True)
    _write_jsonl(out / "kazakh_news_ner_targets.jsonl", rows)
    read_layer(out / "kazakh_news_ner_targets.jsonl", sentences)  # what was written reads back
    # Every decision, rejections included (with the annotator's reason): who decided what.
    decided = [{"id": cid, "round": rnd, "target": items[cid]["target"], "proposed_type": items[cid]["proposed_type"],
                **{k: v for k, v in d.items() if v not in (None, "")}}
               for rnd, rows_ in (("first", first), ("second", second), ("adjudication", adjudicated))
               for cid, d in sorted(rows_.items())]
    _write_jsonl(out / "kazakh_news_ner_decisions.jsonl", decided)
    audit = json.loads((work / "audit.json").read_text(encoding="utf-8"))
    from collections import Counter

    audit["decisions"] = {"candidates": len(items), "accepted": len(rows),
                          "labels": dict(Counter(r["label"] for r in rows)),
                          "types": dict(Counter(r["type"] for r in rows)),
                          "annotators": sorted({d["annotator"] for d in first.values()}),
                          "double": agreement(first, second),
                          "adjudicated": len(adjudicated)}
    write_text_atomic(out / "kazakh_news_ner_audit.json", json.dumps(audit, indent=1, ensure_ascii=False) + "\n")
    d = audit["decisions"]
    dbl = d["double"]
    print(f"{d['accepted']} of {d['candidates']} NER-proposed targets accepted {d['labels']}; double sample: "
          f"is_target agreed on {dbl['is_target']['agree']}/{dbl['items']} (kappa {dbl['is_target']['kappa']}), "
          f"labels on {dbl['labels']['agree']}/{dbl['labels']['items']} (kappa {dbl['labels']['kappa']})")
    return 0


def _train_rows(dataset_dir: str | None):
    from ..config import compose
    from ..data.built_dataset import load_built_dataset

    folder = dataset_dir or str(compose("build_dataset", ["data=kaznerd_stance"]).data.dataset_dir)
    split = load_built_dataset(folder)["train"]
    names = split.features["label"].names
    return [{**r, "label": names[int(r["label"])]} for r in split]


def cf_select(args) -> int:
    from .counterfactual import editor_batch_text, select_sources

    tasks = select_sources(_train_rows(args.dataset_dir), seed=args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    _write_jsonl(out / "tasks.jsonl", tasks)
    order = list(tasks)
    random.Random(args.seed).shuffle(order)
    for k in range(args.batches):
        part = sorted(order[k::args.batches], key=lambda t: t["task_id"])
        _write_batch(out, f"editor_{k + 1}", editor_batch_text(part), (t["task_id"] for t in part))
    print(f"{len(tasks)} counterfactual tasks in {args.batches} batches: {out}")
    return 0


def _tasks(folder: Path) -> dict:
    rows = [json.loads(x) for x in (folder / "tasks.jsonl").read_text(encoding="utf-8").splitlines() if x.strip()]
    return {t["task_id"]: t for t in rows}


def cf_checks_export(args) -> int:
    """The blind checkers' batches: each edit's marked sentence and target type only (no source,
    no intended label), mixed with a seeded share of unedited source items as controls."""
    from .counterfactual import checker_batch_text, control_items, mixed_check_batches, read_edits

    folder = Path(args.out)
    tasks = _tasks(folder)
    edits, problems = read_edits([Path(p) for p in args.edits], tasks)
    if problems:
        raise DataValidationError(problems)
    edited = [edits[t] for t in sorted(edits)]
    controls = control_items([tasks[t] for t in sorted(edits)], args.control_share, args.seed)
    _write_jsonl(folder / f"edits_for_check_{args.name}.jsonl", edited + controls)
    for k, part in enumerate(mixed_check_batches(edited, controls, args.batches, args.seed), 1):
        _write_batch(folder, f"check_{args.name}{k}", checker_batch_text(part), (e["task_id"] for e in part))
        print(f"check_{args.name}{k}: {len(part)} items")
    return 0


def cf_assemble(args) -> int:
    from collections import Counter

    from ..atomic import write_text_atomic
    from .counterfactual import assemble, read_checks, read_edits, read_layer

    folder = Path(args.work)
    tasks = _tasks(folder)
    edits, p1 = read_edits([Path(p) for p in args.edits], tasks)
    given = {}
    for path in sorted(folder.glob("edits_for_check_*.jsonl")):  # what the checkers were given: edits, controls
        given.update({e["task_id"]: e for e in map(json.loads, path.read_text(encoding="utf-8").splitlines())
                      if e["task_id"].startswith("ctl")})
    checks, p2 = read_checks([Path(p) for p in args.checks], {**edits, **given})
    if p1 or p2:
        raise DataValidationError(p1 + p2)
    layer, report = assemble(tasks, edits, checks)
    out = Path(args.out_dir or _root() / "data" / "stance")
    out.mkdir(parents=True, exist_ok=True)
    _write_jsonl(out / "kaznerd_counterfactual.jsonl", layer)
    write_text_atomic(out / "kaznerd_counterfactual_report.json", json.dumps(report, indent=1) + "\n")
    _write_jsonl(out / "kaznerd_counterfactual_checks.jsonl",
                 [{"task_id": t, "source_id": tasks[t]["source_id"], "intended": tasks[t]["intended"],
                   "kind": edits[t]["kind"], "edited": edits[t]["marked"], "editor": edits[t]["editor"],
                   **({"checker": checks[t]["checker"], "checker_label": checks[t]["label"],
                       "fluency": checks[t]["fluency"], "comment": checks[t]["comment"]} if t in checks else {})}
                  for t in sorted(edits)])
    read_layer(out / "kaznerd_counterfactual.jsonl")
    print(f"counterfactual layer: {len(layer)} kept of {len(edits)} edits ({report['checked']} checked) "
          f"{dict(Counter(r['label'] for r in layer))}")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="kns-stance-layers", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    def batch_options(p, batches: int, double_share: float, double_seed: int) -> None:
        """The options of an export into annotation batches with a blind double sample."""
        p.add_argument("--batches", type=int, default=batches)
        p.add_argument("--seed", type=int, default=7)
        p.add_argument("--double-share", type=float, default=double_share)
        p.add_argument("--double-seed", type=int, default=double_seed)
        p.add_argument("--double-parts", type=int, default=2)
        p.add_argument("--out", required=True)

    corpus_help = "news: NTREX, FLORES, Akorda (data=kazakh_news); reviews: KazSAnDRA sentences (data=kazsandra_reviews)"
    p = sub.add_parser("news-export")
    batch_options(p, 6, 0.2, 22)
    p.add_argument("--corpus", choices=sorted(CORPORA), default="news", help=corpus_help)
    for name in ("news-disagreements", "news-assemble"):
        p = sub.add_parser(name)
        p.add_argument("--corpus", choices=sorted(CORPORA), default="news", help=corpus_help)
        p.add_argument("--first", nargs="+", required=True)
        p.add_argument("--second", nargs="+", required=True)
        if name == "news-disagreements":
            p.add_argument("--out", required=True)
        else:
            p.add_argument("--adjudication", required=True)
            p.add_argument("--out-dir", default=None, help="default: data/stance")
    p = sub.add_parser("news-ner-audit")
    p.add_argument("--checkpoint", required=True, help="a trained NER model folder")
    p.add_argument("--layer", default=None, help="default: data/stance/kazakh_news_stance.jsonl")
    p.add_argument("--decoding", default=None, choices=["argmax", "viterbi"])
    batch_options(p, 4, 0.3, 23)
    p = sub.add_parser("news-ner-assemble")
    p.add_argument("--work", required=True, help="the news-ner-audit folder (candidates.jsonl, double_*.ids)")
    p.add_argument("--first", nargs="+", required=True)
    p.add_argument("--second", nargs="+", required=True)
    p.add_argument("--adjudication", default=None)
    p.add_argument("--out-dir", default=None, help="default: data/stance")
    p = sub.add_parser("cf-select")
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--seed", type=int, default=22)
    p.add_argument("--dataset-dir", default=None, help="default: the built kaznerd_stance dataset")
    p.add_argument("--out", required=True)
    p = sub.add_parser("cf-checks-export")
    p.add_argument("--edits", nargs="+", required=True)
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--control-share", type=float, default=0.12)
    p.add_argument("--name", default="a", help="names this export's files (check_NAME1.txt ...), so rounds add up")
    p.add_argument("--seed", type=int, default=22)
    p.add_argument("--out", required=True)
    p = sub.add_parser("cf-assemble")
    p.add_argument("--work", required=True, help="the folder of tasks.jsonl")
    p.add_argument("--edits", nargs="+", required=True)
    p.add_argument("--checks", nargs="+", required=True)
    p.add_argument("--out-dir", default=None, help="default: data/stance")
    args = ap.parse_args(argv)
    handler = {"news-ner-audit": news_ner_audit, "news-ner-assemble": news_ner_assemble, "news-export": news_export, "news-disagreements": news_disagreements, "news-assemble": news_assemble,
               "cf-select": cf_select, "cf-checks-export": cf_checks_export, "cf-assemble": cf_assemble}[args.cmd]
    try:
        return handler(args)
    except KnsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
