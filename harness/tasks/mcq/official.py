"""MMAD's official per-family protocols as requests and answers (harness/protocols/*.toml).

A protocol decides which of an image's questions go into the call that answers a question
(one; questions 1..i; the first alone then the rest together), how each question is written, in
which order its options are shown, how images are prepared, and how the family's script read the
reply. Every sample keeps two answers: the strict one (iadbench's parser, never a guess) and the
one the official script would have recorded (fed to the official scorer, as the published row was).
"""

from __future__ import annotations

import difflib
import random
import re
from dataclasses import dataclass
from pathlib import Path

from harness.models.base import ChatMessage, GenerateRequest, GenerateResponse, ImagePart
from harness.models.images import extension_mime
from harness.asking.parsing import ParsedChoice, parse_choice
from harness.asking.prompting import render_parts, render_raw
from harness.protocols import Protocol
from harness.schema import ImageRecord, Question, SampleResult

_LETTER = re.compile(r"\b([A-E])\b")  # the official scripts' answer pattern


@dataclass(frozen=True)
class CallPlan:
    """The questions one call holds, in order, and where the answered question stands among them."""

    questions: tuple[Question, ...]
    position: int
    rest_call: bool = False  # the second call of a two-call protocol: its letters map by position

    @property
    def size(self) -> int:
        return len(self.questions)


def call_plan(question: Question, conversation: list[Question], protocol: Protocol) -> CallPlan:
    """`conversation`: the image's questions in file order (the question among them)."""
    at = next(i for i, q in enumerate(conversation) if q.id == question.id)
    if protocol.batching == "cumulative":  # call i holds questions 1..i; its last letter answers i
        return CallPlan(tuple(conversation[: at + 1]), at)
    if protocol.batching == "first-then-rest" and at > 0:  # one call for questions 2..n
        return CallPlan(tuple(conversation[1:]), at - 1, rest_call=True)
    return CallPlan((question,), 0)


def shown_options(question: Question, protocol: Protocol, seed: int) -> tuple[dict[str, str], str, list[str] | None]:
    """(options as shown, the right letter among them, the file's letters in shown order or None).

    LLaVA's script shuffled options without a seed; here the order is drawn from (seed, question),
    so a rerun shows the same order and the record says which it was."""
    if not protocol.shuffle_options:
        return dict(question.options), question.answer, None
    order = list(question.options)
    random.Random(f"{seed}:{question.id}").shuffle(order)
    shown = {chr(65 + k): question.options[letter] for k, letter in enumerate(order)}
    return shown, chr(65 + order.index(question.answer)), order


def question_text(question: Question, protocol: Protocol, seed: int) -> str:
    options, _, _ = shown_options(question, protocol, seed)
    return render_raw("mmad_official/question.j2", numbering=protocol.numbering, number=question.index + 1, question=question.text, options=options)


def image_part(path: Path, role: str, protocol: Protocol) -> ImagePart:
    spec = protocol.images
    mime = None
    if spec.mode == "cv2-fit":  # the label the script wrote, whatever the bytes (always JPEG)
        mime = extension_mime(str(path), spec.mime_default) if spec.mime == "extension" else "image/jpeg"
    return ImagePart(path=str(path), role=role, loading=spec.loading, prep=spec.mode, fit=spec.size if spec.mode == "cv2-fit" else None, mime=mime, detail=spec.detail)


