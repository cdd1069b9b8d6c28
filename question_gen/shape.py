"""`generate --mmad-shape`: at most five questions per image, in MMAD's mix, so a generated set can be
set beside MMAD's own numbers.

MMAD's conversations (see shared notes, mmad-protocol.md) open with the detection question and hold at
most five questions. The mix iadbench writes: an anomalous image gets detection and the four defect
questions (classification, localization, description, analysis), with object questions filling the
places of defect questions that could not be asked; a normal image gets detection and the object
questions. Without the flag every question that can be asked truthfully is written (up to seven).
"""

from __future__ import annotations

from harness.schema import Subtask

MMAD_MAX_QUESTIONS = 5
ORDER = (
    Subtask.ANOMALY_DETECTION,
    Subtask.DEFECT_CLASSIFICATION,
    Subtask.DEFECT_LOCALIZATION,
    Subtask.DEFECT_DESCRIPTION,
    Subtask.DEFECT_ANALYSIS,
    Subtask.OBJECT_CLASSIFICATION,
    Subtask.OBJECT_ANALYSIS,
)


def mmad_shaped(drafts: list) -> list:
    """The first MMAD_MAX_QUESTIONS drafts in MMAD's order of subtasks (detection first)."""
    ranked = sorted(drafts, key=lambda draft: ORDER.index(draft.subtask))
    return ranked[:MMAD_MAX_QUESTIONS]
