"""RobustMAD's multiple-choice files (en-research/RobustMAD: RobustMAD_MCQ.json and its degraded
copy RobustMAD_MCQ_low.json), read into one item per question.

The file is `{"images": [...]}`; each image names its dataset, category, defect ("specie_name",
`good` for a normal image), difficulty (`general` or `domain`), a reference image of the same
category, and 11 questions in four robustness categories, each with five options A–E. Image paths
are relative to a root that holds the MVTec AD and VisA trees (the repository's own folder, where
its README puts them); every path is resolved inside that root. A pair-wise question shows the
reference image first, then the query, as every one of its scripts does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.data.releases import releases
from harness.errors import DataError
from harness.schema import SkippedRecord
from harness.storage.files import file_sha256, read_json_file
from harness.storage.paths import resolve_in_data_root

# Its scripts' short names for the categories (ROBUSTNESS_SHORTFORMS), the columns of its tables.
CATEGORIES = {
    "General Object Understanding": "general",
    "Anomaly Understanding and Localization (Stand-alone)": "standalone",
    "Anomaly Understanding and Localization (Pair-wise comparison)": "pairwise",
    "Unanswerable or Misleading Query Detection": "unanswerable",
}
PAIRWISE = "Anomaly Understanding and Localization (Pair-wise comparison)"
DIFFICULTIES = ("general", "domain")
# The released files by SHA-256 (harness/data/releases.toml): published rows are shown beside a run
# only on the same release.
RELEASES = {release.sha256: release.label for release in releases() if release.label and release.sha256}


def release_label(path: Path, digest: str) -> str | None:
    """The release a question file is (by SHA-256, else by git blob id), as its published rows name it."""
    if digest in RELEASES:
        return RELEASES[digest]
    from harness.data.releases import release_for
    from harness.storage.files import file_git_blob

    release = release_for(git_blob=file_git_blob(path))
    return release.label if release else None
_IMAGE_KEYS = ("dataset", "category", "image_path", "specie_name", "difficulty")
_QUESTION_KEYS = ("question_id", "robustness_category", "question", "options", "answer")


@dataclass(frozen=True)
class RobustItem:
    id: str  # "<image path>#<question id>"
    question_id: int
    dataset: str
    category: str  # the object category (bottle, candle)
    specie: str  # the defect folder, "good" for a normal image
    label: str  # "normal" or "anomaly"
    difficulty: str
    robustness_category: str  # as written in the file
    short_category: str  # general, standalone, pairwise, unanswerable
    image_path: str  # relative to the root
    reference_path: str | None  # relative to the root; pair-wise questions only
    question: str
    options: dict[str, str]
    answer: str

    @property
    def pair(self) -> str:
        """Its scripts' object-defect pair: the 2nd and 4th parts of the image path ("bottle-good")."""
        parts = self.image_path.split("/")
        return "-".join([parts[1], parts[3]]) if len(parts) > 3 else f"{self.category}-{self.specie}"


def read_robustmad(json_path: Path, root: Path | None = None, *, open_answers: bool = False,
                   skipped: list[SkippedRecord] | None = None) -> tuple[list[RobustItem], str]:
    """Every question of the file in its order, and the file's SHA-256. A record that is not what
    the release holds is an error naming it; paths must stay inside `root` and exist.
    `open_answers`: RobustMAD_OE*.json, whose questions have no options and a written answer.
    `skipped` (--skip-bad): an image record that is bad in any way is left out with its questions
    and listed there with the reason, instead of stopping."""
    root = root or json_path.parent
    data = read_json_file(json_path, what="RobustMAD question file")
    images = data.get("images") if isinstance(data, dict) else None
    if not isinstance(images, list) or not images:
        raise DataError(f"{json_path}: expected RobustMAD's format, an object with a non-empty 'images' list")
    items: list[RobustItem] = []
    seen: set[str] = set()
    for index, image in enumerate(images):
        where = f"{json_path}: images[{index}]"
        try:
            record = _image_items(root, image, where, open_answers)
            repeated = next((item.id for item in record if item.id in seen), None)
            if repeated is not None:
                raise DataError(f"{json_path}: question {repeated!r} appears twice; keep one")
        except DataError as error:
            if skipped is None:
                raise
            name = image.get("image_path") if isinstance(image, dict) and isinstance(image.get("image_path"), str) else f"images[{index}]"
            skipped.append(SkippedRecord(record=name, reason=str(error).removeprefix(f"{json_path}: ")))
            continue
        seen.update(item.id for item in record)
        items += record
    return items, file_sha256(json_path)


