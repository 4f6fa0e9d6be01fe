"""The text of the stance and joint dataset cards (README.md): header, label definition,
agreement and the sections each card holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from .markdown import markdown_table
from .stance_rows import SPLITS, PlacedRows


def card_text(
    title: str, body_sections: Sequence[str], cfg_summary: Mapping, license_: str = "cc-by-4.0"
) -> str:
    """A dataset card: the YAML header the Hub reads, the title, `body_sections` and a provenance list."""
    header = (
        "---\n"
        f"license: {license_}\n"
        "language:\n- kk\n"
        "task_categories:\n- text-classification\n- token-classification\n"
        "pretty_name: " + title + "\n---\n\n"
    )
    prov = "\n".join(f"- {k}: `{v}`" for k, v in cfg_summary.items())
    return header + f"# {title}\n\n" + "\n\n".join(body_sections) + "\n\n## Provenance\n\n" + prov + "\n"


LABEL_DEFINITION = """\
Each item is one KazNERD sentence and one **target**, a named-entity span of the sentence
(token offsets `start`/`end`, end exclusive) of type PERSON, ORGANISATION, GPE, NORP, EVENT,
PROJECT, LAW, FACILITY, LOCATION or PRODUCT. The label answers: *reading only this sentence,
does it express or clearly imply an attitude toward the target?* `FAVOR` (support, approval,
praise, gratitude, welcome, honours), `AGAINST` (opposition, criticism, condemnation,
accusation, distrust) or `NONE` (neutral reporting, or an attitude about something else).
Full definition: `docs/stance-labels.md` of the shared project docs. Label ids:
`ClassLabel(names=["NONE", "FAVOR", "AGAINST"])` (0, 1, 2)."""


def agreement_markdown(double_report: dict | None) -> str:
    if not double_report:
        return ""
    return (
        "## Inter-annotator agreement\n\n"
        f"{double_report['items']} items were labelled by two annotators: observed agreement "
        f"{double_report['observed']:.3f}, Cohen's kappa {double_report['kappa']:.3f}; per class: "
        + ", ".join(f"{k} {v:.3f}" for k, v in double_report["kappa_per_class"].items())
        + f". {double_report['adjudicated']} disagreements were adjudicated."
    )


def stance_sections(stats: dict, placed: PlacedRows, counts_md: str, wl_md: str, joint_dir: Path) -> list[str]:
    everything = placed.joint_sentences == "all"
    return [
        "Stance toward named-entity targets in Kazakh sentences of KazNERD (Yeshpanov, "
        "Khassanov, Varol, LREC 2022; CC BY 4.0). Each item is a sentence, a target span and a "
        "stance label; the splits follow the NER dataset's splits by sentence.",
        "## Labels\n\n" + LABEL_DEFINITION,
        "## Statistics\n\n" + counts_md
        + f"\n\n{stats['items']} items over {stats['sentences']} sentences"
        + (f"; {len(placed.unassigned)} item(s) dropped (sentence in no NER split)." if placed.unassigned else "."),
        agreement_markdown(stats["agreement"]),
        "## Weak labels against the gold layer\n\n" + wl_md,
        "## Joint variant\n\n"
        f"`{joint_dir.name}`: "
        + ("every sentence of the NER dataset" if everything else "each annotated sentence")
        + " with its NER tags and a `targets` list (start, end, target, type, stance label)"
        + ("; sentences without a target have an empty list." if everything else "."),
    ]


def joint_sections(placed: PlacedRows, counts_md: str) -> list[str]:
    everything = placed.joint_sentences == "all"
    return [
        ("Every sentence of the KazNERD NER dataset" if everything
         else "KazNERD sentences that carry stance annotation")
        + ", each with its NER tags (IOB2, the NER dataset's label names) and the stance of each "
        "annotated target span. Splits follow the NER dataset by sentence."
        + (f" {placed.untargeted} sentences hold no target (entities of other types only, or none) and "
           "have an empty `targets` list: the stance layer labels every entity of a target "
           "type, so an empty list is gold, and these sentences train and score the NER head."
           if everything else ""),
        "## Labels\n\n" + LABEL_DEFINITION,
        "## Statistics\n\n"
        + markdown_table(["split", "sentences"], [[s, len(placed.joint_rows[s])] for s in SPLITS])
        + "\n\n"
        + counts_md,
    ]
