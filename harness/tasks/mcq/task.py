"""The multiple-choice task: a Question becomes a request; a response becomes a scored sample."""

from __future__ import annotations

import hashlib
import json
import math
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ConfigError
from harness.storage.files import file_sha256
from harness.models.base import ChatMessage, ChoiceScoring, GenerateRequest, GenerateResponse, ImagePart, TextPart
from harness.asking.parsing import parse_choice
from harness.asking.prompting import render_parts, render_text
from harness.schema import DecodingSpec, ImageRecord, Question, SampleResult, Subtask, TemplateKind
from harness.strategies import Strategies
from harness.strategies.rag import KnowledgeBase
from harness.protocols import Protocol


@dataclass
class PromptSettings:
    shots: int = 1
    templates: TemplateKind = "random"
    image_max_side: int | None = None
    decoding: DecodingSpec = field(default_factory=DecodingSpec)
    choice_scoring: ChoiceScoring = "generate"
    strategies: Strategies = field(default_factory=Strategies)
    knowledge: KnowledgeBase | None = None
    artifacts_dir: Path | None = None  # where strategies keep the images they make (agent overlays)
    protocol: Protocol | None = None  # an official MMAD protocol; None: the harmonised layout


def build_request(question: Question, image: ImageRecord, root: Path, settings: PromptSettings, seed: int) -> GenerateRequest:
    """MMAD's open-model layout: instruction, k normal templates, query image, one question."""
    template_paths = list(getattr(image, f"{settings.templates}_templates")[: settings.shots])
    images = {"query": ImagePart(path=str(root / image.image_path), role="query", max_side=settings.image_max_side)}
    names = []
    for index, path in enumerate(template_paths):
        names.append(f"template{index}")
        images[names[-1]] = ImagePart(path=str(root / path), role="template", max_side=settings.image_max_side)
    knowledge = None
    if settings.strategies.rag:
        if settings.knowledge is None:
            raise ConfigError("--strategy rag needs domain knowledge: domain_knowledge.json beside the question file, or --knowledge PATH")
        query = question.text + " " + " ".join(question.options.values())
        knowledge = settings.knowledge.text_for(image.dataset, image.category, query, settings.strategies.rag.top_k) or None
    agent_style = None
    if settings.strategies.agent:
        images["agent"] = ImagePart(path=str(_agent_image(image, root, settings)), role="agent", max_side=settings.image_max_side)
        agent_style = settings.strategies.agent.style
    parts = render_parts(
        "mmad/user.j2", images, templates=names, number=1, question=question.text, options=question.options, knowledge=knowledge, agent_style=agent_style
    )
    messages = [ChatMessage(role="user", content=parts)]
    if settings.strategies.cot:
        # The question list moves to a third turn; the first asks for a comparison, the second is
        # the model's own description (filled in by the chain-of-thought wrapper).
        split = next(i for i, p in enumerate(parts) if isinstance(p, TextPart) and p.text.startswith("Following is the question list"))
        describe = TextPart(text=render_text("strategies/cot_describe.j2"))
        messages = [ChatMessage(role="user", content=parts[:split] + [describe]), ChatMessage(role="assistant", content=[]), ChatMessage(role="user", content=parts[split:])]
    return GenerateRequest(
        messages=messages,
        options=dict(question.options),
        chain_of_thought=settings.strategies.cot,
        decoding=settings.decoding,
        option_letters=list(question.options),
        choice_scoring=settings.choice_scoring,
        sample_id=question.id,
        subtask=question.subtask.value,
        sample_seed=seed,
        reference_answer=question.answer,
    )


def _agent_image(image: ImageRecord, root: Path, settings: PromptSettings) -> Path:
    """The query with the expert's suspicious areas drawn on it; made once per image and style."""
    import re

    from harness.storage.files import artifact_stem
    from harness.strategies.agent import render, source_map, suspicious_areas

    agent = settings.strategies.agent
    assert agent is not None and settings.artifacts_dir is not None
    source_slug = re.sub(r"[^A-Za-z0-9]+", "-", agent.source).strip("-")
    target = settings.artifacts_dir / "agent" / f"{artifact_stem(image.id)}.{source_slug}.{agent.style}.png"
    if not target.is_file():
        templates = list(getattr(image, f"{settings.templates}_templates")[: max(settings.shots, 1)]) or list(image.random_templates[:1])
        from harness.adsets.images import load_rgb_array

        rgb = load_rgb_array(root / image.image_path)
        anomaly_map = source_map(agent.source, root / image.image_path, [root / t for t in templates], [root / m for m in image.mask_paths], image.id, rgb.shape[:2])
        target.parent.mkdir(parents=True, exist_ok=True)
        # Questions about one image are prepared in parallel threads: write to a private file and
        # rename, so no reader ever sees half an image (both writers produce the same bytes).
        temporary = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.png")
        render(rgb, suspicious_areas(anomaly_map), agent.style).save(temporary)
        os.replace(temporary, target)
    return target


