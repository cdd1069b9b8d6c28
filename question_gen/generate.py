"""`iadbench generate`: an AD dataset on disk → an MMAD-format question set (mmad.json).

The output folder is self-contained, like MMAD's own release: mmad.json at its root, keys relative
to it (`<dataset>/<category>/test/<defect>/NNN.png`), and the images, masks and templates under
`<dataset>/` (hard links to the source where the filesystem allows, copies otherwise).
"""

from __future__ import annotations

import asyncio
import os
import zlib
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from harness.adsets.images import UnreadableImage
from harness.adsets.masks import load_mask_union
from harness.errors import DataError
from harness.adsets.similarity import descriptor, most_similar
from harness.storage.files import write_json_atomically
from harness.storage.paths import check_folder_name
from question_gen.placement import materialise, placed
from harness.models.base import Model
from question_gen import knowledge
from question_gen.attributes import MIN_COMPONENT_PIXELS, DefectAttributes, defect_attributes, foreground_mask, median_object_area
from question_gen.audit.run import audit_records
from question_gen.balance import arrange_options, balanced_positions
from question_gen.drafts import Draft, ImageContext, Skip, draft_questions
from question_gen.knowledge_file import read_knowledge_file
from question_gen.llm_facts import verified_facts
from question_gen.shape import MMAD_MAX_QUESTIONS, mmad_shaped
from question_gen.shortcut_filter import SHORTCUT_SKIP, Item, shortcut_free
from question_gen.llm_assist import LlmImage, rewrite_all, with_provenance
from question_gen.quality import quality_report
from harness.adsets.layouts import SourceCategory, SourceImage, read_mvtec_layout

N_TEMPLATES = 4
# The order answer positions are dealt in: the subtasks whose number of questions a knowledge file
# can change come last, so it moves no letter of the others.
DEAL_ORDER = ("Anomaly Detection", "Object Classification", "Defect Localization", "Defect Classification", "Object Analysis", "Defect Description", "Defect Analysis")
PARALLEL_MIN_IMAGES = 200  # below this, starting worker processes costs more than it saves


