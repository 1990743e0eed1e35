"""Writes the malformed-input corpus: one file per way a plan can be wrong, and expected.csv.

Run from the repository root: ``python tests/data/malformed/make_corpus.py``. The files
themselves are committed; this script only documents how they were made and rebuilds
them. Every person in them is made up (``Testperson Eksempel``); CPR numbers are the
project's example numbers or deliberately broken ones.

expected.csv has one row per file: ``file,code,mentions,what`` — the ``PlanError`` code
``genop.intake.read_plan_file`` must give, a piece of text its message must contain
(it names the problem), and what is wrong, in words.
"""

from __future__ import annotations

import codecs
import copy
import csv
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NAME = "Testperson Eksempel"
BASE: dict[str, Any] = {
    "plan_id": "GOP-TST-2026-000001",
    "issued_at": "2026-11-02T14:10:00+01:00",
    "discharge_date": "2026-11-02",
    "hospital": {"name": "Testhospitalet", "department": "Ortopædkirurgisk afd."},
    "citizen": {
        "cpr": "010145-1234",
        "name": NAME,
        "address": {"street": "Prøvevej 1", "postcode": "2770", "city": "Kastrup"},
        "municipality_code": "185",
    },
    "level": "basal",
    "diagnoses": [{"system": "ICD-10", "code": "DS720", "text": "Brud på lårbenshals"}],
    "diagnosis_group": "hip_fracture",
    "urgent": False,
    "start_by": "2026-11-09",
    "transport_first_session": True,
    "function_before": "Selvhjulpen.",
    "function_at_discharge": "Går med rollator.",
    "rehab_need": "Gangfunktion og balance.",
}
XML = """<?xml version="1.0" encoding="UTF-8"?>
<Genoptraeningsplan xmlns="urn:genop:medcom-style:genoptraeningsplan:1">
  <PlanIdentifier>GOP-TST-2026-000002</PlanIdentifier>
  <IssueDateTime>2026-11-02T14:10:00+01:00</IssueDateTime>
  <DischargeDate>2026-11-02</DischargeDate>
  <Sender>
    <OrganisationName>Testhospitalet</OrganisationName>
    <DepartmentName>Ortopædkirurgisk afd.</DepartmentName>
  </Sender>
  <Patient>
    <CivilRegistrationNumber>010145-1234</CivilRegistrationNumber>
    <PersonName>Testperson Eksempel</PersonName>
    <Address>
      <StreetName>Prøvevej 1</StreetName>
      <PostCodeIdentifier>2770</PostCodeIdentifier>
      <DistrictName>Kastrup</DistrictName>
    </Address>
    <MunicipalityCode>185</MunicipalityCode>
  </Patient>
  <Level>basal</Level>
  <Diagnosis>
    <CodeSystem>ICD-10</CodeSystem>
    <Code>DS720</Code>
    <Text>Brud på lårbenshals</Text>
  </Diagnosis>
  <DiagnosisGroup>hip_fracture</DiagnosisGroup>
  <Urgent>false</Urgent>
  <StartByDate>2026-11-09</StartByDate>
  <TransportFirstSession>true</TransportFirstSession>
  <FunctionBefore>Selvhjulpen.</FunctionBefore>
  <FunctionAtDischarge>Går med rollator.</FunctionAtDischarge>
  <RehabilitationNeed>Gangfunktion og balance.</RehabilitationNeed>
</Genoptraeningsplan>
"""
CASES: list[tuple[str, str, str, str, bytes]] = []


def case(file: str, code: str, mentions: str, what: str, content: bytes) -> None:
    CASES.append((file, code, mentions, what, content))


def plan(**changes: Any) -> dict[str, Any]:
    """``citizen__cpr="x"`` sets a nested field, ``diagnoses__0__code`` one in a list; ``...=DROP`` removes it."""
    document = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        target: Any = document
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if value is DROP:
            del target[int(leaf) if isinstance(target, list) else leaf]
        elif isinstance(target, list):
            target[int(leaf)] = value
        else:
            target[leaf] = value
    return document


DROP = object()


def js(document: Any, *, ascii_only: bool = False) -> bytes:
    return json.dumps(document, ensure_ascii=ascii_only, indent=2).encode("utf-8")


