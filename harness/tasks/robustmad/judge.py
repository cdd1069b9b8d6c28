"""RobustMAD's judge of open answers (utils/judge_OE_MSLM_response.py @ 3711b52), as a second pass
over a run's answers: each answered question put to the judge model with the published
guidelines, the question, the answer, the written ground truth and the image(s); the judge's JSON
verdict kept raw beside its parsed scores in judgements.jsonl, cached, priced and resumable like
any answer. Its score CSV (results/OE_*/score_*.csv): averages per question, category and
difficulty of the four dimensions and the overall score.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from typing import Callable
from importlib import resources

from harness.asking.model_json import read_model_json
from harness.models.base import ChatMessage, GenerateRequest, GenerateResponse
from harness.schema import DecodingSpec, ImageSample
from harness.tasks.robustmad.data import DIFFICULTIES, RobustItem
from harness.tasks.robustmad.kind import Family, protocol_data
from harness.storage.files import csv_text
from harness.tasks.robustmad.scoring import number, question_groups

DIMENSIONS = ("technical_accuracy", "comprehensiveness", "relevance", "style_and_clarity")
SCORES = DIMENSIONS + ("overall_score",)
JUDGEMENTS = "judgements.jsonl"
SCORE_COLUMNS = ("robustness_category", "difficulty", "object_specie_pair", "num_questions", "question") + tuple(f"average_{s}" for s in SCORES)


class Judgement(ImageSample):
    """One line of judgements.jsonl: the judge's verdict on one answered question."""

    robustness_category: str
    difficulty: str
    pair: str
    question: str
    scores: dict[str, int] | None = None  # the four dimensions and overall_score, 1–5
    is_accurate: int | None = None
    explanation: str = ""
    gt_sanity_issue: str | None = None  # the judge's doubt about the written ground truth, when it raised one


@lru_cache(maxsize=1)
def guidelines() -> str:
    """The judge's guidelines, byte for byte (checked against the recorded SHA-256)."""
    section = protocol_data()["judge"]
    text = resources.files("harness.tasks.robustmad").joinpath(section["guidelines"]).read_text(encoding="utf-8")
    if hashlib.sha256(text.encode()).hexdigest() != section["guidelines_sha256"]:
        raise RuntimeError(f"harness/tasks/{section['guidelines']} is not the published judge's text (its SHA-256 differs)")
    return text


def parse_verdict(text: str | None) -> tuple[dict | None, str | None]:
    """(the verdict, None) or (None, why not): the script's json.loads of the stripped reply, with
    the fields it reads checked (scores 1–5, is_accurate 0 or 1)."""
    verdict, problem = read_model_json((text or "").strip())
    if problem:
        return None, problem
    if not isinstance(verdict, dict) or not isinstance(verdict.get("dimension_scores"), dict):
        return None, "no dimension_scores object"
    scores = {k: verdict["dimension_scores"].get(k) for k in DIMENSIONS} | {"overall_score": verdict.get("overall_score")}
    bad = [k for k, v in scores.items() if not (isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 5)]
    if bad:
        return None, f"{', '.join(bad)} not an integer 1-5"
    if verdict.get("is_accurate") not in (0, 1):
        return None, "is_accurate not 0 or 1"
    return {"scores": scores, "is_accurate": verdict["is_accurate"], "explanation": _explanation(verdict.get("explanation", "")),
            "gt_sanity_issue": verdict.get("gt_sanity_issue") if isinstance(verdict.get("gt_sanity_issue"), str) else None}, None


def _explanation(value: object) -> str:
    """The verdict's explanation as text (the script's str()); one no str() can write (a list
    nested thousands deep, an integer past Python's digit limit) is kept as nothing."""
    try:
        return str(value)[:2000]
    except (RecursionError, ValueError):
        return ""


