"""LLM-assisted questions (`iadbench generate --llm MODEL`), each verified before it is kept.

For Defect Description, Defect Analysis and Object Analysis, any backend (an API model or a local
one) sees the template, the query image and the query with the mask outlined, with the facts read
from the mask (category, defect type, size, shape, position), and writes a description and an
analysis (prompts/question_gen/llm/write.j2). A second prompt turns each into a question with one
correct option and plausible distractors (question.j2). Then every question is verified:
  (a) self-check: the generator, shown template and query, must answer its own question right;
  (b) blind check: asked without any image (blind.j2), a right answer means the text gives it away:
      the question is dropped and counted in the blind-answerable rate;
  (c) options that repeat one another (the same text, or 90% similar) are rejected.
A rejected question falls back to the template question of that subtask, so the set keeps its
shape; every discard is counted by reason. Kept questions carry their provenance (generator,
prompt digest, written text, both verification answers).
"""

from __future__ import annotations

import asyncio
import difflib
import hashlib
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from harness.models.base import ChatMessage, GenerateRequest, ImagePart, Model
from harness.asking.parsing import parse_choice
from harness.asking.prompting import prompts_dir, render_parts
from harness.schema import DecodingSpec, Subtask
from question_gen.attributes import cell_name
from question_gen.balance import arrange_options
from question_gen.drafts import Draft, ImageContext

LLM_SUBTASKS = (Subtask.DEFECT_DESCRIPTION, Subtask.DEFECT_ANALYSIS, Subtask.OBJECT_ANALYSIS)
# Per subtask: the field of the writer's JSON it is made from, and what question.j2 calls that text.
WRITTEN_FIELD = {Subtask.DEFECT_DESCRIPTION: "description", Subtask.DEFECT_ANALYSIS: "analysis", Subtask.OBJECT_ANALYSIS: "object"}
TEXT_KIND = {Subtask.DEFECT_DESCRIPTION: "description", Subtask.DEFECT_ANALYSIS: "analysis", Subtask.OBJECT_ANALYSIS: "note about the object"}
SIMILAR_OPTIONS = 0.9
DISTRACTORS = 3
WRITE_TOKENS, QUESTION_TOKENS, ANSWER_TOKENS = 300, 400, 8


@dataclass
class LlmImage:
    """One query image as the LLM step needs it."""

    key: str
    query: Path
    template: Path
    masks: list[Path]
    context: ImageContext
    drafts: list[Draft]


@dataclass
class LlmOutcome:
    accepted: Counter = field(default_factory=Counter)  # subtask → questions kept
    discarded: Counter = field(default_factory=Counter)  # "<subtask>: <reason>" → count
    blind_checked: int = 0
    blind_answerable: int = 0
    requests: int = 0

    def as_dict(self) -> dict:
        rate = 100.0 * self.blind_answerable / self.blind_checked if self.blind_checked else 0.0
        return {
            "accepted": dict(self.accepted),
            "discarded": dict(self.discarded),
            "blind_answerability": {"checked": self.blind_checked, "blind_answerable": self.blind_answerable, "rate_percent": rate},
            "requests": self.requests,
        }


class Rejected(Exception):
    """A generated question that failed a check; the message is the discard reason."""


