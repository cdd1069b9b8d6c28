"""Question sets as Hugging Face `datasets`: write a set for sharing, read a shared one back.

Layout (a `DatasetDict`, written with `save_to_disk` and as parquet shards under `parquet/`):
- split `questions`: one row per query image, every field of its MMAD record: `image_path` (the
  mmad.json key), `image` (an `Image` feature holding the file's own bytes), `mask_path`,
  `masks` (the mask files' paths and bytes: one, or several for a MVTec LOCO mask folder),
  `similar_templates`, `random_templates`, and `conversation`: a list of questions with `question`,
  `options` (a list: the texts of options A, B, C, … in order), `answer`, `type`, and `extra_json`
  (any other fields, so nothing is lost);
- split `templates`: every template image referenced, as `path` and `image`.
`domain_knowledge.json` travels beside them. Reading a set back writes the files at their original
relative paths (refusing any path that leaves the folder) and an mmad.json equal to the original.

Share it with `DatasetDict.load_from_disk(PATH).push_to_hub("you/your-set")` (not run by iadbench).
"""

from __future__ import annotations

import hashlib
import os
import json
from pathlib import Path, PurePosixPath

from harness.errors import ConfigError, DataError
from harness.data.mmad import load_mmad
from harness.storage.files import read_json_file, write_json_atomically
from harness.storage.paths import resolve_in_data_root, resolve_inside

KNOWN_QUESTION_FIELDS = ("Question", "Options", "Answer", "type")
KNOWN_RECORD_FIELDS = ("conversation", "mask_path", "similar_templates", "random_templates")
KNOWLEDGE = "domain_knowledge.json"


def _datasets():
    try:
        import datasets
    except ImportError:
        raise ConfigError("Hugging Face datasets support needs the datasets library: pip install -e '.[datasets]'") from None
    datasets.disable_progress_bars()  # iadbench prints its own summary line
    return datasets


def _features(datasets):
    Image, Sequence, Value = datasets.Image, datasets.Sequence, datasets.Value
    question = {"question": Value("string"), "options": Sequence(Value("string")), "answer": Value("string"), "type": Value("string"), "extra_json": Value("string")}
    return datasets.Features({
        "image_path": Value("string"),
        "image": Image(decode=False),
        "mask_path": Value("string"),
        "masks": [{"path": Value("string"), "image": Image(decode=False)}],
        "similar_templates": Sequence(Value("string")),
        "random_templates": Sequence(Value("string")),
        "conversation": [question],
        "extra_json": Value("string"),
    })


def _extra_json(entry: dict, known: tuple[str, ...]) -> str:
    """The fields a schema column does not hold, as JSON ("" when none): kept so nothing is lost."""
    extra = {k: v for k, v in entry.items() if k not in known}
    return json.dumps(extra, sort_keys=True) if extra else ""


def _extra_fields(text: str) -> dict:
    return json.loads(text) if text else {}


def _option_list(options: dict, where: str) -> list[str]:
    letters = [chr(ord("A") + i) for i in range(len(options))]
    if list(options) != letters:
        raise DataError(f"{where}: options must be lettered A, B, C, … in order to be stored as a list (got {', '.join(options)})")
    return list(options.values())


def _mask_files(root: Path, key: str, mask_path: str) -> list[tuple[str, Path]]:
    """The mask file(s) of a record as (path relative to the root, file): mask_path is relative to
    the category folder; a folder (LOCO) means all its images. The relative path is built from the
    record's words, not from the resolved file, which may sit behind the user's link to a dataset."""
    if not mask_path:
        return []
    dataset, category = key.split("/")[:2]
    relative = PurePosixPath(f"{dataset}/{category}/{mask_path}".replace("\\", "/")).as_posix()
    path = resolve_in_data_root(root, relative, what=f"{key}: mask_path")
    if path.is_dir():
        return [(f"{relative}/{p.name}", p) for p in sorted(path.iterdir()) if p.is_file()]
    return [(relative, path)] if path.is_file() else []