def default_workers() -> int:
    """One process per core this process may use (2 on the CI machine)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


@dataclass
class GenerationReport:
    dataset: str
    images: int = 0
    questions_by_subtask: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)  # "<subtask>: <reason>" → count
    answer_positions: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    strict: bool = False
    quality: dict = field(default_factory=dict)
    llm: dict | None = None  # LLM-assisted generation: accepted, discarded, blind-answerable, requests
    llm_facts: dict | None = None  # category facts the LLM wrote, and which survived verification
    kind: str = ""  # the dataset kind whose tables were used (the audit reads the set with the same)
    audit: dict = field(default_factory=dict)  # the self-audit: questions checked, dropped, verdicts

    def warn(self, message: str) -> None:
        """A problem generation can work around; with --strict it stops generation instead."""
        if self.strict:
            raise DataError(f"{message} (--strict turns this warning into an error)")
        self.warnings.append(message)

    def as_dict(self) -> dict:
        return {
            "dataset": self.dataset,
            "kind": self.kind,
            "images": self.images,
            "questions": sum(self.questions_by_subtask.values()),
            "questions_by_subtask": dict(self.questions_by_subtask),
            "answer_positions": dict(sorted(self.answer_positions.items())),
            "skipped": dict(self.skipped),
            "warnings": self.warnings,
            "audit": self.audit,
            "quality": self.quality,
            **({"llm": self.llm} if self.llm is not None else {}),
            **({"llm_facts": self.llm_facts} if self.llm_facts is not None else {}),
        }


def _rng(seed: int, key: str) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(key.encode())]))


def _load_rgb(path: Path) -> np.ndarray:
    from harness.adsets.images import load_rgb_array

    return load_rgb_array(path)


@dataclass
class _PendingImage:
    key: str
    entry: dict
    drafts: list[Draft]
    llm: LlmImage | None = None
    attributes: DefectAttributes | None = None  # what the mask and pixels showed (the audit reads them again)


def generate_question_set(
    source_root: Path,
    out: Path,
    *,
    dataset_name: str,
    knowledge_key: str,
    seed: int = 0,
    categories: list[SourceCategory] | None = None,
    strict: bool = False,
    llm: Model | None = None,
    llm_concurrency: int = 16,
    workers: int | None = None,
    knowledge_file: Path | None = None,
    mmad_shape: bool = False,
) -> GenerationReport:
    """Write `out/mmad.json`, `out/domain_knowledge.json` and `out/generation_report.json` for a
    dataset read by one of harness.adsets.layouts' readers (MVTec AD layout by default)."""
    categories = categories if categories is not None else read_mvtec_layout(source_root)
    check_folder_name(dataset_name, what="dataset name (--name)")
    for category in categories:  # category names come from data (labels.csv, split files): each must stay one folder
        check_folder_name(category.name, what=f"{source_root}: category")
    dataset_dir = out / dataset_name
    report = GenerationReport(dataset=dataset_name, strict=strict, kind=knowledge_key)
    entries = read_knowledge_file(knowledge_file, dataset_name=dataset_name, knowledge_key=knowledge_key) if knowledge_file else None
    known = knowledge.category_knowledge(knowledge_key, {c.name: c.defect_folders for c in categories}, entries)
    for category in categories:
        for warning in category.warnings:
            report.warn(warning)
        for folder, info in known[category.name].defects.items():
            if not info.known:
                report.warn(f"{category.name}/{folder}: unknown defect kind (not in question_gen/data/taxonomy.toml nor the knowledge file); shown as {info.name!r}, with no analysis question")
    if llm is not None:
        facts, report.llm_facts = asyncio.run(verified_facts(llm, source_root, categories, known, seed=seed))
        known = {name: entry.with_facts(facts.get(name, ())) for name, entry in known.items()}
    pending: list[_PendingImage] = []
    needed_files: list[str] = []
    states = {index: _category_state(source_root, c, dataset_name, known[c.name], seed, mmad_shape) for index, c in enumerate(categories)}
    tasks = [(index, image) for index, c in enumerate(categories) for image in c.test]
    for image, warnings, skips in _analysed(tasks, states, workers or default_workers()):
        for warning in warnings:
            report.warn(warning)
        for reason in skips:
            report.skipped[reason] += 1
        if image is not None:
            pending.append(image)
            report.images += 1
    for category in categories:
        needed_files += [(p, placed(category.name, p)) for p in category.train_good + [q for image in category.test for q in (image.path, *image.mask_paths)]]
    materialise(source_root, dataset_dir, needed_files)
    blind = None
    if llm is not None:
        targets = [image for image in pending if image.llm is not None]
        rewritten, outcome = asyncio.run(rewrite_all([t.llm for t in targets], llm, out / ".llm", concurrency=llm_concurrency, seed=seed))
        for target, drafts in zip(targets, rewritten):
            target.drafts = mmad_shaped(drafts) if mmad_shape else drafts
        report.llm = outcome.as_dict()
        report.skipped.update(outcome.discarded)
        blind = report.llm["blind_answerability"]

    knowledge_by_category = {c.name: knowledge.domain_knowledge_texts(known[c.name]) for c in categories}
    mmad = _assemble(pending, seed)
    # The set audits itself (question_gen/audit): a question whose key the evidence contradicts, or
    # with a second true option, or an option naming another object, is dropped and counted.
    audited = audit_records(mmad, out, set_path=str(out / "mmad.json"), kind=knowledge_key,
                            knowledge={dataset_name: knowledge_by_category},
                            measured={image.key: image.attributes for image in pending if image.attributes is not None})
    flagged = {row["id"]: row for row in audited.flagged()}
    if flagged:
        for image in pending:
            kept = []
            for index, draft in enumerate(image.drafts):
                row = flagged.get(f"{image.key}#{index}")
                if row is None:
                    kept.append(draft)
                else:
                    finding = next(f for f in row["findings"] if f["verdict"] == row["verdict"])
                    report.skipped[f"{draft.subtask.value}: audit: {row['verdict']} ({finding['check']})"] += 1
            image.drafts = kept
        mmad = _assemble(pending, seed)
    report.audit = {"checked": len(audited.questions), "dropped": len(flagged), "verdicts": audited.summary()["verdicts"]}
    if _leave_out_shortcuts(pending, seed, report):
        mmad = _assemble(pending, seed)
    for record in mmad.values():
        for question in record["conversation"]:
            report.questions_by_subtask[question["type"]] += 1
            report.answer_positions[question["Answer"]] += 1
    report.quality = quality_report(mmad, dict(report.skipped), blind)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomically(out / "mmad.json", mmad)
    write_json_atomically(out / "domain_knowledge.json", {dataset_name: knowledge_by_category})
    write_json_atomically(out / "generation_report.json", report.as_dict())
    return report


def _leave_out_shortcuts(pending: list[_PendingImage], seed: int, report: GenerationReport) -> bool:
    """Distractors drawn again, or questions left out, until no blind strategy wins
    (question_gen/shortcut_filter.py); whether anything changed."""
    places = [(image, index, draft) for image in pending for index, draft in enumerate(image.drafts)]
    items = [Item(d.subtask.value, d.correct, d.distractors, d.pool) for _, _, d in places]
    dropped = shortcut_free(items, lambda subtask: _rng(seed, f"shortcuts|{subtask}"))
    changed = bool(dropped)
    for (image, index, draft), item in zip(places, items):
        if item.distractors != draft.distractors:
            image.drafts[index] = replace(draft, distractors=item.distractors)
            changed = True
    for place in sorted(dropped, reverse=True):
        image, index, draft = places[place]
        report.skipped[f"{draft.subtask.value}: {SHORTCUT_SKIP}"] += 1
        del image.drafts[index]
    return changed