def jp(**changes: Any) -> bytes:
    return js(plan(**changes))


def text_of(**changes: Any) -> str:
    return jp(**changes).decode()


def xml(old: str, new: str, *, count: int = 1) -> bytes:
    assert old in XML, old
    return XML.replace(old, new, count).encode("utf-8")


def replaced(content: bytes, old: bytes, new: bytes) -> bytes:
    assert old in content, old
    return content.replace(old, new, 1)


# --- files that are empty, not JSON/XML, or not one JSON object ---------------------
GOOD = jp()
case("empty.json", "empty_file", "empty", "zero bytes", b"")
case("blank.json", "empty_file", "empty", "only blanks and line breaks", b"  \n\t\r\n")
case("bom-only.json", "empty_file", "empty", "a UTF-8 byte-order mark and a line break", codecs.BOM_UTF8 + b"\n")
case("blank.xml", "empty_file", "empty", "an XML file of blanks", b"\n\n")
case("pdf.json", "not_a_plan", "neither JSON", "a PDF under a .json name", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
case("number.json", "not_a_plan", "holding a number", "the JSON document 42", b"42")
case("null.json", "not_a_plan", "holding null", "the JSON document null", b"null\n")
case("string.json", "not_a_plan", "holding a text string", "a JSON string", b'"GOP-TST-2026-000001"')
case("true.json", "not_a_plan", "holding true or false", "the JSON document true", b"true")
case("negative-float.json", "not_a_plan", "holding a number", "a JSON number with exponent", b" -1.5e3\n")
case("bom-null.json", "not_a_plan", "holding null", "null after a UTF-8 byte-order mark", codecs.BOM_UTF8 + b"null")
case("list.json", "not_a_plan", "a list", "a JSON list of numbers", b"[1, 2, 3]")
case("list-of-plans.json", "not_a_plan", "a list", "a plan wrapped in a list", b"[" + GOOD + b"]")
case("no-plan-fields.json", "not_a_plan", "none of the plan's fields", "an invoice, not a plan",
     b'{"invoice": 12, "lines": []}')
case("empty-object.json", "not_a_plan", "none of the plan's fields", "the empty object", b"{}")

# --- broken JSON ------------------------------------------------------------------
case("truncated-half.json", "malformed_json", "line", "the first half of a plan", GOOD[: len(GOOD) // 2])
case("truncated-last-brace.json", "malformed_json", "line", "the closing brace missing", GOOD.rstrip()[:-1])
case("missing-comma.json", "malformed_json", "delimiter", "no comma between two fields",
     replaced(GOOD, b'"basal",', b'"basal"'))
case("trailing-comma.json", "malformed_json", "line", "a comma after the last field",
     replaced(GOOD, b'"Gangfunktion og balance."', b'"Gangfunktion og balance.",'))
case("single-quotes.json", "malformed_json", "line", "keys in single quotes",
     replaced(GOOD, b'"plan_id"', b"'plan_id'"))
case("comment.json", "malformed_json", "line", "a // comment", replaced(GOOD, b"{", b"{ // plan\n"))
case("unquoted-key.json", "malformed_json", "line", "a key without quotes", replaced(GOOD, b'"level"', b"level"))
case("two-documents.json", "malformed_json", "Extra data", "two plans in one file", GOOD + GOOD)
case("raw-control-in-string.json", "malformed_json", "control character", "a raw 0x01 byte inside a string",
     replaced(GOOD, b"Selvhjulpen", b"Selv\x01hjulpen"))
case("unterminated-string.json", "malformed_json", "Unterminated string", "a string that never ends",
     GOOD[: GOOD.index(b"Selvhjulpen") + 4])
case("bad-escape.json", "malformed_json", "escape", "an invalid escape \\x", replaced(GOOD, b"Selvhjulpen", b"Selv\\xhjulpen"))

# --- encodings ----------------------------------------------------------------------
case("latin1.json", "unsupported_encoding", "not UTF-8", "Latin-1 bytes for æ/ø/å", text_of().encode("latin-1"))
case("overlong-utf8.json", "unsupported_encoding", "not UTF-8", "an overlong UTF-8 sequence",
     replaced(GOOD, b"Selvhjulpen", b"Selv\xc0\xafhjulpen"))
case("utf16-bom.json", "unsupported_encoding", "UTF-16 (little-endian) with a byte-order mark",
     "UTF-16 with BOM", text_of().encode("utf-16"))
case("utf16be-bom.json", "unsupported_encoding", "UTF-16 (big-endian) with a byte-order mark",
     "UTF-16 big-endian with BOM", codecs.BOM_UTF16_BE + text_of().encode("utf-16-be"))
case("utf16le-nobom.json", "unsupported_encoding", "UTF-16 (little-endian)", "UTF-16 without BOM",
     text_of().encode("utf-16-le"))
case("utf16be-nobom.json", "unsupported_encoding", "UTF-16 (big-endian)", "UTF-16 big-endian without BOM",
     text_of().encode("utf-16-be"))
case("utf32-bom.json", "unsupported_encoding", "UTF-32 (little-endian) with a byte-order mark",
     "UTF-32 with BOM", text_of().encode("utf-32"))
case("utf32be-nobom.json", "unsupported_encoding", "UTF-32 (big-endian)", "UTF-32 big-endian without BOM",
     text_of().encode("utf-32-be"))

# --- duplicates, numbers, nesting ---------------------------------------------------
case("duplicate-level.json", "duplicate_key", "'level' twice", "level given twice (the last would win)",
     replaced(GOOD, b'"level": "basal"', b'"level": "basal",\n  "level": "specialiseret"'))
case("duplicate-cpr.json", "duplicate_key", "'cpr' twice", "citizen.cpr given twice",
     replaced(GOOD, b'"cpr": "010145-1234"', b'"cpr": "010145-1234", "cpr": "020245-1234"'))
case("duplicate-diagnosis-code.json", "duplicate_key", "'code' twice", "a diagnosis with two codes",
     replaced(GOOD, b'"code": "DS720"', b'"code": "DS720", "code": "DI639"'))
case("duplicate-plan-id.json", "duplicate_key", "'plan_id' twice", "plan_id given twice",
     replaced(GOOD, b'"plan_id": "GOP-TST-2026-000001"', b'"plan_id": "A", "plan_id": "B"'))
case("nan.json", "invalid_number", "NaN", "NaN, which JSON does not have", replaced(GOOD, b"false", b"NaN"))
case("infinity.json", "invalid_number", "Infinity", "Infinity", replaced(GOOD, b"false", b"Infinity"))
case("minus-infinity.json", "invalid_number", "-Infinity", "-Infinity", replaced(GOOD, b"false", b"-Infinity"))
case("huge-integer.json", "invalid_number", "5,000 digits", "an integer of 5,000 digits",
     replaced(GOOD, b"false", b"9" * 5000))
case("huge-exponent.json", "invalid_number", "too large", "1e400 (beyond a float)", replaced(GOOD, b"false", b"1e400"))
case("long-decimal.json", "invalid_number", "digits", "a decimal with 40 digits",
     replaced(GOOD, b"false", b"0." + b"1" * 40))


def nested(levels: int, inner: Any = "x") -> Any:
    for _ in range(levels):
        inner = {"a": inner}
    return inner


case("deep-objects-40.json", "too_deeply_nested", "nested too deeply", "an extra field 40 objects deep",
     jp(ward_note=nested(40)))
case("deep-lists-100000.json", "too_deeply_nested", "nested too deeply", "100,000 nested lists",
     replaced(GOOD, b"false", b"[" * 100_000 + b"]" * 100_000))
case("deep-lists-50.json", "too_deeply_nested", "nested too deeply", "an extra field of 50 nested lists",
     replaced(GOOD, b"false", b"[" * 50 + b"]" * 50))

# --- text that cannot be stored, control characters ---------------------------------
case("surrogate-name.json", "invalid_text", "citizen.name", "a lone surrogate \\ud800 in the name",
     js(plan(citizen__name="\ud800" + NAME), ascii_only=True))
case("surrogate-low.json", "invalid_text", "citizen.name", "a lone low surrogate \\udfff",
     js(plan(citizen__name=NAME + "\udfff"), ascii_only=True))
case("surrogate-description.json", "invalid_text", "rehab_need", "a lone surrogate in rehab_need",
     js(plan(rehab_need="Gang \udc00"), ascii_only=True))
case("surrogate-key.json", "invalid_text", "field name", "a lone surrogate in a field name",
     js({**plan(), "\ud800x": 1}, ascii_only=True))
case("surrogate-extra.json", "invalid_text", "ward_note", "a lone surrogate in an extra field",
     js(plan(ward_note="\udbff"), ascii_only=True))
case("nul-name.json", "invalid_characters", "U+0000 (NUL)", "NUL in the name", jp(citizen__name="Testperson\x00Eksempel"))
case("nul-plan-id.json", "invalid_characters", "plan_id", "NUL in plan_id", jp(plan_id="GOP-TST\x00-1"))
case("nul-description.json", "invalid_characters", "U+0000", "NUL in rehab_need", jp(rehab_need="Gang\x00"))
case("nul-extra.json", "invalid_characters", "ward_note", "NUL in an extra field", jp(ward_note="a\x00b"))
case("nul-key.json", "invalid_characters", "field name", "NUL in a field name", js({**plan(), "a\x00b": 1}))
case("newline-name.json", "invalid_characters", "line feed", "a line break inside the name",
     jp(citizen__name="Testperson\nEksempel"))
case("tab-plan-id.json", "invalid_characters", "tab", "a tab inside plan_id", jp(plan_id="GOP\t1"))
case("bell-description.json", "invalid_characters", "U+0007", "BEL in function_before",
     jp(function_before="Selvhjulpen\x07"))
case("escape-street.json", "invalid_characters", "escape", "an ESC sequence in the street",
     jp(citizen__address__street="Prøvevej \x1b[31m1"))
case("delete-city.json", "invalid_characters", "delete", "DEL in the city", jp(citizen__address__city="Kas\x7ftrup"))
case("c1-name.json", "invalid_characters", "U+0085", "a C1 control (NEL) in the name",
     jp(citizen__name="Testperson\x85Eksempel"))
case("bidi-override-name.json", "invalid_characters", "U+202E", "a right-to-left override in the name",
     jp(citizen__name="Testperson \u202eleskesk"))
case("line-separator-hospital.json", "invalid_characters", "U+2028", "a Unicode line separator in hospital.name",
     jp(hospital__name="Test\u2028hospitalet"))

# --- missing fields -----------------------------------------------------------------
for field, mentions in [("plan_id", "plan_id"), ("discharge_date", "discharge_date"), ("citizen", "citizen"),
                        ("citizen__cpr", "citizen.cpr"), ("citizen__name", "citizen.name"),
                        ("citizen__municipality_code", "citizen.municipality_code"), ("level", "level"),
                        ("diagnoses", "diagnoses"), ("diagnoses__0__code", "diagnoses.0.code"),
                        ("hospital__name", "hospital.name")]:
    case(f"missing-{field.replace('__', '-')}.json", "missing_field", mentions, f"no {mentions}", jp(**{field: DROP}))
case("empty-plan-id.json", "missing_field", "plan_id", "plan_id is the empty string", jp(plan_id=""))
case("blank-plan-id.json", "missing_field", "plan_id", "plan_id is only blanks", jp(plan_id="   "))
case("null-plan-id.json", "missing_field", "plan_id", "plan_id is null", jp(plan_id=None))
case("null-discharge-date.json", "missing_field", "discharge_date", "discharge_date is null", jp(discharge_date=None))
case("empty-diagnoses.json", "missing_field", "diagnoses", "an empty list of diagnoses", jp(diagnoses=[]))
case("blank-name.json", "missing_field", "citizen.name", "the name is only blanks", jp(citizen__name="  "))

# --- wrong types per field ----------------------------------------------------------
case("plan-id-number.json", "invalid_field", "plan_id", "plan_id as a number", jp(plan_id=123))
case("citizen-text.json", "invalid_field", "citizen", "citizen as a text", jp(citizen=NAME))
case("citizen-list.json", "invalid_field", "citizen", "citizen as a list", jp(citizen=[NAME]))
case("hospital-text.json", "invalid_field", "hospital", "hospital as a text", jp(hospital="Testhospitalet"))
case("address-list.json", "invalid_field", "citizen.address", "the address as a list",
     jp(citizen__address=["Prøvevej 1"]))
case("name-number.json", "invalid_field", "citizen.name", "the name as a number", jp(citizen__name=42))
case("diagnoses-object.json", "invalid_field", "diagnoses", "diagnoses as one object",
     jp(diagnoses={"code": "DS720"}))
case("diagnoses-text.json", "invalid_field", "diagnoses", "diagnoses as a text", jp(diagnoses="DS720"))
case("diagnosis-text-entry.json", "invalid_field", "diagnoses.0", "a diagnosis that is a text", jp(diagnoses=["DS720"]))
case("urgent-maybe.json", "invalid_field", "true or false", "urgent is 'maybe'", jp(urgent="maybe"))
case("transport-two.json", "invalid_field", "transport_first_session", "transport_first_session is 2",
     jp(transport_first_session=2))
case("function-before-list.json", "invalid_field", "function_before", "a description as a list",
     jp(function_before=["Selvhjulpen."]))
case("diagnosis-code-dash.json", "invalid_field", "SKS form", "a diagnosis code with a dash",
     jp(diagnoses__0__code="DS-720"))
case("diagnosis-group-number.json", "invalid_field", "diagnosis_group", "diagnosis_group as a number",
     jp(diagnosis_group=7))

# --- dates --------------------------------------------------------------------------
case("date-danish-order.json", "invalid_field", "YYYY-MM-DD", "discharge_date written 02-11-2026",
     jp(discharge_date="02-11-2026"))
case("date-month-13.json", "invalid_field", "month 13", "discharge_date in month 13", jp(discharge_date="2026-13-01"))
case("date-30-february.json", "invalid_field", "day 30", "30 February", jp(discharge_date="2026-02-30"))
case("date-29-february-2025.json", "invalid_field", "day 29", "29 February in a year that is not leap",
     jp(discharge_date="2025-02-29"))
case("date-year-0.json", "invalid_field", "year 0", "the year 0000", jp(discharge_date="0000-01-01"))
case("date-number.json", "invalid_field", "discharge_date", "discharge_date as the number 20261102",
     jp(discharge_date=20261102))
case("date-with-time.json", "invalid_field", "YYYY-MM-DD", "discharge_date with a time",
     jp(discharge_date="2026-11-02T10:00"))
case("issued-at-no-zone.json", "invalid_field", "time zone", "issued_at without an offset",
     jp(issued_at="2026-11-02T14:10:00"))
case("issued-at-garbage.json", "invalid_field", "issued_at", "issued_at is not a time", jp(issued_at="yesterday"))
case("start-by-31-november.json", "invalid_field", "day 31", "start_by on 31 November", jp(start_by="2026-11-31"))
case("start-by-before-discharge.json", "start_by_before_discharge", "before its discharge_date",
     "start_by a day before discharge", jp(start_by="2026-11-01"))
case("discharge-in-future.json", "discharge_in_future", "in the future", "discharged in 2027",
     jp(discharge_date="2027-01-04", start_by=DROP, issued_at=DROP))

# --- every CPR rule -----------------------------------------------------------------
for file, cpr, mentions, what in [
    ("cpr-5-digits", "12345", "it has 5 digits", "five digits"),
    ("cpr-11-digits", "010145-12345", "it has 11 digits", "eleven digits"),
    ("cpr-letter", "01014a-1234", "characters other than", "a letter among the digits"),
    ("cpr-hyphen-misplaced", "0101-451234", "hyphen", "the hyphen after the fourth digit"),
    ("cpr-space", "010145 1234", "characters other than", "a space instead of the hyphen"),
    ("cpr-arabic-digits", "٠١٠١٤٥١٢٣٤", "characters other than", "Arabic-Indic digits"),
    ("cpr-empty", "", "it is empty", "the empty string"),
    ("cpr-month-13", "991399-1234", "month 13", "month 13"),
    ("cpr-month-0", "010045-1234", "month 0", "month 0"),
    ("cpr-day-0", "000145-1234", "day 0", "day 0"),
    ("cpr-31-april", "310445-1234", "day 31 does not exist in April 1945", "31 April"),
    ("cpr-29-february-1901", "290201-1234", "February 1901", "29 February 1901 (not a leap year)"),
    ("cpr-29-february-1900", "290200-1000", "February 1900", "29 February 1900: the 7th digit 1 gives 1900"),
    ("cpr-born-after-discharge", "010130-4000", "after the discharge_date", "7th digit 4, year 30: born 2030"),
]:
    case(f"{file}.json", "invalid_cpr", mentions, what, jp(citizen__cpr=cpr))
case("cpr-number.json", "invalid_cpr", "not as a number", "the CPR as a JSON number", jp(citizen__cpr=1101451234))
case("cpr-list.json", "invalid_cpr", "not as a list", "the CPR as a list", jp(citizen__cpr=["010145", "1234"]))
case("cpr-born-1858.json", "implausible_age", "168", "7th digit 5, year 58: born 1858, 168 at discharge",
     jp(citizen__cpr="010158-5234"))
case("cpr-born-1899.json", "implausible_age", "limits.max_age_years", "7th digit 8, year 99: born 1899",
     jp(citizen__cpr="311299-8000"))

# --- municipality, level, group -----------------------------------------------------
case("municipality-2-digits.json", "invalid_municipality_code", "3 digits", "municipality code 18",
     jp(citizen__municipality_code="18"))
case("municipality-4-digits.json", "invalid_municipality_code", "3 digits", "municipality code 1850",
     jp(citizen__municipality_code="1850"))
case("municipality-number.json", "invalid_municipality_code", "3 digits", "the code as the number 185",
     jp(citizen__municipality_code=185))
case("municipality-letters.json", "invalid_municipality_code", "3 digits", "letters", jp(citizen__municipality_code="abc"))
case("level-unknown.json", "unknown_level", "not a known level", "level 'expert'", jp(level="expert"))
case("level-empty.json", "unknown_level", "not a known level", "level ''", jp(level=""))
case("level-number.json", "unknown_level", "not a known level", "level 2", jp(level=2))
case("group-unknown.json", "unknown_diagnosis_group", "broken_heart", "a diagnosis group not in config",
     jp(diagnosis_group="broken_heart"))

# --- lengths (limits.max_chars) and CPR-shaped plan_id ------------------------------
case("plan-id-100000.json", "field_too_long", "plan_id is 100,000 characters", "a plan_id of 100,000 characters",
     jp(plan_id="P" * 100_000))
case("plan-id-65.json", "field_too_long", "limits.max_chars.plan_id", "a plan_id of 65 characters",
     jp(plan_id="P" * 65))
case("name-201.json", "field_too_long", "citizen.name", "a name of 201 characters", jp(citizen__name="N" * 201))
case("rehab-need-20001.json", "field_too_long", "rehab_need", "a description of 20,001 characters",
     jp(rehab_need="G" * 20_001))
case("extra-field-2001.json", "field_too_long", "ward_note", "an extra field of 2,001 characters",
     jp(ward_note="W" * 2001))
case("extra-key-2001.json", "field_too_long", "A field name is 2,001 characters", "a field name of 2,001 characters",
     js({**plan(), "k" * 2001: 1}))
for file, plan_id in [("plan-id-cpr", "010145-1234"), ("plan-id-cpr-digits", "0101451234"),
                      ("plan-id-cpr-space", "GOP 010145 1234"), ("plan-id-cpr-dots", "P.010145.1234"),
                      ("plan-id-cpr-underscore", "plan_010145_1234")]:
    case(f"{file}.json", "cpr_shaped_plan_id", "shaped like a CPR number", f"plan_id {plan_id!r}", jp(plan_id=plan_id))
case("too-large.json", "too_large", "limits.max_plan_bytes", "a plan padded past 1 MiB",
     replaced(GOOD, b"{", b"{" + b" " * (1 << 20)))

# --- XML ----------------------------------------------------------------------------
X = XML.encode()
case("truncated.xml", "malformed_xml", "line", "the first half of an XML plan", X[: len(X) // 2])
case("mismatched-tag.xml", "malformed_xml", "line", "</Sender> written </Sendr>", xml("</Sender>", "</Sendr>"))
case("two-roots.xml", "malformed_xml", "line", "two root elements", X + b"<Genoptraeningsplan/>")
case("declaration-only.xml", "malformed_xml", "line", "only the XML declaration", b'<?xml version="1.0"?>\n')
case("external-entity.xml", "malformed_xml", "&secret;", "an external entity (XXE)",
     xml("<Genoptraeningsplan xmlns", '<!DOCTYPE Genoptraeningsplan [<!ENTITY secret SYSTEM "file:///etc/passwd">]>'
         "\n<Genoptraeningsplan xmlns").replace(b"Gangfunktion", b"&secret; Gangfunktion"))
case("internal-entity.xml", "malformed_xml", "&word;", "an internal entity",
     xml("<Genoptraeningsplan xmlns", '<!DOCTYPE Genoptraeningsplan [<!ENTITY word "ord">]>\n<Genoptraeningsplan xmlns')
     .replace(b"Gangfunktion", b"&word; Gangfunktion"))
case("billion-laughs.xml", "malformed_xml", "line", "nested entity expansion",
     xml("<Genoptraeningsplan xmlns", '<!DOCTYPE Genoptraeningsplan [<!ENTITY a "aaaaaaaaaa">'
         + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(8))
         + "]>\n<Genoptraeningsplan xmlns").replace(b"Gangfunktion", b"&i; Gangfunktion"))
case("nul-char-ref.xml", "malformed_xml", "line", "the character reference &#0;",
     xml("Testperson Eksempel", "Testperson&#0;Eksempel"))
case("raw-control.xml", "malformed_xml", "line", "a raw 0x01 byte in the name",
     xml("Testperson Eksempel", "Testperson\x01Eksempel"))
case("surrogate-char-ref.xml", "malformed_xml", "line", "the character reference &#xD800;",
     xml("Testperson Eksempel", "&#xD800;Testperson"))
case("latin1-undeclared.xml", "malformed_xml", "line", "Latin-1 bytes under a UTF-8 declaration",
     XML.encode("latin-1"))
case("deep-300.xml", "malformed_xml", "line", "elements nested 300 deep (beyond the XML parser's bound)",
     xml("<Level>", "<Deep>" * 300 + "x" + "</Deep>" * 300 + "<Level>"))
case("deep-40.xml", "too_deeply_nested", "nested too deeply", "an unknown element nested 40 deep",
     xml("<Level>", "<Deep>" * 40 + "x" + "</Deep>" * 40 + "<Level>"))
case("wrong-root.xml", "not_a_plan", "<Invoice>", "an invoice",
     b'<?xml version="1.0"?><Invoice xmlns="urn:oasis:invoice"><ID>1</ID></Invoice>')
case("foreign-namespace.xml", "not_a_plan", "urn:someone-else", "the plan element in another namespace",
     X.replace(b"urn:genop:medcom-style:genoptraeningsplan:1", b"urn:someone-else"))
for element, value in [("Level", "basal"), ("PlanIdentifier", "GOP-TST-2026-000002"),
                       ("CivilRegistrationNumber", "010145-1234"), ("StreetName", "Prøvevej 1"),
                       ("DischargeDate", "2026-11-02")]:
    one = f"<{element}>{value}</{element}>"
    case(f"duplicate-{element}.xml", "duplicate_key", f"<{element}> twice", f"<{element}> given twice",
         xml(one, one + one))
case("duplicate-Patient.xml", "duplicate_key", "<Patient> twice", "two <Patient> elements",
     xml("<Level>", XML[XML.index("<Patient>"): XML.index("</Patient>") + len("</Patient>")] + "\n  <Level>"))
case("missing-PlanIdentifier.xml", "missing_field", "plan_id", "no <PlanIdentifier>",
     xml("<PlanIdentifier>GOP-TST-2026-000002</PlanIdentifier>", ""))
case("empty-PlanIdentifier.xml", "missing_field", "plan_id", "an empty <PlanIdentifier/>",
     xml("<PlanIdentifier>GOP-TST-2026-000002</PlanIdentifier>", "<PlanIdentifier/>"))
case("missing-Patient.xml", "missing_field", "citizen", "no <Patient>",
     xml(XML[XML.index("<Patient>"): XML.index("</Patient>") + len("</Patient>")], ""))
case("missing-Diagnosis.xml", "missing_field", "diagnoses", "no <Diagnosis>",
     xml(XML[XML.index("<Diagnosis>"): XML.index("</Diagnosis>") + len("</Diagnosis>")], ""))
case("date-invalid.xml", "invalid_field", "DischargeDate", "<DischargeDate> on 31 November",
     xml("<DischargeDate>2026-11-02", "<DischargeDate>2026-11-31"))
case("cpr-month-13.xml", "invalid_cpr", "month 13", "a CPR number in month 13", xml("010145-1234", "991399-1234"))
case("cpr-born-1858.xml", "implausible_age", "168", "a CPR number read as born 1858", xml("010145-1234", "010158-5234"))
case("level-unknown.xml", "unknown_level", "not a known level", "<Level>expert</Level>",
     xml("<Level>basal", "<Level>expert"))
case("municipality-4-digits.xml", "invalid_municipality_code", "3 digits", "<MunicipalityCode>1850",
     xml("<MunicipalityCode>185", "<MunicipalityCode>1850"))
case("urgent-maybe.xml", "invalid_field", "true or false", "<Urgent>maybe</Urgent>",
     xml("<Urgent>false", "<Urgent>maybe"))
case("element-in-leaf.xml", "invalid_field", "must hold text", "an element inside <Level>",
     xml("<Level>basal</Level>", "<Level><Value>basal</Value></Level>"))
case("json-name-element.xml", "invalid_field", "<PlanIdentifier>", "<plan_id> instead of <PlanIdentifier>",
     xml("<PlanIdentifier>GOP-TST-2026-000002</PlanIdentifier>", "<plan_id>GOP-TST-2026-000002</plan_id>"))
case("bidi-override.xml", "invalid_characters", "U+202E", "a right-to-left override in <PersonName>",
     xml("Testperson Eksempel", "Testperson \u202eleskesk"))
case("newline-in-name.xml", "invalid_characters", "line feed", "a line break inside <PersonName>",
     xml("Testperson Eksempel", "Testperson&#10;Eksempel"))
case("plan-id-100000.xml", "field_too_long", "plan_id is 100,000 characters", "a <PlanIdentifier> of 100,000 characters",
     xml("GOP-TST-2026-000002", "P" * 100_000))
case("plan-id-cpr.xml", "cpr_shaped_plan_id", "shaped like a CPR number", "<PlanIdentifier> holding a CPR number",
     xml("GOP-TST-2026-000002", "010145-1234"))
case("start-by-before-discharge.xml", "start_by_before_discharge", "before its discharge_date",
     "<StartByDate> before <DischargeDate>", xml("<StartByDate>2026-11-09", "<StartByDate>2026-10-01"))
case("discharge-in-future.xml", "discharge_in_future", "in the future", "<DischargeDate> in 2027",
     xml("<DischargeDate>2026-11-02", "<DischargeDate>2027-01-04").replace(b"<StartByDate>2026-11-09</StartByDate>", b""))
case("group-unknown.xml", "unknown_diagnosis_group", "broken_heart", "<DiagnosisGroup>broken_heart",
     xml("<DiagnosisGroup>hip_fracture", "<DiagnosisGroup>broken_heart"))
case("utf32-bom.xml", "unsupported_encoding", "an XML plan in UTF-32", "XML in UTF-32 with BOM (declared)",
     XML.replace('encoding="UTF-8"', 'encoding="UTF-32"').encode("utf-32"))
case("utf16-bom.xml", "unsupported_encoding", "an XML plan in UTF-16", "XML in UTF-16 with BOM (declared)",
     XML.replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"))
case("utf16-nobom.xml", "unsupported_encoding", "UTF-16 (little-endian)", "UTF-16 without BOM and without a declaration",
     XML.replace('<?xml version="1.0" encoding="UTF-8"?>\n', "").encode("utf-16-le"))


def write_corpus() -> None:
    for stale in HERE.iterdir():
        if stale.is_file() and stale.name not in ("make_corpus.py", ".gitattributes"):
            stale.unlink()
    names = [name for name, *_ in CASES]
    assert len(names) == len(set(names)), "file names must be unique"
    with (HERE / "expected.csv").open("w", newline="", encoding="utf-8") as manifest:
        writer = csv.writer(manifest, lineterminator="\n")
        writer.writerow(["file", "code", "mentions", "what"])
        for name, code, mentions, what, content in CASES:
            (HERE / name).write_bytes(content)
            writer.writerow([name, code, mentions, what])
    print(f"{len(CASES)} files written to {HERE}")


if __name__ == "__main__":
    write_corpus()