def write_hf_dataset(mmad_json: Path, out: Path, *, data_root: Path | None = None, parquet_shard_rows: int = 500) -> int:
    """Write the question set at `mmad_json` as a DatasetDict under `out` (save_to_disk) and as
    parquet shards under `out/parquet/`; returns the number of image records."""
    datasets = _datasets()
    root = data_root or mmad_json.parent
    # every record checked first, a bad one named with what to do, as `eval` reads the same file
    load_mmad(mmad_json, root=root, shots=0)
    mmad = read_json_file(mmad_json, what="question file (MMAD's mmad.json format)")

    def read(relative: str, what: str) -> dict:
        return {"bytes": resolve_in_data_root(root, relative, what=what).read_bytes(), "path": relative}

    rows, templates = [], {}
    for key, record in mmad.items():
        conversation = []
        for number, question in enumerate(record["conversation"]):
            conversation.append({
                "question": question["Question"],
                "options": _option_list(question["Options"], f"{mmad_json} {key} question {number}"),
                "answer": question["Answer"],
                "type": question["type"],
                "extra_json": _extra_json(question, KNOWN_QUESTION_FIELDS),
            })
        masks = [{"path": relative, "image": {"bytes": p.read_bytes(), "path": p.name}} for relative, p in _mask_files(root, key, record.get("mask_path") or "")]
        for template in (record.get("similar_templates") or []) + (record.get("random_templates") or []):
            if template not in templates:
                templates[template] = read(template, f"{key}: template")
        rows.append({
            "image_path": key,
            "image": read(key, f"{mmad_json}: record key"),
            "mask_path": record.get("mask_path"),  # None: the record had no mask_path
            "masks": masks,
            "similar_templates": record.get("similar_templates"),
            "random_templates": record.get("random_templates"),
            "conversation": conversation,
            "extra_json": _extra_json(record, KNOWN_RECORD_FIELDS),
        })
    questions = datasets.Dataset.from_list(rows, features=_features(datasets))
    template_set = datasets.Dataset.from_list(
        [{"path": path, "image": image} for path, image in sorted(templates.items())],
        features=datasets.Features({"path": datasets.Value("string"), "image": datasets.Image(decode=False)}),
    )
    bundle = datasets.DatasetDict({"questions": questions, "templates": template_set})
    out.mkdir(parents=True, exist_ok=True)
    bundle.save_to_disk(str(out / "dataset"))
    for split, table in bundle.items():
        shards = max(1, -(-len(table) // parquet_shard_rows))
        for index in range(shards):
            path = out / "parquet" / f"{split}-{index:05d}-of-{shards:05d}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            table.shard(shards, index, contiguous=True).to_parquet(str(path))
    _copy_knowledge(mmad_json.parent, out)
    return len(rows)


def _copy_knowledge(source: Path, out: Path) -> None:
    """domain_knowledge.json travels with the set, read and written by the dataset rule: a link
    leading out of either folder is refused (convert must never copy or overwrite an outside file)."""
    if not os.path.lexists(source / KNOWLEDGE):
        return
    knowledge = resolve_inside(source, KNOWLEDGE, what=f"{source / KNOWLEDGE} (the set's domain knowledge)")
    if knowledge.is_file():
        target = resolve_inside(out, KNOWLEDGE, what=f"{out / KNOWLEDGE}")
        target.write_bytes(knowledge.read_bytes())


def _load(path: Path):
    """The DatasetDict at `path`; a damaged or truncated file is named, not a traceback."""
    try:
        return _load_unchecked(path)
    except (ConfigError, DataError):
        raise
    except Exception as error:  # pyarrow and datasets raise many kinds for a cut or foreign file
        raise DataError(f"{path}: cannot read it as a Hugging Face dataset ({type(error).__name__}: {str(error)[:200]}); write it again with iadbench convert") from None


def _load_unchecked(path: Path):
    datasets = _datasets()
    if (path / "dataset").is_dir():
        return datasets.load_from_disk(str(path / "dataset"))
    if (path / "dataset_dict.json").is_file():
        return datasets.load_from_disk(str(path))
    if (path / "parquet").is_dir():
        splits = {}
        for split in ("questions", "templates"):  # one at a time: the two splits have different columns
            files = sorted(str(p) for p in (path / "parquet").glob(f"{split}-*.parquet"))
            if files:
                splits[split] = datasets.Dataset.from_parquet(files)
        return datasets.DatasetDict(splits)
    raise ConfigError(f"{path}: not a question set written by iadbench (expected dataset/ from save_to_disk or parquet/ shards)")


def read_hf_dataset(path: Path, out: Path) -> Path:
    """Write the set at `path` (save_to_disk folder or parquet shards) back as a folder with
    mmad.json and every image at its relative path; returns the mmad.json path."""
    bundle = _load(path)
    for split in ("questions", "templates"):
        if split not in bundle:
            raise DataError(f"{path}: split {split!r} missing; expected a set written by iadbench generate or convert")
    def write_file(relative: str, image: dict, what: str) -> None:
        target = resolve_inside(out, relative, what=what)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(image["bytes"])

    try:
        return _unpack(path, bundle, out, write_file)
    except (KeyError, TypeError, ValueError) as error:  # a set not written by iadbench, or hand-edited
        raise DataError(f"{path}: a row does not have the fields iadbench writes ({type(error).__name__}: {error}); write it again with iadbench convert") from None


def _unpack(path: Path, bundle, out: Path, write_file) -> Path:
    mmad = {}
    for row in bundle["questions"]:
        key = row["image_path"]
        write_file(key, row["image"], f"{path}: image_path")
        for mask in row["masks"]:
            write_file(mask["path"], mask["image"], f"{path} {key}: mask")
        conversation = []
        for question in row["conversation"]:
            entry = {
                "Question": question["question"],
                "Options": {chr(ord("A") + i): text for i, text in enumerate(question["options"])},
                "Answer": question["answer"],
                "type": question["type"],
            }
            entry.update(_extra_fields(question["extra_json"]))
            conversation.append(entry)
        record = {"conversation": conversation}
        for field in ("mask_path", "similar_templates", "random_templates"):
            if row[field] is not None:
                record[field] = row[field]
        record.update(_extra_fields(row["extra_json"]))
        mmad[key] = record
    for row in bundle["templates"]:
        write_file(row["path"], row["image"], f"{path}: template path")
    _copy_knowledge(path, out)
    write_json_atomically(out / "mmad.json", mmad)
    return out / "mmad.json"


def materialised(path: Path, cache: Path) -> Path:
    """`--data hf:PATH`: the set unpacked once into the cache (keyed by its files' digest)."""
    if not path.exists():
        raise ConfigError(f"--data hf:{path}: not found")
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        digest.update(f"{file.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    target = cache / "hf-sets" / digest.hexdigest()[:16]
    if not (target / "mmad.json").is_file():
        import shutil
        import tempfile

        target.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=target.parent))
        try:
            read_hf_dataset(path, building)
            shutil.rmtree(target, ignore_errors=True)
            building.rename(target)
        finally:
            shutil.rmtree(building, ignore_errors=True)  # a failed or killed unpacking leaves nothing
    return target / "mmad.json"