def _assemble(pending: list[_PendingImage], seed: int) -> dict[str, dict]:
    """The records of the drafts: right-answer positions dealt per subtask (and option count),
    options ordered per question, so questions a knowledge file adds to one subtask (or the audit
    drops from one) move no other subtask's letters."""
    by_subtask: dict[str, list[tuple[tuple[str, int], int]]] = {}
    for image in pending:
        for index, draft in enumerate(image.drafts):
            by_subtask.setdefault(draft.subtask.value, []).append(((image.key, index), 1 + len(draft.distractors)))
    positions: dict[tuple[str, int], int] = {}
    starts: dict[int, int] = {}  # the deal goes on from one subtask to the next: letters balanced in each and overall
    for subtask in sorted(by_subtask, key=DEAL_ORDER.index):
        members = by_subtask[subtask]
        positions.update(zip((place for place, _ in members), balanced_positions([count for _, count in members], _rng(seed, f"answer-positions|{subtask}"), starts)))
    mmad: dict[str, dict] = {}
    for image in pending:
        conversation = []
        for index, draft in enumerate(image.drafts):
            order = _rng(seed, f"{image.key}|{draft.subtask.value}|order")
            options, answer = arrange_options(draft.correct, draft.distractors, positions[(image.key, index)], order)
            conversation.append({"Question": draft.text, "Options": options, "Answer": answer, "type": draft.subtask.value, **with_provenance(draft)})
        mmad[image.key] = {"conversation": conversation, **image.entry}
    return mmad


@dataclass(frozen=True)
class _CategoryState:
    """What analysing one image of a category needs; sent once to each worker process."""

    source_root: Path
    category: SourceCategory
    dataset_name: str
    seed: int
    object_area: float | None  # None: the templates disagree on the object's extent, so no size is said
    template_descriptors: np.ndarray
    knowledge: knowledge.CategoryKnowledge
    mmad_shape: bool


_STATES: dict[int, _CategoryState] = {}


def _use_states(states: dict[int, _CategoryState]) -> None:
    """Worker initialiser (and the single-process path): the categories' shared state."""
    global _STATES
    _STATES = states
    _template_rgb.cache_clear()  # indices refer to this run's categories
    _template_foreground.cache_clear()


def _category_state(source_root: Path, category: SourceCategory, dataset_name: str, known: knowledge.CategoryKnowledge, seed: int, mmad_shape: bool) -> _CategoryState:
    templates = [_load_rgb(source_root / p) for p in category.train_good]
    return _CategoryState(
        source_root=source_root,
        category=category,
        dataset_name=dataset_name,
        seed=seed,
        object_area=median_object_area(templates),
        template_descriptors=np.stack([descriptor(t) for t in templates]),
        knowledge=known,
        mmad_shape=mmad_shape,
    )


@lru_cache(maxsize=32)
def _template_rgb(category_index: int, template_index: int) -> np.ndarray:
    """A category's normal image, decoded once per worker: the nearest template repeats across queries."""
    state = _STATES[category_index]
    return _load_rgb(state.source_root / state.category.train_good[template_index])


@lru_cache(maxsize=32)
def _template_foreground(category_index: int, template_index: int) -> np.ndarray | None:
    """A template's object pixels, found once per worker (the nearest template repeats)."""
    return foreground_mask(_template_rgb(category_index, template_index))


