"""Run identity in a report: which settings tell the runs apart, and one label per run from them.

A report over several runs of one model (an ablation, a degradation sweep, a seed loop) must name
each run by what makes it different, the way experiment trackers compare runs: the model plus
exactly the settings whose values differ among the runs shown. Every section and every export
takes its labels from here, so two runs never share one and a figure is always attributed to the
run it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from harness.models.registry import model_label
from harness.schema import RunSpec
from harness.storage.sources import data_label
from harness.tasks.registry import task_kind


@dataclass(frozen=True)
class Setting:
    """One setting a run can differ in: how to read it from a spec, and how to write it in a label."""

    name: str  # the column title of the "what differs" table
    value: Callable[[RunSpec], object]  # compared between runs (a hashable, JSON-like value)
    text: Callable[[RunSpec], str]  # how the value reads in a label and in the table
    in_label: bool = True  # settings that never change answers name a run only as a last resort


def _strategies(spec: RunSpec) -> str:
    return "+".join(spec.strategies) if spec.strategies else "no strategy"


def _perturb(spec: RunSpec) -> str:
    return "+".join(spec.perturb) if spec.perturb else "clean"


def _decoding(spec: RunSpec) -> str:
    decoding = spec.decoding
    if decoding.sampling == "model-default":
        return f"model's decoding, {decoding.max_new_tokens} tokens"
    sampled = f"T={decoding.temperature:g}" + (f", top-p {decoding.top_p:g}" if decoding.top_p != 1 else "")
    return f"{sampled}, {decoding.max_new_tokens} tokens"


def _of_kind(field: str):
    """A spec field that describes runs of the kinds that list it (harness/tasks/kinds.py: settings)."""
    return lambda s: getattr(s, field) if field in task_kind(s.task).settings else None


def _limit(spec: RunSpec) -> str:
    if spec.limit is None:
        return "all questions"
    if spec.limit_sampling == "first" or not spec.limit_of:
        return f"first {spec.limit}"
    return f"{min(spec.limit, spec.limit_of)} of {spec.limit_of}, stratified"


def _option(key: str, title: str) -> Setting:
    return Setting(title, lambda s: s.model_options.get(key), lambda s: f"{title} {s.model_options.get(key)}")


# In label order: what changes the answers first, bookkeeping last.
SETTINGS: tuple[Setting, ...] = (
    Setting("model", lambda s: s.model, lambda s: model_label(s.model)),
    Setting("task", lambda s: s.task, lambda s: task_kind(s.task).title),
    Setting("data", lambda s: s.data, lambda s: data_label(s.data)),
    Setting("protocol", _of_kind("protocol"), lambda s: f"protocol {s.protocol}"),
    Setting("shots", _of_kind("shots"), lambda s: f"{s.shots}-shot"),
    Setting("templates", lambda s: s.templates if s.shots else None, lambda s: f"{s.templates} templates" if s.shots else "no templates"),
    Setting("strategies", lambda s: tuple(s.strategies), _strategies),
    Setting("knowledge", lambda s: s.knowledge, lambda s: f"knowledge {s.knowledge}"),
    Setting("degradation", lambda s: tuple(s.perturb), _perturb),
    Setting("templates degraded", lambda s: s.perturb_templates, lambda s: "templates degraded" if s.perturb_templates else "templates clean"),
    Setting("decoding", lambda s: s.decoding.model_dump_json(), _decoding),
    Setting("choice scoring", _of_kind("choice_scoring"), lambda s: f"{s.choice_scoring} scoring"),
    Setting("image size", lambda s: s.image_max_side, lambda s: f"≤{s.image_max_side} px" if s.image_max_side else "native size"),
    Setting("regions", _of_kind("regions"), lambda s: f"regions {s.regions}"),
    Setting("prompt", _of_kind("gpt4vad_prompt"), lambda s: f"prompt {s.gpt4vad_prompt}"),
    Setting("metrics", _of_kind("metric_definitions"), lambda s: f"{s.metric_definitions} metrics"),
    Setting("box format", _of_kind("box_format"), lambda s: f"boxes as {s.box_format}"),
    Setting("errata", lambda s: tuple(s.errata), lambda s: "errata " + "+".join(s.errata) if s.errata else "no errata"),
    Setting("seed", lambda s: s.seed, lambda s: f"seed {s.seed}"),
    Setting("limit", lambda s: s.limit if s.limit is not None else "all", _limit),
    _option("image_detail", "detail"),
    _option("dtype", "dtype"),
    _option("revision", "revision"),
    Setting("data version", lambda s: s.data_digest, lambda s: f"sha256 {s.data_digest[:12]}", in_label=False),
    Setting("headline", _of_kind("scoring"), lambda s: f"headline {s.scoring}", in_label=False),
    Setting("suite", lambda s: s.suite, lambda s: f"suite {s.suite}", in_label=False),
)


def differing(specs: list[RunSpec]) -> list[Setting]:
    """The settings whose value is not the same in every run (none for a single run)."""
    return [setting for setting in SETTINGS if len({_key(setting.value(spec)) for spec in specs}) > 1]


def _key(value: object) -> str:
    return repr(value)


def _text(setting: Setting, spec: RunSpec) -> str:
    """How a run's value of a setting reads; "—" where the setting does not apply to its task."""
    return "—" if setting.value(spec) is None else setting.text(spec)


