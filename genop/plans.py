"""The rehabilitation plan (genoptræningsplan, Health Act §84) and its two encodings.

One domain model, ``Plan``, read from JSON or from genop's MedCom-style XML
(docs/PLAN_XML.md); the input contract is PLAN_FORMAT.md. Unknown extra fields are kept.

Every problem becomes a ``PlanError`` with a stable code and a message naming the field,
so the file can be quarantined with a reason a caseworker understands. A plan lacking one
of the three annex-4 descriptions *is* parsed: it is not an order (agreement "Case
lifecycle" 1), which ``Plan.missing_descriptions`` reports. Checks that need the business
date or the agreement configuration (discharge in the future, diagnosis group) live
elsewhere.

The CPR digits of a valid plan never appear in a message, a ``repr`` or a traceback.
"""

from __future__ import annotations

import calendar
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Annotated, Any, Literal, get_args

from lxml import etree
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, ValidationError
from pydantic import field_validator, model_validator

from genop.config import Limits
from genop.cpr import MONTH_NAMES, has_cpr_date_shape, parse_cpr, redact_cpr
from genop.errors import InvalidCPR, PlanError
from genop.plan_text import (JSON_KINDS, MAX_DEPTH, check_lengths, check_text, decoded_head, is_plan_file,
                             json_scalar_kind, load_json, other_unicode_encoding, plan_file_problem, printable)

__all__ = ["ANNEX4_FIELDS", "LEVELS", "Plan", "check_plan_limits", "is_plan_file", "parse_plan",
           "parse_plan_json", "parse_plan_xml", "plan_file_problem"]

Level = Literal["basal", "avanceret", "specialiseret", "rehabilitering_specialiseret", "selvtraening"]
LEVELS: tuple[str, ...] = get_args(Level)
ANNEX4_FIELDS = ("function_before", "function_at_discharge", "rehab_need")
XML_NAMESPACE = "urn:genop:medcom-style:genoptraeningsplan:1"
XML_ROOT = "Genoptraeningsplan"

_BOM = b"\xef\xbb\xbf"
_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
_SKS_CODE = re.compile(r"[A-Z0-9]+")
_DATETIME_EXAMPLE = "(write e.g. 2026-11-02T14:10:00+01:00)"


# --- field types -------------------------------------------------------------------

def _iso_date(value: Any) -> Any:
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    match = _ISO_DATE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise ValueError("is not a date (write YYYY-MM-DD)")
    year, month, day = (int(part) for part in match.groups())
    if not 1 <= month <= 12:
        raise ValueError(f"is not a valid date (month {month})")
    if year < 1:
        raise ValueError("is not a valid date (year 0)")
    if not 1 <= day <= calendar.monthrange(year, month)[1]:
        raise ValueError(f"is not a valid date (day {day} does not exist in {MONTH_NAMES[month]} {year})")
    return date(year, month, day)


def _aware_datetime(value: Any) -> Any:
    moment = value
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            moment = None
    if value is not None and not isinstance(moment, datetime):
        raise ValueError(f"is not a date and time {_DATETIME_EXAMPLE}")
    if moment is not None and moment.utcoffset() is None:
        raise ValueError(f"has no time zone {_DATETIME_EXAMPLE}")
    return moment


def _blank_to_none(value: Any) -> Any:
    return None if isinstance(value, str) and not value.strip() else value


def _null_to(default: Any) -> Callable[[Any], Any]:
    return lambda value: default if value is None else value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
AwareDateTime = Annotated[datetime, BeforeValidator(_aware_datetime)]
RequiredText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
OptionalText = Annotated[str | None, BeforeValidator(_blank_to_none)]
Description = Annotated[str, BeforeValidator(_null_to(""))]
Flag = Annotated[bool, BeforeValidator(_null_to(False))]


