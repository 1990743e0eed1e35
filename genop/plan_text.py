"""A plan file as bytes and text, before it is a plan: encodings, JSON values, characters, lengths.

The rules here hold for every key and text of a plan document, whichever encoding it came
in (issue 17): JSON is UTF-8 (RFC 8259), a JSON key is given once, a number is a number a
database can store, text is storable Unicode without control characters, nesting and
lengths are bounded. ``genop.plans`` says which fields are names (one line) and which
bound of ``limits.max_chars`` applies to each; this module applies the rules.

No message quotes a CPR number: keys and values are shown through ``printable`` after
``redact_cpr``, and most messages name the field, not its value.
"""

from __future__ import annotations

import codecs
import json
import unicodedata
from collections.abc import Collection, Mapping
from typing import Any

from genop.config import Limits
from genop.cpr import redact_cpr
from genop.errors import PlanError

UTF8_BOM = codecs.BOM_UTF8
# Longest first: the UTF-32 LE mark begins with the UTF-16 LE one.
_OTHER_BOMS = ((codecs.BOM_UTF32_LE, "UTF-32 (little-endian)", "utf-32"),
               (codecs.BOM_UTF32_BE, "UTF-32 (big-endian)", "utf-32"),
               (codecs.BOM_UTF16_LE, "UTF-16 (little-endian)", "utf-16"),
               (codecs.BOM_UTF16_BE, "UTF-16 (big-endian)", "utf-16"))
PLAN_SUFFIXES = (".json", ".xml")
MAX_DEPTH = 32
"""Objects and lists nested deeper than this are refused (``too_deeply_nested``): a plan is
four levels deep; the bound keeps a hostile file from exhausting the parser's stack."""
MAX_NUMBER_DIGITS = 30
"""A JSON number with more digits than this is refused (``invalid_number``); no plan field is a
number, and Python refuses integers of over 4,300 digits with an exception of its own."""
JSON_KINDS = {int: "a number", float: "a number", bool: "true or false", str: "a text string",
               type(None): "null"}

# --- bytes, encodings and JSON values -----------------------------------------------

def other_unicode_encoding(content: bytes) -> tuple[str, str] | None:
    """(name, codec) when the file is UTF-16 or UTF-32: by its byte-order mark or, without
    one, by the zero bytes its first two ASCII characters leave (RFC 4627 §3)."""
    for bom, name, codec in _OTHER_BOMS:
        if content.startswith(bom):
            return f"{name} with a byte-order mark", codec
    zeros = tuple(byte == 0 for byte in content[:4])
    return _BOMLESS.get(zeros) if len(zeros) == 4 else None


_BOMLESS = {(True, True, True, False): ("UTF-32 (big-endian)", "utf-32-be"),
            (False, True, True, True): ("UTF-32 (little-endian)", "utf-32-le"),
            (True, False, True, False): ("UTF-16 (big-endian)", "utf-16-be"),
            (False, True, False, True): ("UTF-16 (little-endian)", "utf-16-le")}


def decoded_head(content: bytes, codec: str) -> str:
    """The first non-blank character of a UTF-16/32 file ("" when there is none)."""
    text = codecs.decode(content[:256], codec, errors="ignore").lstrip("\ufeff \t\r\n")
    return text[:1]


def json_scalar_kind(body: bytes) -> str | None:
    """"a number", "null", … when ``body`` is a JSON document holding a single value."""
    try:
        value = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    return JSON_KINDS.get(type(value))