def official_request(
    question: Question,
    conversation: list[Question],
    image: ImageRecord,
    root: Path,
    *,
    protocol: Protocol,
    templates: list[str],
    knowledge: str | None,
    seed: int,
) -> GenerateRequest:
    """The request the family's official script sent for this question's call."""
    plan = call_plan(question, conversation, protocol)
    images = {"query": image_part(root / image.image_path, "query", protocol)}
    names = []
    for index, path in enumerate(templates):
        names.append(f"template{index}")
        images[names[-1]] = image_part(root / path, "template", protocol)
    texts = [question_text(q, protocol, seed) for q in plan.questions]
    parts = render_parts(protocol.template, images, exact=True, instruction=protocol.instruction, templates=names, questions=texts, knowledge=knowledge)
    options, answer, _ = shown_options(question, protocol, seed)
    shared = plan.rest_call
    pixels = {k: v for k, v in (("min_pixels", protocol.images.min_pixels), ("max_pixels", protocol.images.max_pixels)) if v is not None}
    return GenerateRequest(
        messages=[ChatMessage(role="user", content=parts)],
        decoding=protocol.decoding,
        option_letters=None if shared else list(options),
        chat_template_kwargs=protocol.chat_template_kwargs,
        processor_kwargs=pixels,
        retry_keywords=protocol.retry_keywords,
        retry_tries=protocol.retry_tries,
        sample_id=question.id,
        subtask=question.subtask.value,
        # Sampling protocols (LLaVA's T = 0.2) draw each question under its own seed.
        sample_seed=random.Random(f"{seed}:{question.id}").randrange(2**31) if protocol.decoding.sampled else seed,
        options=options,
        reference_answer=None if shared else answer,
        shared_call=shared,
    )


def official_answer(response: GenerateResponse, options: dict[str, str], protocol: Protocol, plan: CallPlan) -> tuple[str | None, str | None]:
    """What the family's script recorded as `gpt_answer`, or (None, why) when it recorded nothing."""
    if response.error is not None:
        if protocol.batching == "first-then-rest":
            return None, "the call failed: the official script dropped this image"
        return "", "the call failed: the official script recorded ''"
    reply = response.text
    letters = _LETTER.findall(reply)
    if plan.rest_call:
        if len(letters) != plan.size:
            return None, f"{len(letters)} letters for {plan.size} questions: the official script dropped this image"
        return letters[plan.position], None
    if not letters and protocol.fuzzy and options:
        # difflib with cutoff 0 always picks an option for a non-empty option list.
        closest = difflib.get_close_matches(reply, list(options.values()), n=1, cutoff=0.0)
        if closest:
            letters = [next(k for k, v in options.items() if v == closest[0])]
            return letters[0], "no letter: the closest option text (difflib, cutoff 0)"
    if not letters:
        if protocol.fuzzy:
            return reply, "no letter and no option: the raw reply (the scorer drops it)"
        return None, "no letter: the official script would stop here (IndexError)"
    return (letters[0] if protocol.parser == "first-letter" else letters[-1]), None


def parse_in_call(reply: str, options: dict[str, str], plan: CallPlan) -> ParsedChoice:
    """The strict answer to one question of a call: the whole reply when the call held only it,
    else the numbered entry at its place in the list ("2. Answer: B."). Never positional guessing."""
    if plan.size == 1:
        return parse_choice(reply, options)
    number = plan.position + 1
    pattern = re.compile(rf"(?m)(?:^|(?<=\s))[\s*#]*(?:Question\s*)?{number}\s*[.):]\s*[*]*\s*(?:Answer\s*[:\-]?\s*)?[*(\[]*([A-E])\b")
    found = pattern.findall(reply or "")
    if not found:
        return ParsedChoice(None, "unparsable", f"no numbered answer {number} in a reply to {plan.size} questions")
    letter = found[-1]
    if letter not in options:
        return ParsedChoice(None, "invalid", f"letter {letter} is not among the options {', '.join(options)}")
    return ParsedChoice(letter, "ok")


def apply_official(sample: SampleResult, response: GenerateResponse, question: Question, protocol: Protocol, plan: CallPlan, seed: int) -> SampleResult:
    """The sample with the options as shown, its strict answer read from its place in the call,
    and the official script's answer beside it."""
    options, answer, order = shown_options(question, protocol, seed)
    update: dict = {"options": options, "answer": answer, "option_order": order, "protocol": protocol.name}
    if response.error is None and not response.declined:
        parsed = parse_in_call(response.text, options, plan)
        update.update(parsed=parsed.letter, parse_status=parsed.status, parse_reason=parsed.reason, correct=parsed.letter is not None and parsed.letter == answer)
    update["official_answer"], update["official_reason"] = official_answer(response, options, protocol, plan)
    return sample.model_copy(update=update)
