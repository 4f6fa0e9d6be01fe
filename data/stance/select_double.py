"""How the 600 doubly annotated items were drawn (kept for reproducibility).

    python data/stance/select_double.py ../shared/data/kaznerd/IOB2_valid_sentid.txt

Items are every entity span of the ten target types, in file order. 420 items were drawn from
sentences containing one of the evaluative cue stems below (lower-cased substring match), 180
from the other sentences, with random.Random(13); the draw was then shuffled and dealt into
three batches for the second annotators (ann6, ann7, ann8). Prints the selected item IDs.
"""

import random
import sys

TYPES = {"PERSON", "ORGANISATION", "GPE", "NORP", "EVENT", "PROJECT", "LAW", "FACILITY", "LOCATION", "PRODUCT"}
CUES = ["қолда", "құттықта", "марапат", "алғыс", "рақмет", "рахмет", "мақтан", "жоғары баға", "жетістік",
        "құрмет", "сын", "айыпта", "наразы", "шағым", "қарсы", "алаяқ", "сыбайлас", "заңсыз", "кінә",
        "қамау", "тамаша", "керемет", "үздік", "лайық", "сенім", "ризашылық", "мақта", "құпта", "мойында",
        "дана", "орден", "медаль", "сыйлық", "қошемет", "қылмыс", "пара", "ұнамады", "құлшыныс", "табыс",
        "айыптал", "бұзушылық", "талап", "ескерту", "қаһарман", "батыр", "ұлы ", "атақ", "беделі"]


def read_sentences(path):
    sents, cur = [], None
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line.strip():
            if cur:
                sents.append(cur)
            cur = None
            continue
        tok, tag = line.rsplit(" ", 1)
        if cur is None:
            cur = {"sent_id": tok, "tokens": [], "tags": []}
            continue
        cur["tokens"].append(tok)
        cur["tags"].append(tag)
    if cur:
        sents.append(cur)
    return sents


def main(path):
    sents = {s["sent_id"]: s for s in read_sentences(path)}
    items = []
    for sid, s in sents.items():
        tags, i = s["tags"], 0
        while i < len(tags):
            if tags[i].startswith("B-"):
                typ, j = tags[i][2:], i + 1
                while j < len(tags) and tags[j] == "I-" + typ:
                    j += 1
                if typ in TYPES:
                    items.append((sid, i, j, typ))
                i = j
            else:
                i += 1
    text = lambda sid: " ".join(sents[sid]["tokens"]).lower()  # noqa: E731
    cue = [it for it in items if any(c in text(it[0]) for c in CUES)]
    cue_set = set(cue)
    rest = [it for it in items if it not in cue_set]
    rng = random.Random(13)
    pick = rng.sample(cue, 420) + rng.sample(rest, 180)
    rng.shuffle(pick)
    print(f"# {len(items)} items; {len(cue)} in cue sentences; 420 + 180 drawn", file=sys.stderr)
    for k in range(3):
        for sid, a, b, _ in sorted(pick[k::3], key=lambda it: (it[0], it[1])):
            print(f"ann{6 + k}\t{sid}:{a}-{b}")


if __name__ == "__main__":
    main(sys.argv[1])
