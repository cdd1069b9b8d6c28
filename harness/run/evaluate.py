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

from harness.run.provenance import git_revision, package_versions, recorded_options
from harness.storage.sources import cache_dir, data_label
from harness.errors import ConfigError
from harness.models.base import Model, ModelOptions
from harness.models.registry import check_concurrency, create_model, provider_of
from harness.models.pricing import cost_usd
from harness.data.subset import NEW_SAMPLING
from harness.run.runlog import RunFolder, check_run_id, new_run_id
from harness.run.runner import RunOutcome, run_plan
from harness.schema import DecodingSpec, RunSpec, RunSummary, Usage
from harness.strategies import parse_strategies
from harness.asking.perturb import canonical_perturbations
from harness.protocols import resolve_protocol
from harness.suites import load_suite
from harness.tasks.registry import kinds_owning, task_kind, task_kind_names


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
    judge: str | None = None
    judge_base_url: str | None = None
    judge_api_key_env: str | None = None


def resolve_spec(suite_name: str, model: str, overrides: EvalOverrides, default_concurrency: int) -> RunSpec:
    suite = load_suite(suite_name)
    pick = lambda value, fallback: fallback if value is None else value  # noqa: E731
    decoding = DecodingSpec(
        max_new_tokens=pick(overrides.max_new_tokens, suite.decoding.max_new_tokens),
        temperature=pick(overrides.temperature, suite.decoding.temperature),
        top_p=suite.decoding.top_p,
    )
    max_connections = check_concurrency(model, pick(overrides.max_connections, default_concurrency))
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
    kind = task_kind(task)
    own = [p for p in overrides.perturb or [] if p in kind.own_perturbations]
    for value in overrides.perturb or []:
        if value not in own and (owners := kinds_owning(lambda other, value=value: value in other.own_perturbations)):
            raise ConfigError(f"--perturb {value} is a benchmark's own degradation, not one of a {kind.title} run: it goes with {owners}")
    data_prefix = data.partition(":")[0] + ":"
    common = ("synthetic:", "mmad:", "hf:")  # every question kind reads these; only another form can be another kind's
    if ":" in data and data_prefix not in common + kind.data_forms and (owners := kinds_owning(lambda other: data_prefix in other.data_forms)):
        raise ConfigError(f"--data {data}: not the data of a {kind.title} run; run it with {owners}")
    perturb = canonical_perturbations([p for p in overrides.perturb or [] if p not in own])
    if perturb and not kind.perturbable:
        raise ConfigError(f"--perturb degrades the images a run shows; a {kind.title} run does not take it (it does: " + ", ".join(f"--task {n}" for n in task_kind_names() if task_kind(n).perturbable) + ")")
    perturb = own + perturb
    run_suffix += "".join(f"+{p.replace(':', '')}" for p in perturb)
    tag = task if kind.folder_tag is None else kind.folder_tag
    if tag:  # a folder name says what kind of run it holds (multiple choice, the default, says nothing)
        run_suffix = f"{tag}_{run_suffix}"
    if provider is not None and provider.person:
        _refuse_what_a_person_cannot_answer(model, kind, kind.fixed_protocol or overrides.protocol or suite.protocol, parsed_strategies)
    protocol = resolve_protocol(kind.fixed_protocol or overrides.protocol or suite.protocol, model, [flag for flag, value in changed.items() if value is not None], strategies)
    if protocol.official:
        decoding = protocol.decoding
        run_suffix += "" if suite.protocol == "auto" and overrides.protocol is None else f"+{protocol.name}"
    spec = RunSpec(
        run_id=check_run_id(overrides.run_id) if overrides.run_id else "pending",
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        suite=suite_name,
        task=task,
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
        # MMAD's protocols and their differences from the official scripts concern the kinds that
        # ask MMAD's questions (a box or GPT-4V-AD run has no published MMAD row to differ from)
        protocol_differences=protocol.differences if "protocol" in kind.settings else [],
        errata=overrides.errata or [],
        scoring=pick(overrides.scoring, suite.scoring),
        choice_scoring=pick(overrides.choice_scoring, suite.choice_scoring),
        strategies=strategies,
        knowledge=overrides.knowledge,
        model_options=recorded_options(options),
        seed=overrides.seed,
        limit=overrides.limit,
        limit_sampling=NEW_SAMPLING,  # new runs; a run folder that recorded "first" or "stratified" resumes as it began
        skip_bad=overrides.skip_bad,
        max_connections=max_connections,
        cache=overrides.cache,
        max_cost_usd=overrides.max_cost_usd,
        versions=package_versions(),
        git_revision=git_revision(),
    )
    spec = spec.model_copy(update=kind.spec_fields(model, overrides))
    if overrides.run_id:
        return spec
    settings = spec.model_dump(mode="json", exclude={"run_id", "created_at", "versions", "git_revision"})
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()
    return spec.model_copy(update={"run_id": new_run_id(model, run_suffix, digest=digest)})