class _Part(BaseModel):
    """Unknown extra fields are kept at every level (PLAN_FORMAT.md)."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)


# --- the model ---------------------------------------------------------------------

class Address(_Part):
    street: OptionalText = None
    postcode: OptionalText = None
    city: OptionalText = None


class Citizen(_Part):
    cpr: str = Field(repr=False)
    name: RequiredText
    address: Address | None = None
    phone: OptionalText = None
    """The citizen's phone, for the transport provider's driver (agreement §9)."""
    municipality_code: str

    @field_validator("cpr", mode="before")
    @classmethod
    def _normalise_cpr(cls, value: Any) -> Any:
        return value if value is None else parse_cpr(value).digits

    @field_validator("municipality_code", mode="before")
    @classmethod
    def _three_digits(cls, value: Any) -> Any:
        if value is None or (isinstance(value, str) and re.fullmatch(r"[0-9]{3}", value.strip())):
            return value
        raise PlanError(
            f"The plan's citizen.municipality_code {_show(value)} must be exactly 3 digits "
            "(e.g. 185 Tårnby, 155 Dragør, 101 Copenhagen)",
            code="invalid_municipality_code",
        )

    @property
    def birth_date(self) -> date:
        return parse_cpr(self.cpr).birth_date


class Hospital(_Part):
    name: RequiredText
    department: OptionalText = None


class Diagnosis(_Part):
    system: Annotated[str, BeforeValidator(lambda v: _blank_to_none(v) or "ICD-10")] = "ICD-10"
    code: RequiredText
    text: OptionalText = None

    @field_validator("code", mode="before")
    @classmethod
    def _sks_form(cls, value: Any) -> Any:
        """SKS form: upper case without the dot, ``ds72.0`` → ``DS720`` (PLAN_FORMAT.md)."""
        code = value.strip().upper().replace(".", "") if isinstance(value, str) else value
        if code and isinstance(code, str) and not _SKS_CODE.fullmatch(code):
            raise ValueError("is not a diagnosis code in SKS form (letters and digits, e.g. DS720)")
        return code


class Plan(_Part):
    """A hospital's rehabilitation plan; ``plan_id`` is the idempotency key."""

    plan_id: RequiredText
    issued_at: AwareDateTime | None = None
    discharge_date: IsoDate
    hospital: Hospital | None = None
    citizen: Citizen
    level: Annotated[Level, BeforeValidator(lambda v: v.strip().lower().replace("æ", "ae")
                                            if isinstance(v, str) else v)]
    diagnoses: list[Diagnosis] = Field(min_length=1)
    diagnosis_group: OptionalText = None
    urgent: Flag = False
    start_by: IsoDate | None = None
    transport_first_session: Flag = False
    transport_needs: OptionalText = None
    """The mobility needs for transport the hospital states (wheelchair, help to the car, …): the
    only health-related text a transport booking carries (agreement §6, §9)."""
    function_before: Description = ""
    function_at_discharge: Description = ""
    rehab_need: Description = ""

    @field_validator("plan_id")
    @classmethod
    def _no_cpr_in_plan_id(cls, value: str) -> str:
        """The plan_id becomes part of genop's case keys and may be shown where personal data
        must not be (Prefect), so an id shaped like a CPR number is refused, not stored."""
        if has_cpr_date_shape(value):
            raise PlanError("The plan's plan_id holds ten digits shaped like a CPR number (DDMMYY-SSSS); a "
                            "plan_id must not carry personal data: ask the hospital for its plan identifier",
                            code="cpr_shaped_plan_id")
        return value

    @model_validator(mode="after")
    def _dates_in_order(self) -> Plan:
        if self.start_by is not None and self.start_by < self.discharge_date:
            raise PlanError(f"The plan's start_by ({self.start_by}) is before its discharge_date "
                            f"({self.discharge_date})", code="start_by_before_discharge")
        if self.citizen.birth_date > self.discharge_date:
            raise InvalidCPR(f"The citizen's CPR gives a birth date ({self.citizen.birth_date}) after the "
                             f"discharge_date ({self.discharge_date})")
        return self

    def missing_descriptions(self) -> list[str]:
        """The annex-4 descriptions (Bilag 4) that are empty; such a plan is not an order."""
        return [name for name in ANNEX4_FIELDS if not getattr(self, name).strip()]

    def to_document(self) -> dict[str, Any]:
        """The plan as a JSON-safe dict, extra fields included."""
        return self.model_dump(mode="json")


_PLAN_KEYS = frozenset(Plan.model_fields)

_SINGLE_LINE = frozenset({
    ("plan_id",), ("issued_at",), ("discharge_date",), ("level",), ("diagnosis_group",), ("start_by",),
    ("hospital", "name"), ("hospital", "department"),
    ("citizen", "cpr"), ("citizen", "name"), ("citizen", "municipality_code"), ("citizen", "phone"),
    ("citizen", "address", "street"), ("citizen", "address", "postcode"), ("citizen", "address", "city"),
    ("diagnoses", "*", "system"), ("diagnoses", "*", "code"),
})
"""Fields of one line: no tab or line break inside (a name or an identifier)."""