class JudgeTask:
    """The runner's task for the second pass: one judge request per answered question."""

    sample_type = Judgement

    def __init__(self, answers: list, items: dict[str, RobustItem], shown: Callable[[RobustItem], tuple[str, str | None]], seed: int) -> None:
        # `shown`: the (query, reference) paths the model saw, so the judge sees the same images;
        # utils/judge_OE_MSLM_response.py:369 sends them as the files' bytes (file-bytes)
        self.answers, self.items, self.shown, self.seed = answers, items, shown, seed
        section = protocol_data()["judge"]
        self.family = Family(name="judge", description="RobustMAD's judge", source="utils/judge_OE_MSLM_response.py", models=[], template="robustmad/judge.j2",
                             max_new_tokens=section["max_new_tokens"], sampling="model-default", max_tokens_field="none", image_prep="file", image_loading="file-bytes", detail="omit",
                             api_fields=section["api_fields"])

    @property
    def ids(self) -> list[str]:
        return [answer.question_id for answer in self.answers]

    def build_request(self, ordinal: int) -> GenerateRequest:
        from harness.asking.prompting import render_parts

        answer = self.answers[ordinal]
        item = self.items[answer.question_id]
        query, reference = self.shown(item)
        images = {"query": self.family.image(query, "query")}
        if reference:
            images["reference"] = self.family.image(reference, "template")
        parts = render_parts(self.family.template, images, exact=True, guidelines=guidelines(), robustness_category=item.robustness_category,
                             category=item.category, question=item.question, answer=answer.reply, truth=item.answer, reference=bool(item.reference_path))
        decoding = DecodingSpec(max_new_tokens=self.family.max_new_tokens, sampling="model-default", max_tokens_field="none")
        return GenerateRequest(messages=[ChatMessage(role="user", content=parts)], decoding=decoding, api_fields=self.family.api_fields,
                               sample_id=f"judge:{answer.question_id}", sample_seed=self.seed)

    def score(self, ordinal: int, model: str, digest: str, response: GenerateResponse) -> Judgement:
        answer = self.answers[ordinal]
        verdict, problem = parse_verdict(response.text) if response.error is None else (None, None)
        status = "error" if response.error is not None else ("ok" if verdict else "unparsable")
        return Judgement(
            question_id=answer.question_id, ordinal=ordinal, dataset=answer.dataset, category=answer.category, label=answer.label, model=model,
            request_digest=digest, reply=response.text or "", parse_status=status, parse_reason=problem, latency_s=response.latency_s, usage=response.usage,
            error=response.error, attempts=response.attempts, cached=response.cached, robustness_category=answer.robustness_category,
            difficulty=answer.difficulty, pair=answer.pair, question=answer.question, **(verdict or {}),
        )


def open_scores(judgements: list[Judgement]) -> dict:
    """{category: {judged, scores: {dimension: mean}, accurate, by_difficulty: {...}}} over the parsed verdicts."""
    result: dict = {}
    for judgement in judgements:
        if not judgement.scores:
            continue
        row = result.setdefault(judgement.robustness_category, {"by_difficulty": {}})
        for cell in (row, row["by_difficulty"].setdefault(judgement.difficulty, {})):
            cell["judged"] = cell.get("judged", 0) + 1
            cell["accurate"] = cell.get("accurate", 0) + (judgement.is_accurate or 0)
            totals = cell.setdefault("totals", dict.fromkeys(SCORES, 0))
            for key in SCORES:
                totals[key] += judgement.scores[key]
            cell["squares"] = cell.get("squares", 0) + judgement.scores["overall_score"] ** 2
    for row in result.values():
        for cell in [row, *row["by_difficulty"].values()]:
            totals, squares, n = cell.pop("totals"), cell.pop("squares"), cell["judged"]
            cell["scores"] = {key: totals[key] / n for key in SCORES}
            # the overall score's standard error: how far a published mean may sit from a rerun's
            variance = (squares - totals["overall_score"] ** 2 / n) / (n - 1) if n > 1 else 0.0
            cell["overall_se"] = (max(variance, 0.0) / n) ** 0.5
    return dict(sorted(result.items()))


def score_csv(judgements: list[Judgement]) -> str:
    """The published score_*.csv layout: per (category, pair, question) the mean of each score,
    sorted; then per category; then per category and difficulty (general, domain)."""
    groups = question_groups(j for j in judgements if j.scores)
    rows = [[category, members[0].difficulty, pair, len(members), question, *(number(sum(m.scores[k] for m in members) / len(members)) for k in SCORES)]
            for (category, pair, question), members in sorted(groups.items())]
    scores = open_scores(judgements)
    rows += [[category, "", "Average_by_Robustness_category", "", "", *(number(row["scores"][k]) for k in SCORES)] for category, row in scores.items()]
    for category, row in scores.items():
        rows += [[category, difficulty, "Average_by_Difficulty", "", "", *(number(row["by_difficulty"][difficulty]["scores"][k]) for k in SCORES)]
                 for difficulty in DIFFICULTIES if difficulty in row["by_difficulty"]]
    return csv_text([SCORE_COLUMNS, *rows])  # category and difficulty come from the data: formulas neutralised