# How each preparation opened its files before the loading recipes were named: a request opened
# that way hashes as before, so its cached answers still serve (the pixels are the same).
PREP_LOADING = {"cap": "iadbench-rgb", "cv2-fit": "cv2-imread", "qwen-native": "flatten-white", "file": "file-bytes"}


class RequestDigester:
    """sha256 of what a model sees (model, messages with image bytes, decoding, option letters).

    Image files are hashed by content once per run, so a renamed copy hashes the same and a changed
    file does not.
    """

    def __init__(self) -> None:
        self._image_digests: dict[str, str] = {}

    def _image(self, path: str) -> str:
        if path not in self._image_digests:
            self._image_digests[path] = file_sha256(Path(path))
        return self._image_digests[path]

    def digest(self, model: str, request: GenerateRequest) -> str:
        messages = [
            {
                "role": m.role,
                "content": [{"text": p.text} if isinstance(p, TextPart) else self._image_entry(p) for p in m.content],
            }
            for m in request.messages
        ]
        payload = {
            "model": model,
            "messages": messages,
            "decoding": request.decoding.model_dump(),
            "options": request.option_letters,
            "choice_scoring": request.choice_scoring,
        }
        # Protocol facts join the digest only when set, so harmonised requests keep their old digests
        # (and their cached answers).
        extras = {
            "chat_template_kwargs": request.chat_template_kwargs,
            "processor_kwargs": request.processor_kwargs,
            "retry": [request.retry_keywords, request.retry_tries] if request.retry_keywords else None,
            "api_fields": request.api_fields,
        }
        payload.update({k: v for k, v in extras.items() if v})
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def _image_entry(self, part: ImagePart) -> dict:
        entry: dict = {"image": self._image(part.path), "max_side": part.max_side}
        if part.loading != PREP_LOADING[part.prep]:  # the same file opened another way is other pixels: its cached answer must not serve
            entry["loading"] = part.loading
        if part.prep != "cap":
            entry.update(prep=part.prep, fit=part.fit, mime=part.mime, detail=part.detail)
            if part.factor:
                entry["factor"] = part.factor
        return entry


def _choice_by_logprobs(question: Question, response: GenerateResponse) -> str | None:
    """The most probable option letter, when the backend scored any of them."""
    scored = {letter: lp for letter, lp in (response.option_logprobs or {}).items() if letter in question.options}
    return max(scored, key=scored.__getitem__) if scored else None


def anomaly_score(question: Question, option_logprobs: dict[str, float] | None) -> float | None:
    """P(Yes) of a detection question, normalised over its options: a continuous image-level score.

    Options missing from the backend's top log-probabilities count as probability 0.
    """
    if question.subtask is not Subtask.ANOMALY_DETECTION or not option_logprobs:
        return None
    yes = [k for k, text in question.options.items() if text.strip().lower().startswith("yes")]
    scored = {k: lp for k, lp in option_logprobs.items() if k in question.options}
    if len(yes) != 1 or not scored:
        return None
    peak = max(scored.values())
    total = sum(math.exp(lp - peak) for lp in scored.values())
    return math.exp(scored[yes[0]] - peak) / total if yes[0] in scored else 0.0


def asked(question: Question, image: ImageRecord, ordinal: int) -> dict:
    """What a sample line records of the question it answers (a scored line, and a stored line
    that re-scores to itself, hold the same)."""
    return {"question_id": question.id, "ordinal": ordinal, "image_id": image.id, "dataset": image.dataset, "category": image.category, "label": image.label,
            "subtask": question.subtask, "mmad_type": question.mmad_type, "question": question.text, "options": question.options, "answer": question.answer}


def score_response(
    question: Question,
    image: ImageRecord,
    ordinal: int,
    model: str,
    digest: str,
    response: GenerateResponse,
    choice_scoring: ChoiceScoring = "generate",
) -> SampleResult:
    if response.error is not None:
        letter, status, reason = None, "error", response.error
    elif response.declined:
        letter, status, reason = None, "declined", "the model declines this kind of question"
    elif choice_scoring == "logprobs" and (by_logprobs := _choice_by_logprobs(question, response)):
        letter, status, reason = by_logprobs, "ok", None
    else:
        parsed = parse_choice(response.text, question.options)
        letter, status, reason = parsed.letter, parsed.status, parsed.reason
    return SampleResult(
        **asked(question, image, ordinal),
        model=model,
        request_digest=digest,
        reply=response.text,
        parsed=letter,
        parse_status=status,
        parse_reason=reason,
        correct=letter is not None and letter == question.answer,
        option_logprobs=response.option_logprobs,
        anomaly_score=response.anomaly_score if response.anomaly_score is not None else anomaly_score(question, response.option_logprobs),
        latency_s=response.latency_s,
        usage=response.usage,
        error=response.error,
        attempts=response.attempts,
        cached=response.cached,
        reasoning=response.reasoning,
        consistency=response.consistency,
    )


