"""`iadbench eval`: resolve suite + flags into a RunSpec, run it, score it, write the summary."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from harness.provenance import git_revision, package_versions, recorded_options
from harness.data.mmad import QuestionSet, load_mmad
from harness.data.releases import exclude_errata, release_name
from harness.sources import cache_dir, data_label, resolve_data
from harness.errors import ConfigError
from harness.export import answers_file_records, officially_unrecorded
from harness.metrics.accuracy import mmad_compat_table, strict_scores
from harness.models.base import Model, ModelOptions, create_model, provider_of
from harness.models.pricing import cost_usd
from harness.runlog import RunFolder, check_run_id, new_run_id
from harness.accounting import run_accounting
from harness.runner import RunOutcome, run_plan
from harness.schema import DecodingSpec, RunSpec, RunSummary, SampleResult, Usage
from harness.strategies import parse_strategies
from harness.perturb import canonical_perturbations
from harness.protocols import HARMONISED, resolve_protocol
from harness.suites import load_suite
from harness.tasks.mcq import McqTask, PromptSettings


@dataclass
class EvalOverrides:
    """Command-line values; None means 'take the suite's (or backend's) value'."""

    data: str | None = None
    data_root: str | None = None
    shots: int | None = None
    templates: str | None = None
    image_max_side: int | None = None
    max_new_tokens: int | None = None
    temperature: float | None = None
    scoring: str | None = None
    choice_scoring: str | None = None
    seed: int = 0
    limit: int | None = None
    skip_bad: bool = False
    max_connections: int | None = None
    run_id: str | None = None
    task: str | None = None
    regions: str | None = None
    gpt4vad_prompt: str | None = None
    cache: bool = True
    max_cost_usd: float | None = None
    model_options: ModelOptions | None = None
    strategies: list[str] | None = None
    knowledge: str | None = None
    protocol: str | None = None
    errata: list[str] | None = None
    metric_definitions: str | None = None
    box_format: str | None = None
    perturb: list[str] | None = None
    perturb_templates: bool = False


def _box_format(model: str, requested: str | None) -> str:
    from harness.tasks.bbox import pick_box_format

    return pick_box_format(model, requested).name


def resolve_spec(suite_name: str, model: str, overrides: EvalOverrides, default_concurrency: int) -> RunSpec:
    suite = load_suite(suite_name)
    pick = lambda value, fallback: fallback if value is None else value  # noqa: E731
    decoding = DecodingSpec(
        max_new_tokens=pick(overrides.max_new_tokens, suite.decoding.max_new_tokens),
        temperature=pick(overrides.temperature, suite.decoding.temperature),
        top_p=suite.decoding.top_p,
    )
    max_connections = pick(overrides.max_connections, default_concurrency)
    parsed_strategies = parse_strategies(overrides.strategies or [])
    strategies = parsed_strategies.names
    provider = provider_of(model)
    if parsed_strategies.cot and provider is not None and not provider.free_text:
        raise ConfigError(f"--strategy cot asks {model} to describe the image in words first; {provider.name} writes no free text ({provider.description}): use a language model")
    data = pick(overrides.data, suite.data)
    run_suffix = suite_name + (f"@{data_label(data)}" if data != suite.data else "") + "".join("+" + re.sub(r"[^A-Za-z0-9]+", "-", s).strip("-") for s in strategies)
    options = (overrides.model_options or ModelOptions()).model_copy(update={"max_connections": max_connections})
    changed = {"--max-new-tokens": overrides.max_new_tokens, "--temperature": overrides.temperature, "--image-max-side": overrides.image_max_side}
    changed["--choice-scoring logprobs"] = True if overrides.choice_scoring == "logprobs" else None
    task = pick(overrides.task, suite.task)
    perturb = canonical_perturbations(overrides.perturb or [])
    if perturb and task == "gpt4vad":
        raise ConfigError("--perturb degrades the images of --task mcq and --task bbox runs")
    run_suffix += "".join(f"+{p.replace(':', '')}" for p in perturb)
    # boxes are asked as harness/tasks/box_formats.toml says, whatever the suite's MCQ protocol
    protocol = resolve_protocol(HARMONISED if task == "bbox" else overrides.protocol or suite.protocol, model, [flag for flag, value in changed.items() if value is not None], strategies)
    if protocol.official:
        decoding = protocol.decoding
        run_suffix += "" if suite.protocol == "auto" and overrides.protocol is None else f"+{protocol.name}"
    spec = RunSpec(
        run_id=check_run_id(overrides.run_id) if overrides.run_id else "pending",
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        suite=suite_name,
        task=task,
        box_format=_box_format(model, overrides.box_format) if task == "bbox" else None,
        perturb=perturb,
        perturb_templates=overrides.perturb_templates,
        regions=pick(overrides.regions, suite.regions),
        gpt4vad_prompt=pick(overrides.gpt4vad_prompt, suite.gpt4vad_prompt),
        metric_definitions=overrides.metric_definitions or "exact",
        data=data,
        data_root=overrides.data_root,
        model=model,
        shots=pick(overrides.shots, suite.shots),
        templates=pick(overrides.templates, suite.templates),
        image_max_side=None if protocol.official else pick(overrides.image_max_side, suite.image_max_side),
        decoding=decoding,
        protocol=protocol.name,
        protocol_differences=protocol.differences,
        errata=overrides.errata or [],
        scoring=pick(overrides.scoring, suite.scoring),
        choice_scoring=pick(overrides.choice_scoring, suite.choice_scoring),
        strategies=strategies,
        knowledge=overrides.knowledge,
        model_options=recorded_options(options),
        seed=overrides.seed,
        limit=overrides.limit,
        skip_bad=overrides.skip_bad,
        max_connections=max_connections,
        cache=overrides.cache,
        max_cost_usd=overrides.max_cost_usd,
        versions=package_versions(),
        git_revision=git_revision(),
    )
    if overrides.run_id:
        return spec
    settings = spec.model_dump(mode="json", exclude={"run_id", "created_at", "versions", "git_revision"})
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    return spec.model_copy(update={"run_id": new_run_id(model, run_suffix, digest=digest)})




def load_questions(spec: RunSpec) -> QuestionSet:
    data = resolve_data(spec.data, spec.data_root)
    digest = None
    if spec.data_digest and data.json_path.is_file():  # before reading records: the wrong file is the error to report
        from harness.files import file_sha256

        digest = file_sha256(data.json_path)
        _check_digest(spec, digest, str(data.json_path))
    question_set = load_mmad(data.json_path, root=data.root, templates=spec.templates, shots=spec.shots, skip_bad=spec.skip_bad, digest=digest)
    for name in spec.errata:
        exclude_errata(question_set, name)
    if spec.limit is not None:
        question_set.questions = question_set.questions[: spec.limit]
    return question_set



def circular_scores(samples: list[SampleResult]) -> dict:
    """Accuracy counting a question right only if every rotation of its options was answered right
    (questions with a rotation still unanswered are left out and counted)."""
    from harness.tasks.mcq import base_question_id

    groups: dict[str, list[SampleResult]] = {}
    for sample in samples:
        groups.setdefault(base_question_id(sample.question_id), []).append(sample)
    complete = [g for g in groups.values() if len(g) == len(g[0].options)]
    merged = [min(g, key=lambda s: s.ordinal).model_copy(update={"correct": all(s.correct for s in g)}) for g in complete]
    return {"accuracy": strict_scores(merged)["accuracy"], "questions": len(complete), "incomplete": len(groups) - len(complete)}


def summarise(spec: RunSpec, samples: list[SampleResult], question_set: QuestionSet, wall_time_s: float | None, stopped_reason: str | None = None) -> RunSummary:
    from harness.tasks.mcq import ROTATION_MARK

    rotations = "circular" in spec.strategies
    all_samples, samples = samples, [s for s in samples if ROTATION_MARK not in s.question_id]  # tables: the questions as written
    compat = mmad_compat_table(answers_file_records(samples))
    return RunSummary(
        run_id=spec.run_id,
        model=spec.model,
        suite=spec.suite,
        data=spec.data,
        scoring=spec.scoring,
        n_questions=sum(len(q.options) for q in question_set.questions) if rotations else len(question_set.questions),
        strict=strict_scores(samples),
        mmad_compat={"rows": compat.rows, "columns": compat.columns, "values": compat.values, "removed": compat.removed, "skipped": compat.skipped, "unrecorded": officially_unrecorded(samples)},
        protocol=spec.protocol,
        skipped_records=question_set.skipped,
        wall_time_s=wall_time_s,
        stopped_reason=stopped_reason,
        image_metrics=detection_image_metrics(samples),
        circular=circular_scores(all_samples) if rotations else {},
        **run_accounting(spec, all_samples),
    )


def detection_image_metrics(samples: list[SampleResult]) -> dict:
    """Image-level AUROC/AP/F1-max per category and mean, from the detection questions' continuous
    anomaly scores (logprob P(Yes), an expert's score). Letters alone give no ranking: then say so."""
    import warnings

    from harness.metrics.ad import image_metrics, mean_over_categories

    detection = [s for s in samples if s.subtask.value == "Anomaly Detection"]
    scored = [s for s in detection if s.anomaly_score is not None]
    if not detection:
        return {"unavailable": "no detection questions in this run"}
    if not scored:
        return {"unavailable": "detection answers carry letters only (no continuous score); use --choice-scoring logprobs for P(Yes)"}
    per_category: dict[str, dict[str, float]] = {}
    for category in sorted({f"{s.dataset}/{s.category}" for s in scored}):
        members = [s for s in scored if f"{s.dataset}/{s.category}" == category]
        metrics = image_metrics([s.label == "anomaly" for s in members], [s.anomaly_score for s in members])
        per_category[category] = {f"image_{k}": v for k, v in metrics.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the notes are kept in the summary instead
        mean, notes = mean_over_categories(per_category)
    return {"per_category": per_category, "mean": mean, "notes": notes, "scored": len(scored), "detection_questions": len(detection)}


def model_for(spec: RunSpec, base_url: str | None = None) -> Model:
    """The backend a spec names. A base URL given again on resume replaces the recorded (redacted) one."""
    from harness.strategies.wrappers import wrap

    options = ModelOptions.model_validate(spec.model_options | ({"base_url": base_url} if base_url else {}))
    return wrap(create_model(spec.model, seed=spec.seed, options=options), parse_strategies(spec.strategies))


def build_task(spec: RunSpec, folder: RunFolder, question_set: QuestionSet | None):
    """The runner task for the spec, and what its summary needs (questions or region items)."""
    if spec.task == "gpt4vad":
        from harness.tasks.gpt4vad import Gpt4vadTask, load_region_items

        items, digest = load_region_items(spec.data, spec.seed)
        if spec.limit is not None:
            items = items[: spec.limit]
        _check_digest(spec, digest, spec.data)
        task = Gpt4vadTask(items, folder.path, regions=spec.regions, prompt=spec.gpt4vad_prompt, image_max_side=spec.image_max_side, decoding=spec.decoding, seed=spec.seed)
        return task, items
    question_set = question_set or load_questions(spec)
    _check_digest(spec, question_set.digest, str(question_set.source))
    if spec.task == "bbox":
        from harness.tasks.bbox import build_box_task

        task, data = build_box_task(spec, folder, question_set)
    else:
        settings = prompt_settings(spec, question_set, folder.path)
        task, data = McqTask(question_set.questions, question_set.images, question_set.root, settings, spec.seed), question_set
    if spec.perturb:
        from harness.tasks.perturbed import PerturbedTask

        task = PerturbedTask(task, spec.perturb, templates=spec.perturb_templates, seed=spec.seed, cache=cache_dir())
    return task, data


def prompt_settings(spec: RunSpec, question_set: QuestionSet, artifacts_dir: Path) -> PromptSettings:
    """The MCQ prompt settings of a spec, with its strategies' knowledge base loaded."""
    strategies = parse_strategies(spec.strategies)
    knowledge = None
    if strategies.rag:
        from harness.strategies.rag import KnowledgeBase

        path = Path(spec.knowledge) if spec.knowledge else question_set.source.parent / "domain_knowledge.json"
        if not path.is_file():
            raise ConfigError(f"--strategy rag needs domain knowledge: {path} not found (pass --knowledge PATH to MMAD's domain_knowledge.json)")
        knowledge = KnowledgeBase(path)
    from harness.protocols import load_protocol

    return PromptSettings(spec.shots, spec.templates, spec.image_max_side, spec.decoding, spec.choice_scoring, strategies, knowledge, artifacts_dir, load_protocol(spec.protocol))


def _check_digest(spec: RunSpec, digest: str, source: str) -> None:
    """A run's answers belong to one question file: resuming, re-scoring or reporting it against
    another (a changed file, IADBENCH_MMAD pointing elsewhere) is refused, naming both."""
    if spec.data_digest is not None and spec.data_digest != digest:
        raise ConfigError(
            f"{source} (sha256 {digest[:12]}…) is not the question file run {spec.run_id} used (sha256 {spec.data_digest[:12]}…, data {spec.data}); "
            "point --data/IADBENCH_MMAD at that file, or start a new run"
        )


def summarise_regions(spec: RunSpec, samples: list, items: list, folder: RunFolder, wall_time_s: float | None, stopped_reason: str | None) -> RunSummary:
    from harness.tasks.gpt4vad import region_metrics

    return RunSummary(
        run_id=spec.run_id,
        model=spec.model,
        suite=spec.suite,
        data=spec.data,
        scoring=spec.scoring,
        task="gpt4vad",
        n_questions=len(items),
        ad_metrics=region_metrics(samples, items, folder.path, spec.metric_definitions),
        wall_time_s=wall_time_s,
        stopped_reason=stopped_reason,
        **run_accounting(spec, samples),
    )


def summarise_boxes(spec: RunSpec, samples: list, records: list | int, wall_time_s: float | None, stopped_reason: str | None) -> RunSummary:
    from harness.tasks.bbox import box_run_metrics

    return RunSummary(
        run_id=spec.run_id, model=spec.model, suite=spec.suite, data=spec.data, scoring=spec.scoring, task="bbox", n_questions=records if isinstance(records, int) else len(records),
        box_metrics=box_run_metrics(samples), wall_time_s=wall_time_s, stopped_reason=stopped_reason, **run_accounting(spec, samples),
    )


def run_evaluation(
    spec: RunSpec,
    folder: RunFolder,
    *,
    question_set: QuestionSet | None = None,
    model: Model | None = None,
    progress: bool = True,
    shard: tuple[int, int] | None = None,
) -> RunSummary | None:
    """Answer what is left and write the summary. As one shard of a data-parallel run, answer
    only that shard's block into its own file and return None: the launcher merges and summarises."""
    task, data = build_task(spec, folder, question_set)
    if shard is None:
        folder.merge_shards(task.sample_type)  # answers left by an interrupted data-parallel run
    model = model or model_for(spec)
    if spec.max_cost_usd is not None and cost_usd(spec.model, Usage()) is None:
        raise ConfigError(f"--max-cost needs a price for {spec.model}: add it to harness/models/prices.toml (or $IADBENCH_PRICES)")
    cache = None
    if spec.cache and model.cacheable:
        from harness.cache import ResponseCache

        cache = ResponseCache(cache_dir() / "responses.sqlite")
    started = time.perf_counter()
    # The question set lives for the whole run: keep the cycle collector from rescanning it
    # (tens of thousands of records) on every collection while answers stream in.
    gc.collect()
    gc.freeze()

    async def go() -> RunOutcome:
        try:
            return await run_plan(task, model, folder, concurrency=spec.max_connections, progress=progress, cache=cache, max_cost_usd=spec.max_cost_usd, shard=shard)
        finally:
            await model.aclose()

    try:
        outcome = asyncio.run(go())
    finally:
        if cache:
            cache.close()
    if shard is not None:
        folder.write_shard_notes(*shard, [n for n in outcome.notes if n not in spec.notes])
        return None
    new_notes = [n for n in outcome.notes if n not in spec.notes]
    if new_notes:
        folder.update_spec(spec.model_copy(update={"notes": spec.notes + new_notes}))
    wall = time.perf_counter() - started
    earlier = folder.summary()
    if earlier is not None and earlier.wall_time_s:  # a resumed run took the time of each of its sessions
        wall += earlier.wall_time_s
    if spec.task == "gpt4vad":
        summary = summarise_regions(spec, outcome.samples, data, folder, wall, outcome.stopped_reason)
    elif spec.task == "bbox":
        summary = summarise_boxes(spec, outcome.samples, data, wall, outcome.stopped_reason)
    else:
        summary = summarise(spec, outcome.samples, data, wall, outcome.stopped_reason)
    folder.write_summary(summary)
    return summary


def start_run(spec: RunSpec, runs_dir: Path) -> tuple[RunSpec, RunFolder, QuestionSet | None]:
    """Validate the data before creating the folder, so a bad flag leaves no empty run behind."""
    if spec.task == "gpt4vad":
        from harness.tasks.gpt4vad import load_region_items, validate_regions

        validate_regions(spec.regions)
        _, digest = load_region_items(spec.data, spec.seed)
        spec = spec.model_copy(update={"data_digest": digest})
        return spec, RunFolder.create(runs_dir, spec), None
    question_set = load_questions(spec)
    prompt_settings(spec, question_set, runs_dir)  # a missing knowledge file stops here, not in a worker
    resolved = resolve_data(spec.data, spec.data_root)
    data = f"mmad:{resolved.json_path.resolve()}" if spec.data == "mmad" else spec.data  # not $IADBENCH_MMAD: the file itself
    spec = spec.model_copy(update={"data": data, "data_digest": question_set.digest, "data_release": release_name(spec.protocol, question_set.digest)})
    return spec, RunFolder.create(runs_dir, spec), question_set
