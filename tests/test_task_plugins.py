"""Task kinds are plugins: a kind defined here, in the test, runs through eval, score, export and
report with nothing changed elsewhere; and no module outside harness/tasks/ compares task names."""

from __future__ import annotations

import json
import re
from pathlib import Path

from harness.cli import main
from harness.models.base import ChatMessage, GenerateRequest, GenerateResponse, ImagePart, TextPart
from harness.schema import ImageSample, RunSummary
from harness.tasks.kinds import TaskKind
from harness.tasks.registry import register_task_kind, task_kind_names

ROOT = Path(__file__).resolve().parents[1]


class TallySample(ImageSample):
    said: int | None = None
    right: int = 0
    correct: bool = False


class TallyTask:
    """How many defects does the image show? (0 for a normal image, 1 for an anomalous one here.)"""

    sample_type = TallySample

    def __init__(self, images: list, root: Path) -> None:
        self.images, self.root = images, root

    @property
    def ids(self) -> list[str]:
        return [image.id for image in self.images]

    def build_request(self, ordinal: int) -> GenerateRequest:
        image = self.images[ordinal]
        parts = [TextPart(text="How many defects does this image show? Answer with a number."), ImagePart(path=str(self.root / image.image_path), role="query")]
        return GenerateRequest(messages=[ChatMessage(role="user", content=parts)], sample_id=image.id, reference_answer=str(int(image.label == "anomaly")))

    def score(self, ordinal: int, model: str, digest: str, response: GenerateResponse) -> TallySample:
        image = self.images[ordinal]
        found = re.search(r"\d+", response.text or "")
        said = int(found.group()) if found else None
        right = int(image.label == "anomaly")
        return TallySample(question_id=image.id, ordinal=ordinal, dataset=image.dataset, category=image.category, label=image.label, model=model,
                           request_digest=digest, reply=response.text or "", parse_status="error" if response.error else ("ok" if found else "unparsable"),
                           error=response.error, usage=response.usage, said=said, right=right, correct=said == right)


class TallyKind(TaskKind):
    name = "tally"
    title = "defect count"
    help = "how many defects an image shows"
    sample_type = TallySample
    method = "Defect count: the number the model names against the number of defects the image has."

    def prepare(self, spec):
        from harness.data.run_questions import prepared

        return prepared(spec)

    def load(self, spec):  # what summarise needs, for `score`: the images asked about
        from harness.data.run_questions import load_questions

        return list(load_questions(spec).images.values())[: spec.limit]

    def build(self, spec, folder, data):
        from harness.data.run_questions import load_questions

        question_set = data or load_questions(spec)
        images = list(question_set.images.values())[: spec.limit]
        return TallyTask(images, question_set.root), images

    def summarise(self, spec, samples, data, folder, wall_time_s, stopped_reason) -> RunSummary:
        from harness.run.accounting import run_accounting

        exact = 100.0 * sum(s.correct for s in samples) / len(data) if data else 0.0
        return RunSummary(run_id=spec.run_id, model=spec.model, suite=spec.suite, data=spec.data, scoring=spec.scoring, task=spec.task,
                          n_questions=len(data), metrics={"exact_percent": exact}, wall_time_s=wall_time_s, stopped_reason=stopped_reason,
                          **run_accounting(spec, samples))

    def table(self, summary, spec) -> str:
        return f"{spec.model} on {spec.data}: defect count exact on {summary.metrics.get('exact_percent', 0.0):.1f}% of {summary.n_questions} images"


def test_a_kind_defined_here_runs_eval_score_export_and_report(tmp_path, synthetic_set, capsys):
    register_task_kind("tally", TallyKind())
    assert "tally" in task_kind_names()
    runs = tmp_path / "runs"
    assert main(["eval", "--task", "tally", "--model", "oracle", "--limit", "12", "--runs-dir", str(runs), "--run-id", "t"]) == 0
    assert "defect count exact on 100.0% of 12 images" in capsys.readouterr().out
    summary = json.loads((runs / "t/summary.json").read_text())
    assert summary["task"] == "tally" and summary["metrics"] == {"exact_percent": 100.0} and summary["n_samples"] == 12
    samples = [json.loads(line) for line in (runs / "t/samples.jsonl").read_text().splitlines()]
    assert {s["said"] for s in samples} == {0, 1} and all(s["correct"] for s in samples)
    assert main(["score", str(runs / "t")]) == 0 and "defect count exact on 100.0% of 12 images" in capsys.readouterr().out
    assert main(["score", str(runs / "t"), "--mmad-compat"]) == 2
    assert "this is a defect count run" in capsys.readouterr().err
    assert main(["export", str(runs / "t")]) == 2  # MMAD's answers file holds multiple-choice answers only
    assert main(["eval", "--task", "tally", "--model", "oracle", "--limit", "12", "--perturb", "jpeg:3", "--runs-dir", str(runs)]) == 2
    assert "a defect count run does not take it" in capsys.readouterr().err
    assert main(["report", str(runs / "t"), "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert "Defect count: the number the model names" in page and "defect count on synthetic" in page
    assert main(["report", str(runs / "t"), "--format", "md", "--out", str(tmp_path / "r.md")]) == 0
    assert "defect count on synthetic" in (tmp_path / "r.md").read_text()


def test_no_module_outside_the_task_kinds_compares_task_names():
    names = "|".join(("mcq", "gpt4vad", "bbox"))
    # a task (or a run's, a spec's, a summary's) compared with a kind's name, either way round
    comparison = re.compile(rf"""task\W{{0,3}}\s*(==|!=|\bin\b)\s*[("']*({names})\b|["']({names})["']\s*(==|!=|\bin\b)[^\n]*task""")
    offenders = []
    for path in [*ROOT.glob("harness/**/*.py"), *ROOT.glob("prompts/**/*.j2")]:
        if path.is_relative_to(ROOT / "harness" / "tasks"):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if comparison.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert offenders == []
