"""The jinja2 environment over prompts/, and rendering templates into chat content parts.

Prompt templates are data: they decide where images go with `{{ image("query") }}` and where one
text part ends with `{{ part_break() }}`. Rendering yields an ordered list of text and image parts,
the shape every backend consumes.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from harness.errors import ConfigError
from harness.models.base import ContentPart, ImagePart, TextPart

_IMAGE = "\x00image:{}\x00"
_BREAK = "\x00break\x00"
_SENTINEL = re.compile(r"\x00(image:[^\x00]*|break)\x00")
# What a NUL in untrusted text (a question, an option, a category name) is shown as: only the
# template's own image(...) and part_break() may write the marker character.
_NUL_SHOWN_AS = "\ufffd"


class _Structure(str):
    """Prompt structure the template itself writes (an image slot, a part break)."""


def _as_text(value: Any) -> Any:
    """Jinja's finalize hook, applied to every {{ expression }}: values from data are text, never
    structure, so any NUL in them is replaced before the markers are parsed."""
    if isinstance(value, str) and not isinstance(value, _Structure) and "\x00" in value:
        return value.replace("\x00", _NUL_SHOWN_AS)
    return value


def prompts_dir() -> Path:
    """The prompt templates: $IADBENCH_PROMPTS_DIR; else prompts/ beside the packages (a checkout or
    an editable install); else harness/prompts/ inside an installed wheel (pyproject maps the
    top-level prompts/ folder there as package data)."""
    override = os.environ.get("IADBENCH_PROMPTS_DIR")
    here = Path(__file__).resolve().parents[1]  # the harness package (this module sits in harness/asking/)
    candidates = [Path(override)] if override else [here.parent / "prompts", here / "prompts"]
    for folder in candidates:
        if folder.is_dir():
            return folder
    raise ConfigError(
        f"prompt templates not found at {' or '.join(map(str, candidates))}; reinstall iadbench (pip install .) "
        "or point IADBENCH_PROMPTS_DIR at the prompts/ folder"
    )


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(prompts_dir())),
        undefined=jinja2.StrictUndefined,  # a missing variable is a bug in the caller, not empty text
        # HTML templates (report.html.j2) escape everything: model replies are untrusted text.
        # Prompt templates (.j2) must not: they are plain text sent to a model.
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2", "htm"), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,  # templates do not change during a run; don't stat them on every render
        finalize=_as_text,
    )
    env.globals["image"] = lambda name: _Structure(_IMAGE.format(str(name).replace("\x00", _NUL_SHOWN_AS)))
    env.globals["part_break"] = lambda: _Structure(_BREAK)
    return env


def render_text(template: str, **variables: Any) -> str:
    """Render a template that yields plain text (question texts, option texts)."""
    return environment().get_template(template).render(**variables).strip()


def render_raw(template: str, **variables: Any) -> str:
    """Render a template to text exactly, whitespace included (official prompt facts)."""
    return environment().get_template(template).render(**variables)


def render_parts(template: str, images: dict[str, ImagePart], *, exact: bool = False, **variables: Any) -> list[ContentPart]:
    """Render a template into content parts; `images` maps the names used in image(...) to parts.

    With `exact`, text between markers is kept byte for byte (only empty text is dropped): the
    official protocols' newlines and trailing spaces are part of what was sent."""
    rendered = environment().get_template(template).render(**variables)
    parts: list[ContentPart] = []
    position = 0
    append = _append_exact if exact else _append_text
    for marker in _SENTINEL.finditer(rendered):
        append(parts, rendered[position : marker.start()])
        token = marker.group(1)
        if token.startswith("image:"):
            name = token[len("image:") :]
            if name not in images:
                raise ConfigError(f"template {template} asks for image {name!r}, which the caller did not provide")
            parts.append(images[name])
        position = marker.end()
    append(parts, rendered[position:])
    return parts


def _append_text(parts: list[ContentPart], text: str) -> None:
    # Line breaks around markers are template layout, not prompt text; spaces are kept.
    text = text.strip("\n")
    if text.strip():
        parts.append(TextPart(text=text))


def _append_exact(parts: list[ContentPart], text: str) -> None:
    if text:
        parts.append(TextPart(text=text))
