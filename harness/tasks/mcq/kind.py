"""Multiple choice (`--task mcq`): MMAD-format questions, answered by letter, scored strictly and by
MMAD's official rules, with accuracy per dataset and subtask."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from harness.data.mmad import QuestionSet
from harness.errors import ConfigError
from harness.schema import RunSpec, RunSummary, SampleResult
from harness.tasks.kinds import TaskKind
from harness.data.run_questions import check_digest, load_questions, prepared


class McqKind(TaskKind):
    name = "mcq"
    title = "multiple choice"
    help = "multiple-choice questions (MMAD's format), accuracy per subtask"
    sample_type = SampleResult
    answers_questions = True
    dry_runnable = True
    perturbable = True
    settings = frozenset({"protocol", "shots", "choice_scoring", "scoring"})
    folder_tag = ""  # the default kind: its run folders keep their names
    method = "Multiple choice: accuracies are strict (an unparsable or failed answer is wrong); Anomaly Detection is balanced accuracy; averages are MMAD's macro means."

    def prepare(self, spec: RunSpec) -> tuple[RunSpec, QuestionSet]:
        spec, question_set = prepared(spec)
        prompt_settings(spec, question_set, Path("."))  # a missing knowledge file stops here, not in a worker
        return spec, question_set

    def load(self, spec: RunSpec) -> QuestionSet:
        return load_questions(spec)

    def build(self, spec: RunSpec, folder, data: QuestionSet | None) -> tuple[Any, QuestionSet]:
        from harness.tasks.mcq.task import McqTask

        question_set = data or load_questions(spec)
        check_digest(spec, question_set.digest, str(question_set.source))
        settings = prompt_settings(spec, question_set, folder.path)
        return McqTask(question_set.questions, question_set.images, question_set.root, settings, spec.seed), question_set

    def rescored(self, spec, folder, samples, data) -> list:
        from harness.tasks.rescore import from_replies

        return from_replies(self.build(spec, folder, data)[0], samples, folder.samples_path)

    def summarise(self, spec, samples, data, folder, wall_time_s, stopped_reason) -> RunSummary:
        return summarise(spec, self.rescored(spec, folder, samples, data), data, wall_time_s, stopped_reason)

    def table(self, summary, spec) -> str:
        from harness.tasks.mcq.tables import mcq_table

        return mcq_table(summary, spec)

    def report_notes(self, run) -> list[str]:
        from harness.report.reference import comparison_lines
        from harness.run.runlog import RunFolder

        return comparison_lines(run.spec, run.summary, RunFolder(run.path))

    def report_info(self, run) -> dict:
        import math

        from harness.metrics.headline import headline

        lead = headline(run.spec, run.summary)
        finite = lambda v: v if v is not None and math.isfinite(v) else None  # noqa: E731
        return {
            "parser": "strict (iadbench)" if run.spec.protocol == "harmonised" else f"the {run.spec.protocol} script's parser (official scorer), strict beside it",
            "headline": lead.name,
            "headline_average": finite(lead.average),
            "strict_average": finite(run.summary.strict.get("accuracy", {}).get("Average", {}).get("Average")),
        }

    def gallery(self, run, limit: int, skip_declined: bool = False) -> dict | None:
        from harness.tasks.mcq.report import mcq_gallery

        return mcq_gallery(run, limit, skip_declined)

    def export(self, folder, out: Path) -> int:
        import json

        from harness.results.export import answers_file_records
        from harness.storage.files import write_text_atomically

        spec = folder.spec()
        records = answers_file_records(sorted(self.rescored(spec, folder, folder.read_samples(), self.load(spec)), key=lambda s: s.ordinal))
        write_text_atomically(out, json.dumps(records, indent=4) + "\n")
        return len(records)


def prompt_settings(spec: RunSpec, question_set: QuestionSet, artifacts_dir: Path):
    """The MCQ prompt settings of a spec, with its strategies' knowledge base loaded."""
    from harness.protocols import load_protocol
    from harness.strategies import parse_strategies
    from harness.tasks.mcq.task import PromptSettings

    strategies = parse_strategies(spec.strategies)
    knowledge = None
    if strategies.rag:
        from harness.strategies.rag import KnowledgeBase

        path = Path(spec.knowledge) if spec.knowledge else question_set.source.parent / "domain_knowledge.json"
        if not spec.knowledge and os.path.lexists(path):  # the set's own file: inside the set's folder, like its images
            from harness.storage.paths import resolve_inside

            path = resolve_inside(path.parent, path.name, what=f"{path} (the set's domain knowledge)")
        if not path.is_file():
            raise ConfigError(f"--strategy rag needs domain knowledge: {path} not found (pass --knowledge PATH to MMAD's domain_knowledge.json)")
        knowledge = KnowledgeBase(path)
    return PromptSettings(spec.shots, spec.templates, spec.image_max_side, spec.decoding, spec.choice_scoring, strategies, knowledge, artifacts_dir, load_protocol(spec.protocol))