def prompts_digest() -> str:
    """Which prompt texts wrote a question: recorded in its provenance."""
    digest = hashlib.sha256()
    for path in sorted((prompts_dir() / "question_gen" / "llm").glob("*.j2")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def outline_image(query: Path, masks: list[Path], out: Path) -> Path:
    """The query with the defect's boundary drawn in red (3 px), as the writer is shown it."""
    from skimage.morphology import dilation, disk

    from harness.adsets.masks import load_mask_union

    from harness.adsets.images import load_rgb_array

    rgb = load_rgb_array(query).copy()
    mask = load_mask_union(masks, rgb.shape[:2])
    boundary = dilation(mask, disk(3)).astype(bool) & ~mask
    rgb[boundary] = (255, 0, 0)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(out)
    return out


def parse_json_reply(text: str, required: tuple[str, ...]) -> dict:
    """The first JSON object in a reply (models wrap it in prose or code fences)."""
    match = re.search(r"\{.*\}", text or "", re.S)
    if not match:
        raise Rejected("unparsable reply (no JSON object)")
    try:
        value = json.loads(match.group(0))
    except json.JSONDecodeError:
        raise Rejected("unparsable reply (invalid JSON)") from None
    missing = [k for k in required if not value.get(k)]
    if missing:
        raise Rejected(f"unparsable reply (missing {', '.join(missing)})")
    return value


def near_duplicates(options: list[str]) -> bool:
    """Two options with the same words, or 90% alike once case and punctuation are ignored."""
    normal = [re.sub(r"[^a-z0-9 ]", "", o.lower()).strip() for o in options]
    for i in range(len(normal)):
        for j in range(i + 1, len(normal)):
            if normal[i] == normal[j] or difflib.SequenceMatcher(None, normal[i], normal[j]).ratio() >= SIMILAR_OPTIONS:
                return True
    return False


class LlmQuestionWriter:
    def __init__(self, model: Model, artifacts: Path, *, concurrency: int = 16, seed: int = 0) -> None:
        self.model, self.artifacts, self.seed = model, artifacts, seed
        self.limit = asyncio.Semaphore(concurrency)
        self.outcome = LlmOutcome()
        self.digest = prompts_digest()

    async def _ask(self, parts: list, max_tokens: int, letters: list[str] | None = None) -> str:
        request = GenerateRequest(messages=[ChatMessage(content=parts)], decoding=DecodingSpec(max_new_tokens=max_tokens), option_letters=letters)
        self.outcome.requests += 1
        response = await self.model.generate(request)
        if response.error:
            raise Rejected(f"backend error ({response.error.split(':', 1)[0]})")
        return response.text

    async def rewrite(self, image: LlmImage) -> list[Draft]:
        """The image's drafts with the LLM's verified questions in place of the template ones."""
        async with self.limit:
            defect = self._defect_facts(image)
            images = {"template": ImagePart(path=str(image.template), role="template"), "query": ImagePart(path=str(image.query), role="query")}
            if defect:
                outline = outline_image(image.query, image.masks, self.artifacts / "outlines" / (hashlib.sha256(image.key.encode()).hexdigest()[:16] + ".png"))
                images["outline"] = ImagePart(path=str(outline), role="outline")
            subtasks = [s for s in LLM_SUBTASKS if defect or s is Subtask.OBJECT_ANALYSIS]
            try:
                parts = render_parts("question_gen/llm/write.j2", images, object_name=self._object_name(image), defect=defect)
                written = parse_json_reply(await self._ask(parts, WRITE_TOKENS), tuple(WRITTEN_FIELD[s] for s in subtasks))
            except Rejected as reason:
                for subtask in subtasks:
                    self.outcome.discarded[f"{subtask.value}: {reason}"] += 1
                return image.drafts
            drafts = list(image.drafts)
            for subtask in subtasks:
                try:
                    draft = await self._question(image, subtask, str(written[WRITTEN_FIELD[subtask]]), images)
                except Rejected as reason:
                    self.outcome.discarded[f"{subtask.value}: {reason}"] += 1
                    continue
                self.outcome.accepted[subtask.value] += 1
                position = next((i for i, d in enumerate(drafts) if d.subtask is subtask), None)
                if position is None:
                    drafts.append(draft)
                else:
                    drafts[position] = draft
            return drafts

    async def _question(self, image: LlmImage, subtask: Subtask, text: str, images: dict) -> Draft:
        parts = render_parts("question_gen/llm/question.j2", {}, kind=TEXT_KIND[subtask], text=text, object_name=self._object_name(image), distractors=DISTRACTORS)
        proposed = parse_json_reply(await self._ask(parts, QUESTION_TOKENS), ("question", "correct", "distractors"))
        distractors = [str(d) for d in proposed["distractors"]][:DISTRACTORS]
        correct = str(proposed["correct"])
        if len(distractors) < DISTRACTORS:
            raise Rejected(f"fewer than {DISTRACTORS} distractors")
        if near_duplicates([correct, *distractors]):
            raise Rejected("duplicate or near-duplicate options")
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, int(hashlib.sha256(f"{image.key}|{subtask.value}".encode()).hexdigest()[:8], 16)]))
        options, answer = arrange_options(correct, tuple(distractors), int(rng.integers(DISTRACTORS + 1)), rng)
        question = str(proposed["question"])
        letters = list(options)
        question_text = render_parts("mmad/user.j2", {"template0": images["template"], "query": images["query"]}, templates=["template0"], number=1, question=question, options=options, knowledge=None, agent_style=None)
        own = parse_choice(await self._ask(question_text, ANSWER_TOKENS, letters), options).letter
        if own != answer:
            raise Rejected("self-check failed (the generator answered its own question wrong)")
        self.outcome.blind_checked += 1
        blind_parts = render_parts("question_gen/llm/blind.j2", {}, question=question, options=options)
        blind = parse_choice(await self._ask(blind_parts, ANSWER_TOKENS, letters), options).letter
        if blind == answer:
            self.outcome.blind_answerable += 1
            raise Rejected("blind-answerable (answered right without the image)")
        # Answers as option texts: the set's final option order is balanced later, so letters would mislead.
        provenance = {"generator": self.model.name, "prompts": self.digest, "written": text, "self_answer": options[own], "blind_answer": options.get(blind or "")}
        return Draft(subtask, question, correct, tuple(distractors), provenance=provenance)

    @staticmethod
    def _object_name(image: LlmImage) -> str:
        return image.context.knowledge.object_name.lower().rstrip(".")

    @staticmethod
    def _defect_facts(image: LlmImage) -> dict | None:
        attributes = image.context.attributes
        if image.context.label != "anomaly" or attributes is None:
            return None
        position = cell_name(*attributes.main_cell) if attributes.main_cell else "spread over several areas"
        return {
            "name": (image.context.defect.name if image.context.defect else "defect").lower(),
            "count": attributes.count,
            "size": attributes.size,
            "shape": attributes.shape,
            "tone": attributes.tone,
            "position": position,
            "against_template": attributes.tone_vs_template,
        }


async def rewrite_all(images: list[LlmImage], model: Model, artifacts: Path, *, concurrency: int = 16, seed: int = 0) -> tuple[list[list[Draft]], LlmOutcome]:
    writer = LlmQuestionWriter(model, artifacts, concurrency=concurrency, seed=seed)
    try:
        drafts = await asyncio.gather(*(writer.rewrite(image) for image in images))
    finally:
        await model.aclose()
    return list(drafts), writer.outcome


def with_provenance(draft: Draft) -> dict:
    return {"provenance": draft.provenance} if draft.provenance else {}

