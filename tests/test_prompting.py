"""The MMAD prompt layout, checked part by part against golden files."""

from pathlib import Path

import pytest

from harness.data.mmad import load_mmad
from harness.models.base import ImagePart
from harness.tasks.mcq.task import PromptSettings, build_request

GOLDEN = Path(__file__).parent / "golden"


def _render(request, root: Path) -> str:
    lines = []
    for part in request.messages[0].content:
        if isinstance(part, ImagePart):
            path = Path(part.path)
            shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)  # agent images live in the run folder
            lines.append(f"<image role={part.role} path={shown} max_side={part.max_side}>")
        else:
            lines.append(f"<text>{part.text}</text>")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("shots", "golden"), [(1, "mmad_1shot.txt"), (0, "mmad_0shot.txt"), (2, "mmad_2shot.txt")])
def test_mmad_layout_matches_golden(mmad_tree, shots, golden):
    question_set = load_mmad(mmad_tree / "mmad.json", shots=shots, skip_bad=shots > 1)  # one record has 1 template
    question = question_set.questions[1]  # the classification question with three options
    request = build_request(question, question_set.images[question.image_id], mmad_tree, PromptSettings(shots=shots, image_max_side=512), seed=0)
    assert _render(request, mmad_tree.resolve()) == (GOLDEN / golden).read_text()
    assert request.option_letters == ["A", "B", "C"] and request.reference_answer == "B"


def test_similar_templates_are_used_when_asked(mmad_tree):
    question_set = load_mmad(mmad_tree / "mmad.json", templates="similar", skip_bad=True)  # two records list none
    question = question_set.questions[0]
    request = build_request(question, question_set.images[question.image_id], mmad_tree, PromptSettings(templates="similar"), seed=0)
    templates = [p for p in request.messages[0].content if isinstance(p, ImagePart) and p.role == "template"]
    assert [Path(p.path).name for p in templates] == ["001.png"]


def test_html_templates_escape_and_prompt_templates_do_not():
    from harness.asking.prompting import environment

    assert environment().get_template("report/report.html.j2").environment.autoescape("report/report.html.j2")
    assert not environment().autoescape("mmad/user.j2")
