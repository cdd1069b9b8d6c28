"""`iadbench audit SET`: every question of an MMAD-format set (MMAD's own, or one iadbench
generated) checked against its image's folder, mask and pixels (question_gen/audit/checks.py), with
a verdict and its evidence per question, counts per subtask and dataset, the set's answer-position
balance and blind shortcuts (question_gen/shortcuts.py), and an errata file of the flagged questions for `eval --errata`.
"""

from __future__ import annotations

import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

from harness.adsets.masks import load_mask_union
from harness.errors import DataError
from harness.storage.paths import resolve_in_data_root
from question_gen import knowledge as known
from question_gen.attributes import AREA_TEMPLATES, DefectAttributes, defect_attributes, estimate_object_area, foreground_mask
from question_gen.audit.checks import CHECKS, FLAGGED, SEVERITY, Finding, ImageFacts, Verdict, check_question
from question_gen.audit.independent import INDEPENDENT, region_evidence
from question_gen.audit.wording import wording
from question_gen.options import same_thing
from question_gen.quality import position_balance
from question_gen.shortcuts import shortcut_figures

if TYPE_CHECKING:
    from harness.models.base import Model

# A key's first path part → the dataset kind whose tables (taxonomy overrides, objects) apply.
KIND_OF_PREFIX = {"dsmvtec": "mvtec-ad", "mvtecad": "mvtec-ad", "mvtec": "mvtec-ad", "mvtecloco": "loco", "loco": "loco", "visa": "visa", "goodsad": "goodsad", "synthetic": "synthetic"}
# A key's first path part → the top-level key of MMAD's domain_knowledge.json.
KNOWLEDGE_KEY_OF_PREFIX = {"dsmvtec": "mvtec", "mvtecad": "mvtec"}
_MASK_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def _norm(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass
class AuditReport:
    set_path: str
    questions: list[dict] = field(default_factory=list)  # one row per question: id, subtask, verdict, findings
    notes: Counter = field(default_factory=Counter)  # why evidence was missing, counted
    biases: dict = field(default_factory=dict)  # the set's answer-position balance (question_gen/quality.py) and blind shortcuts (question_gen/shortcuts.py)

    def summary(self) -> dict:
        by_subtask: dict[str, Counter] = defaultdict(Counter)
        by_dataset: dict[str, Counter] = defaultdict(Counter)
        by_check: Counter = Counter()
        for row in self.questions:
            by_subtask[row["subtask"]][row["verdict"]] += 1
            by_dataset[row["id"].split("/", 1)[0]][row["verdict"]] += 1
            by_check.update(f"{f['check']}: {f['verdict']}" for f in row["findings"])
        total = Counter(row["verdict"] for row in self.questions)
        return {
            "questions": len(self.questions),
            "verdicts": _ordered(total),
            "flagged": sum(total[v] for v in FLAGGED),
            "by_subtask": {k: _ordered(v) for k, v in sorted(by_subtask.items())},
            "by_dataset": {k: _ordered(v) for k, v in sorted(by_dataset.items())},
            "by_check": dict(sorted(by_check.items())),
            "missing_evidence": dict(self.notes.most_common()),
            **self.biases,
        }

    def flagged(self, verdicts: tuple[Verdict, ...] = FLAGGED) -> list[dict]:
        return [row for row in self.questions if row["verdict"] in verdicts]


def _ordered(counts: Counter) -> dict[str, int]:
    return {verdict: counts[verdict] for verdict in sorted(SEVERITY, key=SEVERITY.__getitem__, reverse=True) if counts[verdict]}


def _kind(prefix: str, default: str | None) -> str | None:
    return KIND_OF_PREFIX.get(_norm(prefix), default)


def _object_names(kind: str | None, category: str) -> tuple[str, ...]:
    """Names that are right for the category's object: the tables' name, the folder made readable,
    and the folder without its number (VisA's pcb1 is a PCB)."""
    names = []
    builtin = known.builtin_object(kind, category) if kind else None
    if builtin:
        names.append(builtin[0])
    names += [known.readable(category), known.readable(re.sub(r"\d+$", "", category))]
    return tuple(dict.fromkeys(n for n in names if n))


def _knowledge_texts(data: dict | None, prefix: str, category: str) -> dict[str, str]:
    if not isinstance(data, dict):
        return {}
    wanted = {_norm(prefix), KNOWLEDGE_KEY_OF_PREFIX.get(_norm(prefix), _norm(prefix))}
    for key, categories in data.items():
        if _norm(key) in wanted and isinstance(categories, dict):
            for name, texts in categories.items():
                if _norm(name) == _norm(category) and isinstance(texts, dict):
                    return {folder: text for folder, text in texts.items() if isinstance(text, str)}
    return {}


def _mask(root: Path, prefix: str, category: str, record: dict, shape: tuple[int, int]) -> np.ndarray | None:
    """The record's mask (MMAD: relative to the category folder; a folder stands for its masks)."""
    mask_path = record.get("mask_path")
    if not mask_path or not isinstance(mask_path, str):
        return None
    path = resolve_in_data_root(root, f"{prefix}/{category}/{mask_path}", what="mask path")
    paths = sorted(p for p in path.iterdir() if p.suffix.lower() in _MASK_SUFFIXES) if path.is_dir() else [path]
    if not paths or not all(p.is_file() for p in paths):
        raise FileNotFoundError(path)
    return load_mask_union(paths, shape)


def _rgb(path: Path) -> np.ndarray:
    from harness.adsets.images import load_rgb_array

    return load_rgb_array(path)


def image_facts(root: Path, key: str, record: dict, *, kind: str | None, categories: dict[str, list[str]], knowledge: dict | None,
                measured: DefectAttributes | None = None, needs_pixels: bool = True, independent: bool = False) -> ImageFacts:
    """What the audit can know about one record: its folder and kind, its objects, its mask, (when
    a description is asked about) the generator's measured attributes, and (`independent`) the mask
    region measured by the audit's own means against the record's normal images."""
    parts = key.split("/")
    prefix, category, folder = parts[0], parts[1] if len(parts) > 2 else "", parts[-2] if len(parts) > 2 else ""
    kind = _kind(prefix, kind)
    info = known.defect_info(folder, kind or "", category) if folder and folder != "good" else None
    label = "normal" if folder == "good" else ("anomaly" if record.get("mask_path") or (info is not None and (info.kind or info.group)) else None)
    others = tuple(name for other in categories.get(prefix, []) if other != category for name in _object_names(kind, other)[:1])
    own = _object_names(kind, category)
    builtin = known.builtin_object(kind, category) if kind else None
    facts = ImageFacts(key, category, folder, label, info if info is not None and info.known else None, own,
                       tuple(o for o in others if not any(same_thing(o, name) for name in own)), knowledge=_knowledge_texts(knowledge, prefix, category),
                       facts=builtin[2] if builtin else (), wording=wording(category, folder))
    if label != "anomaly" or not needs_pixels:
        return facts
    wants_attributes = measured is None and any(isinstance(q, dict) and q.get("type") == "Defect Description" for q in record.get("conversation", []))
    try:
        image_path = resolve_in_data_root(root, key, what="image path")
    except DataError:
        facts.notes.append("image path outside the data root")
        return facts
    if not image_path.is_file():
        facts.notes.append("image not on disk")
        return facts
    try:
        rgb = _rgb(image_path) if wants_attributes or independent else None
        shape = rgb.shape[:2] if rgb is not None else _size(image_path)
    except (OSError, DataError, Image.DecompressionBombError):
        facts.notes.append("image not readable")
        return facts
    try:
        facts.mask = _mask(root, prefix, category, record, shape)
    except FileNotFoundError:
        facts.notes.append("mask not on disk")
        return facts
    except (OSError, DataError, Image.DecompressionBombError):
        facts.notes.append("mask not readable")
        return facts
    if facts.mask is None:
        facts.notes.append("no mask")
        return facts
    if rgb is None:
        facts.attributes = measured
        return facts
    templates = _templates(root, record, rgb.shape)
    facts.attributes = _measure(rgb, facts.mask, templates) if wants_attributes else measured
    if independent:
        facts.region = region_evidence(rgb, facts.mask, [t[0] for t in templates])
    return facts


def _size(path: Path) -> tuple[int, int]:
    """(height, width) from the image's header, without decoding it."""
    try:
        with Image.open(path) as image:
            return image.size[1], image.size[0]
    except UnidentifiedImageError as error:
        raise DataError(f"{path}: not an image ({error})") from None


@lru_cache(maxsize=32)
def _template(path: Path) -> tuple[np.ndarray, np.ndarray | None, float] | None:
    """A template's pixels, foreground and object extent, read once: records of a category share
    their templates (MMAD draws them from one pool of normal images)."""
    try:
        rgb = _rgb(path)
    except (OSError, DataError):
        return None
    return rgb, foreground_mask(rgb), estimate_object_area(rgb)


def _templates(root: Path, record: dict, shape: tuple[int, ...]) -> list[tuple[np.ndarray, np.ndarray | None, float]]:
    """The record's normal images (similar first) of the query's size, read once per category."""
    relatives = list(dict.fromkeys(t for t in (*record.get("similar_templates", []), *record.get("random_templates", [])) if isinstance(t, str)))
    templates = []
    for relative in relatives[:AREA_TEMPLATES]:
        try:
            loaded = _template(resolve_in_data_root(root, relative, what="template path"))
        except DataError:
            continue
        if loaded is not None and loaded[0].shape == shape:
            templates.append(loaded)
    return templates


def _measure(rgb: np.ndarray, mask: np.ndarray, templates: list[tuple[np.ndarray, np.ndarray | None, float]]) -> DefectAttributes | None:
    """The attributes the generator measures: the object's extent as the median over the record's
    templates, its foreground and the tone reference from the nearest (the first similar) one."""
    try:
        if not templates:
            return defect_attributes(mask, rgb, estimate_object_area(rgb))
        nearest, foreground, _ = templates[0]
        return defect_attributes(mask, rgb, float(np.median([area for _, _, area in templates])), nearest, foreground)
    except ValueError:  # a speck-only mask: nothing to measure
        return None


def audit_records(mmad: dict, root: Path, *, set_path: str, kind: str | None = None, knowledge: dict | None = None,
                  measured: dict[str, DefectAttributes] | None = None, progress: bool = False, independent: bool = False,
                  judge: Model | None = None) -> AuditReport:
    """Audit records already read. The generator audits its own before writing them with the checks
    that read its measures; `iadbench audit` adds the `independent` ones (question_gen/audit/
    independent.py), which the generator never sees, so they can disagree with it, and a `judge`
    model's reading of each question (question_gen/audit/judge.py)."""
    report = AuditReport(set_path)
    _template.cache_clear()  # files may have changed since an earlier audit in this process
    wellformed = {k: r for k, r in mmad.items() if all(isinstance(q, dict) and isinstance(q.get("Options"), dict) for q in r.get("conversation", []))}
    report.biases = {"answer_positions": position_balance(wellformed), "shortcuts": shortcut_figures(wellformed)}
    categories: dict[str, list[str]] = defaultdict(list)
    for key in mmad:
        parts = key.split("/")
        if len(parts) > 2 and parts[1] not in categories[parts[0]]:
            categories[parts[0]].append(parts[1])
    ticker = _Ticker(len(mmad)) if progress else None
    tables = (CHECKS, INDEPENDENT) if independent else (CHECKS,)
    for key, record in mmad.items():
        conversation = record.get("conversation", []) if isinstance(record, dict) else []
        facts = image_facts(root, key, record, kind=kind, categories=categories, knowledge=knowledge, measured=(measured or {}).get(key), independent=independent)
        report.notes.update(facts.notes)
        for index, question in enumerate(conversation):
            verdict, findings = check_question(question, facts, tables) if isinstance(question, dict) else ("likely wrong", [Finding("well formed", "likely wrong", "not a question object")])
            report.questions.append({"id": f"{key}#{index}", "subtask": str(question.get("type", "")) if isinstance(question, dict) else "", "verdict": verdict,
                                     "findings": [{"check": f.check, "verdict": f.verdict, "evidence": f.evidence} for f in findings]})
        if ticker:
            ticker.tick()
    if judge is not None:
        from question_gen.audit.judge import judge_questions

        report.notes.update(judge_questions(judge, root, mmad, report.questions))
    return report


def read_set(path: Path) -> dict:
    from harness.storage.files import read_json_file

    data = read_json_file(path, what="question file")
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise DataError(f"{path}: not an MMAD question file (an object of records keyed by image path)")
    for key, record in data.items():  # a question that is not an object is the audit's finding; a record without a list of them cannot be read
        if not isinstance(record.get("conversation", []), list):
            raise DataError(f"{path}: record {key!r}: 'conversation' is not a list of questions; fix the record")
    return data


def audit_set(path: Path, *, kind: str | None = None, knowledge_path: Path | None = None, progress: bool = False, data_root: Path | None = None,
              judge: Model | None = None) -> AuditReport:
    """Audit the set at `path` (mmad.json) with every check, the independent ones included; its
    images and masks are read relative to `data_root` (default: its folder), as `eval --data-root`
    reads them. The dataset kind comes from the keys (DS-MVTec, VisA, …), else `kind`, else
    generation_report.json."""
    from harness.storage.files import read_json_file

    mmad = read_set(path)
    beside = path.parent
    if kind is None and (beside / "generation_report.json").is_file():
        kind = read_json_file(beside / "generation_report.json", what="generation report").get("kind")
    knowledge_path = knowledge_path or (beside / "domain_knowledge.json" if (beside / "domain_knowledge.json").is_file() else None)
    knowledge = read_json_file(knowledge_path, what="knowledge file") if knowledge_path else None
    return audit_records(mmad, data_root or beside, set_path=str(path), kind=kind, knowledge=knowledge, progress=progress, independent=True, judge=judge)


class _Ticker:
    """Images done, rate and ETA on stderr every few seconds."""

    def __init__(self, total: int) -> None:
        import time

        self.total, self.done, self._time = total, 0, time.monotonic
        self._start = self._last = self._time()

    def tick(self) -> None:
        self.done += 1
        now = self._time()
        if now - self._last >= 2.0 or self.done == self.total:
            self._last = now
            rate = self.done / max(now - self._start, 1e-9)
            eta = (self.total - self.done) / rate if rate else 0.0
            print(f"[iadbench audit] {self.done}/{self.total} images  {rate:.0f} images/s  ETA {eta:.0f} s", file=sys.stderr, flush=True)


def errata_text(report: AuditReport, name: str, verdicts: tuple[Verdict, ...] = ("likely wrong",)) -> str:
    """A TOML errata file listing the flagged questions by id, each with its evidence: `eval --errata FILE`
    leaves them out of a run."""
    from harness.storage.files import toml_string

    rows = report.flagged(verdicts)
    lines = [f"name = {toml_string(name)}", f"description = {toml_string(f'{len(rows)} questions the audit found ' + ' or '.join(verdicts))}",
             f"source = {toml_string('iadbench audit ' + report.set_path)}", "records = []", "questions = ["]
    lines += [f"  {toml_string(row['id'])}," for row in rows]
    lines += ["]", "", "[reasons]"]
    lines += [f"{toml_string(row['id'])} = {toml_string('; '.join(f['check'] + ': ' + f['evidence'] for f in row['findings'] if f['verdict'] == row['verdict']))}" for row in rows]
    return "\n".join(lines) + "\n"