_LENGTH_KINDS: dict[tuple[str, ...], str] = {
    ("plan_id",): "plan_id",
    **{loc: "short_text" for loc in _SINGLE_LINE if loc != ("plan_id",)},
    **{(name,): "description" for name in ANNEX4_FIELDS},
    ("diagnoses", "*", "text"): "description",
}
"""Which bound of ``limits.max_chars`` applies to a field; any other text is ``other_text``."""


def check_plan_limits(plan: Plan, limits: Limits) -> None:
    """Every text within its bound (``limits.max_chars``; PLAN_FORMAT.md states none, so the
    bounds are genop's choice, in config): a 100,000-character ``plan_id`` is refused."""
    check_lengths(plan.to_document(), (), limits, _LENGTH_KINDS)





# --- entry points ------------------------------------------------------------------

def parse_plan(content: bytes, filename: str | None = None) -> Plan:
    """A plan file in either encoding, told apart by its first non-blank character.

    Plans are UTF-8 (a JSON plan must be, RFC 8259). UTF-16 and UTF-32 are recognised, by
    byte-order mark or by their zero bytes, and refused naming the encoding — also for XML,
    whose parser could read them: intake records a document's kind by its first byte, and
    one rule for both encodings is what a hospital can follow.
    """
    the_file = f"The file '{printable(redact_cpr(filename))}'" if filename else "The file"
    encoding = other_unicode_encoding(content)
    if encoding is not None:
        name, codec = encoding
        plan_kind = "an XML plan" if decoded_head(content, codec) == "<" else "a JSON plan"
        raise PlanError(f"{the_file} is written in {name}; genop reads plans in UTF-8 only, so {plan_kind} in "
                        f"{name.split(' ')[0]} is refused: ask the sender to save it as UTF-8",
                        code="unsupported_encoding")
    body = content.removeprefix(_BOM).lstrip()
    if not body:
        raise PlanError(f"{the_file} is empty", code="empty_file")
    if body.startswith(b"{"):
        return parse_plan_json(content)
    if body.startswith(b"<"):
        return parse_plan_xml(content)
    if body.startswith(b"["):
        raise PlanError(f"{the_file} is not a plan: it starts with '[' (a list); "
                        "a JSON plan is one object '{…}'", code="not_a_plan")
    kind = json_scalar_kind(body)
    if kind is not None:
        raise PlanError(f"{the_file} is not a plan: it is a JSON document holding {kind}, "
                        "not an object '{…}'", code="not_a_plan")
    raise PlanError(f"{the_file} is not a plan: it is neither JSON (starting with '{{') "
                    "nor XML (starting with '<')", code="not_a_plan")


