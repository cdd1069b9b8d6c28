"""Writing a built report as one self-contained HTML file, Markdown, CSV or JSON."""

from __future__ import annotations

import math
import re
from pathlib import Path

from harness.metrics.accuracy import CompatTable
from harness.asking.prompting import environment
from harness.report.rundata import RunData
from harness.storage.files import json_text as strict_json_text
from harness.tasks.registry import task_kind


def _number(value, digits: int = 1) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def html(report: dict) -> str:
    """One file that opens offline: charts inline as SVG, thumbnails as data URLs, no CDN.
    Every value from a run (replies above all) goes through jinja's autoescape."""
    from harness.results.tables import SHORT

    template = environment().get_template("report/report.html.j2")
    return template.render(report=report, number=_number, short=SHORT)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def _md_cell(text) -> str:
    """A Markdown table cell: a pipe or a line break in a value must not open a new column or row."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(report: dict) -> str:
    lines = [f"# {report['title']}", "", f"Generated {report['generated_at']} from {_plural(len(report['runs']), 'run')}.", ""]
    differences = report.get("differences") or {}
    if len(report["runs"]) > 1:
        columns = differences.get("columns", [])
        header = ["run", "run id", *columns]
        lines += ["## What differs", "", "| " + " | ".join(_md_cell(h) for h in header) + " |", "|---" * len(header) + "|"]
        lines += ["| " + " | ".join(_md_cell(c) for c in [row["label"], row["run_id"], *row["cells"]]) + " |" for row in differences.get("rows", [])]
        if differences.get("shared"):
            lines += ["", "Shared by every run: " + "; ".join(differences["shared"]) + "."]
        lines.append("")
    board = report.get("leaderboard")
    if board:
        lines += ["## Leaderboard (strict accuracy %, 95% bootstrap interval)", "", "| run | data | questions | date | " + " | ".join(board["columns"]) + " |", "|---" * (len(board["columns"]) + 4) + "|"]
        for row in board["rows"]:
            marker = {"published": " †", "paper": " ‡", "unranked": " §"}.get(row["kind"], "")
            cells = [
                _number(c["value"]) + (f" [{_number(c['low'])}, {_number(c['high'])}]" if c["low"] is not None else "")
                for c in row["cells"]
            ]
            lines.append(f"| {_md_cell(row['label'])}{marker} | {_md_cell(row['data'])} | {_md_cell(row['coverage'])} | {row['date']} | " + " | ".join(cells) + " |")
        if board["published_shown"]:
            lines += ["", "† MMAD's published results (official CSVs, 1-shot unless named). ‡ From the MMAD paper (average only)."]
        if board["unranked"]:
            lines += ["", "§ Not ranked: answered other questions than the runs above (a --limit subset, or other data); its average is not comparable with theirs."]
        lines.append("")
    lines += ["## Runs: how each was asked and scored", ""]
    if report.get("common_notes"):
        lines += ["Every run: " + "; ".join(report["common_notes"]) + ".", ""]
    for run in report["runs"]:
        if run["answers_questions"]:
            lines.append(f"- **{_md_cell(run['label'])}** ({run['id']}): protocol {run['protocol']}; parser: {run['parser']}; headline: {run['headline']}; data: {run['release']}; failures: {run['failures']}")
        else:
            lines.append(f"- **{_md_cell(run['label'])}** ({run['id']}): {run['kind_title']} on {run['data']}; failures: {run['failures']}")
        lines += [f"  - {line}" for line in run["notes"]]
        lines += [f"  - backend: {note}" for note in run["backend_notes"]]
        lines += [f"  - differs from the official run: {difference}" for difference in run["differences"]]
    lines.append("")
    if report["pairs"]:
        lines += [f"Paired tests: {report['pairing']}. Significance: {report['significance']}.", ""]
    for pair in report["pairs"]:
        lines += [f"## {_md_cell(pair['first'])} vs {_md_cell(pair['second'])} ({pair['shared_questions']} shared questions, McNemar, Holm-adjusted)", ""]
        lines += ["| subtask | only first right | only second right | p (Holm) | verdict |", "|---|---|---|---|---|"]
        lines += [f"| {t['column']} | {t['only_first']} | {t['only_second']} | {t['p_holm']:.3g} | {_md_cell(t['verdict'])} |" for t in pair["tests"]]
        lines.append("")
    lines += _agreement_markdown(report.get("agreement"))
    for section in report["gpt4vad"]:
        lines += [f"## GPT-4V-AD: {_md_cell(section['label'])} (%)", ""]
        if not section["answered"]:
            lines += ["No image was answered: no metrics.", ""]
            continue
        lines += ["| category | " + " | ".join(section["columns"]) + " |", "|---" * (len(section["columns"]) + 1) + "|"]
        lines += [f"| {_md_cell(row['name'])} | " + " | ".join(_number(None if v is None else 100 * v) for v in row["cells"]) + " |" for row in section["rows"]]
        lines += [f"| {_md_cell(row['name'])} † | " + " | ".join(_number(None if v is None else 100 * v) for v in row["cells"]) + " |" for row in section.get("references", [])]
        lines += ["", f"Metrics: {section['definitions']}." + (" † published zero-shot results on this dataset, each with its own paper's metric code." if section.get("references") else "") + (f" {section['reference_note']}" if section.get("reference_note") else "")]
        lines.append("")
    for section in report.get("boxes", []):
        lines += [f"## Defect boxes: {_md_cell(section['label'])} ({section['format']}, %)", ""]
        if not section["answered"]:
            lines += ["No image was answered: no metrics.", ""]
            continue
        lines += ["| category | " + " | ".join(section["columns"]) + " | images |", "|---" * (len(section["columns"]) + 2) + "|"]
        lines += [f"| {_md_cell(row['name'])} | " + " | ".join(_number(v) for v in row["cells"]) + f" | {row['images']} |" for row in section["rows"]]
        lines.append("")
    for section in report.get("tables", []):
        lines += [f"## {_md_cell(section['title'])}: {_md_cell(section['label'])} ({section.get('unit', '%')})", ""]
        if not section["rows"]:
            lines += ["No question was answered: no figures.", ""]
            continue
        lines += [f"| {section['first_column']} | " + " | ".join(section["columns"]) + " |", "|---" * (len(section["columns"]) + 1) + "|"]
        lines += [f"| {_md_cell(row['name'])}{' †' if row['published'] else ''} | " + " | ".join(_number(v) for v in row["cells"]) + " |" for row in section["rows"]]
        lines += ["", *[_md_cell(line) for line in section["notes"]], ""]
    for section in report.get("robustness", []):
        zero = f"0 = {section['baseline']}" if section["baseline"] else "no matching clean run"
        lines += [f"## Robustness: {_md_cell(section['label'])}, {section['kind']} (accuracy % by severity; {_md_cell(zero)})", "", "| severity | run | " + " | ".join(section["columns"]) + " |", "|---" * (len(section["columns"]) + 2) + "|"]
        lines += [f"| {row['severity']} | {_md_cell(row['label'])} | " + " | ".join(_number(v) for v in row["cells"]) + " |" for row in section["rows"]]
        lines.append("")
    lines += ["## Cost and speed", "", "| run | run id | data | answered | q/s | tokens | cost | failures |", "|---|---|---|---|---|---|---|---|"]
    for run in report["runs"]:
        cost = "-" if run["cost_usd"] is None else f"${run['cost_usd']:.2f}"
        lines.append(f"| {_md_cell(run['label'])} | {run['id']} | {_md_cell(run['data'])} | {run['answered']}/{run['questions']} | {_number(run['questions_per_s'])} | {run['prompt_tokens'] + run['completion_tokens']:,} | {cost} | {_md_cell(run['failures'])} |")
    return "\n".join(lines) + "\n"


def _agreement_markdown(section: dict | None) -> list[str]:
    if not section:
        return []
    lines = ["## Agreement with people (same letter chosen, over the questions both answered)", ""]
    if section["mean_people_kappa"] is not None:
        lines += [f"Between the {section['people']} people: {_number(section['mean_people_agreement'])}% agreement, Cohen's kappa {_number(section['mean_people_kappa'], 2)} on average.", ""]
    lines += ["| first | second | between | questions | agreement % | Cohen's kappa |", "|---|---|---|---|---|---|"]
    lines += [f"| {_md_cell(row['first'])} | {_md_cell(row['second'])} | {row['between']} | {row['questions']} | {_number(row['agreement'])} | {_number(row['kappa'], 2)} |" for row in section["rows"]]
    if section["left_out"]:
        lines += ["", f"{section['left_out']} more pairs not shown."]
    return lines + [""]


def csv_files(runs: list[RunData], out: Path) -> list[Path]:
    """Each MCQ run's official-scorer table, in exactly the layout of MMAD's published CSVs, named
    by its run id, and its strict table beside it (<run>_strict.csv: the figures the report leads
    with, unanswered = wrong); with several runs, runs.csv beside them says which file is which run
    (its label, the settings that differ, both averages). An empty cell is empty, not a dash."""
    from harness.storage.files import csv_text, write_text_atomically
    from harness.metrics.headline import headline
    from harness.report.identity import difference_table

    written = []
    # file names from run ids, which come from spec.json (data): one plain name each, never a path
    names = [re.sub(r"[^A-Za-z0-9._-]+", "_", run.spec.run_id).strip("._") or "run" for run in runs]
    # two folders with one run id (copies, other machines) must not overwrite each other's CSV
    stems = [name if names.count(name) == 1 else f"{name}_{index}" for index, name in enumerate(names, start=1)]
    single = out.suffix == ".csv" and len(runs) == 1
    targets = [out] if single else [out / f"{stem}_accuracy.csv" for stem in stems]
    files, strict_files = {}, {}
    for run, target in zip(runs, targets):
        compat = run.summary.mmad_compat
        if not compat:
            continue
        table = CompatTable(rows=compat["rows"], columns=compat["columns"], values=compat["values"], removed=compat["removed"], skipped=compat["skipped"])
        target.parent.mkdir(parents=True, exist_ok=True)
        table.write_csv(target)
        written.append(target)
        files[id(run)] = target.name
        strict = run.summary.strict.get("accuracy", {})
        if strict:
            strict_target = target.with_name(target.stem.removesuffix("_accuracy") + "_strict.csv")
            columns = [column for column in next(iter(strict.values()))]
            rows = [["dataset", *columns]] + [[dataset, *("" if (v := values.get(c)) is None or v != v else f"{v:.2f}" for c in columns)] for dataset, values in strict.items()]
            write_text_atomically(strict_target, csv_text(rows))
            written.append(strict_target)
            strict_files[id(run)] = strict_target.name
    if not single and runs:
        differences = difference_table([run.spec for run in runs], [run.label for run in runs])
        rows = [["label", "run id", "folder", "task kind", *differences["columns"], "headline mode", "headline average", "strict average", "official-layout file", "strict file"]]
        for run, row in zip(runs, differences["rows"]):
            lead = headline(run.spec, run.summary) if task_kind(run.spec.task).answers_questions else None
            strict = run.summary.strict.get("accuracy", {}).get("Average", {}).get("Average")
            rows.append([run.label, run.spec.run_id, str(run.path), run.spec.task, *("" if cell == "—" else cell for cell in row["cells"]), lead.mode if lead else "",
                         "" if lead is None or lead.average is None else lead.average, "" if strict is None else strict, files.get(id(run), ""), strict_files.get(id(run), "")])
        index = out / "runs.csv"
        index.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(index, csv_text(rows))
        written.append(index)
    return written


def json_text(report: dict) -> str:
    """The report as strict JSON: NaN and ±Infinity as null, like every JSON file iadbench writes."""
    return strict_json_text(report, indent=2, default=str)
