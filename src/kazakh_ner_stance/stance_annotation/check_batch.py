"""Check one annotator's file against its batch before handing it in:

    python -m kazakh_ner_stance.stance_annotation.check_batch BATCH.ids ANNOTATIONS.jsonl

Prints every problem as FILE:LINE: what, and the sentences of the batch that have no line;
exits 1 when there is any, 0 with a one-line summary when the file is complete and valid."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path


def main(argv=None) -> int:
    from ..config import compose
    from .news_layer import read_annotations

    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    ids_file, ann_file = map(Path, argv)
    wanted = [line.strip() for line in ids_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    if wanted and all(i.startswith("kazsandra:") for i in wanted):
        from ..data.kazsandra_reviews import read_configured, sentences_by_id

        sentences = sentences_by_id(read_configured(compose("build_dataset", ["data=kazsandra_reviews"]).data), wanted)
    else:
        from ..data.kazakh_news import read_sources

        sentences = {s.id: s for s in read_sources(compose("build_dataset", ["data=kazakh_news"]).data)}
    annotations, problems, counts = read_annotations([ann_file], sentences)
    for p in problems:
        print(p)
    missing = [i for i in wanted if i not in annotations]
    extra = [i for i in annotations if i not in set(wanted)]
    if missing:
        print(f"{len(missing)} sentence(s) of the batch have no line: {', '.join(missing[:30])}"
              + (" ..." if len(missing) > 30 else ""))
    if extra:
        print(f"{len(extra)} line(s) for sentences not in this batch: {', '.join(extra[:30])}")
    labels = Counter(t["label"] for a in annotations.values() for t in a["targets"])
    print(f"{len(annotations)} of {len(wanted)} sentences, {sum(labels.values())} targets {dict(labels)}; "
          f"{counts.get('relocated', 0)} spans re-located from the target's words; {len(problems)} problem(s)")
    return 1 if (problems or missing or extra) else 0


if __name__ == "__main__":
    sys.exit(main())