# A label names at most this many settings besides the model. Runs that differ in more (a report
# over unrelated runs) are named by the fewest settings, in SETTINGS order, that tell them apart;
# the "what differs" table shows them all.
LABEL_SETTINGS_AT_MOST = 3


def _splitting(specs: list[RunSpec], candidates: list[Setting]) -> list[Setting]:
    """The settings, in order, that each tell apart runs the ones before them could not."""
    chosen: list[Setting] = []
    groups = {0: list(range(len(specs)))}
    for setting in candidates:
        split: dict[tuple, list[int]] = {}
        for members in groups.values():
            for index in members:
                split.setdefault((id(members), _key(setting.value(specs[index]))), []).append(index)
        if len(split) > len(groups):
            chosen.append(setting)
            groups = dict(enumerate(split.values()))
    return chosen


def run_labels(specs: list[RunSpec], folders: list[str] | None = None) -> list[str]:
    """One distinct label per run: the model (as its provider names it: "human: ana") plus the
    settings that differ ("expert/patchknn · jpeg:3"), each only where it applies to the run's task; settings that never change answers,
    then the run id, then the position, only where still needed."""
    differ = differing(specs)
    shown = [s for s in differ if s.in_label and s.name != "model"]
    if len(shown) > LABEL_SETTINGS_AT_MOST:
        shown = [s for s in _splitting(specs, [s for s in differ if s.in_label]) if s.name != "model"]
    labels = [" · ".join([model_label(spec.model)] + [s.text(spec) for s in shown if s.value(spec) is not None]) for spec in specs]
    for fallback in ([s for s in differ if not s.in_label], "run id", "position"):
        if len(set(labels)) == len(labels):
            break
        repeated = {label for label in labels if labels.count(label) > 1}
        for index, (label, spec) in enumerate(zip(labels, specs)):
            if label not in repeated:
                continue
            if fallback == "run id":
                extra = [spec.run_id]
            elif fallback == "position":
                extra = [f"#{index + 1}" + (f" ({folders[index]})" if folders else "")]
            else:
                extra = [s.text(spec) for s in fallback if s.value(spec) is not None]
            labels[index] = " · ".join([label, *extra])
    return labels


def difference_table(specs: list[RunSpec], labels: list[str]) -> dict:
    """The runs against the settings that differ among them, and what they all share."""
    differ = differing(specs)
    shared = [s for s in SETTINGS if s not in differ and s.value(specs[0]) not in (None, ())] if specs else []
    return {
        "columns": [s.name for s in differ],
        "rows": [{"label": label, "run_id": spec.run_id, "cells": [_text(s, spec) for s in differ]} for label, spec in zip(labels, specs)],
        "shared": [s.text(specs[0]) for s in shared],
    }


# Settings that change answers, minus the degradation: two runs equal in these answered the same
# questions the same way but for the images' degradation (the robustness baseline).
_NOT_ANSWER = {"headline", "suite", "degradation", "templates degraded"}


def clean_twin_key(spec: RunSpec) -> tuple:
    """What a degraded run and its undegraded baseline share: every answer-changing setting but the
    degradation itself."""
    return tuple(_key(s.value(spec)) for s in SETTINGS if s.name not in _NOT_ANSWER)