def parse_plan_json(content: bytes) -> Plan:
    if other_unicode_encoding(content) is not None:
        return parse_plan(content)
    try:
        text = content.removeprefix(_BOM).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PlanError(f"The plan is not UTF-8 text (byte {content[exc.start]:#04x} at position {exc.start}); "
                        "a JSON plan must be UTF-8: ask the sender to save it as UTF-8",
                        code="unsupported_encoding") from None
    if not text.strip():
        raise PlanError("The plan file is empty", code="empty_file")
    try:
        data = load_json(text)
    except json.JSONDecodeError as exc:
        raise PlanError(f"The plan is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                        code="malformed_json") from None
    except RecursionError:
        raise PlanError(f"The plan is nested too deeply (more than {MAX_DEPTH} levels of objects and lists)",
                        code="too_deeply_nested") from None
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else JSON_KINDS.get(type(data), "a single value")
        raise PlanError(f"The JSON document is not a plan: it is {kind}, not an object", code="not_a_plan")
    check_text(data, (), _SINGLE_LINE)
    if not _PLAN_KEYS & data.keys():
        raise PlanError("The JSON object is not a plan: it has none of the plan's fields "
                        "(plan_id, discharge_date, citizen, level, diagnoses, …)", code="not_a_plan")
    return _validate(data, lambda loc: "")


def parse_plan_xml(content: bytes) -> Plan:
    """genop's MedCom-style XML (docs/PLAN_XML.md). No network, no DTD, no entity expansion."""
    if not content.removeprefix(_BOM).strip():
        raise PlanError("The plan file is empty", code="empty_file")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                             load_dtd=False, remove_comments=True, remove_pis=True)
    try:
        root = etree.fromstring(content, parser)
    except etree.XMLSyntaxError as exc:
        line, column = exc.position
        reason = redact_cpr(re.sub(r", line \d+, column \d+$", "", exc.msg))
        raise PlanError(f"The plan is not well-formed XML (line {line}, column {column}): {reason}",
                        code="malformed_xml") from None
    for entity in root.iter(etree.Entity):
        raise PlanError(f"The plan's XML uses the entity reference {entity.text} (line {entity.sourceline}); "
                        "genop does not expand XML entities, so write the text itself", code="malformed_xml")
    name = etree.QName(root)
    if name.localname != XML_ROOT or name.namespace not in (XML_NAMESPACE, None):
        found = f"<{name.localname}>" + (f" in namespace {name.namespace}" if name.namespace else "")
        raise PlanError(f"The XML document is not a plan: its root element is {found}, expected "
                        f'<{XML_ROOT} xmlns="{XML_NAMESPACE}">', code="not_a_plan")
    reader = _XmlReader(name.namespace)
    data = reader.group(root, _PLAN_XML, ())
    check_text(data, (), _SINGLE_LINE)
    return _validate(data, reader.where)


# --- the XML encoding (docs/PLAN_XML.md) -------------------------------------------

@dataclass(frozen=True)
class _Group:
    """An XML element holding the fields of one nested part of the plan."""

    field: str
    children: Mapping[str, str | _Group]
    repeated: bool = False


_ADDRESS_XML = _Group("address", {"StreetName": "street", "PostCodeIdentifier": "postcode",
                                  "DistrictName": "city"})
_PLAN_XML: Mapping[str, str | _Group] = {
    "PlanIdentifier": "plan_id",
    "IssueDateTime": "issued_at",
    "DischargeDate": "discharge_date",
    "Sender": _Group("hospital", {"OrganisationName": "name", "DepartmentName": "department"}),
    "Patient": _Group("citizen", {"CivilRegistrationNumber": "cpr", "PersonName": "name",
                                  "Address": _ADDRESS_XML, "TelephoneSubscriberIdentifier": "phone",
                                  "MunicipalityCode": "municipality_code"}),
    "Level": "level",
    "Diagnosis": _Group("diagnoses", {"CodeSystem": "system", "Code": "code", "Text": "text"},
                        repeated=True),
    "DiagnosisGroup": "diagnosis_group",
    "Urgent": "urgent",
    "StartByDate": "start_by",
    "TransportFirstSession": "transport_first_session",
    "TransportNeeds": "transport_needs",
    "FunctionBefore": "function_before",
    "FunctionAtDischarge": "function_at_discharge",
    "RehabilitationNeed": "rehab_need",
}


def _field_of(spec: str | _Group) -> str:
    return spec if isinstance(spec, str) else spec.field