def _analyse_image(task: tuple[int, SourceImage]) -> tuple[_PendingImage | None, list[str], list[str]]:
    """One query image: mask attributes, question drafts and template lists. Returns the image (or
    None when it cannot be read), warnings and skip reasons; the caller folds them into the report.
    A pure function of its input, so it runs in any process and the set is the same."""
    state, image = _STATES[task[0]], task[1]
    category, source_root = state.category, state.source_root
    key = f"{state.dataset_name}/{placed(category.name, image.path)}"
    # a query is never its own template (a labelled folder may list one image for both)
    template_indices = [i for i, p in enumerate(category.train_good) if p != image.path]
    template_keys = [f"{state.dataset_name}/{placed(category.name, category.train_good[i])}" for i in template_indices]
    stream = lambda purpose: _rng(state.seed, f"{key}|{purpose}")  # noqa: E731 - one independent stream per use
    try:
        rgb = _load_rgb(source_root / image.path)
    except (OSError, UnidentifiedImageError, UnreadableImage) as error:
        return None, [f"{source_root / image.path}: unreadable image, skipped ({error})"], ["unreadable image"]
    warnings: list[str] = []
    attributes = None
    if not template_indices:
        return None, [f"{source_root / image.path}: no other normal image of {category.name} to use as its template; skipped"], ["no template"]
    ranked = [i for i in most_similar(descriptor(rgb), state.template_descriptors, N_TEMPLATES + 1) if i in template_indices][:N_TEMPLATES]
    nearest = [template_indices.index(i) for i in ranked]
    if image.label == "anomaly":
        warnings += _mask_size_warnings(source_root, image, rgb.shape[:2])
        try:
            mask = load_mask_union([source_root / p for p in image.mask_paths], rgb.shape[:2])
        except DataError as error:
            return None, [f"{error}; {image.path} skipped"], ["unreadable mask"]
        template = _template_rgb(task[0], ranked[0])
        try:
            attributes = defect_attributes(mask, rgb, state.object_area, template, _template_foreground(task[0], ranked[0]))
        except ValueError:  # an empty or speck-only mask: no defect to ask about
            return None, [f"{source_root / image.mask_paths[0]}: the mask of anomalous image {image.path} marks {int(mask.sum())} pixels, no defect of {MIN_COMPONENT_PIXELS}+; skipped (fix the mask)"], ["empty mask"]
    context = ImageContext(
        category=category.name,
        label=image.label,
        defect_folder=image.defect_folder,
        attributes=attributes,
        knowledge=state.knowledge,
    )
    drafts, skips = draft_questions(context, stream)
    if state.mmad_shape:
        shaped = mmad_shaped(drafts)
        skips += [Skip(d.subtask, f"--mmad-shape: at most {MMAD_MAX_QUESTIONS} questions per image") for d in drafts if all(d is not kept for kept in shaped)]
        drafts = shaped
    random_pick = stream("templates").choice(len(template_keys), min(N_TEMPLATES, len(template_keys)), replace=False)
    entry = {
        "mask_path": _mask_path_in_category(image, category.name) or "",
        "similar_templates": [template_keys[i] for i in nearest],
        "random_templates": [template_keys[i] for i in random_pick],
    }
    llm_image = LlmImage(key, source_root / image.path, source_root / category.train_good[ranked[0]], [source_root / p for p in image.mask_paths], context, drafts)
    return _PendingImage(key, entry, drafts, llm_image, attributes), warnings, [f"{skip.subtask.value}: {skip.reason}" for skip in skips]


def _analysed(tasks: list[tuple[int, SourceImage]], states: dict[int, _CategoryState], workers: int):
    """Results of `_analyse_image` in task order, streamed from `workers` processes when the set is
    large enough to repay starting them (mask analysis is CPU-bound; one process uses one core)."""
    if workers <= 1 or len(tasks) < PARALLEL_MIN_IMAGES:
        _use_states(states)
        yield from map(_analyse_image, tasks)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # fork: workers start in milliseconds and need no importable __main__; they run only numpy,
    # Pillow and scikit-image code (never torch), so threads copied from the parent stay idle.
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_use_states, initargs=(states,)) as pool:
        yield from pool.map(_analyse_image, tasks, chunksize=16)


def _mask_size_warnings(source_root: Path, image: SourceImage, shape: tuple[int, int]) -> list[str]:
    """A mask of another size than its image is resized (nearest neighbour) to the image, and said."""
    warnings = []
    for relative in image.mask_paths:
        try:
            with Image.open(source_root / relative) as mask:
                size = mask.size
        except (OSError, UnidentifiedImageError) as error:
            raise DataError(f"{source_root / relative}: unreadable mask of {image.path} ({error}); fix or remove the mask and its image") from None
        if size != (shape[1], shape[0]):
            warnings.append(f"{source_root / relative}: mask is {size[0]}x{size[1]} but its image is {shape[1]}x{shape[0]}; resized to the image (nearest neighbour)")
    return warnings


def _mask_path_in_category(image: SourceImage, category: str) -> str | None:
    """MMAD writes mask paths relative to the category folder (of the placed files); several masks
    (LOCO) are given as their folder, which MMAD's readers (and ours) take as the union."""
    if not image.mask_paths:
        return None
    inside = [placed(category, p).split("/", 1)[1] for p in image.mask_paths]
    return inside[0].rsplit("/", 1)[0] if len(inside) > 1 else inside[0]


def generate_synthetic_question_set(out: Path, *, seed: int = 0, size: int = 256, **options) -> GenerationReport:
    """The built-in suite: draw the synthetic dataset under out/Synthetic, then its questions."""
    from question_gen.synthetic.writer import write_synthetic_dataset

    dataset_dir = out / "Synthetic"
    write_synthetic_dataset(dataset_dir, seed=seed, size=size)
    return generate_question_set(dataset_dir, out, dataset_name="Synthetic", knowledge_key="synthetic", seed=seed, **options)
