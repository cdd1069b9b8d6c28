"""Exporting a run in MMAD's answers-file format, so the official scorer can be run on it."""

from __future__ import annotations

from harness.parsing import parse_mmad_compat
from harness.prompting import render_text
from harness.schema import SampleResult


def answers_file_records(samples: list[SampleResult]) -> list[dict]:
    """MMAD answer entries in question-set order. `gpt_answer` follows the official scripts: the
    last standalone A–E of the reply, or the raw reply when there is none (their scorer drops it)."""
    records = []
    for sample in sorted(samples, key=lambda s: s.ordinal):
        if "@rot" in sample.question_id:  # circular evaluation's extra rotations are not MMAD questions
            continue
        question_text = render_text("mmad/question.j2", number=1, question=sample.question, options=sample.options)
        records.append(
            {
                "image": sample.image_id,
                "question": {"type": "text", "text": question_text},
                "question_type": sample.mmad_type,
                "correct_answer": sample.answer,
                "gpt_answer": parse_mmad_compat(sample.reply) or sample.reply,
            }
        )
    return records
