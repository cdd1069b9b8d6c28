"""RobustMAD (`--task robustmad`, suites `robustmad` and `robustmad-low`): its multiple-choice
questions put as its scripts put them (harness/tasks/robustmad/robustmad.toml), parsed and scored as they
score them, its published rows beside a run on the same release.

`--data robustmad:PATH` names RobustMAD_MCQ.json (or RobustMAD_MCQ_low.json); its image paths are
relative to the file's folder unless `--data-root` names the folder holding MVTec-AD/ and VisA/.
"""

from __future__ import annotations

import fnmatch
import tomllib
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from harness.errors import ConfigError, DataError
from harness.models.base import ChatMessage, GenerateRequest, GenerateResponse, ImagePart
from harness.models.image_loading import DEFAULT_LOADING, LoadingName
from harness.schema import DecodingSpec, ImageSample, RunSpec, RunSummary
from harness.tasks.kinds import TaskKind
from harness.data.run_questions import check_digest
from harness.tasks.robustmad.data import RobustItem, image_order, read_robustmad, release_label
from harness.tasks.robustmad.scoring import INVALID, EMPTY, PARSERS, accuracy_csv, category_scores, difference_cells, interval, published_for


class RobustSample(ImageSample):
    """One line of samples.jsonl in a RobustMAD run: one question."""

    robustness_category: str
    difficulty: str
    pair: str
    question: str
    options: dict[str, str]
    answer: str
    parsed: str  # the script's answer: a letter, or its error string
    correct: bool


