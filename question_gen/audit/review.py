"""`iadbench review SET --out review.html`: one self-contained page to look at questions beside their
images, as an inspector would, and mark each key ok, wrong or ambiguous.

Each card shows the query image with the mask's outline (red) and, for Defect Localization, the
3×3 grid the options speak of; the question, its options and its key; and the audit's verdict and
evidence when an audit.json is given. Keys: o (ok), w (wrong), a (ambiguous), n or → (next), p or ←
(previous). Marks stay in the browser (localStorage, per set) and export as an errata file that
`iadbench eval --errata FILE` reads: the questions marked wrong (and, by choice, ambiguous) are left
out of a run. Everything from the set (questions, options, evidence) is escaped by the template.
"""

from __future__ import annotations

import base64
import hashlib
import io
from pathlib import Path

import numpy as np
from PIL import Image

from harness.errors import DataError
from harness.storage.paths import resolve_inside
from harness.asking.prompting import environment
from harness.schema import MMAD_TYPE_TO_SUBTASK, Subtask
from question_gen.audit.checks import FLAGGED
from question_gen.audit.run import _mask, read_set

THUMBNAIL_PIXELS = 448  # the longer side of a shown image: enough to see a scratch, small enough for 1,000 cards
DEFAULT_LIMIT = 400  # questions on one page (each carries its image)


def _shown(rgb: np.ndarray, mask: np.ndarray | None, grid: bool) -> str:
    """The image as a JPEG data URI: the mask's outline in red, and the 3×3 grid in yellow."""
    from scipy import ndimage

    picture = rgb.copy()
    if mask is not None and mask.shape == rgb.shape[:2]:
        outline = mask & ~ndimage.binary_erosion(mask, iterations=max(1, rgb.shape[0] // 200))
        picture[outline] = (255, 0, 0)
    image = Image.fromarray(picture)
    image.thumbnail((THUMBNAIL_PIXELS, THUMBNAIL_PIXELS))
    if grid:
        pixels = np.asarray(image).copy()
        h, w = pixels.shape[:2]
        for k in (1, 2):
            pixels[k * h // 3, :] = (255, 215, 0)
            pixels[:, k * w // 3] = (255, 215, 0)
        image = Image.fromarray(pixels)
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _image(root: Path, key: str, record: dict, grid: bool) -> tuple[str | None, str]:
    """(data URI or None, a note when the image or its mask cannot be shown)."""
    from harness.adsets.images import load_rgb_array

    try:
        rgb = load_rgb_array(resolve_inside(root, key, what="image path"))
    except (OSError, DataError) as error:
        return None, f"image not shown: {error}"
    parts = key.split("/")
    mask, note = None, ""
    if len(parts) > 2 and record.get("mask_path"):
        try:
            mask = _mask(root, parts[0], parts[1], record, rgb.shape[:2])
        except (OSError, DataError) as error:
            note = f"mask not shown: {error}"
    return _shown(rgb, mask, grid), note


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
    if not isinstance(findings, list) or not all(isinstance(f, dict) and isinstance(f.get("check"), str) and isinstance(f.get("evidence"), (str, int, float)) for f in findings):
        return "has 'findings' that are not a list of {check, evidence} objects"
    return None


def _not_an_audit(path: Path, problem: str) -> str:
    return f"{path}: not an audit file as `iadbench audit` writes it ({problem}); write it again with: iadbench audit SET --out {path}"


def build_review(set_path: Path, out: Path, *, audit_path: Path | None = None, only_flagged: bool = False, limit: int = DEFAULT_LIMIT) -> int:
    """Write the review page; returns the number of questions on it."""
    mmad = read_set(set_path)
    audit = read_audit(audit_path) if audit_path is not None else {}
    root = set_path.parent
    cards, images, templates = [], {}, {}
    for key, record in mmad.items():
        for index, question in enumerate(record.get("conversation", [])):
            qid = f"{key}#{index}"
            if not isinstance(question, dict):  # shown as the broken question it is (the audit calls it likely wrong)
                question = {"Question": f"(not a question object: {str(question)[:200]})"}
            row = audit.get(qid)
            if only_flagged and (row is None or row.get("verdict") not in FLAGGED):
                continue
            if len(cards) >= limit:
                break
            grid = MMAD_TYPE_TO_SUBTASK.get(str(question.get("type"))) is Subtask.DEFECT_LOCALIZATION
            if (key, grid) not in images:
                images[(key, grid)] = _image(root, key, record, grid)
            uri, note = images[(key, grid)]
            template = next((t for t in (*record.get("similar_templates", []), *record.get("random_templates", [])) if isinstance(t, str)), None)
            if template is not None and template not in templates:
                templates[template] = _image(root, template, {}, False)[0]
            options = question.get("Options") if isinstance(question.get("Options"), dict) else {}
            cards.append({"id": qid, "key": key, "type": str(question.get("type", "")), "question": str(question.get("Question", "")),
                          "options": [(str(letter), str(text)) for letter, text in options.items()], "answer": str(question.get("Answer", "")),
                          "image": uri, "note": note, "template": templates.get(template) if template else None, "verdict": row.get("verdict") if row else None,
                          "evidence": ["{check}: {evidence}".format(**f) for f in row.get("findings", [])] if row else []})
    digest = hashlib.sha256(set_path.read_bytes()).hexdigest()
    total = sum(len(r.get("conversation", [])) for r in mmad.values())
    page = environment().get_template("report/review.html.j2").render(
        cards=cards, set_path=str(set_path), set_id=digest[:16], total=total, limit=limit, only_flagged=only_flagged, audited=bool(audit),
        cards_meta=[{"id": c["id"], "verdict": c["verdict"]} for c in cards],
    )
    from harness.storage.files import write_text_atomically

    write_text_atomically(out, page)
    return len(cards)
