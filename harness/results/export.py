"""Exporting a run in MMAD's answers-file format, so the official scorer can be run on it."""

from __future__ import annotations

from harness.asking.parsing import parse_mmad_compat
from harness.asking.prompting import render_text
from harness.schema import SampleResult


def answers_file_records(samples: list[SampleResult], *, with_text: bool = True) -> list[dict]:
    """MMAD answer entries in question-set order. `gpt_answer` is what the official script would
    have recorded: under an official protocol its family's parser (records it would not have
    written are left out, and for two-call protocols the whole image with them); otherwise the last
    standalone A–E of the reply, or the raw reply when there is none (their scorer drops it)."""
    dropped_images = _images_dropped_officially(samples)
    records = []
    for sample in sorted(samples, key=lambda s: s.ordinal):
        if "@rot" in sample.question_id:  # circular evaluation's extra rotations are not MMAD questions
            continue
        if sample.image_id in dropped_images or (sample.protocol and sample.official_answer is None):
            continue
        # the question's text is for the file MMAD's scripts read; scoring needs only the letters
        question_text = render_text("mmad/question.j2", number=1, question=sample.question, options=sample.options) if with_text else ""
        records.append(
            {
                "image": sample.image_id,
                "question": {"type": "text", "text": question_text},
                "question_type": sample.mmad_type,
                "correct_answer": sample.answer,
                "gpt_answer": sample.official_answer if sample.protocol else (parse_mmad_compat(sample.reply) or sample.reply),
            }
        )
    return records


def _images_dropped_officially(samples: list[SampleResult]) -> set[str]:
    """Images a two-call script skipped whole: one of their records has no official answer."""
    from harness.protocols import load_protocol

    batching = {name: load_protocol(name).batching for name in {s.protocol for s in samples if s.protocol}}
    return {s.image_id for s in samples if s.protocol and s.official_answer is None and batching[s.protocol] == "first-then-rest"}


def officially_unrecorded(samples: list[SampleResult]) -> int:
    """Questions an official script would have recorded no answer for (left out of its score)."""
    dropped = _images_dropped_officially(samples)
    return sum(1 for s in samples if s.protocol and (s.official_answer is None or s.image_id in dropped))
