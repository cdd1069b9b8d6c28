"""Writing a built report as one self-contained HTML file, Markdown, CSV or JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

from harness.metrics.accuracy import CompatTable
from harness.prompting import environment
from harness.report.runs import RunData


def _number(value, digits: int = 1) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def html(report: dict) -> str:
    """One file that opens offline: charts inline as SVG, thumbnails as data URLs, no CDN.
    Every value from a run (replies above all) goes through jinja's autoescape."""
    from harness.tables import SHORT

    template = environment().get_template("report/report.html.j2")
    return template.render(report=report, number=_number, short=SHORT)


def markdown(report: dict) -> str:
    lines = [f"# {report['title']}", "", f"Generated {report['generated_at']}.", ""]
    board = report.get("leaderboard")
    if board:
        lines += ["## Leaderboard (accuracy %, 95% bootstrap interval)", "", "| model | data | date | " + " | ".join(board["columns"]) + " |", "|---" * (len(board["columns"]) + 3) + "|"]
        for row in board["rows"]:
            marker = {"published": " †", "paper": " ‡"}.get(row["kind"], "")
            cells = [
                _number(c["value"]) + (f" [{_number(c['low'])}, {_number(c['high'])}]" if c["low"] is not None else "")
                for c in row["cells"]
            ]
            lines.append(f"| {row['label']}{marker} | {row['data']} | {row['date']} | " + " | ".join(cells) + " |")
        if board["published_shown"]:
            lines += ["", "† MMAD's published results (official CSVs, 1-shot unless named). ‡ From the MMAD paper (average only)."]
        lines.append("")
    if report.get("references"):
        lines += ["## Protocols and published rows", ""]
        for run in (r for r in report["runs"] if r["task"] == "mcq"):
            lines.append(f"- **{run['label']}**: protocol {run['protocol']}; parser: {run['parser']}; headline: {run['headline']}; data: {run['release']}")
            for reference in (r for r in report["references"] if r["label"] == run["label"]):
                lines += [f"  - {line}" for line in reference["lines"]]
            lines += [f"  - differs from the official run: {difference}" for difference in run["differences"]]
        lines.append("")
    for pair in report["pairs"]:
        lines += [f"## {pair['first']} vs {pair['second']} ({pair['shared_questions']} shared questions, McNemar, Holm-adjusted)", ""]
        lines += ["| subtask | only first right | only second right | p (Holm) | verdict |", "|---|---|---|---|---|"]
        lines += [f"| {t['column']} | {t['only_first']} | {t['only_second']} | {t['p_holm']:.3g} | {t['verdict']} |" for t in pair["tests"]]
        lines.append("")
    for section in report["gpt4vad"]:
        lines += [f"## GPT-4V-AD: {section['label']} (%)", "", "| category | " + " | ".join(section["columns"]) + " |", "|---" * (len(section["columns"]) + 1) + "|"]
        lines += [f"| {row['name']} | " + " | ".join(_number(None if v is None else 100 * v) for v in row["cells"]) + " |" for row in section["rows"]]
        lines += [f"| {row['name']} † | " + " | ".join(_number(None if v is None else 100 * v) for v in row["cells"]) + " |" for row in section.get("references", [])]
        lines += ["", f"Metrics: {section['definitions']}." + (" † published zero-shot results on this dataset, each with its own paper's metric code." if section.get("references") else "")]
        lines.append("")
    for section in report.get("boxes", []):
        lines += [f"## Defect boxes: {section['label']} ({section['format']}, %)", "", "| category | " + " | ".join(section["columns"]) + " | images |", "|---" * (len(section["columns"]) + 2) + "|"]
        lines += [f"| {row['name']} | " + " | ".join(_number(v) for v in row["cells"]) + f" | {row['images']} |" for row in section["rows"]]
        lines.append("")
    for section in report.get("robustness", []):
        lines += [f"## Robustness: {section['label']}, {section['kind']} (accuracy % by severity; 0 = undegraded)", "", "| severity | " + " | ".join(section["columns"]) + " |", "|---" * (len(section["columns"]) + 1) + "|"]
        lines += [f"| {row['severity']} | " + " | ".join(_number(v) for v in row["cells"]) + " |" for row in section["rows"]]
        lines.append("")
    lines += ["## Runs", "", "| run | model | data | questions | q/s | tokens | cost |", "|---|---|---|---|---|---|---|"]
    for run in report["runs"]:
        cost = "-" if run["cost_usd"] is None else f"${run['cost_usd']:.2f}"
        lines.append(f"| {run['id']} | {run['model']} | {run['data']} | {run['answered']}/{run['questions']} | {_number(run['questions_per_s'])} | {run['prompt_tokens'] + run['completion_tokens']:,} | {cost} |")
    return "\n".join(lines) + "\n"


def csv_files(runs: list[RunData], out: Path) -> list[Path]:
    """Each MCQ run's official-scorer table, in exactly the layout of MMAD's published CSVs."""
    written = []
    names = [run.spec.run_id for run in runs]
    # two folders with one run id (copies, other machines) must not overwrite each other's CSV
    stems = [name if names.count(name) == 1 else f"{name}_{index}" for index, name in enumerate(names, start=1)]
    targets = [out] if out.suffix == ".csv" and len(runs) == 1 else [out / f"{stem}_accuracy.csv" for stem in stems]
    for run, target in zip(runs, targets):
        compat = run.summary.mmad_compat
        if not compat:
            continue
        table = CompatTable(rows=compat["rows"], columns=compat["columns"], values=compat["values"], removed=compat["removed"], skipped=compat["skipped"])
        target.parent.mkdir(parents=True, exist_ok=True)
        table.write_csv(target)
        written.append(target)
    return written


def json_text(report: dict) -> str:
    return json.dumps(report, indent=2, default=lambda value: None if isinstance(value, float) and math.isnan(value) else str(value))
