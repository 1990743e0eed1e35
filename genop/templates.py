"""Rendering the Danish texts in ``templates/`` (mail, letters, documents).

StrictUndefined: a missing placeholder is an error, never an empty hole in a letter.
Autoescape is on for HTML.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from genop.settings import PROJECT_ROOT

TEMPLATES = PROJECT_ROOT / "templates"

MONTHS_DA = ("januar", "februar", "marts", "april", "maj", "juni", "juli", "august",
             "september", "oktober", "november", "december")


def danish_date(value: date | str | None) -> str:
    """2026-11-02 → "2. november 2026"."""
    if value is None:
        return "ikke angivet"
    day = date.fromisoformat(value) if isinstance(value, str) else value
    return f"{day.day}. {MONTHS_DA[day.month - 1]} {day.year}"


def yes_no(value: bool) -> str:
    return "ja" if value else "nej"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2", "xml", "xml.j2"),
                                     default_for_string=True),
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["da_date"] = danish_date
    env.filters["ja_nej"] = yes_no
    return env


def render(name: str, **context: Any) -> str:
    return environment().get_template(name).render(**context)
