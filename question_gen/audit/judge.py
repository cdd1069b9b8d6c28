"""`iadbench audit --judge MODEL`: a model (any iadbench backend) as a second reader of every
question. It sees the query image, the question and the options (never the key) and says which
option is true of the image, or that none or several are (prompts/question_gen/audit/judge.j2).
Its reading is one more finding per question, "judge vs key":

- the key's letter: ok;  another letter, or NONE: likely wrong;  SEVERAL: ambiguous;
- a reply that names nothing, or a backend error: no finding (counted among the missing evidence).

A judge is as good as its model: `audit --hand FILE` reports how often it agreed with a person.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path

from harness.asking.parsing import parse_choice
from harness.asking.prompting import render_parts
from harness.errors import DataError
from harness.models.base import ChatMessage, GenerateRequest, ImagePart, Model
from harness.schema import DecodingSpec
from harness.storage.paths import resolve_in_data_root
from question_gen.audit.checks import SEVERITY

REPLY_TOKENS = 16
CONCURRENCY = 8
_NONE, _SEVERAL = re.compile(r"\bnone\b", re.I), re.compile(r"\b(several|multiple|more than one)\b", re.I)


def reading(reply: str, options: dict[str, str], key: str) -> tuple[str, str] | None:
    """(verdict, evidence) from the judge's reply; None when it names nothing."""
    if _SEVERAL.search(reply):
        return "ambiguous", "the judge finds several options equally true"
    if _NONE.search(reply):
        return "likely wrong", "the judge finds no option true of the image"
    chosen = parse_choice(reply, options).letter
    if chosen is None:
        return None
    if chosen == key:
        return "ok", f"the judge chose {chosen}, the key"
    return "likely wrong", f"the judge chose {chosen} {options[chosen]!r}, not the key {key}"


async def _judge_all(model: Model, jobs: list[tuple[dict, Path, dict]]) -> Counter:
    notes: Counter = Counter()
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(row: dict, image: Path, question: dict) -> None:
        options = {str(k): str(v) for k, v in question["Options"].items()}
        parts = render_parts("question_gen/audit/judge.j2", {"query": ImagePart(path=str(image), role="query")}, question=str(question.get("Question", "")), options=options)
        async with gate:
            response = await model.generate(GenerateRequest(messages=[ChatMessage(content=parts)], decoding=DecodingSpec(max_new_tokens=REPLY_TOKENS), option_letters=list(options)))
        found = None if response.error else reading(response.text or "", options, str(question.get("Answer")))
        if found is None:
            notes["judge gave no reading"] += 1
            return
        verdict, evidence = found
        row["findings"].append({"check": "judge vs key", "verdict": verdict, "evidence": f"{evidence} ({model.name})"})
        row["verdict"] = max((f["verdict"] for f in row["findings"]), key=SEVERITY.__getitem__)

    try:
        await asyncio.gather(*(one(*job) for job in jobs))
    finally:
        await model.aclose()
    return notes


def judge_questions(model: Model, root: Path, mmad: dict, rows: list[dict]) -> Counter:
    """Add the judge's finding to every question whose image is on disk; the notes of what it could not read."""
    by_id = {row["id"]: row for row in rows}
    jobs, notes = [], Counter()
    for key, record in mmad.items():
        try:
            image = resolve_in_data_root(root, key, what="image path")
        except DataError:
            continue
        if not image.is_file():
            notes["judge: image not on disk"] += len(record.get("conversation", []))
            continue
        for index, question in enumerate(record.get("conversation", [])):
            row = by_id.get(f"{key}#{index}")
            if row is not None and isinstance(question, dict) and isinstance(question.get("Options"), dict) and question.get("Answer") in question["Options"]:
                jobs.append((row, image, question))
    notes.update(asyncio.run(_judge_all(model, jobs)))
    return notes
