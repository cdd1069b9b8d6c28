"""`iadbench eval`: resolve suite + flags into a RunSpec, run it, score it, write the summary."""

from __future__ import annotations

import asyncio
import platform
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import harness
from harness.data.mmad import QuestionSet, load_mmad
from harness.data.sources import resolve_data
from harness.errors import ConfigError
from harness.export import answers_file_records
from harness.metrics.accuracy import mmad_compat_table, strict_scores
from harness.models.base import create_model
from harness.runlog import RunFolder, new_run_id
from harness.runner import EvalPlan, run_plan
from harness.schema import DecodingSpec, RunSpec, RunSummary, SampleResult
from harness.suites import load_suite
from harness.tasks.mcq import PromptSettings


@dataclass
class EvalOverrides:
    """Command-line values; None means 'take the suite's value'."""

    data: str | None = None
    data_root: str | None = None
    shots: int | None = None
    templates: str | None = None
    image_max_side: int | None = None
    max_new_tokens: int | None = None
    temperature: float | None = None
    scoring: str | None = None
    seed: int = 0
    limit: int | None = None
    skip_bad: bool = False
    max_connections: int | None = None
    run_id: str | None = None


def _package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "iadbench": harness.__version__}
    for package in ("numpy", "pillow", "pydantic", "jinja2", "scikit-learn", "scikit-image"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


def _git_revision() -> str | None:
    """The revision of the iadbench checkout that ran (with +dirty for local changes)."""
    source = Path(harness.__file__).resolve().parents[1]
    try:
        revision = subprocess.run(["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=5)
        if revision.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=source, capture_output=True, text=True, timeout=5)
        return revision.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def resolve_spec(suite_name: str, model: str, overrides: EvalOverrides, default_concurrency: int) -> RunSpec:
    suite = load_suite(suite_name)
    pick = lambda value, fallback: fallback if value is None else value  # noqa: E731
    decoding = DecodingSpec(
        max_new_tokens=pick(overrides.max_new_tokens, suite.decoding.max_new_tokens),
        temperature=pick(overrides.temperature, suite.decoding.temperature),
        top_p=suite.decoding.top_p,
    )
    return RunSpec(
        run_id=overrides.run_id or new_run_id(model, suite_name),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        suite=suite_name,
        task=suite.task,
        data=pick(overrides.data, suite.data),
        data_root=overrides.data_root,
        model=model,
        shots=pick(overrides.shots, suite.shots),
        templates=pick(overrides.templates, suite.templates),
        image_max_side=pick(overrides.image_max_side, suite.image_max_side),
        decoding=decoding,
        scoring=pick(overrides.scoring, suite.scoring),
        seed=overrides.seed,
        limit=overrides.limit,
        skip_bad=overrides.skip_bad,
        max_connections=pick(overrides.max_connections, default_concurrency),
        versions=_package_versions(),
        git_revision=_git_revision(),
    )


def load_questions(spec: RunSpec) -> QuestionSet:
    data = resolve_data(spec.data, spec.data_root)
    question_set = load_mmad(data.json_path, root=data.root, templates=spec.templates, shots=spec.shots, skip_bad=spec.skip_bad)
    if spec.limit is not None:
        question_set.questions = question_set.questions[: spec.limit]
    return question_set


def summarise(spec: RunSpec, samples: list[SampleResult], question_set: QuestionSet, wall_time_s: float | None) -> RunSummary:
    compat = mmad_compat_table(answers_file_records(samples))
    statuses: dict[str, int] = {}
    for sample in samples:
        statuses[sample.parse_status] = statuses.get(sample.parse_status, 0) + 1
    return RunSummary(
        run_id=spec.run_id,
        model=spec.model,
        suite=spec.suite,
        scoring=spec.scoring,
        n_questions=len(question_set.questions),
        n_samples=len(samples),
        status_counts=statuses,
        strict=strict_scores(samples),
        mmad_compat={"rows": compat.rows, "columns": compat.columns, "values": compat.values, "removed": compat.removed, "skipped": compat.skipped},
        skipped_records=question_set.skipped,
        wall_time_s=wall_time_s,
    )


def run_evaluation(
    spec: RunSpec, folder: RunFolder, *, question_set: QuestionSet | None = None, progress: bool = True
) -> RunSummary:
    question_set = question_set or load_questions(spec)
    if spec.data_digest is not None and spec.data_digest != question_set.digest:
        raise ConfigError(
            f"{question_set.source} changed since run {spec.run_id} started (sha256 differs); resuming would mix two "
            "question sets, so start a new run"
        )
    model = create_model(spec.model, seed=spec.seed)
    plan = EvalPlan(
        questions=question_set.questions,
        images=question_set.images,
        root=question_set.root,
        settings=PromptSettings(spec.shots, spec.templates, spec.image_max_side, spec.decoding),
        seed=spec.seed,
    )
    started = time.perf_counter()

    async def go() -> list[SampleResult]:
        try:
            return await run_plan(plan, model, folder, concurrency=spec.max_connections, progress=progress)
        finally:
            await model.aclose()

    samples = asyncio.run(go())
    summary = summarise(spec, samples, question_set, time.perf_counter() - started)
    folder.write_summary(summary)
    return summary


def start_run(spec: RunSpec, runs_dir: Path) -> tuple[RunSpec, RunFolder, QuestionSet]:
    """Validate the data before creating the folder, so a bad flag leaves no empty run behind."""
    question_set = load_questions(spec)
    spec = spec.model_copy(update={"data_digest": question_set.digest})
    return spec, RunFolder.create(runs_dir, spec), question_set
