"""Check an editor's (or checker's) file of counterfactual work before handing it in:

    python -m kazakh_ner_stance.stance_annotation.check_edits TASKS.ids EDITS.jsonl
    python -m kazakh_ner_stance.stance_annotation.check_edits TASKS.ids CHECKS.jsonl --checks

Task ids come from artifacts/annotation/cf/tasks.jsonl (``select``); prints every problem as
FILE:LINE: what and the tasks without a line; exits 1 when there is any."""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path


def main(argv=None) -> int:
    from .counterfactual import read_checks, read_edits

    argv = list(sys.argv[1:] if argv is None else argv)
    checks = "--checks" in argv
    argv = [a for a in argv if a != "--checks"]
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    ids_file, work_file = map(Path, argv)
    folder = ids_file.parent
    wanted = [x.strip() for x in ids_file.read_text(encoding="utf-8").splitlines() if x.strip()]
    tasks = {t["task_id"]: t for t in map(json.loads, (folder / "tasks.jsonl").read_text(encoding="utf-8").splitlines())}
    if checks:
        edits = {}
        for path in sorted(folder.glob("edits_for_check_*.jsonl")):
            for line in path.read_text(encoding="utf-8").splitlines():
                e = json.loads(line)
                edits[e["task_id"]] = e
        done, problems = read_checks([work_file], edits)
        summary = Counter((d["label"], d["fluency"]) for d in done.values())
    else:
        done, problems = read_edits([work_file], tasks)
        summary = Counter(d["kind"] for d in done.values())
    for p in problems:
        print(p)
    missing = [i for i in wanted if i not in done]
    if missing:
        print(f"{len(missing)} task(s) have no valid line: {', '.join(missing[:30])}" + (" ..." if len(missing) > 30 else ""))
    print(f"{len(done)} of {len(wanted)} tasks done {dict(summary)}; {len(problems)} problem(s)")
    return 1 if (problems or missing) else 0


if __name__ == "__main__":
    sys.exit(main())
