"""`iadbench review SET --out review.html`: a page a person can audit a question set with.

Each card shows the query image (a JPEG thumbnail; click it, or press z, for the full view with
wheel zoom and drag), the mask's outline and, for Defect Localization, the 3×3 grid as overlays that
the raw view (r) takes away, a normal image of the category, the question and its options, and the
audit's verdict with its evidence. Blind mode (b, on by default) hides the key and the verdict until
the reviewer has answered (1-5). Then o/w/a mark the key ok, wrong or ambiguous, with a reason in the
card's field; filters by subtask, verdict, category and mark; n/p or the arrows move. Marks and
reasons stay in the browser (localStorage, per set) and export as an errata file (`eval --errata`,
`audit --errata`'s format) and as a hand-audit file (`audit --hand`, question_gen/audit/agreement.py).

The images go to a folder beside the page (`<page>_files/`): thumbnails at THUMBNAIL_PIXELS on the
longer side, full views at FULL_PIXELS loaded only when zoomed, outlines as small transparent PNGs,
each loaded lazily, so the page itself stays small whatever the set. Everything from the set
(questions, options, evidence, paths) is escaped by the template (autoescape, and JSON for the script).
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from harness.asking.prompting import environment
from harness.errors import DataError
from harness.schema import MMAD_TYPE_TO_SUBTASK, Subtask
from harness.storage.paths import resolve_in_data_root
from question_gen.audit.checks import FLAGGED
from question_gen.audit.run import _mask, read_set

THUMBNAIL_PIXELS = 384  # the longer side of a card's image: enough to find a defect, small enough for 1,000 cards
FULL_PIXELS = 1280  # the longer side of the zoomed view (a 10-pixel blob of a 2,000-pixel photograph stays visible)
JPEG_QUALITY = 82
DEFAULT_LIMIT = 400  # questions on one page
MARKER = ".iadbench-review"  # in the image folder: only a folder with it is replaced when the page is written again


@dataclass
class Shown:
    """One image as the page shows it: files relative to the page, and why something is missing."""

    thumb: str | None = None
    full: str | None = None
    outline: str | None = None
    width: int = 0
    height: int = 0
    notes: list[str] = field(default_factory=list)


class ImageFolder:
    """Writes each image once (a record's questions share it) into the folder beside the page."""

    def __init__(self, root: Path, folder: Path) -> None:
        self.root, self.folder = root, folder
        self._done: dict[str, Shown] = {}
        if folder.is_symlink() or (folder.exists() and not (folder / MARKER).is_file()):
            raise DataError(f"{folder}: exists and is not a review page's image folder; move it, or give review another --out")
        if folder.exists():
            shutil.rmtree(folder)  # a page written again must not link to an older page's files
        folder.mkdir(parents=True)
        (folder / MARKER).write_text("images of an iadbench review page; written again with the page\n")

    def _name(self, stem: str) -> str:
        return f"{self.folder.name}/{stem}"

    def show(self, key: str, record: dict | None) -> Shown:
        """The image at `key` (relative to the data root), with its record's mask outline when given."""
        if key in self._done:
            return self._done[key]
        from harness.adsets.images import load_rgb_array

        shown = self._done.setdefault(key, Shown())
        stem = f"{len(self._done):04d}"
        try:
            path = resolve_in_data_root(self.root, key, what="image path")
        except DataError as error:
            shown.notes.append(f"image not shown: {error}")
            return shown
        if not path.is_file():
            shown.notes.append(f"image not on disk: {key}")
            return shown
        try:
            rgb = load_rgb_array(path)
        except (OSError, DataError, Image.DecompressionBombError) as error:
            shown.notes.append(f"image not readable: {error}")
            return shown
        image = Image.fromarray(rgb)
        for suffix, side in (("", THUMBNAIL_PIXELS), ("-full", FULL_PIXELS)):
            copy = image.copy()
            copy.thumbnail((side, side))
            copy.save(self.folder / f"{stem}{suffix}.jpg", format="JPEG", quality=JPEG_QUALITY)
        shown.thumb, shown.full = self._name(f"{stem}.jpg"), self._name(f"{stem}-full.jpg")
        shown.height, shown.width = rgb.shape[:2]
        parts = key.split("/")
        if record is not None and record.get("mask_path") and len(parts) > 2:
            try:
                mask = _mask(self.root, parts[0], parts[1], record, rgb.shape[:2])
            except (OSError, DataError) as error:
                shown.notes.append(f"mask not shown: {error}")
                return shown
            if mask is not None and mask.any():
                _outline(mask).save(self.folder / f"{stem}-outline.png", optimize=True)
                shown.outline = self._name(f"{stem}-outline.png")
        return shown


def _outline(mask: np.ndarray) -> Image.Image:
    """The mask's outline in red on a transparent image at the full view's size (a few pixels
    thick there, so it stays visible on the thumbnail)."""
    from scipy import ndimage

    scale = min(1.0, FULL_PIXELS / max(mask.shape))
    small = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize((max(1, round(mask.shape[1] * scale)), max(1, round(mask.shape[0] * scale))), Image.NEAREST)) > 0
    width = max(2, max(small.shape) // 200)
    edge = ndimage.binary_dilation(small, iterations=width) & ~small
    pixels = np.zeros((*small.shape, 4), dtype=np.uint8)
    pixels[edge] = (255, 32, 32, 255)
    return Image.fromarray(pixels, "RGBA")


def _template(record: dict) -> str | None:
    return next((t for t in (*record.get("similar_templates", []), *record.get("random_templates", [])) if isinstance(t, str)), None)


def read_audit(path: Path) -> dict[str, dict]:
    """An audit.json's rows by question id, each checked for the shape `iadbench audit` writes; a
    file that is not that (hand-edited, truncated, another tool's) is one line naming what is wrong."""
    from harness.storage.files import read_json_file

    try:
        data = read_json_file(path, what="audit file")
    except DataError as error:  # unreadable, not UTF-8, not JSON: say where a good one comes from
        raise DataError(f"{error}; write it again with: iadbench audit SET --out {path}") from None
    rows = data.get("questions") if isinstance(data, dict) else None
    if not isinstance(rows, list):
        raise DataError(_not_an_audit(path, "no 'questions' list"))
    audit = {}
    for index, row in enumerate(rows):
        problem = _row_problem(row)
        if problem:
            raise DataError(_not_an_audit(path, f"questions[{index}] {problem}"))
        audit[row["id"]] = row
    return audit


def _row_problem(row: object) -> str | None:
    if not isinstance(row, dict):
        return "is not an object"
    if not isinstance(row.get("id"), str):
        return "has no string 'id'"
    if not isinstance(row.get("verdict", ""), str):
        return "has a 'verdict' that is not a string"
    findings = row.get("findings", [])
    if not isinstance(findings, list) or not all(isinstance(f, dict) and isinstance(f.get("check"), str) and "evidence" in f for f in findings):
        return "has 'findings' that are not a list of {check, evidence} objects"
    return None


def _not_an_audit(path: Path, problem: str) -> str:
    return f"{path}: not an audit file as `iadbench audit` writes it ({problem}); write it again with: iadbench audit SET --out {path}"


def build_review(set_path: Path, out: Path, *, audit_path: Path | None = None, only_flagged: bool = False, limit: int = DEFAULT_LIMIT,
                 data_root: Path | None = None) -> int:
    """Write the review page and its image folder; returns (questions on it, questions in the set)."""
    mmad = read_set(set_path)
    audit = read_audit(audit_path) if audit_path is not None else {}
    images = ImageFolder(data_root or set_path.parent, out.parent / f"{out.stem}_files")
    cards: list[dict] = []
    for key, record in mmad.items():
        for index, question in enumerate(record.get("conversation", [])):
            if len(cards) >= limit:
                break
            qid = f"{key}#{index}"
            if not isinstance(question, dict):  # shown as the broken question it is (the audit calls it likely wrong)
                question = {"Question": f"(not a question object: {str(question)[:200]})"}
            row = audit.get(qid)
            if only_flagged and (row is None or row.get("verdict") not in FLAGGED):
                continue
            query = images.show(key, record)
            template = _template(record)
            normal = images.show(template, None) if template else None
            options = question.get("Options") if isinstance(question.get("Options"), dict) else {}
            parts = key.split("/")
            cards.append({
                "id": qid, "key": key, "category": parts[1] if len(parts) > 2 else "", "type": str(question.get("type", "")),
                "question": str(question.get("Question", "")), "options": [(str(letter), str(text)) for letter, text in options.items()],
                "answer": str(question.get("Answer", "")), "image": query, "normal": normal,
                "grid": MMAD_TYPE_TO_SUBTASK.get(str(question.get("type"))) is Subtask.DEFECT_LOCALIZATION,
                "verdict": row.get("verdict") if row else ("not audited" if not audit else "not in the audit"),
                "evidence": [f"{f.get('check')} ({f.get('verdict')}): {f.get('evidence')}" for f in row.get("findings", [])] if row else [],
            })
    digest = hashlib.sha256(set_path.read_bytes()).hexdigest()
    total = sum(len(r.get("conversation", [])) for r in mmad.values())
    meta = [{"id": c["id"], "type": c["type"], "category": c["category"], "verdict": c["verdict"], "answer": c["answer"], "letters": [letter for letter, _ in c["options"]]}
            for c in cards]
    page = environment().get_template("report/review.html.j2").render(
        cards=cards, set_path=str(set_path), set_id=digest[:16], total=total, limit=limit, only_flagged=only_flagged, audited=bool(audit), cards_meta=meta,
        subtasks=sorted({c["type"] for c in cards}), verdicts=sorted({c["verdict"] for c in cards}), categories=sorted({c["category"] for c in cards}),
    )
    from harness.storage.files import write_text_atomically

    write_text_atomically(out, page)
    return len(cards), total
