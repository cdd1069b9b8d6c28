"""Charts as inline SVG strings (matplotlib, text as paths: no fonts or files outside the page)."""

from __future__ import annotations

import io
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

plt.rcParams.update({"svg.fonttype": "path", "font.size": 9, "axes.spines.top": False, "axes.spines.right": False})
SHORT = ["AD", "DefCls", "DefLoc", "DefDesc", "DefAna", "ObjCls", "ObjAna"]


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    plt.close(figure)
    text = buffer.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)  # creator and licence boilerplate
    return text[text.index("<svg") :]  # inline: drop the XML prolog and doctype


def _colours(count: int) -> list:
    """Distinct colours for `count` series: the default ten, then tab20's dark shades before its
    light ones (in tab20's own order each colour's light twin comes next, so a sweep's clean arm
    and its first severity looked alike)."""
    if count <= 10:
        return [f"C{i}" for i in range(count)]
    cmap = plt.get_cmap("tab20")
    order = list(range(0, 20, 2)) + list(range(1, 20, 2))
    return [cmap(order[i % 20]) for i in range(count)]


# One polar chart stays readable for this many runs; beyond, each run gets a small chart of its own
# (with the first run in grey behind it), so no line hides under another.
RADAR_OVERLAID_UP_TO = 6
_MARKERS = ["o", "s", "^", "D", "v", "P"]
_DASHES = ["-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1))]


def _polar(axes, angles: list[float], small: bool = False) -> None:
    axes.set_xticks(angles, SHORT, fontsize=6 if small else 9)
    axes.tick_params(axis="x", pad=2 if small else 10)  # names clear of the 100% ring
    axes.set_ylim(0, 100)
    axes.set_yticks([25, 50, 75, 100], ["", "", "", ""] if small else ["25", "50", "75", "100"], fontsize=6, color="#6b7785")
    axes.set_rlabel_position(360 / len(SHORT) / 2)  # between the first two names, not on a spoke


def radar(series: dict[str, list[float | None]]) -> str:
    """The 7 subtask accuracies of each run: up to RADAR_OVERLAID_UP_TO runs on one polar chart,
    each with its own colour, marker and dash (two runs with equal figures stay both visible);
    more runs as small multiples, one chart per run over the first run in grey."""
    angles = np.linspace(0, 2 * np.pi, len(SHORT), endpoint=False).tolist()
    closed = lambda values: [v if v is not None else 0.0 for v in values] + [values[0] if values[0] is not None else 0.0]  # noqa: E731
    if len(series) <= RADAR_OVERLAID_UP_TO:
        figure = plt.figure(figsize=(5.6, 4.4))
        axes = figure.add_subplot(polar=True)
        for index, ((name, values), colour) in enumerate(zip(series.items(), _colours(len(series)))):
            axes.plot(angles + angles[:1], closed(values), linewidth=1.5, label=name, color=colour, linestyle=_DASHES[index], marker=_MARKERS[index], markersize=4)
            axes.fill(angles + angles[:1], closed(values), alpha=0.05, color=colour)
        _polar(axes, angles)
        axes.legend(loc="upper left", bbox_to_anchor=(1.12, 1.0), fontsize=7, frameon=False)
        return _svg(figure)
    columns = 4
    rows = -(-len(series) // columns)
    figure = plt.figure(figsize=(2.1 * columns, 2.3 * rows))
    first = next(iter(series.values()))
    for index, ((name, values), colour) in enumerate(zip(series.items(), _colours(len(series)))):
        axes = figure.add_subplot(rows, columns, index + 1, polar=True)
        if index:
            axes.plot(angles + angles[:1], closed(first), linewidth=1.0, color="#9aa3ad")
        axes.plot(angles + angles[:1], closed(values), linewidth=1.5, color=colour, marker="o", markersize=2.5)
        axes.fill(angles + angles[:1], closed(values), alpha=0.12, color=colour)
        _polar(axes, angles, small=True)
        axes.set_title(name if len(name) <= 34 else name[:33] + "…", fontsize=7, pad=12)
    figure.tight_layout()
    return _svg(figure)


def grouped_bars(datasets: list[str], series: dict[str, list[float | None]], ylabel: str = "average accuracy %") -> str:
    figure, axes = plt.subplots(figsize=(max(4.5, 1.2 * len(datasets) + 2), 3.2))
    width = 0.8 / max(1, len(series))
    for offset, ((name, values), colour) in enumerate(zip(series.items(), _colours(len(series)))):
        x = np.arange(len(datasets)) + offset * width - 0.4 + width / 2
        axes.bar(x, [v if v is not None else 0 for v in values], width, label=name, color=colour)
    axes.set_xticks(np.arange(len(datasets)), datasets)
    axes.set_ylabel(ylabel)
    axes.set_ylim(0, 100)
    axes.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _svg(figure)


def relative_luminance(rgb: tuple[float, float, float]) -> float:
    """WCAG 2 relative luminance of an sRGB colour with channels in 0..1."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def text_colour(background: tuple[float, float, float]) -> str:
    """Black or white, whichever contrasts more with the cell (WCAG contrast ratio)."""
    luminance = relative_luminance(background)
    return "black" if (luminance + 0.05) / 0.05 >= 1.05 / (luminance + 0.05) else "white"


def heatmap(rows: list[str], values: np.ndarray, title: str) -> str:
    """Accuracy by category (rows) × subtask (columns); 0% is coloured as 0%, and a cell with no
    questions is grey and marked with a dash."""
    figure, axes = plt.subplots(figsize=(6.5, 0.32 * len(rows) + 1.4))
    axes.set_facecolor("#d9d9d9")  # what shows through masked (no-question) cells
    masked = np.ma.masked_invalid(values)
    image = axes.imshow(masked, cmap="RdYlGn", vmin=0, vmax=100, aspect="auto")
    axes.set_xticks(range(len(SHORT)), SHORT)
    axes.set_yticks(range(len(rows)), rows, fontsize=7)
    for (r, c), value in np.ndenumerate(values):
        background = (0.85, 0.85, 0.85) if np.isnan(value) else image.cmap(image.norm(value))[:3]
        axes.text(c, r, "–" if np.isnan(value) else f"{value:.0f}", ha="center", va="center", fontsize=7, color=text_colour(background))
    axes.set_title(title, fontsize=9)
    figure.colorbar(image, ax=axes, fraction=0.03)
    return _svg(figure)


def overkill_miss(points: dict[str, tuple[float, float]]) -> str:
    """Detection errors of each run: overkill (normal called defective) against miss. Runs are
    told apart by colour in a legend (labels written beside the points overlap as soon as two
    runs land close); runs on exactly the same point are set slightly apart so each stays visible."""
    figure, axes = plt.subplots(figsize=(6.2, 3.6))
    seen: dict[tuple[float, float], int] = {}
    for (name, (overkill, miss)), colour in zip(points.items(), _colours(len(points))):
        twin = seen.get((overkill, miss), 0)
        seen[(overkill, miss)] = twin + 1
        angle = 2.4 * twin  # a small spiral around the shared point
        dx, dy = (1.2 * np.sqrt(twin) * np.cos(angle), 1.2 * np.sqrt(twin) * np.sin(angle)) if twin else (0.0, 0.0)
        axes.scatter([overkill + dx], [miss + dy], s=36, color=colour, label=name, edgecolors="white", linewidths=0.5)
    axes.set_xlim(-3, 103)
    axes.set_ylim(-3, 103)
    axes.plot([0, 100], [100, 0], linestyle=":", color="grey", linewidth=0.8)  # chance: a coin flip
    axes.set_xlabel("overkill % (normal images called defective)")
    axes.set_ylabel("miss % (defects not found)")
    axes.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _svg(figure)


def curves(series: dict[str, tuple[np.ndarray, np.ndarray]], xlabel: str, ylabel: str, x_limit: float = 1.0) -> str:
    figure, axes = plt.subplots(figsize=(4.2, 3.6))
    for (name, (x, y)), colour in zip(series.items(), _colours(len(series))):
        axes.plot(x, y, linewidth=1.2, label=name, color=colour)
    axes.set_xlim(0, x_limit)
    axes.set_ylim(0, 1)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.legend(fontsize=6, frameon=False)
    return _svg(figure)


def severity_curves(severities: list[int], series: dict[str, tuple[list, list, list]], title: str) -> str:
    """Accuracy against degradation severity, one line per subtask, 95% intervals as error bars."""
    figure, axes = plt.subplots(figsize=(6.2, 3.6))
    short = SHORT + ["Average"]
    columns = list(series)
    for index, (name, (values, lows, highs)) in enumerate(series.items()):
        x = np.array(severities, float) + (index - len(columns) / 2) * 0.03  # a nudge keeps bars apart
        y = np.array([np.nan if v is None else v for v in values], float)
        low = np.array([np.nan if v is None else v for v in lows], float)
        high = np.array([np.nan if v is None else v for v in highs], float)
        errors = np.nan_to_num(np.stack([y - low, high - y]), nan=0.0).clip(min=0)
        label = short[index] if len(columns) == len(short) else name
        axes.errorbar(x, y, yerr=errors, marker="o", markersize=3, linewidth=2.2 if name == "Average" else 1.0, capsize=2, label=label)
    axes.set_xticks(severities)
    axes.set_xlabel("severity")
    axes.set_ylabel("accuracy %")
    axes.set_ylim(0, 100)
    axes.set_title(title, fontsize=9)
    axes.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _svg(figure)


def plain_label(text: str) -> str:
    """Chart labels: matplotlib copies label text into SVG comments, which are inserted unescaped."""
    import re

    return re.sub(r"[<>&\-]", " ", text)
