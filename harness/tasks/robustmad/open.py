"""RobustMAD's open questions (`--task open`, suites robustmad-open and robustmad-open-low): the
model answers in its own words as the oe_*.py scripts ask it (harness/tasks/robustmad/robustmad.toml
[open]), then a judge model (`--judge`) scores every answer 1–5 on four dimensions and overall with
RobustMAD's published guidelines (harness/tasks/robustmad/judge.py). Judged scores are reported
apart from exactly scored accuracy: they are a model's opinion, and they move with the judge.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.models.base import GenerateResponse
from harness.schema import ImageSample, RunSpec, RunSummary
from harness.tasks.robustmad.data import RobustItem
from harness.tasks.robustmad.judge import DIMENSIONS, JUDGEMENTS, Judgement, JudgeTask, open_scores, score_csv
from harness.tasks.robustmad.kind import Family, RobustmadKind, RobustmadTask, family_for, protocol_data
from harness.tasks.robustmad.scoring import open_differences, published_open_for


class OpenSample(ImageSample):
    """One line of samples.jsonl in an open-answer run: the model's answer to one question."""

    robustness_category: str
    difficulty: str
    pair: str
    question: str
    truth: str  # the written ground-truth answer


def open_family_for(model: str) -> Family:
    """The model's family with its open-answer settings ([open.families.NAME])."""
    family = family_for(model)
    overrides = dict(protocol_data()["open"]["families"].get(family.name, {}))
    differences = family.differences + overrides.pop("differences", [])
    return Family(**(family.model_dump() | overrides | {"differences": differences}))


class OpenTask(RobustmadTask):
    sample_type = OpenSample

    def score(self, ordinal: int, model: str, digest: str, response: GenerateResponse) -> OpenSample:  # type: ignore[override]
        item = self.items[ordinal]
        status = "error" if response.error is not None else ("ok" if (response.text or "").strip() else "unparsable")
        return OpenSample(
            question_id=item.id, ordinal=ordinal, dataset=item.dataset, category=item.category, label=item.label, model=model, request_digest=digest,
            reply=(response.text or "").strip(), parse_status=status, error=response.error, latency_s=response.latency_s, usage=response.usage,
            attempts=response.attempts, cached=response.cached, robustness_category=item.short_category, difficulty=item.difficulty, pair=item.pair,
            question=item.question, truth=item.answer,
        )