def _image_items(root: Path, image: object, where: str, open_answers: bool) -> list[RobustItem]:
    if not isinstance(image, dict) or any(not isinstance(image.get(k), str) for k in _IMAGE_KEYS) or not isinstance(image.get("questions"), list):
        raise DataError(f"{where}: needs the strings {', '.join(_IMAGE_KEYS)} and a 'questions' list")
    _exists(root, image["image_path"], f"{where} ({image['image_path']})")
    return [_item(root, image, question, f"{where}.questions[{number}]", open_answers) for number, question in enumerate(image["questions"])]


def image_order(json_path: Path) -> list[str]:
    """The file's image paths in its order (its scripts number the images so), good or bad."""
    data = read_json_file(json_path, what="RobustMAD question file")
    images = data.get("images") if isinstance(data, dict) else None
    paths = [image.get("image_path") for image in images if isinstance(image, dict)] if isinstance(images, list) else []
    return list(dict.fromkeys(p for p in paths if isinstance(p, str)))


def _item(root: Path, image: dict, question: object, where: str, open_answers: bool = False) -> RobustItem:
    keys = tuple(k for k in _QUESTION_KEYS if not (open_answers and k == "options"))
    if not isinstance(question, dict) or any(k not in question for k in keys):
        raise DataError(f"{where}: needs {', '.join(keys)}" + (" (an open question file: RobustMAD_OE*.json)" if open_answers else ""))
    problem = _field_types(question)
    if problem:
        raise DataError(f"{where}: {problem}")
    options = {} if open_answers else question["options"]
    if open_answers:
        if not isinstance(question["answer"], str) or not question["answer"].strip():
            raise DataError(f"{where}: an open question needs its written answer (a non-empty string)")
    elif not isinstance(options, dict) or not options or any(k not in "ABCDE" or not isinstance(v, str) for k, v in options.items()):
        raise DataError(f"{where}: options must map letters A-E to texts")
    elif question["answer"] not in options:
        raise DataError(f"{where}: answer {question['answer']!r} is not among the options {', '.join(options)}")
    category = question["robustness_category"]
    if category not in CATEGORIES:
        raise DataError(f"{where}: unknown robustness_category {category!r}; RobustMAD's are {', '.join(CATEGORIES)}")
    reference = None
    if category == PAIRWISE:
        reference = image.get("reference_image_path")
        if not isinstance(reference, str):
            raise DataError(f"{where}: a pair-wise question needs the image's reference_image_path")
        _exists(root, reference, f"{where} (reference {reference})")
    return RobustItem(
        id=f"{image['image_path']}#{question['question_id']}", question_id=int(question["question_id"]), dataset=image["dataset"], category=image["category"],
        specie=image["specie_name"], label="normal" if image["specie_name"] == "good" else "anomaly", difficulty=image["difficulty"],
        robustness_category=category, short_category=CATEGORIES[category], image_path=image["image_path"], reference_path=reference,
        question=str(question["question"]), options=dict(options), answer=question["answer"],
    )


def _field_types(question: dict) -> str | None:
    """What the release's types are not, in a question: ids are whole numbers, the rest text."""
    number = question["question_id"]
    if isinstance(number, bool) or not (isinstance(number, int) or (isinstance(number, str) and number.strip().isdigit())):
        return f"question_id {str(number)[:40]!r} is not a whole number"
    wrong = [key for key in ("robustness_category", "answer") if not isinstance(question[key], str)]
    return f"{', '.join(wrong)} must be text" if wrong else None


def _exists(root: Path, relative: str, what: str) -> None:
    path = resolve_in_data_root(root, relative, what=what)
    if not path.is_file():
        raise DataError(f"{what}: no such image under {root}; put the MVTec AD and VisA trees there (or pass --data-root)")
