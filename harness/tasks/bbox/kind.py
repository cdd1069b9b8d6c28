"""Defect boxes (`--task bbox`): where is every defect, as boxes in the model's own coordinate frame,
scored with mIoU, ACC@IoU, box precision/recall and detection."""

from __future__ import annotations

from typing import Any

from harness.schema import BoxSample, RunSpec, RunSummary
from harness.tasks.kinds import TaskKind
from harness.data.run_questions import check_digest, load_questions, prepared


class BoxKind(TaskKind):
    name = "bbox"
    title = "box localisation"
    help = "bounding boxes of every defect (mIoU, ACC@IoU, box precision/recall)"
    sample_type = BoxSample
    perturbable = True
    fixed_protocol = "harmonised"  # boxes are asked as harness/tasks/bbox/box_formats.toml says, whatever the suite's protocol
    settings = frozenset({"shots", "box_format"})
    method = ("Defect boxes: the model's boxes matched to boxes drawn from the masks, scored with mIoU, ACC@IoU, box precision/recall and detection "
              "balanced accuracy; an unanswered image counts as no box.")
    section_names = ("boxes",)

    def spec_fields(self, model: str, overrides: Any) -> dict:
        from harness.tasks.bbox.task import pick_box_format

        return {"box_format": pick_box_format(model, overrides.box_format).name}

    def prepare(self, spec: RunSpec):
        spec, question_set = prepared(spec)
        return spec.model_copy(update={"limit_of": len(question_set.images) if spec.limit is not None else None}), question_set

    def load(self, spec: RunSpec) -> list:
        from harness.tasks.bbox.task import limited_images

        return limited_images(spec, load_questions(spec))

    def build(self, spec: RunSpec, folder, data: Any) -> tuple[Any, list]:
        from harness.tasks.bbox.task import build_box_task

        question_set = data or load_questions(spec)
        check_digest(spec, question_set.digest, str(question_set.source))
        return build_box_task(spec, folder, question_set)

    def rescored(self, spec, folder, samples, data) -> list:
        from harness.tasks.rescore import of_the_set

        return of_the_set(samples, [item.id for item in data], folder.samples_path)

    def summarise(self, spec, samples, data, folder, wall_time_s, stopped_reason) -> RunSummary:
        from harness.run.accounting import run_summary
        from harness.tasks.bbox.task import box_run_metrics

        samples = self.rescored(spec, folder, samples, data)
        return run_summary(spec, samples, len(data), wall_time_s, stopped_reason, box_metrics=box_run_metrics(samples))

    def table(self, summary, spec) -> str:
        from harness.tasks.bbox.tables import box_table

        return box_table(summary, spec)

    def report_sections(self, runs: list, keys: dict[str, str]) -> dict[str, list]:
        from harness.tasks.bbox.report import box_comparison, box_sections

        return {"boxes": box_sections(runs), "tables": box_comparison(runs)}

    def gallery(self, run, limit: int, skip_declined: bool = False) -> dict | None:
        from harness.tasks.bbox.report import box_gallery

        return box_gallery(run, limit, skip_declined)
