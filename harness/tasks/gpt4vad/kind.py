"""GPT-4V-AD (`--task gpt4vad`): the image divided into numbered regions, the model names the
anomalous ones, Text2Segmentation turns its reply into a map; image- and pixel-level metrics."""

from __future__ import annotations

from typing import Any

from harness.schema import RegionSample, RunSpec, RunSummary
from harness.tasks.kinds import TaskKind
from harness.data.run_questions import check_digest


class Gpt4vadKind(TaskKind):
    name = "gpt4vad"
    title = "GPT-4V-AD"
    help = "GPT-4V-AD region scoring with image- and pixel-level AUROC, AP, F1-max and AUPRO"
    sample_type = RegionSample
    default_suite = "gpt4vad-zero-shot"
    settings = frozenset({"regions", "gpt4vad_prompt", "metric_definitions"})
    method = ("GPT-4V-AD: each image divided into numbered regions, the model's region scores painted into a map (Text2Segmentation), scored with image- and "
              "pixel-level AUROC, AP, F1-max and AUPRO per category, then their mean; an unanswered image counts as an all-zero map.")
    section_names = ("gpt4vad",)

    def prepare(self, spec: RunSpec) -> tuple[RunSpec, list]:
        from harness.tasks.gpt4vad.task import validate_regions

        validate_regions(spec.regions)
        items, digest = self._items(spec)
        return spec.model_copy(update={"data_digest": digest, "limit_of": self._available if spec.limit is not None else None}), items

    def load(self, spec: RunSpec) -> list:
        items, digest = self._items(spec)
        check_digest(spec, digest, spec.data)
        return items

    def _items(self, spec: RunSpec) -> tuple[list, str]:
        from harness.tasks.gpt4vad.task import load_region_items, region_subset

        items, digest = load_region_items(spec.data, spec.seed)
        self._available = len(items)
        return region_subset(items, spec.limit, spec.seed, spec.limit_sampling), digest

    def build(self, spec: RunSpec, folder, data: Any) -> tuple[Any, list]:
        from harness.tasks.gpt4vad.task import Gpt4vadTask

        items = self.load(spec)
        task = Gpt4vadTask(items, folder.path, regions=spec.regions, prompt=spec.gpt4vad_prompt, image_max_side=spec.image_max_side, decoding=spec.decoding, seed=spec.seed)
        return task, items

    def rescored(self, spec, folder, samples, data) -> list:
        from harness.tasks.rescore import of_the_set

        return of_the_set(samples, [item.id for item in data], folder.samples_path)

    def summarise(self, spec, samples, data, folder, wall_time_s, stopped_reason) -> RunSummary:
        from harness.run.accounting import run_summary
        from harness.tasks.gpt4vad.task import region_metrics

        samples = self.rescored(spec, folder, samples, data)
        return run_summary(spec, samples, len(data), wall_time_s, stopped_reason, ad_metrics=region_metrics(samples, data, folder.path, spec.metric_definitions))

    def table(self, summary, spec) -> str:
        from harness.tasks.gpt4vad.tables import ad_table

        return ad_table(summary, spec)

    def report_notes(self, run) -> list[str]:
        return list(run.summary.ad_metrics.get("notes", []))

    def report_sections(self, runs: list, keys: dict[str, str]) -> dict[str, list]:
        from harness.tasks.gpt4vad.report import gpt4vad_sections

        return {"gpt4vad": gpt4vad_sections(runs, keys)}

    def report_charts(self, runs: list) -> dict[str, str]:
        from harness.tasks.gpt4vad.report import region_curves

        return region_curves(runs)

    def gallery(self, run, limit: int, skip_declined: bool = False) -> dict | None:
        from harness.tasks.gpt4vad.report import gpt4vad_gallery

        return gpt4vad_gallery(run, limit, skip_declined)
