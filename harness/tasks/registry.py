"""The task kinds by name: the built-in ones and those a user registers, imported when first used.

It sits above the kinds (they import kinds.py, the interface, never this module), so naming a kind
by its import path adds no import cycle.
"""

from __future__ import annotations

import importlib

from harness.errors import ConfigError
from harness.tasks.kinds import TaskKind


_FACTORIES: dict[str, str] = {}
_KINDS: dict[str, TaskKind] = {}
_HELP: dict[str, str] = {}


def register_task_kind(name: str, factory: str | TaskKind, help: str = "") -> None:
    """A kind by name: an instance, or "module:Class" imported when first used (start-up stays
    fast; `help` is what `--task` says of it meanwhile)."""
    if isinstance(factory, TaskKind):
        _KINDS[name] = factory
        _HELP[name] = help or factory.help
    else:
        _FACTORIES[name] = factory
        _KINDS.pop(name, None)
        _HELP[name] = help


def task_kind_names() -> list[str]:
    return sorted(set(_FACTORIES) | set(_KINDS))


def task_kind_help(name: str) -> str:
    return _HELP.get(name, "")


def kinds_owning(predicate) -> str:
    """The kinds for which `predicate(kind)` holds, as flags to suggest ("--task robustmad (--suite
    robustmad) or --task open (…)"), "" for none: which kinds a --data form or a --perturb value
    belongs to, for an error that names them. Imports every kind: error paths only."""
    names = [name for name in task_kind_names() if predicate(task_kind(name))]
    return " or ".join(f"--task {name} (--suite {task_kind(name).default_suite})" for name in sorted(names, key=lambda n: (len(n), n)))


def task_kind(name: str) -> TaskKind:
    if name not in _KINDS:
        if name not in _FACTORIES:
            raise ConfigError(f"unknown task {name!r}; known: {', '.join(task_kind_names())}")
        module, _, attribute = _FACTORIES[name].partition(":")
        _KINDS[name] = getattr(importlib.import_module(module), attribute)()
    return _KINDS[name]


register_task_kind("mcq", "harness.tasks.mcq.kind:McqKind", "multiple-choice questions (MMAD's format), accuracy per subtask")
register_task_kind("gpt4vad", "harness.tasks.gpt4vad.kind:Gpt4vadKind", "GPT-4V-AD region scoring with image/pixel metrics")
register_task_kind("bbox", "harness.tasks.bbox.kind:BoxKind", "bounding boxes of every defect (mIoU, ACC@IoU)")
register_task_kind("robustmad", "harness.tasks.robustmad.kind:RobustmadKind", "RobustMAD's multiple-choice questions, scored as its scripts score them")
register_task_kind("open", "harness.tasks.robustmad.open:OpenKind", "RobustMAD's open questions, each answer scored 1-5 by a judge model (--judge) with its published guidelines")