class OpenKind(RobustmadKind):
    name = "open"
    title = "open answers (judged)"
    help = "RobustMAD's open questions, each answer scored 1-5 by a judge model (--judge) with its published guidelines"
    sample_type = OpenSample
    default_suite = "robustmad-open"
    open_answers = True
    reply_tokens_guess = 70  # "not more than 50 words"
    second_pass_files = {JUDGEMENTS: Judgement}
    export_what, export_name = "judged answers in RobustMAD's score CSV", "score.csv"
    settings = frozenset({"protocol", "judge"})
    method = ("RobustMAD open answers: each scored 1-5 (technical accuracy, comprehensiveness, relevance, style and clarity, overall) by the judge "
              "model with RobustMAD's published guidelines; a judge's opinion, not an exact score.")

    def spec_fields(self, model: str, overrides: Any) -> dict:
        judge = getattr(overrides, "judge", None)
        if not judge:
            raise ConfigError(f"--task open: open answers are scored by a judge model: pass --judge MODEL (RobustMAD's rows used openai/{protocol_data()['judge']['published_model']})")
        family = open_family_for(model)
        from harness.models.openai import checked_base_url, redact_url

        base_url = getattr(overrides, "judge_base_url", None)  # credentials in it refused here, before any run folder
        return {"protocol": f"robustmad-open-{family.name}", "protocol_differences": family.differences, "decoding": family.decoding,
                "judge": judge, "judge_base_url": redact_url(checked_base_url(base_url)) if base_url else None, "judge_api_key_env": getattr(overrides, "judge_api_key_env", None)}

    def dry_run_note(self, spec) -> str | None:
        return f"plus one call of the judge {spec.judge} per answer (~8,400 prompt tokens each: RobustMAD's guidelines and the images), not estimated above"

    def task(self, items: list[RobustItem], root: Path, spec: RunSpec, low: dict[str, str], low_folder: Path | None) -> OpenTask:
        return OpenTask(items, root, open_family_for(spec.model), spec.seed, low, low_folder, instruction=protocol_data()["open"]["instruction"])

    def second_pass(self, spec, folder, samples, data):
        """The judge over every answer (not over failed calls or empty replies), into judgements.jsonl."""
        from harness.run.runlog import RunFolder

        answers = [s for s in sorted(samples, key=lambda s: s.ordinal) if s.parse_status == "ok"]
        if not answers or not spec.judge:
            return None
        task, _ = self.build(spec, folder, data)
        items = {item.id: item for item in task.items}
        return JudgeTask(answers, items, task.shown, spec.seed), self._judge(spec), RunFolder(folder.path, JUDGEMENTS)

    def ready(self, spec: RunSpec) -> None:
        """A judge that cannot authenticate stops the run before its folder exists."""
        self._judge(spec)

    @staticmethod
    def _judge(spec: RunSpec):
        from harness.models.base import ModelOptions
        from harness.models.registry import create_model

        # The judge's waits keep the run's deadlines (--request-timeout, --question-timeout, --max-attempts)
        deadlines = {k: spec.model_options.get(k) for k in ("request_timeout_s", "max_sample_seconds", "max_attempts")}
        options = {"base_url": spec.judge_base_url, "api_key_env": spec.judge_api_key_env, **deadlines}
        judge = create_model(spec.judge or "", seed=spec.seed, options=ModelOptions(**{k: v for k, v in options.items() if v}))
        try:
            getattr(judge, "ready", lambda: None)()
        except ConfigError as error:
            raise ConfigError(f"the judge {spec.judge}: {error}".replace("--api-key-env", "--judge-api-key-env")) from None
        return judge

    def summarise(self, spec, samples, data, folder, wall_time_s, stopped_reason) -> RunSummary:
        from harness.models.pricing import cost_usd
        from harness.run.accounting import run_summary
        from harness.schema import Usage

        judgements = read_judgements(folder)
        judged = [j for j in judgements if j.scores]
        usage = Usage(prompt_tokens=sum(j.usage.prompt_tokens for j in judgements), completion_tokens=sum(j.usage.completion_tokens for j in judgements))
        published, why_not = self._published(spec)
        metrics = {
            "judge": spec.judge, "categories": open_scores(judgements), "release": spec.data_release, "published": published, "published_note": why_not,
            "overall": sum(j.scores["overall_score"] for j in judged) / len(judged) if judged else None,  # type: ignore[index]
            "answers": sum(s.parse_status == "ok" for s in samples), "judged": len(judged),
            "unparsable_verdicts": sum(j.parse_status == "unparsable" for j in judgements), "judge_errors": sum(j.parse_status == "error" for j in judgements),
            "judge_usage": usage.model_dump(), "judge_cost_usd": cost_usd(spec.judge or "", usage), "judge_cached": sum(j.cached for j in judgements),
        }
        return run_summary(spec, samples, len(data), wall_time_s, stopped_reason, protocol=spec.protocol, metrics=metrics)

    def _published(self, spec: RunSpec) -> tuple[dict | None, str | None]:
        """The model's published open-answer row, only where it is comparable: the same release
        (by its blob id), the protocol its row was measured with, and the same judge."""
        judge = protocol_data()["judge"]["published_model"]
        if spec.data_release is None:
            return None, "not a published release: no published row beside it"
        if not open_family_for(spec.model).published:
            return None, "no published row for this model's protocol"
        if (spec.judge or "").partition("/")[2] != judge:
            return None, f"the published rows were judged by {judge}, this run by {spec.judge}: not comparable, none shown"
        row = published_open_for(spec.model, spec.data_release)
        return row, None if row else "no published row for this model"

    def table(self, summary, spec) -> str:
        from harness.tasks.robustmad.tables import open_table

        return open_table(summary, spec)

    def report_sections(self, runs: list, keys: dict[str, str]) -> dict[str, list]:
        """Per run: the judge's mean scores per category, titled as judged (apart from exact accuracy)."""
        sections = []
        for run in runs:
            metrics = run.summary.metrics
            rows = [{"name": category, "published": False, "cells": [row["scores"][k] for k in ("overall_score", *DIMENSIONS)] + [100 * row["accurate"] / row["judged"]]}
                    for category, row in metrics.get("categories", {}).items()]
            rows += [{"name": category, "published": True, "cells": [cells["all"][k] for k in ("overall_score", *DIMENSIONS)] + [None]}
                     for category, cells in (metrics.get("published") or {}).items() if "all" in cells]
            cost = metrics.get("judge_cost_usd")
            notes = [f"judged by {metrics.get('judge')}: {metrics.get('judged', 0)} of {metrics.get('answers', 0)} answers "
                     f"({metrics.get('unparsable_verdicts', 0)} verdicts not JSON, {metrics.get('judge_errors', 0)} judge calls failed); scores 1-5, a model's opinion; "
                     f"the judge's cost {'unknown' if cost is None else f'${cost:.2f}'} (not in the cost table below)"]
            notes += [f"{category}: overall yours − published {d:+.2f} (95% interval {low:+.2f} to {high:+.2f})" for category, (d, low, high) in open_differences(run.summary).items()]
            notes += [metrics["published_note"]] if metrics.get("published_note") else []
            sections.append({"title": "RobustMAD open answers (judged, not exact)", "label": run.label, "first_column": "category", "unit": "mean score 1-5; accurate %",
                             "columns": ["overall", "accuracy", "complete", "relevance", "style", "accurate %"], "rows": rows, "notes": notes})
        return {"tables": sections}

    def export(self, folder, out: Path) -> int:
        """RobustMAD's score_*.csv from the run's judgements."""
        from harness.storage.files import write_text_atomically

        judgements = read_judgements(folder)
        write_text_atomically(out, score_csv(judgements))
        return sum(1 for j in judgements if j.scores)


def read_judgements(folder) -> list[Judgement]:
    """The run's judge verdicts (none before its judge pass)."""
    from harness.run.runlog import RunFolder

    return RunFolder(folder.path, JUDGEMENTS).read_samples(sample_type=Judgement) if (folder.path / JUDGEMENTS).is_file() else []