@dataclass
class _XmlReader:
    """Turns the plan element into the dict ``Plan`` validates, noting where each field was."""

    namespace: str | None
    lines: dict[tuple[str | int, ...], int] = field(default_factory=dict)

    def group(self, element: etree._Element, spec: Mapping[str, str | _Group],
              loc: tuple[str | int, ...]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        xml_names = {_field_of(child): name for name, child in spec.items()}
        for child in element.iterchildren(tag=etree.Element):
            name = etree.QName(child)
            child_spec = spec.get(name.localname) if name.namespace == self.namespace else None
            if child_spec is None:
                if name.localname in xml_names:
                    raise PlanError(f"The plan's XML has <{name.localname}> (line {child.sourceline}); in XML "
                                    f"this field is written <{xml_names[name.localname]}>", code="invalid_field")
                _put(data, name.localname, _any_value(child))
                continue
            key = _field_of(child_spec)
            if isinstance(child_spec, _Group) and child_spec.repeated:
                items = data.setdefault(key, [])
                child_loc = (*loc, key, len(items))
                items.append(self.group(child, child_spec.children, child_loc))
            else:
                child_loc = (*loc, key)
                if child_loc in self.lines:
                    raise PlanError(f"The plan has <{name.localname}> twice (line {child.sourceline}); "
                                    "it may appear only once", code="duplicate_key")
                if isinstance(child_spec, _Group):
                    data[key] = self.group(child, child_spec.children, child_loc)
                elif text := _leaf_text(child):
                    data[key] = text
            self.lines[child_loc] = child.sourceline or 0
        return data

    def where(self, loc: tuple[str | int, ...]) -> str:
        """`` (XML Patient/MunicipalityCode, line 9)``: where a field is, or would be, in the XML."""
        path = _XML_PATHS.get(tuple(part for part in loc if isinstance(part, str)))
        if path is None:
            return ""
        return f" (XML {path}, line {self.lines[loc]})" if loc in self.lines else f" (XML {path})"


def _xml_paths(spec: Mapping[str, str | _Group], loc: tuple[str, ...] = (), xml: str = "") -> Any:
    for name, child in spec.items():
        yield (*loc, _field_of(child)), xml + name
        if isinstance(child, _Group):
            yield from _xml_paths(child.children, (*loc, child.field), f"{xml}{name}/")


_XML_PATHS: dict[tuple[str, ...], str] = dict(_xml_paths(_PLAN_XML))


def _leaf_text(element: etree._Element) -> str:
    if len(element):
        raise PlanError(f"The plan's <{etree.QName(element).localname}> (line {element.sourceline}) "
                        "must hold text, not other elements", code="invalid_field")
    return (element.text or "").strip()


def _any_value(element: etree._Element) -> Any:
    """An unknown element kept as an extra field: its text, or a dict of its children."""
    if not len(element):
        return (element.text or "").strip()
    value: dict[str, Any] = {}
    for child in element.iterchildren(tag=etree.Element):
        _put(value, etree.QName(child).localname, _any_value(child))
    return value


def _put(data: dict[str, Any], key: str, value: Any) -> None:
    if key not in data:
        data[key] = value
    elif isinstance(data[key], list):
        data[key].append(value)
    else:
        data[key] = [data[key], value]


# --- from pydantic's errors to a caseworker's message ------------------------------

_OBJECT = "must be a group of fields (an object)"
_REASONS = {"bool_parsing": "must be true or false", "bool_type": "must be true or false",
            "string_type": "must be text", "list_type": "must be a list",
            "model_type": _OBJECT, "model_attributes_type": _OBJECT, "dict_type": _OBJECT}


def _validate(data: dict[str, Any], where: Callable[[tuple[str | int, ...]], str]) -> Plan:
    """``Plan.model_validate`` with the first of pydantic's errors told as a ``PlanError``.

    Raised outside the ``except`` block so that pydantic's own text, which quotes the input
    (perhaps a CPR number), is not chained onto the error and its tracebacks.
    """
    try:
        return Plan.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    first = errors[0]
    loc = tuple(first["loc"])
    path = ".".join(str(part) for part in loc)
    kind, value = first["type"], first.get("input")
    if kind == "missing" or value is None:
        code, message = "missing_field", f"The plan has no {path}"
    elif kind in ("string_too_short", "too_short"):
        code, message = "missing_field", f"The plan has no {path} (it is empty)"
    elif kind == "literal_error" and loc == ("level",):
        code = "unknown_level"
        message = f"The plan's level {_show(value)} is not a known level (allowed: {', '.join(LEVELS)})"
    else:
        reason = _REASONS.get(kind, f"is invalid ({first['msg']})")
        if kind == "value_error":
            reason = str(first["ctx"]["error"])
        shown = "" if _personal(loc) else f" {_show(value)}"
        code, message = "invalid_field", f"The plan's {path}{shown} {reason}"
    message += where(loc)
    if len(errors) > 1:
        message += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    raise PlanError(message, code=code)


def _personal(loc: tuple[str | int, ...]) -> bool:
    """The citizen's fields (name, CPR, address) are never quoted in a message, even when wrong."""
    return loc[:1] == ("citizen",) and loc != ("citizen", "municipality_code")


def _show(value: Any) -> str:
    """A field value as quoted in a message: short, and with anything CPR-shaped redacted."""
    if isinstance(value, dict):
        return "(an object)"
    if isinstance(value, list):
        return "(a list)"
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = printable(redact_cpr(text))
    return f"'{text}'" if isinstance(value, str) else text

