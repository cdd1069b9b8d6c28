"""Reading an MMAD-format question file (mmad.json) into image records and questions.

Every path in the file is resolved inside the data root (the json's folder unless given). A bad
record is an error naming the record and what to do, or, with `skip_bad`, a counted skip that the
run summary reports; it is never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.errors import DataError
from harness.storage.files import file_sha256, read_json_file
from harness.storage.paths import resolve_in_data_root
from harness.schema import (
    MMAD_TYPE_TO_SUBTASK,
    OPTION_LETTERS,
    ImageRecord,
    Question,
    SkippedRecord,
    Subtask,
    TemplateKind,
)


@dataclass
class QuestionSet:
    root: Path
    source: Path
    digest: str
    images: dict[str, ImageRecord] = field(default_factory=dict)
    questions: list[Question] = field(default_factory=list)
    skipped: list[SkippedRecord] = field(default_factory=list)
    available: int | None = None  # questions before --limit took its subset (harness/data/subset.py)


def _refuse_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    """json.loads keeps the last of two equal keys without a word; a question file must not."""
    result: dict = {}
    for key, value in pairs:
        if key in result:
            raise DataError(f"key {key!r} appears twice (the later one would silently replace the first); keep one")
        result[key] = value
    return result


class _BadRecord(Exception):
    pass


def load_mmad(
    json_path: Path,
    *,
    root: Path | None = None,
    templates: TemplateKind = "random",
    shots: int = 1,
    skip_bad: bool = False,
    digest: str | None = None,
    masks: bool = True,
    cache: Path | None = None,
) -> QuestionSet:
    """Load and validate a question file; templates the run will use (the first `shots`) must exist.
    With `cache` (a folder), a file already read with the same settings is taken from there
    (harness/data/question_cache.py) instead of parsed and path-checked again."""
    if not json_path.is_file():
        raise DataError(f"{json_path}: question file not found")
    root = root or json_path.parent
    if cache is not None:
        from harness.data import question_cache

        digest = digest or file_sha256(json_path)
        key = question_cache.cache_key(digest, root, templates, shots, skip_bad, masks)
        entry = question_cache.read_entry(cache, key)
        if entry is not None:
            images, questions, skipped = entry
            return QuestionSet(root=root, source=json_path, digest=digest, images=images, questions=questions, skipped=skipped)
        question_set = load_mmad(json_path, root=root, templates=templates, shots=shots, skip_bad=skip_bad, digest=digest, masks=masks)
        question_cache.write_entry(cache, key, question_set.images, question_set.questions, question_set.skipped)
        return question_set
    try:
        raw = read_json_file(json_path, what="question file (MMAD's mmad.json format)", object_pairs_hook=_refuse_duplicate_keys)
    except DataError as error:
        message = str(error)
        raise DataError(message if message.startswith(str(json_path)) else f"{json_path}: {message}") from None
    if not isinstance(raw, dict) or not raw:
        found = "an empty object" if isinstance(raw, dict) else type(raw).__name__
        raise DataError(f"{json_path}: expected one JSON object keyed by image path (MMAD's format), found {found}")
    question_set = QuestionSet(root=root, source=json_path, digest=digest or file_sha256(json_path))  # a caller that hashed it already passes it
    for key, record in raw.items():
        try:
            image, questions = _parse_record(root, key, record, templates, shots, masks)
        except (_BadRecord, DataError) as problem:
            reason = str(problem)
            if not skip_bad:
                raise DataError(
                    f"{json_path}: record {key!r}: {reason}. Fix the record, or pass --skip-bad to skip it (counted in the summary)."
                ) from None
            question_set.skipped.append(SkippedRecord(record=key, reason=reason))
            continue
        if image.id in question_set.images:  # the same file under two spellings of its key
            raise DataError(f"{json_path}: record {key!r} names the same image as an earlier record ({image.id}); keep one")
        question_set.images[image.id] = image
        question_set.questions.extend(questions)
    if templates == "similar" and shots > 0:
        _retrieve_similar(question_set, json_path, shots, skip_bad)
    return question_set


def _retrieve_similar(question_set: QuestionSet, json_path: Path, shots: int, skip_bad: bool) -> None:
    """Records that list fewer similar templates than --shots get them retrieved: the category's
    normal images (every template any of its records lists) ranked by thumbnail similarity."""
    from harness.adsets.similarity import file_descriptor, most_similar

    short = [image for image in question_set.images.values() if len(image.similar_templates) < shots]
    pools: dict[tuple[str, str], list[str]] = {}
    for image in question_set.images.values():
        pool = pools.setdefault((image.dataset, image.category), [])
        pool.extend(p for p in image.random_templates + image.similar_templates if p not in pool)
    descriptors: dict[str, np.ndarray] = {}
    for image in short:
        pool = [p for p in pools[(image.dataset, image.category)] if (question_set.root / p).is_file()]
        if len(pool) < shots:
            reason = f"--shots {shots} --templates similar needs {shots} normal images of {image.dataset}/{image.category}; its records list {len(pool)}"
            if not skip_bad:
                raise DataError(f"{json_path}: record {image.id!r}: {reason}. Fix the record, or pass --skip-bad to skip it (counted in the summary).")
            question_set.skipped.append(SkippedRecord(record=image.id, reason=reason))
            del question_set.images[image.id]
            question_set.questions = [q for q in question_set.questions if q.image_id != image.id]
            continue
        for path in pool:
            if path not in descriptors:
                descriptors[path] = file_descriptor(question_set.root / path)
        ranked = most_similar(file_descriptor(question_set.root / image.image_path), np.stack([descriptors[p] for p in pool]), shots)
        question_set.images[image.id] = image.model_copy(update={"similar_templates": tuple(pool[i] for i in ranked)})


def _parse_record(root: Path, key: str, record: object, templates: TemplateKind, shots: int, masks: bool = True) -> tuple[ImageRecord, list[Question]]:
    if not isinstance(record, dict):
        raise _BadRecord(f"expected an object, found {type(record).__name__}")
    image_file = resolve_in_data_root(root, key, what="image path")
    if not image_file.is_file():
        raise _BadRecord(f"image file {image_file} does not exist")
    parts = key.replace("\\", "/").split("/")
    if len(parts) < 3:
        raise _BadRecord("the key must look like '<dataset>/<category>/.../<image>'")
    dataset, category = parts[0], parts[1]
    conversation = record.get("conversation")
    if not isinstance(conversation, list) or not conversation:
        raise _BadRecord("'conversation' must be a non-empty list of questions")
    questions = [_parse_question("/".join(parts), index, item) for index, item in enumerate(conversation)]
    mask_paths = _mask_paths(root, dataset, category, record.get("mask_path"), required=masks)
    template_lists = {}
    for kind in ("random", "similar"):
        listed = record.get(f"{kind}_templates") or []
        if not isinstance(listed, list) or not all(isinstance(p, str) for p in listed):
            raise _BadRecord(f"'{kind}_templates' must be a list of paths")
        for path in listed:
            resolved = resolve_in_data_root(root, path, what=f"{kind} template")
            if kind == templates and path in listed[:shots] and not resolved.is_file():
                raise _BadRecord(f"template {path!r} (used with --shots {shots} --templates {kind}) does not exist")
        template_lists[kind] = tuple(p.replace("\\", "/") for p in listed)
    if shots > len(template_lists[templates]) and templates == "random":
        raise _BadRecord(f"--shots {shots} needs {shots} random templates, the record lists {len(template_lists[templates])}")
    posix = "/".join(parts)  # a key written with backslashes (Windows) names the same file
    image = ImageRecord(
        id=posix,
        dataset=dataset,
        category=category,
        image_path=posix,
        mask_paths=mask_paths,
        label=_label(questions, mask_paths),
        defect_type=parts[-2],
        random_templates=template_lists["random"],
        similar_templates=template_lists["similar"],
    )
    return image, questions


def _parse_question(key: str, index: int, item: object) -> Question:
    where = f"question {index + 1}"
    if not isinstance(item, dict):
        raise _BadRecord(f"{where}: expected an object with Question, Options, Answer, type")
    text, options, answer, kind = item.get("Question"), item.get("Options"), item.get("Answer"), item.get("type")
    if not isinstance(text, str) or not text.strip():
        raise _BadRecord(f"{where}: 'Question' must be a non-empty string")
    if not isinstance(options, dict) or not 2 <= len(options) <= 5:
        raise _BadRecord(f"{where}: 'Options' must map 2 to 5 letters to texts")
    if any(letter not in OPTION_LETTERS or not isinstance(value, str) for letter, value in options.items()):
        raise _BadRecord(f"{where}: option letters must be among A–E with text values, found {sorted(options)}")
    if answer not in options:
        raise _BadRecord(f"{where}: answer {answer!r} is not among the options {', '.join(options)}")
    if kind not in MMAD_TYPE_TO_SUBTASK:
        raise _BadRecord(f"{where}: unknown question type {kind!r}; known: {', '.join(MMAD_TYPE_TO_SUBTASK)}")
    return Question(
        id=f"{key}#{index}",
        image_id=key,
        index=index,
        subtask=MMAD_TYPE_TO_SUBTASK[kind],
        mmad_type=kind,
        text=text,
        options=dict(options),
        answer=answer,
    )


def _mask_paths(root: Path, dataset: str, category: str, mask_path: object, *, required: bool = True) -> tuple[str, ...]:
    """Mask paths relative to the root; MMAD gives them relative to the category folder.

    A folder (MVTec LOCO keeps several masks per image) stands for every image inside it. A mask
    not on disk is refused only where the run reads masks (`required`): multiple-choice scoring
    never does, so a question file whose masks were not fetched still runs.
    """
    if not mask_path:
        return ()
    if not isinstance(mask_path, str):
        raise _BadRecord("'mask_path' must be a string path")
    relative = f"{dataset}/{category}/{mask_path}"
    resolved = resolve_in_data_root(root, relative, what="mask path")
    if not required and not resolved.exists():
        return ()
    if resolved.is_dir():
        masks = sorted(p for p in resolved.iterdir() if p.suffix.lower() in {".png", ".jpg", ".bmp", ".tif", ".tiff"})
        if not masks:
            raise _BadRecord(f"mask folder {resolved} holds no mask images")
        return tuple(f"{relative.rstrip('/')}/{p.name}" for p in masks)
    if not resolved.is_file():
        raise _BadRecord(f"mask {resolved} does not exist")
    return (relative,)


def _label(questions: list[Question], mask_paths: tuple[str, ...]) -> str:
    """The detection question's right answer says whether the image is anomalous; else the mask does."""
    for question in questions:
        if question.subtask is Subtask.ANOMALY_DETECTION:
            return "anomaly" if question.options[question.answer].strip().lower().startswith("yes") else "normal"
    return "anomaly" if mask_paths else "normal"
