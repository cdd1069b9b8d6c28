"""Multiple choice's part of a report: the failure gallery of wrong answers with their images."""

from __future__ import annotations

import json

from harness.report.galleries import gallery_samples, stratified
from harness.report.media import data_path, thumbnail as _thumbnail
from harness.report.rundata import RunData
from harness.run.runlog import SAMPLES


MCQ_GALLERY_KEYS = ("question_id", "image_id", "subtask", "category", "question", "options", "answer", "reply", "parsed", "parse_status", "parse_reason", "correct")


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
    for sample in gallery_samples(run, MCQ_GALLERY_KEYS):
        if sample["question_id"] in wrong_ids:
            wrong_ids.discard(sample["question_id"])
            if skip_declined and sample["parse_status"] == "declined":
                declined += 1
                continue
            wrong.append(sample)
    chosen = stratified(wrong, limit)
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