def _refuse_what_a_person_cannot_answer(model: str, kind, protocol: str, strategies) -> None:
    """A person picks one letter per question on a page: multiple-choice questions under the
    harmonised protocol, each asked once (an official protocol batches an image's questions and
    parses a script's way; self-consistency would ask the same person the same question again)."""
    from harness.protocols import HARMONISED

    if not kind.answers_questions:
        raise ConfigError(f"{model}: a person answers multiple-choice questions (--task mcq), not a {kind.title} run")
    if protocol != HARMONISED:
        named = "a model family's official one (--suite mmad-official)" if protocol == "auto" else repr(protocol)
        raise ConfigError(f"{model}: a person answers under the harmonised protocol (--suite synthetic-quick, mmad-1shot or mmad-0shot), not {named}")
    if strategies.sc:
        raise ConfigError(f"{model}: --strategy sc asks the same question several times; a person answers each question once")


def model_for(spec: RunSpec, base_url: str | None = None) -> Model:
    """The backend a spec names. A base URL given again on resume replaces the recorded (redacted) one."""
    from harness.strategies.wrappers import wrap

    options = ModelOptions.model_validate(spec.model_options | ({"base_url": base_url} if base_url else {}))
    return wrap(create_model(spec.model, seed=spec.seed, options=options), parse_strategies(spec.strategies))


def build_task(spec: RunSpec, folder: RunFolder, data=None):
    """The runner task for the spec (its kind's, harness/tasks/kinds.py), degraded images when the
    spec says so, and what its summary needs."""
    kind = task_kind(spec.task)
    task, data = kind.build(spec, folder, data)
    generic = [p for p in spec.perturb if p not in kind.own_perturbations]  # the kind applies its own itself
    if generic:
        from harness.tasks.mcq.perturbed import PerturbedTask

        task = PerturbedTask(task, generic, templates=spec.perturb_templates, seed=spec.seed, cache=cache_dir())
    return task, data


def run_evaluation(
    spec: RunSpec,
    folder: RunFolder,
    *,
    question_set=None,  # the data start_run already read (a QuestionSet for question kinds)
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
    priced = cost_usd(spec.model, Usage()) is not None  # reads and checks the price table before anything is asked
    if spec.max_cost_usd is not None and not priced:
        raise ConfigError(f"--max-cost needs a price for {spec.model}: add it to harness/models/prices.toml (or $IADBENCH_PRICES)")
    cache = None
    if spec.cache and model.cacheable:
        from harness.storage.cache import ResponseCache

        cache = ResponseCache(cache_dir() / "responses.sqlite")
    started = time.perf_counter()
    # The question set lives for the whole run: keep the cycle collector from rescanning it
    # (tens of thousands of records) on every collection while answers stream in.
    gc.collect()
    gc.freeze()

    async def go() -> RunOutcome:
        try:
            return await run_plan(task, model, folder, concurrency=check_concurrency(spec.model, spec.max_connections), progress=progress, cache=cache, max_cost_usd=spec.max_cost_usd, shard=shard)
        finally:
            await model.aclose()

    try:
        outcome = asyncio.run(go())
        follow = task_kind(spec.task).second_pass(spec, folder, outcome.samples, data) if shard is None else None
        if follow is not None:  # e.g. a judge over open answers: cached, resumable and priced like the answers
            second_task, second_model, second_folder = follow

            async def second() -> RunOutcome:
                try:
                    return await run_plan(second_task, second_model, second_folder, concurrency=spec.max_connections, progress=progress,
                                          cache=cache if second_model.cacheable else None)
                finally:
                    await second_model.aclose()

            outcome.notes += [n for n in asyncio.run(second()).notes if n not in outcome.notes]
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
    summary = task_kind(spec.task).summarise(spec, outcome.samples, data, folder, wall, outcome.stopped_reason)
    folder.write_summary(summary)
    return summary


def start_run(spec: RunSpec, runs_dir: Path) -> tuple[RunSpec, RunFolder, object]:
    """Validate the data before creating the folder, so a bad flag leaves no empty run behind."""
    spec, data = task_kind(spec.task).prepare(spec)
    return spec, RunFolder.create(runs_dir, spec), data
