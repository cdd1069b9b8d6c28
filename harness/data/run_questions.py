"""The question file of a run (the kinds that ask MMAD-format questions read it the same way), and
the check that a run's answers belong to the data it is resumed or re-scored against."""

from __future__ import annotations

import os

from harness.data.mmad import QuestionSet, load_mmad
from harness.data.releases import exclude_errata
from harness.data.subset import take_limit
from harness.errors import ConfigError, DataError
from harness.schema import RunSpec
from harness.storage.sources import cache_dir, resolve_data


# What reads a record's masks, so only there is a mask not on disk refused: box answers are scored
# against them, and the agent strategy's oracle source draws them. Multiple-choice scoring never does.
MASK_TASKS = frozenset({"bbox"})
MASK_STRATEGIES = ("agent=oracle",)


def reads_masks(spec: RunSpec) -> bool:
    return spec.task in MASK_TASKS or any(s.startswith(MASK_STRATEGIES) for s in spec.strategies)


def load_questions(spec: RunSpec) -> QuestionSet:
    """The spec's questions: its file (checked against the recorded digest first), its errata, its limit."""
    data = resolve_data(spec.data, spec.data_root)
    digest = None
    if spec.data_digest and data.json_path.is_file():  # before reading records: the wrong file is the error to report
        from harness.storage.files import file_sha256

        digest = file_sha256(data.json_path)
        check_digest(spec, digest, str(data.json_path))
    question_set = load_mmad(data.json_path, root=data.root, templates=spec.templates, shots=spec.shots, skip_bad=spec.skip_bad, digest=digest, masks=reads_masks(spec),
                             cache=None if os.environ.get("IADBENCH_NO_QUESTION_CACHE") else cache_dir() / "question-sets")
    for name in spec.errata:
        exclude_errata(question_set, name)
    question_set.available = len(question_set.questions)
    images = question_set.images
    question_set.questions = take_limit(question_set.questions, spec.limit, sampling=spec.limit_sampling, seed=spec.seed,
                                        stratum=lambda q: (images[q.image_id].dataset, images[q.image_id].category, q.subtask), key=lambda q: q.id)
    return question_set


def check_digest(spec: RunSpec, digest: str, source: str) -> None:
    """A run's answers belong to one question file: resuming, re-scoring or reporting it against
    another (a changed file, IADBENCH_MMAD pointing elsewhere) is refused, naming both."""
    if spec.data_digest is not None and spec.data_digest != digest:
        raise ConfigError(
            f"{source} (sha256 {digest[:12]}…) is not the question file run {spec.run_id} used (sha256 {spec.data_digest[:12]}…, data {spec.data}); "
            "point --data/IADBENCH_MMAD at that file, or start a new run"
        )


def prepared(spec: RunSpec) -> tuple[RunSpec, QuestionSet]:
    """The spec with the file's digest and release, and its questions (the file itself recorded,
    not $IADBENCH_MMAD that named it)."""
    from harness.data.releases import release_name

    question_set = load_questions(spec)
    if not question_set.questions:  # exit 0 means at least one answer: say why there is nothing to ask, before any folder exists
        raise DataError(nothing_left(question_set.source, question_set.skipped))
    resolved = resolve_data(spec.data, spec.data_root)
    data = f"mmad:{resolved.json_path.resolve()}" if spec.data == "mmad" else spec.data
    limit_of = question_set.available if spec.limit is not None else None
    spec = spec.model_copy(update={"data": data, "data_digest": question_set.digest, "data_release": release_name(spec.protocol, question_set.digest), "limit_of": limit_of})
    return spec, question_set


def nothing_left(source, skipped: list) -> str:
    """Why a question file leaves nothing to ask: the records --skip-bad skipped and the errata
    removed, counted, with the first reason of each."""
    errata = [s for s in skipped if s.reason.startswith("errata ")]
    bad = [s for s in skipped if not s.reason.startswith("errata ")]
    why = []
    if bad:
        why.append(f"--skip-bad skipped all {len(bad)} records it read (first {bad[0].record!r}: {bad[0].reason})")
    if errata:
        why.append(f"the errata removed {len(errata)} (first {errata[0].record!r}: {errata[0].reason})")
    todo = (["check --data-root and the records' image paths"] if bad else []) + (["leave out that --errata"] if errata else [])
    return f"{source}: no question is left to ask: " + ("; ".join(why) or "it holds none") + "; " + (" or ".join(todo) or "use another question file") + ", then run again"