def load_json(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant,
                      parse_float=_bounded_float, parse_int=_bounded_int)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object with a key given twice is refused: JSON parsers disagree on which one wins."""
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise PlanError(f"The plan has the field '{printable(redact_cpr(key))}' twice in one object; "
                            "each field may appear only once", code="duplicate_key")
        data[key] = value
    return data


def _no_constant(name: str) -> Any:
    raise PlanError(f"The plan holds the number {name}, which JSON does not allow", code="invalid_number")


def _check_digits(text: str) -> None:
    digits = sum(character.isdigit() for character in text)
    if digits > MAX_NUMBER_DIGITS:
        raise PlanError(f"The plan holds a number of {digits:,} digits; genop accepts numbers of at most "
                        f"{MAX_NUMBER_DIGITS} digits (no plan field is a number)", code="invalid_number")


def _bounded_int(text: str) -> int:
    _check_digits(text)
    return int(text)


def _bounded_float(text: str) -> float:
    _check_digits(text)
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise PlanError(f"The plan holds a number too large to represent ({text[:20]})", code="invalid_number")
    return value


# --- characters and lengths ----------------------------------------------------------

_CONTROL_NAMES = {0x00: "NUL", 0x09: "a tab", 0x0A: "a line feed", 0x0D: "a carriage return", 0x1B: "escape",
                  0x7F: "delete"}
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_LINE_BREAKS = frozenset("\t\n\r\u2028\u2029\x0b\x0c\x85")


def field_pattern(loc: tuple[str | int, ...]) -> tuple[str, ...]:
    return tuple("*" if isinstance(part, int) else part for part in loc)


def field_path(loc: tuple[str | int, ...]) -> str:
    return ".".join(printable(redact_cpr(str(part))) for part in loc)


def check_text(value: Any, loc: tuple[str | int, ...], single_line: Collection[tuple[str, ...]]) -> None:
    """Every key and text of the document is storable Unicode without control characters.

    A lone surrogate (JSON ``"\\ud800"``) cannot be written as UTF-8 at all (``invalid_text``);
    NUL cannot be stored by PostgreSQL, and control or bidi-override characters in a name
    hide what a caseworker reads (``invalid_characters``). Tabs and line breaks are fine in
    the descriptions, not in names and identifiers.
    """
    if len(loc) > MAX_DEPTH:
        raise PlanError(f"The plan is nested too deeply (more than {MAX_DEPTH} levels of objects and lists)",
                        code="too_deeply_nested")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_string(key, what="A field name" + (f" in {field_path(loc)}" if loc else ""), single_line=True)
            check_text(item, (*loc, key), single_line)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_text(item, (*loc, index), single_line)
    elif isinstance(value, str):
        _check_string(value, what=f"The plan's {field_path(loc)}", single_line=field_pattern(loc) in single_line)


def _check_string(text: str, *, what: str, single_line: bool) -> None:
    stripped = text.strip() if single_line else text
    for position, character in enumerate(stripped, start=1):
        point = ord(character)
        if 0xD800 <= point <= 0xDFFF:
            raise PlanError(f"{what} holds text that is "
                            f"not valid Unicode (an unpaired surrogate U+{point:04X} at character {position}, "
                            "e.g. from a JSON escape); it cannot be stored: ask the sender for a corrected file",
                            code="invalid_text")
        allowed_break = character in _LINE_BREAKS and not single_line and character not in "\x0b\x0c\x85"
        if ((unicodedata.category(character) == "Cc" and not allowed_break)
                or character in _BIDI_CONTROLS or (single_line and character in _LINE_BREAKS)):
            name = _CONTROL_NAMES.get(point) or unicodedata.name(character, "a control character").lower()
            raise PlanError(f"{what} holds the character "
                            f"U+{point:04X} ({name}) at character {position}; "
                            + ("a name or identifier must be one line of printable text" if single_line else
                               "only printable text, tabs and line breaks are allowed"),
                            code="invalid_characters")


def check_lengths(value: Any, loc: tuple[str | int, ...], limits: Limits, kinds: Mapping[tuple[str, ...], str]) -> None:
    """Every key and text within its bound of ``limits.max_chars``; ``kinds`` says which bound
    applies to a field (any other text, and every key, is ``other_text``)."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_length(key, loc, limits, "other_text", key=True)
            check_lengths(item, (*loc, key), limits, kinds)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_lengths(item, (*loc, index), limits, kinds)
    elif isinstance(value, str):
        _check_length(value, loc, limits, kinds.get(field_pattern(loc), "other_text"))


def _check_length(text: str, loc: tuple[str | int, ...], limits: Limits, kind: str, *, key: bool = False) -> None:
    bound = getattr(limits.max_chars, kind)
    if len(text) > bound:
        what = (f"A field name{' in ' + field_path(loc) if loc else ''}" if key else f"The plan's {field_path(loc)}")
        raise PlanError(f"{what} is {len(text):,} characters long; at most {bound:,} are allowed "
                        f"(limits.max_chars.{kind})", code="field_too_long")


def printable(text: str) -> str:
    """``text`` safe to put in a message: unprintable characters escaped, at most 60 characters."""
    shown = "".join(c if c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF else f"\\u{ord(c):04x}" for c in text)
    return shown if len(shown) <= 60 else shown[:57] + "..."


# --- plan files named by an operator (`genop plan submit`) --------------------------

def plan_file_problem(name: str, head: bytes) -> str | None:
    """Why a file is not a plan file, judged by its name and first bytes; ``None`` if it is one.

    A plan file is named ``*.json`` or ``*.xml`` and starts, after a byte-order mark and
    blanks, like a JSON object or an XML element. ``genop plan submit`` copies nothing
    else into genop (``../../etc/passwd`` is refused, not quarantined).
    """
    if not name.lower().endswith(PLAN_SUFFIXES):
        return "is not a .json or .xml file"
    encoding = other_unicode_encoding(head)
    if encoding is not None:
        first = decoded_head(head, encoding[1])
    else:
        first = head.removeprefix(UTF8_BOM).lstrip()[:1].decode("ascii", errors="replace")
    if not first:
        return "is empty"
    if first not in "{<":
        return "does not start like a plan (a JSON object '{' or an XML element '<')"
    return None


def is_plan_file(name: str, head: bytes) -> bool:
    return plan_file_problem(name, head) is None