def circular_scores(samples: list[SampleResult]) -> dict:
    """Accuracy counting a question right only if every rotation of its options was answered right
    (questions with a rotation still unanswered are left out and counted)."""
    from harness.metrics.accuracy import strict_scores
    from harness.tasks.mcq.task import base_question_id

    groups: dict[str, list[SampleResult]] = {}
    for sample in samples:
        groups.setdefault(base_question_id(sample.question_id), []).append(sample)
    complete = [g for g in groups.values() if len(g) == len(g[0].options)]
    merged = [min(g, key=lambda s: s.ordinal).model_copy(update={"correct": all(s.correct for s in g)}) for g in complete]
    return {"accuracy": strict_scores(merged)["accuracy"], "questions": len(complete), "incomplete": len(groups) - len(complete)}


def summarise(spec: RunSpec, samples: list[SampleResult], question_set: QuestionSet, wall_time_s: float | None, stopped_reason: str | None = None) -> RunSummary:
    from harness.run.accounting import run_summary
    from harness.results.export import answers_file_records, officially_unrecorded
    from harness.metrics.accuracy import mmad_compat_table, strict_scores
    from harness.tasks.mcq.task import ROTATION_MARK

    rotations = "circular" in spec.strategies
    all_samples, samples = samples, [s for s in samples if ROTATION_MARK not in s.question_id]  # tables: the questions as written
    compat = mmad_compat_table(answers_file_records(samples, with_text=False))
    return run_summary(
        spec, all_samples, sum(len(q.options) for q in question_set.questions) if rotations else len(question_set.questions), wall_time_s, stopped_reason,
        strict=strict_scores(samples),
        mmad_compat={"rows": compat.rows, "columns": compat.columns, "values": compat.values, "removed": compat.removed, "skipped": compat.skipped, "unrecorded": officially_unrecorded(samples)},
        protocol=spec.protocol,
        skipped_records=question_set.skipped,
        image_metrics=detection_image_metrics(samples),
        circular=circular_scores(all_samples) if rotations else {},
    )


def detection_image_metrics(samples: list[SampleResult]) -> dict:
    """Image-level AUROC/AP/F1-max per category and mean, from the detection questions' continuous
    anomaly scores (logprob P(Yes), an expert's score). Letters alone give no ranking: then say so."""
    import warnings

    detection = [s for s in samples if s.subtask.value == "Anomaly Detection"]
    scored = [s for s in detection if s.anomaly_score is not None]
    if not detection:
        return {"unavailable": "no detection questions in this run"}
    if not scored:
        return {"unavailable": "detection answers carry letters only (no continuous score); use --choice-scoring logprobs for P(Yes)"}
    from harness.metrics.ad import image_metrics, mean_over_categories  # scipy and friends: only when there is something to rank

    per_category: dict[str, dict[str, float]] = {}
    for category in sorted({f"{s.dataset}/{s.category}" for s in scored}):
        members = [s for s in scored if f"{s.dataset}/{s.category}" == category]
        metrics = image_metrics([s.label == "anomaly" for s in members], [s.anomaly_score for s in members])
        per_category[category] = {f"image_{k}": v for k, v in metrics.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the notes are kept in the summary instead
        mean, notes = mean_over_categories(per_category)
    return {"per_category": per_category, "mean": mean, "notes": notes, "scored": len(scored), "detection_questions": len(detection)}
