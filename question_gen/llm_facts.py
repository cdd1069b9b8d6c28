"""Category facts written once by an LLM and verified on every normal image checked (`generate --llm`).

For each category the model sees up to WRITE_IMAGES normal images and writes FACTS facts about the
object, each as a question with a right answer and wrong ones (prompts/question_gen/llm/facts.j2).
A fact is kept only if
  (a) its options are distinct (no repeats or near-repeats) and there are at least 3 wrong ones;
  (b) the model, asked the question on each of up to CHECK_IMAGES other normal images (one image per
      request, MMAD's prompt), answers it right on every one. The threshold is all of them: a fact of
      the category must hold on each of its normal samples, and one wrong answer means either the fact
      does not hold there or it cannot be seen, and either way the question would be unfair;
  (c) asked without any image, the model does not answer it right (else the text gives it away).
Kept facts become the category's Object Analysis questions, one per image (drafts.object_analysis),
with provenance naming the model and the number of images it was checked on.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections import Counter
from pathlib import Path

import numpy as np

from harness.models.base import ChatMessage, GenerateRequest, ImagePart, Model
from harness.asking.parsing import parse_choice
from harness.asking.prompting import render_parts
from harness.schema import DecodingSpec
from harness.adsets.layouts import SourceCategory
from question_gen.balance import arrange_options
from question_gen.knowledge import CategoryKnowledge, ObjectFact
from question_gen.llm_assist import Rejected, near_duplicates, parse_json_reply

FACTS, DISTRACTORS, MIN_DISTRACTORS = 3, 5, 3
WRITE_IMAGES, CHECK_IMAGES = 2, 4
WRITE_TOKENS, ANSWER_TOKENS = 600, 8


class _FactChecker:
    def __init__(self, model: Model, seed: int) -> None:
        self.model, self.seed = model, seed
        self.requests = 0
        self.discarded: Counter = Counter()
        self.written = 0

    async def _ask(self, parts: list, max_tokens: int, letters: list[str] | None = None) -> str:
        self.requests += 1
        response = await self.model.generate(GenerateRequest(messages=[ChatMessage(content=parts)], decoding=DecodingSpec(max_new_tokens=max_tokens), option_letters=letters))
        if response.error:
            raise Rejected(f"backend error ({response.error.split(':', 1)[0]})")
        return response.text

    async def category(self, source_root: Path, category: SourceCategory, known: CategoryKnowledge) -> tuple[ObjectFact, ...]:
        shown = category.train_good[:WRITE_IMAGES]
        checks = category.train_good[WRITE_IMAGES:][:CHECK_IMAGES] or shown  # other images than the writer saw, where there are any
        images = {f"normal{i}": ImagePart(path=str(source_root / p), role="template") for i, p in enumerate(shown)}
        parts = render_parts("question_gen/llm/facts.j2", images, names=list(images), count=len(images), object_name=known.object_name.lower(), facts=FACTS, distractors=DISTRACTORS)
        try:
            reply = parse_json_reply(await self._ask(parts, WRITE_TOKENS), ("facts",))
        except Rejected as reason:
            self.discarded[str(reason)] += 1
            return ()
        kept = []
        for index, raw in enumerate(reply["facts"][:FACTS] if isinstance(reply["facts"], list) else []):
            self.written += 1
            try:
                kept.append(await self._verified(category, index, raw, [source_root / p for p in checks]))
            except Rejected as reason:
                self.discarded[str(reason)] += 1
        return tuple(kept)

    async def _verified(self, category: SourceCategory, index: int, raw: object, checks: list[Path]) -> ObjectFact:
        if not isinstance(raw, dict) or not raw.get("question") or not raw.get("answer") or not isinstance(raw.get("distractors"), list):
            raise Rejected("unparsable fact (needs question, answer, distractors)")
        question, answer, distractors = str(raw["question"]), str(raw["answer"]), [str(d) for d in raw["distractors"]]
        if len(distractors) < MIN_DISTRACTORS:
            raise Rejected(f"fewer than {MIN_DISTRACTORS} wrong answers")
        if near_duplicates([answer, *distractors]):
            raise Rejected("duplicate or near-duplicate options")
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, int(hashlib.sha256(f"{category.name}|{index}".encode()).hexdigest()[:8], 16)]))
        shown_wrong = tuple(distractors[:MIN_DISTRACTORS])
        for path in checks:
            options, right = arrange_options(answer, shown_wrong, int(rng.integers(MIN_DISTRACTORS + 1)), rng)
            parts = render_parts("mmad/user.j2", {"query": ImagePart(path=str(path), role="query")}, templates=[], number=1, question=question, options=options, knowledge=None, agent_style=None)
            if parse_choice(await self._ask(parts, ANSWER_TOKENS, list(options)), options).letter != right:
                raise Rejected("answered wrong on a normal image (the fact does not hold for every sample)")
        options, right = arrange_options(answer, shown_wrong, int(rng.integers(MIN_DISTRACTORS + 1)), rng)
        blind = render_parts("question_gen/llm/blind.j2", {}, question=question, options=options)
        if parse_choice(await self._ask(blind, ANSWER_TOKENS, list(options)), options).letter == right:
            raise Rejected("blind-answerable (answered right without an image)")
        return ObjectFact(question, answer, tuple(distractors), source=f"llm:{self.model.name} verified on {len(checks)} normal images")


async def verified_facts(model: Model, source_root: Path, categories: list[SourceCategory], known: dict[str, CategoryKnowledge], *, seed: int = 0, concurrency: int = 8) -> tuple[dict[str, tuple[ObjectFact, ...]], dict]:
    """Per category, the LLM's facts that passed every check; and a report of what was kept and why not."""
    checker = _FactChecker(model, seed)
    limit = asyncio.Semaphore(concurrency)

    async def one(category: SourceCategory) -> tuple[ObjectFact, ...]:
        async with limit:
            return await checker.category(source_root, category, known[category.name])

    try:
        found = await asyncio.gather(*(one(c) for c in categories))
    finally:
        await model.aclose()
    facts = {c.name: f for c, f in zip(categories, found)}
    report = {
        "written": checker.written,
        "kept": {name: len(f) for name, f in facts.items()},
        "discarded": dict(checker.discarded),
        "requests": checker.requests,
        "checked_on_up_to": CHECK_IMAGES,
    }
    return facts, report