ROTATION_MARK = "@rot"


def rotated(question: Question, shift: int) -> Question:
    """The question with its option texts moved `shift` places (letters stay A, B, …); rotation 0
    is the question itself, with its own id, so it pairs with runs that ask only that one."""
    if shift == 0:
        return question
    letters = list(question.options)
    texts = [question.options[letter] for letter in letters]
    size = len(letters)
    options = {letters[i]: texts[(i + shift) % size] for i in range(size)}
    answer = letters[(letters.index(question.answer) - shift) % size]
    return question.model_copy(update={"id": f"{question.id}{ROTATION_MARK}{shift}", "options": options, "answer": answer})


def base_question_id(question_id: str) -> str:
    return question_id.split(ROTATION_MARK, 1)[0]


class McqTask:
    """Multiple-choice questions as a runner task: item ordinal → request → scored sample."""

    sample_type = SampleResult

    def __init__(self, questions: list[Question], images: dict[str, ImageRecord], root: Path, settings: PromptSettings, seed: int) -> None:
        if settings.strategies.circular:
            questions = [rotated(q, shift) for q in questions for shift in range(len(q.options))]
        self.questions, self.images, self.root, self.settings, self.seed = questions, images, root, settings, seed
        protocol = settings.protocol
        self.protocol = protocol if protocol is not None and protocol.official else None
        self.conversations: dict[str, list[Question]] = {}
        if self.protocol is not None:  # official calls may hold several of an image's questions
            for q in sorted(questions, key=lambda q: q.index):
                self.conversations.setdefault(q.image_id, []).append(q)
        # An expert's map takes ~0.2 s of CPU: prepare such requests in a worker thread.
        self.blocking = settings.strategies.agent is not None and settings.strategies.agent.source == "expert"

    @property
    def ids(self) -> list[str]:
        return [q.id for q in self.questions]

    def build_request(self, ordinal: int) -> GenerateRequest:
        question = self.questions[ordinal]
        image = self.images[question.image_id]
        if self.protocol is None:
            return build_request(question, image, self.root, self.settings, self.seed)
        from harness.tasks.mcq.official import official_request

        settings = self.settings
        templates = list(getattr(image, f"{settings.templates}_templates")[: settings.shots])
        knowledge = settings.knowledge.text_for(image.dataset, image.category, "", None) if settings.strategies.rag and settings.knowledge else None
        return official_request(
            question, self.conversations[question.image_id], image, self.root, protocol=self.protocol, templates=templates, knowledge=knowledge or None, seed=self.seed
        )

    def unchanged(self, ordinal: int, sample) -> bool:
        """Whether a stored line re-scores to itself: its reply parses to its stored verdict against
        the question this set holds under its ordinal, which it records as asked. Only for the plain
        path (harmonised protocol, generated letters, no error, no log-probabilities): re-scoring a
        40,000-line run then builds no object per line; any other line goes through `score`."""
        question = self.questions[ordinal]
        if self.protocol is not None or self.settings.choice_scoring != "generate" or sample.error is not None or sample.option_logprobs is not None:
            return False
        if sample.parse_status not in ("ok", "unparsable"):
            return False
        if any(getattr(sample, name) != value for name, value in asked(question, self.images[question.image_id], ordinal).items()):
            return False
        parsed = parse_choice(sample.reply, question.options)
        return (parsed.letter, parsed.status, parsed.reason) == (sample.parsed, sample.parse_status, sample.parse_reason) and sample.correct == (parsed.letter is not None and parsed.letter == question.answer)

    def score(self, ordinal: int, model: str, digest: str, response: GenerateResponse) -> SampleResult:
        question = self.questions[ordinal]
        sample = score_response(question, self.images[question.image_id], ordinal, model, digest, response, self.settings.choice_scoring)
        if self.protocol is None:
            return sample
        from harness.tasks.mcq.official import apply_official, call_plan

        plan = call_plan(question, self.conversations[question.image_id], self.protocol)
        return apply_official(sample, response, question, self.protocol, plan, self.seed)
