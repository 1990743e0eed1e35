"""The plan model and its JSON and XML encodings (PLAN_FORMAT.md, docs/PLAN_XML.md)."""

from __future__ import annotations

import copy
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from genop.errors import InvalidCPR, PlanError
from genop.plans import (
    ANNEX4_FIELDS,
    LEVELS,
    Plan,
    is_plan_file,
    parse_plan,
    parse_plan_json,
    parse_plan_xml,
    plan_file_problem,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_JSON = (EXAMPLES / "plan-example.json").read_bytes()
EXAMPLE_XML = (EXAMPLES / "plan-example.xml").read_bytes()
CPR_DIGITS = ("0101451234", "010145-1234")
NS = "urn:genop:medcom-style:genoptraeningsplan:1"


def example() -> dict[str, Any]:
    return copy.deepcopy(json.loads(EXAMPLE_JSON))


def encode(document: dict[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode()


def xml_with(old: str, new: str) -> bytes:
    text = EXAMPLE_XML.decode()
    assert old in text
    return text.replace(old, new, 1).encode()


def plan_error(content: bytes) -> PlanError:
    with pytest.raises(PlanError) as caught:
        parse_plan(content)
    return caught.value


def json_error(**changes: Any) -> PlanError:
    document = example()
    document.update(changes)
    return plan_error(encode(document))


# --- the examples -------------------------------------------------------------------

def test_example_json_plan_is_read_with_every_field() -> None:
    plan = parse_plan(EXAMPLE_JSON, "plan-example.json")
    assert plan.plan_id == "GOP-AMH-2026-000123"
    assert plan.issued_at == datetime(2026, 11, 2, 14, 10, tzinfo=timezone(timedelta(hours=1)))
    assert plan.discharge_date == date(2026, 11, 2)
    assert plan.hospital is not None and plan.hospital.department == "Ortopædkirurgisk afd."
    assert plan.citizen.cpr == "0101451234"
    assert plan.citizen.birth_date == date(1945, 1, 1)
    assert plan.citizen.address is not None and plan.citizen.address.city == "Kastrup"
    assert plan.citizen.municipality_code == "185"
    assert plan.level == "basal"
    assert [d.code for d in plan.diagnoses] == ["DS720"]
    assert (plan.diagnosis_group, plan.urgent, plan.transport_first_session) == ("hip_fracture", False, True)
    assert plan.start_by == date(2026, 11, 9)
    assert plan.missing_descriptions() == []


def test_json_and_xml_encodings_parse_to_the_same_plan() -> None:
    from_json = parse_plan(EXAMPLE_JSON)
    from_xml = parse_plan(EXAMPLE_XML)
    assert from_xml == from_json
    assert from_xml.to_document() == from_json.to_document()


def test_full_example_in_docs_plan_xml_is_the_example_plan() -> None:
    text = (EXAMPLES.parent / "docs" / "PLAN_XML.md").read_text(encoding="utf-8")
    block = text.split("```xml\n", 1)[1].split("```", 1)[0]
    assert parse_plan_xml(block.encode()) == parse_plan(EXAMPLE_JSON)


def test_dragor_example_is_a_stroke_plan_for_municipality_155() -> None:
    plan = parse_plan((EXAMPLES / "plan-dragor.json").read_bytes())
    assert plan.plan_id == "GOP-AMH-2026-000124"
    assert plan.citizen.municipality_code == "155"
    assert (plan.level, plan.diagnoses[0].code, plan.diagnosis_group) == ("avanceret", "DI639", "stroke")
    assert plan.citizen.birth_date.year < 2008  # an adult at discharge


def test_geriatric_example_has_no_diagnosis_group_and_code_dr54() -> None:
    plan = parse_plan((EXAMPLES / "plan-geriatric.json").read_bytes())
    assert plan.plan_id == "GOP-AMH-2026-000125"
    assert plan.citizen.municipality_code == "185"
    assert plan.diagnosis_group is None
    assert plan.diagnoses[0].code == "DR54"


def test_document_is_json_safe_and_reads_back_to_the_same_plan() -> None:
    plan = parse_plan(EXAMPLE_JSON)
    document = json.loads(json.dumps(plan.to_document()))
    assert document["discharge_date"] == "2026-11-02"
    assert Plan.model_validate(document) == plan


def test_repr_of_a_plan_does_not_show_the_cpr() -> None:
    text = repr(parse_plan(EXAMPLE_JSON))
    assert not any(digits in text for digits in CPR_DIGITS)


# --- extras, normalisation, descriptions -------------------------------------------

def test_unknown_extra_fields_are_kept() -> None:
    document = example()
    document["ward_phone"] = "3232 3232"
    document["contact"] = {"nurse": "Sygeplejerske Fiktiv", "shift": ["day", "evening"]}
    document["citizen"]["preferred_language"] = "da"
    plan = parse_plan(encode(document))
    kept = plan.to_document()
    assert kept["ward_phone"] == "3232 3232"
    assert kept["contact"] == {"nurse": "Sygeplejerske Fiktiv", "shift": ["day", "evening"]}
    assert kept["citizen"]["preferred_language"] == "da"


def test_unknown_xml_elements_are_kept_as_extras() -> None:
    content = xml_with(
        "<Level>basal</Level>",
        "<Level>basal</Level><WardPhone>3232 3232</WardPhone>"
        "<Contact><Nurse>Sygeplejerske Fiktiv</Nurse><Shift>day</Shift><Shift>evening</Shift></Contact>",
    )
    content = content.replace(b"<MunicipalityCode>", b"<PreferredLanguage>da</PreferredLanguage><MunicipalityCode>")
    kept = parse_plan(content).to_document()
    assert kept["WardPhone"] == "3232 3232"
    assert kept["Contact"] == {"Nurse": "Sygeplejerske Fiktiv", "Shift": ["day", "evening"]}
    assert kept["citizen"]["PreferredLanguage"] == "da"


def test_citizen_phone_and_transport_needs_read_the_same_from_json_and_xml() -> None:
    """What a transport booking needs besides name and address (agreement §6, §9)."""
    document = example()
    document["citizen"]["phone"] = "3251 7788"
    document["transport_needs"] = "Kørestolsbruger, skal hjælpes ind i bilen."
    content = xml_with("<MunicipalityCode>", "<TelephoneSubscriberIdentifier>3251 7788"
                       "</TelephoneSubscriberIdentifier><MunicipalityCode>")
    content = content.replace(b"<TransportFirstSession>", "<TransportNeeds>Kørestolsbruger, skal hjælpes ind i "
                              "bilen.</TransportNeeds><TransportFirstSession>".encode())
    from_json, from_xml = parse_plan(encode(document)), parse_plan(content)
    assert from_json == from_xml
    assert (from_xml.citizen.phone, from_xml.transport_needs) == ("3251 7788", document["transport_needs"])
    assert (parse_plan(EXAMPLE_JSON).citizen.phone, parse_plan(EXAMPLE_JSON).transport_needs) == (None, None)


def test_json_field_name_used_as_xml_element_is_rejected_naming_the_xml_name() -> None:
    error = plan_error(xml_with("<Level>basal</Level>", "<Level>basal</Level><plan_id>X</plan_id>"))
    assert error.code == "invalid_field"
    assert "<PlanIdentifier>" in error.message


def test_diagnosis_code_is_upper_cased_without_dots() -> None:
    document = example()
    document["diagnoses"] = [{"code": " ds72.0 "}]
    diagnosis = parse_plan(encode(document)).diagnoses[0]
    assert (diagnosis.system, diagnosis.code, diagnosis.text) == ("ICD-10", "DS720", None)


def test_several_xml_diagnosis_elements_are_several_diagnoses() -> None:
    second = "<Diagnosis><Code>DM16.1</Code></Diagnosis>"
    plan = parse_plan(xml_with("<DiagnosisGroup>", second + "<DiagnosisGroup>"))
    assert [d.code for d in plan.diagnoses] == ["DS720", "DM161"]


def test_level_spelled_with_capital_and_ae_is_understood() -> None:
    document = example()
    document["level"] = "Selvtræning"
    assert parse_plan(encode(document)).level == "selvtraening"


def test_plan_without_rehab_need_is_parsed_but_reports_missing_description() -> None:
    document = example()
    del document["rehab_need"]
    plan = parse_plan(encode(document))
    assert plan.rehab_need == ""
    assert plan.missing_descriptions() == ["rehab_need"]


def test_whitespace_only_or_null_descriptions_are_missing() -> None:
    document = example()
    document["function_before"] = "   \n"
    document["function_at_discharge"] = None
    plan = parse_plan(encode(document))
    assert plan.missing_descriptions() == ["function_before", "function_at_discharge"]


def test_xml_plan_without_descriptions_reports_all_three_missing() -> None:
    content = xml_with("<RehabilitationNeed>Gangfunktion, balance og styrke i højre underekstremitet.",
                       "<RehabilitationNeed>")
    content = content.replace(b"<FunctionBefore>Selvhjulpen, gik ture dagligt.</FunctionBefore>", b"")
    content = content.replace(b"<FunctionAtDischarge>G\xc3\xa5r med rollator, behov for hj\xc3\xa6lp til trapper.",
                              b"<FunctionAtDischarge>  ")
    assert parse_plan(content).missing_descriptions() == list(ANNEX4_FIELDS)


# --- sniffing and encodings ---------------------------------------------------------

@pytest.mark.parametrize("content", [EXAMPLE_JSON, EXAMPLE_XML], ids=["json", "xml"])
def test_utf8_bom_is_accepted(content: bytes) -> None:
    assert parse_plan(b"\xef\xbb\xbf" + content) == parse_plan(EXAMPLE_JSON)


def test_leading_whitespace_before_the_document_is_accepted() -> None:
    assert parse_plan(b"\n\t  " + EXAMPLE_JSON).plan_id == "GOP-AMH-2026-000123"


@pytest.mark.parametrize("content", [b"", b"  \n\t ", b"\xef\xbb\xbf\n"])
def test_empty_file_is_reported_as_empty(content: bytes) -> None:
    error = plan_error(content)
    assert error.code == "empty_file"
    assert "empty" in error.message


def test_file_that_is_neither_json_nor_xml_is_not_a_plan() -> None:
    with pytest.raises(PlanError) as caught:
        parse_plan(b"%PDF-1.7 ...", "scan 010145-1234.pdf")
    assert caught.value.code == "not_a_plan"
    assert "scan XXXXXX-XXXX.pdf" in caught.value.message
    assert "010145" not in caught.value.message


def test_json_list_is_not_a_plan() -> None:
    assert plan_error(b"[" + EXAMPLE_JSON + b"]").code == "not_a_plan"
    with pytest.raises(PlanError) as caught:
        parse_plan_json(b"[1, 2]")
    assert caught.value.code == "not_a_plan"
    assert "a list" in caught.value.message


def test_json_object_without_any_plan_field_is_not_a_plan() -> None:
    error = plan_error(b'{"invoice": 12, "lines": []}')
    assert error.code == "not_a_plan"
    assert "none of the plan's fields" in error.message


def test_malformed_json_names_line_and_column() -> None:
    error = plan_error(b'{\n  "plan_id": "GOP-1",\n  "level" "basal"\n}')
    assert error.code == "malformed_json"
    assert "line 3, column 11" in error.message


def test_json_that_is_not_utf8_is_refused_naming_the_byte() -> None:
    error = plan_error(encode(example()).replace("Ortopædkirurgisk".encode(), "Ortopædkirurgisk".encode("latin-1")))
    assert error.code == "unsupported_encoding"
    assert "not UTF-8" in error.message and "0xe6" in error.message


def test_malformed_xml_names_the_line() -> None:
    error = plan_error(xml_with("</Sender>", "</Sendr>"))
    assert error.code == "malformed_xml"
    assert "(line 10, column" in error.message


def test_xml_with_another_root_element_is_not_a_plan() -> None:
    error = plan_error(b'<?xml version="1.0"?><Invoice xmlns="urn:x"><ID>1</ID></Invoice>')
    assert error.code == "not_a_plan"
    assert "<Invoice>" in error.message and "Genoptraeningsplan" in error.message


def test_xml_plan_element_in_a_foreign_namespace_is_not_a_plan() -> None:
    error = plan_error(EXAMPLE_XML.replace(NS.encode(), b"urn:someone-else"))
    assert error.code == "not_a_plan"
    assert "urn:someone-else" in error.message


def test_xml_plan_without_namespace_is_accepted() -> None:
    plan = parse_plan(EXAMPLE_XML.replace(f' xmlns="{NS}"'.encode(), b""))
    assert plan == parse_plan(EXAMPLE_JSON)


def test_xml_entities_are_not_expanded() -> None:
    content = xml_with(
        '<Genoptraeningsplan xmlns',
        '<!DOCTYPE Genoptraeningsplan [<!ENTITY secret SYSTEM "file:///etc/passwd">'
        '<!ENTITY word "expanded">]>\n<Genoptraeningsplan xmlns',
    ).replace(b"<RehabilitationNeed>", b"<RehabilitationNeed>&secret; &word; ")
    with pytest.raises(PlanError) as caught:
        parse_plan_xml(content)
    assert caught.value.code == "malformed_xml"
    assert "&secret;" in caught.value.message
    assert "root:" not in caught.value.message and "expanded" not in caught.value.message


def test_internal_xml_entity_is_not_expanded_into_the_plan() -> None:
    content = xml_with('<Genoptraeningsplan xmlns',
                       '<!DOCTYPE Genoptraeningsplan [<!ENTITY need "Gang og balance">]>\n'
                       '<Genoptraeningsplan xmlns')
    content = content.replace(b"<DiagnosisGroup>", b"<Remark>&need;</Remark><DiagnosisGroup>")
    with pytest.raises(PlanError) as caught:
        parse_plan_xml(content)
    assert caught.value.code == "malformed_xml"
    assert "&need;" in caught.value.message and "(line " in caught.value.message


def test_xml_external_dtd_is_not_loaded_and_plan_still_parses() -> None:
    content = xml_with('<Genoptraeningsplan xmlns',
                       '<!DOCTYPE Genoptraeningsplan SYSTEM "http://example.invalid/plan.dtd">\n'
                       '<Genoptraeningsplan xmlns')
    assert parse_plan_xml(content) == parse_plan(EXAMPLE_JSON)


def test_xml_element_given_twice_is_rejected() -> None:
    error = plan_error(xml_with("<Level>basal</Level>", "<Level>basal</Level><Level>avanceret</Level>"))
    assert error.code == "duplicate_key"
    assert "<Level> twice" in error.message


# --- field errors -------------------------------------------------------------------

def test_plan_without_cpr_is_missing_citizen_cpr() -> None:
    document = example()
    del document["citizen"]["cpr"]
    error = plan_error(encode(document))
    assert error.code == "missing_field"
    assert error.message == "The plan has no citizen.cpr"


def test_xml_plan_without_cpr_names_the_field_and_the_xml_element() -> None:
    error = plan_error(xml_with("<CivilRegistrationNumber>010145-1234</CivilRegistrationNumber>", ""))
    assert error.code == "missing_field"
    assert error.message == "The plan has no citizen.cpr (XML Patient/CivilRegistrationNumber)"


@pytest.mark.parametrize("field", ["plan_id", "discharge_date", "citizen", "level"])
def test_required_top_level_field_missing_is_named(field: str) -> None:
    document = example()
    del document[field]
    error = plan_error(encode(document))
    assert (error.code, error.message) == ("missing_field", f"The plan has no {field}")


def test_blank_or_null_plan_id_is_missing() -> None:
    assert json_error(plan_id="  ").message == "The plan has no plan_id (it is empty)"
    assert json_error(plan_id=None).code == "missing_field"


def test_plan_without_diagnoses_is_missing_diagnoses() -> None:
    error = json_error(diagnoses=[])
    assert (error.code, error.message) == ("missing_field", "The plan has no diagnoses (it is empty)")


def test_impossible_discharge_date_is_an_invalid_field() -> None:
    error = json_error(discharge_date="2026-13-01")
    assert error.code == "invalid_field"
    assert error.message == "The plan's discharge_date '2026-13-01' is not a valid date (month 13)"


def test_discharge_date_that_is_a_number_is_an_invalid_field() -> None:
    error = json_error(discharge_date=20261102)
    assert error.code == "invalid_field"
    assert "discharge_date 20261102 is not a date (write YYYY-MM-DD)" in error.message


def test_xml_field_error_names_element_and_line() -> None:
    error = plan_error(xml_with("<DischargeDate>2026-11-02", "<DischargeDate>2026-02-30"))
    assert error.code == "invalid_field"
    assert error.message == ("The plan's discharge_date '2026-02-30' is not a valid date "
                             "(day 30 does not exist in February 2026) (XML DischargeDate, line 6)")


def test_urgent_maybe_is_an_invalid_field() -> None:
    error = json_error(urgent="maybe")
    assert (error.code, error.message) == ("invalid_field", "The plan's urgent 'maybe' must be true or false")


def test_issued_at_without_time_zone_is_an_invalid_field() -> None:
    error = json_error(issued_at="2026-11-02T14:10:00")
    assert error.code == "invalid_field"
    assert "issued_at" in error.message and "no time zone" in error.message


def test_bad_diagnosis_code_names_its_position() -> None:
    error = json_error(diagnoses=[{"code": "DS720"}, {"code": "DS 72"}])
    assert error.code == "invalid_field"
    assert error.message.startswith("The plan's diagnoses.1.code 'DS 72' is not a diagnosis code")


def test_citizen_given_as_text_is_an_invalid_field_without_quoting_the_name() -> None:
    error = json_error(citizen="Karen Jensen")
    assert (error.code, error.message) == (
        "invalid_field", "The plan's citizen must be a group of fields (an object)")


def test_a_wrongly_typed_citizen_field_is_not_quoted() -> None:
    document = example()
    document["citizen"]["address"] = "Englandsvej 12"
    error = plan_error(encode(document))
    assert error.code == "invalid_field" and "Englandsvej" not in error.message


def test_several_problems_are_counted_in_the_message() -> None:
    error = json_error(urgent="maybe", transport_first_session="perhaps")
    assert error.message.endswith("(and 1 more problem)")


def test_invalid_cpr_is_reported_as_invalid_cpr() -> None:
    document = example()
    document["citizen"]["cpr"] = "991399-1234"
    with pytest.raises(InvalidCPR) as caught:
        parse_plan(encode(document))
    assert caught.value.code == "invalid_cpr"
    assert caught.value.message == "The CPR number has no valid birth date (month 13)"


def test_cpr_given_as_a_number_is_an_invalid_cpr() -> None:
    document = example()
    document["citizen"]["cpr"] = 101451234
    with pytest.raises(InvalidCPR, match="must be written as text"):
        parse_plan(encode(document))


def test_citizen_born_after_discharge_is_an_invalid_cpr() -> None:
    document = example()
    document["citizen"]["cpr"] = "010130-4000"  # born 1 January 2030
    with pytest.raises(InvalidCPR) as caught:
        parse_plan(encode(document))
    assert "after the discharge_date (2026-11-02)" in caught.value.message


def test_unknown_level_lists_the_allowed_levels() -> None:
    error = json_error(level="almen")
    assert error.code == "unknown_level"
    assert "'almen'" in error.message
    assert all(level in error.message for level in LEVELS)


@pytest.mark.parametrize("code", ["18", "1850", "ABC", 185, ""])
def test_municipality_code_must_be_three_digits(code: Any) -> None:
    document = example()
    document["citizen"]["municipality_code"] = code
    error = plan_error(encode(document))
    assert error.code == "invalid_municipality_code"
    assert "citizen.municipality_code" in error.message and "3 digits" in error.message


def test_start_by_before_discharge_is_rejected() -> None:
    error = json_error(start_by="2026-11-01")
    assert error.code == "start_by_before_discharge"
    assert error.message == "The plan's start_by (2026-11-01) is before its discharge_date (2026-11-02)"


def test_start_by_on_discharge_day_is_accepted() -> None:
    document = example()
    document["start_by"] = "2026-11-02"
    assert parse_plan(encode(document)).start_by == date(2026, 11, 2)


def test_errors_in_a_plan_with_a_valid_cpr_never_show_the_cpr() -> None:
    broken = [
        json_error(discharge_date="2026-13-01"),
        json_error(urgent="010145-1234"),
        json_error(level="0101451234"),
        json_error(diagnoses=[{"code": "010145-1234!"}]),
        plan_error(xml_with("<Level>basal</Level>", "<Level>basal</Level><Level>x</Level>")),
    ]
    for error in broken:
        assert not any(digits in error.message for digits in CPR_DIGITS), error.message
    assert "XXXXXX-XXXX" in broken[1].message


# --- encodings and documents that are not a plan (issue 17, point 6) -----------------

@pytest.mark.parametrize("codec, name", [
    ("utf-16", "UTF-16 (little-endian) with a byte-order mark"),
    ("utf-16-be", "UTF-16 (big-endian)"),
    ("utf-16-le", "UTF-16 (little-endian)"),
    ("utf-32", "UTF-32 (little-endian) with a byte-order mark"),
    ("utf-32-be", "UTF-32 (big-endian)"),
])
def test_json_plan_in_utf16_or_utf32_is_refused_naming_the_encoding(codec: str, name: str) -> None:
    error = plan_error(EXAMPLE_JSON.decode().encode(codec))
    assert error.code == "unsupported_encoding"
    assert name in error.message and "a JSON plan in UTF-" in error.message and "UTF-8 only" in error.message


def test_utf16_json_given_to_the_json_parser_is_refused_the_same_way() -> None:
    with pytest.raises(PlanError) as caught:
        parse_plan_json(EXAMPLE_JSON.decode().encode("utf-16"))
    assert caught.value.code == "unsupported_encoding"


@pytest.mark.parametrize("codec", ["utf-16", "utf-32", "utf-16-le"])
def test_xml_plan_in_utf16_or_utf32_is_refused_naming_the_encoding(codec: str) -> None:
    text = EXAMPLE_XML.decode().replace('encoding="UTF-8"', f'encoding="{codec.upper()}"')
    error = plan_error(text.encode(codec))
    assert error.code == "unsupported_encoding"
    assert "an XML plan in UTF-" in error.message and "save it as UTF-8" in error.message


@pytest.mark.parametrize("content, kind", [
    (b"42", "a number"), (b"null", "null"), (b" -1.5e3\n", "a number"), (b'"plan"', "a text string"),
    (b"true", "true or false"), (b"\xef\xbb\xbfnull", "null"),
])
def test_json_value_that_is_not_an_object_is_not_a_plan_naming_what_it_is(content: bytes, kind: str) -> None:
    error = plan_error(content)
    assert error.code == "not_a_plan"
    assert f"holding {kind}, not an object" in error.message
    assert "neither JSON nor XML" not in error.message


# --- duplicates, numbers, text and nesting (issue 17, point 7) ------------------------

def test_json_key_given_twice_is_refused_not_silently_the_last() -> None:
    content = EXAMPLE_JSON.replace(b'"level": "basal"', b'"level": "basal", "level": "specialiseret"')
    error = plan_error(content)
    assert error.code == "duplicate_key"
    assert "'level' twice" in error.message


def test_duplicate_key_in_a_nested_object_is_refused() -> None:
    content = EXAMPLE_JSON.replace(b'"municipality_code": "185"',
                                   b'"municipality_code": "185", "municipality_code": "101"')
    assert plan_error(content).code == "duplicate_key"


def test_duplicate_key_message_never_quotes_a_cpr_shaped_key() -> None:
    content = EXAMPLE_JSON.replace(b'"urgent"', b'"010145-1234": 1, "010145-1234": 2, "urgent"')
    error = plan_error(content)
    assert error.code == "duplicate_key" and "010145" not in error.message


def test_xml_address_element_given_twice_is_a_duplicate() -> None:
    error = plan_error(xml_with("<StreetName>", "<StreetName>Andet 1</StreetName><StreetName>"))
    assert error.code == "duplicate_key"


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"1" * 5000, b"0." + b"1" * 40])
def test_number_json_cannot_hold_or_that_is_absurdly_long_is_refused(number: bytes) -> None:
    error = plan_error(EXAMPLE_JSON.replace(b'"urgent": false', b'"urgent": ' + number))
    assert error.code == "invalid_number"


@pytest.mark.parametrize("field, text", [
    ("name", "\ud800Karen Jensen"), ("name", "Karen \udfff"), ("rehab_need", "Gang \udc00"),
])
def test_lone_surrogate_from_a_json_escape_is_invalid_text_not_a_crash(field: str, text: str) -> None:
    document = example()
    (document["citizen"] if field == "name" else document)[field] = text
    error = plan_error(json.dumps(document).encode())  # ensure_ascii: written as \\ud800 escapes
    assert error.code == "invalid_text"
    error.message.encode("utf-8")  # the message itself can be written to a .reason file


def test_lone_surrogate_in_a_field_name_is_invalid_text() -> None:
    error = plan_error(EXAMPLE_JSON.replace(b'"urgent"', b'"\\ud800x": 1, "urgent"'))
    assert error.code == "invalid_text"
    error.message.encode("utf-8")


@pytest.mark.parametrize("field, text", [
    ("name", "Karen\x00Jensen"), ("name", "Karen\nJensen"), ("name", "Karen\u202eJensen"),
    ("plan_id", "GOP\x00-1"), ("plan_id", "GOP\t1"), ("rehab_need", "Gang\x07"), ("rehab_need", "Gang\x00"),
])
def test_control_characters_are_refused(field: str, text: str) -> None:
    document = example()
    (document["citizen"] if field == "name" else document)[field] = text
    error = plan_error(encode(document))
    assert error.code == "invalid_characters"
    assert "U+" in error.message


def test_line_breaks_and_tabs_are_allowed_in_descriptions() -> None:
    plan = parse_plan(encode({**example(), "rehab_need": "Gang,\n\tbalance\r\nog styrke"}))
    assert "\tbalance" in plan.rehab_need


def test_nul_in_an_extra_field_is_refused_too() -> None:
    assert plan_error(encode({**example(), "ward_note": "a\x00b"})).code == "invalid_characters"


def test_nesting_deeper_than_the_bound_is_refused() -> None:
    deep: Any = "x"
    for _ in range(40):
        deep = {"a": deep}
    assert plan_error(encode({**example(), "extra": deep})).code == "too_deeply_nested"


def test_nesting_beyond_the_json_parser_stack_is_refused_the_same_way() -> None:
    content = EXAMPLE_JSON.replace(b'"urgent": false', b'"urgent": ' + b"[" * 100_000 + b"]" * 100_000)
    assert plan_error(content).code == "too_deeply_nested"


@pytest.mark.parametrize("plan_id", ["010145-1234", "0101451234", "GOP-010145-1234", "010145 1234", "010145.1234"])
def test_plan_id_shaped_like_a_cpr_is_refused_without_quoting_it(plan_id: str) -> None:
    error = json_error(plan_id=plan_id)
    assert error.code == "cpr_shaped_plan_id"
    assert "010145" not in error.message


@pytest.mark.parametrize("plan_id", ["GOP-AMH-2026-000123", "RH-0000012345", "1234567890", "GOP-991299-0001"])
def test_plan_id_with_a_date_and_serial_or_a_ten_digit_counter_is_not_cpr_shaped(plan_id: str) -> None:
    """Ten digits whose first six are no day and month (00…, 12 34, 99 12) are a counter."""
    assert parse_plan(encode({**example(), "plan_id": plan_id})).plan_id == plan_id


# --- is this a plan file? (genop plan submit) ------------------------------------------

@pytest.mark.parametrize("name, head", [
    ("plan.json", EXAMPLE_JSON[:100]), ("PLAN.XML", EXAMPLE_XML[:100]), ("p.json", b"\xef\xbb\xbf \n{"),
    ("p.xml", "<?xml version='1.0'?>".encode("utf-16")), ("p.json", b"{"),
])
def test_plan_files_are_recognised_by_extension_and_first_character(name: str, head: bytes) -> None:
    assert is_plan_file(name, head)
    assert plan_file_problem(name, head) is None


@pytest.mark.parametrize("name, head, problem", [
    ("passwd", b"root:x:0:0:root:/root:/bin/bash\n", "not a .json or .xml"),
    ("notes.txt", b"{}", "not a .json or .xml"),
    ("plan.json.part", b"{", "not a .json or .xml"),
    ("scan.json", b"%PDF-1.7", "does not start like a plan"),
    ("list.json", b"[{}]", "does not start like a plan"),
    ("empty.xml", b"", "is empty"),
    ("blank.json", b" \n\t", "is empty"),
])
def test_other_files_are_not_plan_files(name: str, head: bytes, problem: str) -> None:
    assert not is_plan_file(name, head)
    assert problem in (plan_file_problem(name, head) or "")
