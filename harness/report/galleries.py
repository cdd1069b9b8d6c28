"""Failure galleries: the questions (or images) a run got wrong, with their images, for a person to look at."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
from PIL import Image

from harness.report.media import THUMBNAIL, data_path, run_file, run_file_thumbnail, thumbnail as _thumbnail
from harness.report.runs import RunData
from harness.run.runlog import SAMPLES
from harness.storage.runfiles import open_inside


def _round_robin(candidates: list[dict], key) -> list[dict]:
    """The candidates reordered so that consecutive items come from different groups."""
    groups: dict[str, list[dict]] = {}
    for item in candidates:
        groups.setdefault(key(item), []).append(item)
    ordered, queues = [], [list(v) for _, v in sorted(groups.items())]
    while any(queues):
        for queue in queues:
            if queue:
                ordered.append(queue.pop(0))
    return ordered


def _stratified(candidates: list[dict], limit: int) -> list[dict]:
    """A small gallery that still shows every subtask, and within each, every category."""
    by_subtask: dict[str, list[dict]] = {}
    for item in candidates:
        by_subtask.setdefault(item["subtask"], []).append(item)
    spread = {subtask: _round_robin(items, lambda s: s["category"]) for subtask, items in by_subtask.items()}
    return _round_robin([item for items in spread.values() for item in items], lambda s: s["subtask"])[:limit]


MCQ_GALLERY_KEYS = ("question_id", "image_id", "subtask", "category", "question", "options", "answer", "reply", "parsed", "parse_status", "parse_reason", "correct")


def _samples(run: RunData, keys: tuple[str, ...]) -> list[dict]:
    """The run's samples that hold what a gallery shows. A damaged line was named already by the
    report's reader of the same file (report/runs.py) and is left out here too, not a crash."""
    samples = []
    with open_inside(run.path, SAMPLES, "rb") as handle:
        for line in handle:
            try:
                sample = json.loads(line)
            except ValueError:
                continue
            if isinstance(sample, dict) and all(k in sample for k in keys) and isinstance(sample.get("image_id", ""), str):
                samples.append(sample)
    return samples


def mcq_gallery(run: RunData, limit: int, skip_declined: bool = False) -> dict:
    """Wrong answers of a run, sampled across subtasks and categories, with images from its data;
    with `skip_declined`, not the questions the model declined (an expert declines whole subtasks)."""
    from harness.storage.sources import resolve_data

    from harness.errors import ConfigError
    from harness.storage.files import file_sha256

    data = resolve_data(run.spec.data, run.spec.data_root)
    if run.spec.data_digest and data.json_path.is_file() and file_sha256(data.json_path) != run.spec.data_digest:
        raise ConfigError(f"{data.json_path} is not the question file run {run.path} used (sha256 differs from its spec.json); point --data/IADBENCH_MMAD at that file")
    records = json.loads(data.json_path.read_text(encoding="utf-8"))
    wrong_ids = set(run.ids[~run.correct].tolist())  # the run's own reading: checked lines, questions of its set
    wrong, declined = [], 0
    for sample in _samples(run, MCQ_GALLERY_KEYS):
        if sample["question_id"] in wrong_ids:
            wrong_ids.discard(sample["question_id"])
            if skip_declined and sample["parse_status"] == "declined":
                declined += 1
                continue
            wrong.append(sample)
    chosen = _stratified(wrong, limit)
    items = []
    for sample in chosen:
        # Images come from the question set's own record of the question, never from a path the
        # sample line carries (an edited line could name any file on the disk).
        image_id = sample["question_id"].split("#", 1)[0]
        record = records.get(image_id) if isinstance(records, dict) else None
        record = record if isinstance(record, dict) else {}
        query = data_path(data.root, image_id, what=f"{run.path / SAMPLES}: question {sample['question_id']!r}") if record else None
        mask = record.get("mask_path")
        masks = [p for p in [data_path(data.root, "/".join(image_id.split("/")[:2] + [mask]), what=f"{data.json_path}: {image_id!r} mask_path")] if p] if isinstance(mask, str) and mask else []
        templates = (record.get(f"{run.spec.templates}_templates") or [])[: max(run.spec.shots, 1)]
        template = data_path(data.root, templates[0], what=f"{data.json_path}: {image_id!r} template") if templates else None
        items.append({
            **{k: sample.get(k) for k in ("question_id", "subtask", "category", "question", "options", "answer", "reply", "parsed", "parse_status", "parse_reason")},
            "query": _thumbnail(query, masks) if query else None,
            "template": _thumbnail(template) if template else None,
            "link": str(query) if query else None,
        })
    return {"run": run.label, "layout": "questions", "wrong": len(wrong), "declined_left_out": declined, "items": items}


def gpt4vad_gallery(run: RunData, limit: int, skip_declined: bool = False) -> dict:
    """The images a GPT-4V-AD run got most wrong: overlay, predicted map and the ground truth."""
    from harness.tasks.gpt4vad import load_region_items

    items_by_id = {item.id: item for item in load_region_items(run.spec.data, run.spec.seed)[0]}
    samples = _samples(run, ("question_id", "label", "image_score"))
    error = lambda s: abs((1.0 if s["label"] == "anomaly" else 0.0) - (s["image_score"] or 0.0))  # noqa: E731
    # a failure: a stated score on the wrong side of 0.5, or a reply that could not be read; an
    # image scored right is no failure, however close to its label it came
    failed = [s for s in samples if s["parse_status"] != "ok" or error(s) >= 0.5]
    shown = []
    for sample in sorted(failed, key=error, reverse=True)[:limit]:
        item = items_by_id.get(sample["question_id"])
        map_thumb = None
        map_file = run_file(run.path, sample.get("map_path"))
        if map_file is not None:
            with Image.open(map_file) as stored:
                scores = np.asarray(stored, dtype=np.float32) / 65535
            heat = Image.fromarray((np.stack([scores, np.zeros_like(scores), 1 - scores], -1) * 255).astype(np.uint8))
            heat.thumbnail((THUMBNAIL, THUMBNAIL))
            buffer = io.BytesIO()
            heat.save(buffer, format="PNG")
            map_thumb = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
        shown.append({
            **{k: sample[k] for k in ("question_id", "category", "label", "reply", "image_score", "parse_status", "parse_reason")},
            "overlay": run_file_thumbnail(run.path, sample.get("overlay_path")),
            "map": map_thumb,
            "truth": _thumbnail(item.image_path, list(item.mask_paths)) if item else None,
        })
    return {"run": run.label, "layout": "maps", "items": shown}
