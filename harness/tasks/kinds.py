"""Task kinds as plugins: what a kind of run (multiple choice, GPT-4V-AD regions, defect boxes, or
one a user adds) does at each step, behind one interface, and the registry that names them.

Orchestration (evaluate, score, export, tables, report, the CLI) asks the run's kind and never
compares task names: adding a kind is one module that subclasses TaskKind and one
`register_task_kind` call in harness/tasks/registry.py (tests/test_task_plugins.py adds one in the
test itself). This module is the interface only: the kinds import it, the registry imports them.

A kind, step by step:
- `spec_fields`: the RunSpec fields it sets from the flags (bbox: the box format);
- `prepare`: its data read and checked before the run folder exists (a bad flag leaves no folder);
- `build`: the runner's task (harness.run.runner.Task) and what its summary needs;
- `summarise`: the RunSummary of its samples; `load` gives `summarise` its data again for `score`;
- `table`: the terminal's results table;
- `report_notes`, `report_info`, `gallery`: its part of `iadbench report`;
- `export`: MMAD's answers file, for the kinds that have answers in that shape.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from harness.errors import IadbenchError
from harness.schema import SampleResult

if TYPE_CHECKING:
    from harness.run.runlog import RunFolder
    from harness.schema import RunSpec, RunSummary


class TaskKind:
    name: ClassVar[str] = ""
    title: ClassVar[str] = ""  # in reports and messages: "multiple choice"
    help: ClassVar[str] = ""  # one line for `--task`
    sample_type: ClassVar[type] = SampleResult  # one line of samples.jsonl
    default_suite: ClassVar[str] = "synthetic-quick"
    # answers to MMAD-style questions: accuracy per subtask, a headline score, published rows beside
    # it, paired tests between runs, heatmaps, degradation curves, MMAD's answers file
    answers_questions: ClassVar[bool] = False
    dry_runnable: ClassVar[bool] = False  # `eval --dry-run` can build its requests (nothing sent, no run folder)
    reply_tokens_guess: ClassVar[int] = 5  # a dry run's guess at a reply's length (a letter)
    second_pass_files: ClassVar[dict[str, type]] = {}  # what second_pass writes (file → sample type): --retry-errors retries it too
    export_what: ClassVar[str] = "answers in MMAD's format"  # what `export` writes, and its default file in the run folder
    export_name: ClassVar[str] = "mmad_answers.json"
    perturbable: ClassVar[bool] = False  # --perturb degrades the images it shows
    own_perturbations: ClassVar[tuple[str, ...]] = ()  # --perturb values it applies itself (a benchmark's own degradation)
    folder_tag: ClassVar[str | None] = None  # in a new run folder's name (default: the kind's name; "" for none)
    data_forms: ClassVar[tuple[str, ...]] = ()  # --data prefixes only this kind reads ("robustmad:"): named when given to another kind
    fixed_protocol: ClassVar[str | None] = None  # asked one way whatever the suite's protocol
    # RunSpec fields that describe a run of this kind (a report names runs by those that differ)
    settings: ClassVar[frozenset[str]] = frozenset()
    method: ClassVar[str] = ""  # how the report says its figures were made
    section_names: ClassVar[tuple[str, ...]] = ()  # the report sections `report_sections` fills

    def spec_fields(self, model: str, overrides: Any) -> dict:
        return {}

    def prepare(self, spec: RunSpec) -> tuple[RunSpec, Any]:
        """The spec with its data's digest, and the data, checked before the run folder exists."""
        raise NotImplementedError

    def load(self, spec: RunSpec) -> Any:
        """What `summarise` needs (the second value `build` returns), read again for `score`."""
        return self.prepare(spec)[1]

    def build(self, spec: RunSpec, folder: RunFolder, data: Any) -> tuple[Any, Any]:
        """(the runner's task, what `summarise` needs)."""
        raise NotImplementedError

    def summarise(self, spec: RunSpec, samples: list, data: Any, folder: RunFolder, wall_time_s: float | None, stopped_reason: str | None) -> RunSummary:
        raise NotImplementedError

    def rescored(self, spec: RunSpec, folder: RunFolder, samples: list, data: Any) -> list:
        """What every summary and export counts: the samples scored again from their raw replies
        where scoring is a pure function of the reply, and only lines for questions of the set
        (harness/tasks/rescore.py); never a stored verdict."""
        return samples

    def table(self, summary: RunSummary, spec: RunSpec) -> str:
        raise NotImplementedError

    def report_notes(self, run: Any) -> list[str]:
        return []

    def report_info(self, run: Any) -> dict:
        return {}

    def report_sections(self, runs: list, keys: dict[str, str]) -> dict[str, list]:
        """Its sections of a report, over its runs (each named by its key)."""
        return {}

    def report_charts(self, runs: list) -> dict[str, str]:
        return {}

    def gallery(self, run: Any, limit: int, skip_declined: bool = False) -> dict | None:
        """Up to `limit` examples of what the run got wrong, for the report (none: an empty list of
        items); `skip_declined` leaves out the questions the model declined."""
        return None

    def ready(self, spec: RunSpec) -> None:
        """Refuse a run that cannot finish (a second pass's model without its key) before its folder exists."""

    def dry_run_note(self, spec: RunSpec) -> str | None:
        """What a dry run's estimate leaves out (a second pass's calls), said after it."""
        return None

    def second_pass(self, spec: RunSpec, folder: RunFolder, samples: list, data: Any) -> tuple[Any, Any, RunFolder] | None:
        """(a runner task, its model, the folder view its samples go to) for a pass over the first
        pass's samples (a judge scoring open answers), or None. It runs like the first: cached,
        resumable, priced."""
        return None

    def export(self, folder: RunFolder, out: Path) -> int:
        raise IadbenchError(f"{folder.path}: MMAD's answers format holds multiple-choice answers; this is a {self.title} run")