class Family(BaseModel):
    name: str
    description: str
    source: str
    models: list[str]
    template: str
    max_new_tokens: int = 10
    temperature: float = 0.0
    sampling: str = "explicit"
    max_tokens_field: str = "auto"
    image_prep: str = "cap"  # harness/models/images.py: qwen-native (with image_factor) or file for the scripts' own steps
    image_factor: int | None = None
    image_loading: LoadingName = DEFAULT_LOADING  # harness/models/image_loading.py: how the script opens the file
    detail: str | None = None  # "omit": no detail field, as the API scripts sent none
    processor_kwargs: dict = {}
    api_fields: dict[str, str | int | float | bool] = {}
    published: bool = True  # a protocol its published rows were measured under (not `default`)
    parser: str = "first-pattern"  # robustmad_scoring.PARSERS: the scripts' parse_model_response, or Gemini's post-hoc re-parse
    differences: list[str] = []

    def image(self, path: str, role: str) -> ImagePart:
        """An image as this family's script hands it to the model."""
        return ImagePart(path=path, role=role, prep=self.image_prep, loading=self.image_loading, factor=self.image_factor, detail=self.detail)  # type: ignore[arg-type]

    @property
    def decoding(self) -> DecodingSpec:
        return DecodingSpec(max_new_tokens=self.max_new_tokens, temperature=self.temperature, sampling=self.sampling, max_tokens_field=self.max_tokens_field)  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def protocol_data() -> dict:
    """harness/tasks/robustmad/robustmad.toml as read: the shared instruction, the families, the open-answer and judge sections."""
    return tomllib.loads(resources.files("harness.tasks.robustmad").joinpath("robustmad.toml").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def _protocols() -> tuple[str, dict[str, Family]]:
    data = protocol_data()
    return data["instruction"], {name: Family(name=name, **entry) for name, entry in data["families"].items()}


def family_for(model: str) -> Family:
    """The family whose script ran this model (by the model id's patterns), else `default`."""
    families = _protocols()[1]
    model_id = model.partition("/")[2].lower() or model.lower()
    return next((f for f in families.values() if any(fnmatch.fnmatch(model_id, p) for p in f.models)), families["default"])


class RobustmadTask:
    sample_type = RobustSample

    def __init__(self, items: list[RobustItem], root: Path, family: Family, seed: int, low: dict[str, str] | None = None, low_folder: Path | None = None,
                 instruction: str | None = None) -> None:
        self.items, self.root, self.family, self.seed = items, root, family, seed
        self.instruction = instruction or _protocols()[0]  # open answers have their own
        self.low, self.low_folder = low or {}, low_folder  # --perturb robustmad-low: each image's degradation, and where copies go

    def _path(self, relative: str, kind: str | None) -> str:
        """The image as shown: the file, or its degraded copy (the query's degradation for its reference too)."""
        if kind is None:
            return str(self.root / relative)
        from harness.tasks.robustmad.loq import degraded_file

        return str(degraded_file(self.root / relative, kind, self.low_folder / Path(relative).parent / kind))

    @property
    def ids(self) -> list[str]:
        return [item.id for item in self.items]

    def shown(self, item: RobustItem) -> tuple[str, str | None]:
        """(query, reference) as the model is shown them: the files, or their degraded copies."""
        kind = self.low.get(item.image_path)
        return self._path(item.image_path, kind), (self._path(item.reference_path, kind) if item.reference_path else None)

    def build_request(self, ordinal: int) -> GenerateRequest:
        from harness.asking.prompting import render_parts

        item = self.items[ordinal]
        query, reference = self.shown(item)
        images = {"query": self.family.image(query, "query")}
        if reference:
            images["reference"] = self.family.image(reference, "template")
        parts = render_parts(self.family.template, images, exact=True, instruction=self.instruction, question=item.question, options=item.options,
                             reference=bool(item.reference_path))
        return GenerateRequest(messages=[ChatMessage(role="user", content=parts)], decoding=self.family.decoding, option_letters=list(item.options),
                               processor_kwargs=self.family.processor_kwargs, api_fields=self.family.api_fields,
                               options=item.options, sample_id=item.id, sample_seed=self.seed, reference_answer=item.answer)

    def score(self, ordinal: int, model: str, digest: str, response: GenerateResponse) -> RobustSample:
        item = self.items[ordinal]
        parsed = PARSERS[self.family.parser](response.text) if response.error is None else "Error: Model call failed"
        status = "error" if response.error is not None else ("unparsable" if parsed in (EMPTY, INVALID) else "ok")
        return RobustSample(
            question_id=item.id, ordinal=ordinal, dataset=item.dataset, category=item.category, label=item.label, model=model, request_digest=digest,
            reply=response.text or "", parse_status=status, error=response.error, latency_s=response.latency_s, usage=response.usage,
            attempts=response.attempts, cached=response.cached, robustness_category=item.short_category, difficulty=item.difficulty, pair=item.pair,
            question=item.question, options=item.options, answer=item.answer, parsed=parsed, correct=parsed == item.answer,
        )


LOW = "robustmad-low"
# `--data robustmad` and `robustmad-low` (the suites' data): the release's files in $IADBENCH_ROBUSTMAD.
RELEASE_FILES = {"robustmad": "RobustMAD_MCQ.json", "robustmad-low": "RobustMAD_MCQ_low.json",
                 "robustmad-open": "RobustMAD_OE.json", "robustmad-open-low": "RobustMAD_OE_low.json"}


def _source(spec: RunSpec) -> tuple[Path, Path]:
    """(the question file, the root its image paths are relative to)."""
    import os

    kind, _, location = spec.data.partition(":")
    if spec.data in RELEASE_FILES:
        folder = os.environ.get("IADBENCH_ROBUSTMAD")
        if not folder:
            raise ConfigError(f"--data {spec.data}: set IADBENCH_ROBUSTMAD to the RobustMAD folder (holding {RELEASE_FILES[spec.data]}, MVTec-AD/ and VisA/), or pass --data robustmad:PATH")
        location, kind = str(Path(folder) / RELEASE_FILES[spec.data]), "robustmad"
    if kind != "robustmad" or not location:
        raise ConfigError(f"--data {spec.data!r}: a RobustMAD run reads robustmad:PATH (RobustMAD_MCQ.json, RobustMAD_MCQ_low.json, or for --task open RobustMAD_OE.json)")
    path = Path(location)
    return path, Path(spec.data_root) if spec.data_root else path.parent


def _limited(spec: RunSpec, items: list[RobustItem]) -> list[RobustItem]:
    """--limit over the file's robustness categories and object categories (harness/data/subset.py)."""
    from harness.data.subset import take_limit

    return take_limit(items, spec.limit, sampling=spec.limit_sampling, seed=spec.seed, stratum=lambda item: (item.dataset, item.category, item.short_category), key=lambda item: item.id)


class RobustmadKind(TaskKind):
    name = "robustmad"
    title = "RobustMAD"
    help = "RobustMAD's multiple-choice questions (5 options, 4 robustness categories), scored as its scripts score them"
    sample_type = RobustSample
    default_suite = "robustmad"
    fixed_protocol = "harmonised"  # MMAD's protocols do not apply; spec_fields names RobustMAD's family
    dry_runnable = True
    export_what, export_name = "answers scored in RobustMAD's accuracy CSV", "accuracy.csv"
    own_perturbations = (LOW,)  # its own degradation (harness/tasks/robustmad/loq.py), applied by its task
    data_forms = ("robustmad:",)
    settings = frozenset({"protocol"})
    method = ("RobustMAD: accuracy per robustness category (general object understanding, stand-alone and pair-wise anomaly understanding, "
              "unanswerable or misleading queries) and difficulty, the answer parsed as its scripts parse it; a failed answer is wrong.")

    def spec_fields(self, model: str, overrides: Any) -> dict:
        family = family_for(model)
        return {"protocol": f"robustmad-{family.name}", "protocol_differences": family.differences, "decoding": family.decoding}

    open_answers = False  # RobustMAD_OE*.json (the open kind, harness/tasks/robustmad/open.py)

    def prepare(self, spec: RunSpec) -> tuple[RunSpec, list[RobustItem]]:
        path, root = _source(spec)
        skipped: list | None = [] if spec.skip_bad else None
        items, digest = read_robustmad(path, root, open_answers=self.open_answers, skipped=skipped)
        if not items:  # exit 0 means at least one answer: why there is none, before any folder exists
            from harness.data.run_questions import nothing_left

            raise DataError(nothing_left(path, skipped or []))
        spec = spec.model_copy(update={"data": f"robustmad:{path.resolve()}", "data_digest": digest, "data_release": release_label(path, digest),
                                       "limit_of": len(items) if spec.limit is not None else None})
        if skipped:  # said now, and kept in spec.json's notes: which records the run leaves out
            import sys

            note = f"--skip-bad left out {len(skipped)} RobustMAD image records: " + "; ".join(f"{s.record} ({s.reason})" for s in skipped[:5]) + (" …" if len(skipped) > 5 else "")
            print(f"iadbench: note: {note}", file=sys.stderr)
            spec = spec.model_copy(update={"notes": spec.notes + [note]})
        return spec, _limited(spec, items)

    def load(self, spec: RunSpec) -> list[RobustItem]:
        path, root = _source(spec)
        items, digest = read_robustmad(path, root, open_answers=self.open_answers, skipped=[] if spec.skip_bad else None)
        check_digest(spec, digest, str(path))
        return _limited(spec, items)

    def build(self, spec: RunSpec, folder, data: Any) -> tuple[RobustmadTask, list[RobustItem]]:
        items = data or self.load(spec)
        path, root = _source(spec)
        low, low_folder = {}, None
        if LOW in spec.perturb:
            from harness.storage.sources import cache_dir
            from harness.tasks.robustmad.loq import assignment

            # every image of the file, as the script numbers them
            order = image_order(path)
            low = dict(zip(order, assignment(len(order))))
            low_folder = cache_dir() / "robustmad-low" / (spec.data_digest or "data")[:16]
        return self.task(items, root, spec, low, low_folder), items

    def task(self, items: list[RobustItem], root: Path, spec: RunSpec, low: dict[str, str], low_folder: Path | None) -> RobustmadTask:
        return RobustmadTask(items, root, family_for(spec.model), spec.seed, low, low_folder)

    def rescored(self, spec, folder, samples, data) -> list:
        from harness.tasks.rescore import from_replies

        return from_replies(self.task(data, Path("."), spec, {}, None), samples, folder.samples_path)

    def summarise(self, spec, samples, data, folder, wall_time_s, stopped_reason) -> RunSummary:
        from harness.run.accounting import run_summary

        samples = self.rescored(spec, folder, samples, data)  # never a stored verdict
        scores = category_scores(samples)
        answered = sum(row["questions"] for row in scores.values())
        metrics = {"categories": scores, "overall": sum(row["correct"] for row in scores.values()) / answered if answered else None,
                   "release": spec.data_release,
                   # its published row only under the protocol that row was measured with
                   "published": published_for(spec.model, spec.data_release) if family_for(spec.model).published else None}
        return run_summary(spec, samples, len(data), wall_time_s, stopped_reason, protocol=spec.protocol, metrics=metrics)

    def table(self, summary, spec) -> str:
        from harness.tasks.robustmad.tables import robustmad_table

        return robustmad_table(summary, spec)

    def report_sections(self, runs: list, keys: dict[str, str]) -> dict[str, list]:
        """Per run: accuracy % per category (all, general, domain), the model's published row on the
        same release beside it, and yours − published with its interval."""
        sections = []
        for run in runs:
            metrics = run.summary.metrics
            rows = [{"name": category, "published": False, "cells": [_percent(row.get("accuracy")), *(_percent(row["by_difficulty"].get(d, {}).get("accuracy")) for d in ("general", "domain"))]}
                    for category, row in metrics.get("categories", {}).items()]
            published = metrics.get("published") or {}
            rows += [{"name": category, "published": True, "cells": [_percent(cells.get(c)) for c in ("all", "general", "domain")]} for category, cells in published.items()]
            notes = [f"{category}: yours − published {100 * d:+.1f} points (95% interval {100 * low:+.1f} to {100 * high:+.1f})" for category, (d, low, high) in difference_cells(run.summary).items()]
            notes.append(f"release {metrics['release']}" if metrics.get("release") else "not a published release: no published row beside it")
            sections.append({"title": "RobustMAD", "label": run.label, "first_column": "category", "columns": ["all", "general", "domain"], "rows": rows if metrics.get("categories") else [], "notes": notes})
        return {"tables": sections}

    def export(self, folder, out: Path) -> int:
        from harness.storage.files import write_text_atomically

        spec = folder.spec()
        samples = sorted(self.rescored(spec, folder, folder.read_samples(sample_type=RobustSample), self.load(spec)), key=lambda s: s.ordinal)
        write_text_atomically(out, accuracy_csv(samples))
        return len(samples)


def _percent(value: float | None) -> float | None:
    return None if value is None else 100 * value
