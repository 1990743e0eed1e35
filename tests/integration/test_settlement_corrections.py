"""Correcting a settled month for a dispute (SQLite and PostgreSQL; issue 12, agreement §8, §10):
an invoice dispute goes from open through a mediation call to resolved with a credit note for
one disputed visit that names the original invoice and the dispute and equals that visit's
tariff, issued and handed off once however often the correction runs; repricing gives the
difference; a completion date corrected changes no money; what cannot be corrected is refused
in one line. Every document validates against UBL 2.1 and the OIOUBL schematron.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree
from sqlalchemy import func, select

from genop.disputes import Action, RedoStatus, State, SubjectKind
from genop.disputes.records import call_mediation, get_dispute, move, open_dispute
from genop.escalation.budget import cost_parts_query, costs_from
from genop.escalation.rules import ScanContext
from genop.settlement import corrections
from genop.settlement.corrections import CorrectionRefused, checked, correct, invoiced_for
from genop.settlement.documents import hand_off, write_files
from genop.settlement.oioubl import DEFAULT_SCHEMAS_DIR, NS
from genop.settlement.regulation import regulate_since
from genop.store.models import Case, OutboxMessage, SettledCourse, SettlementDocumentRecord, Visit
from genop.store.repository import get_case
from genop_cli.main import cli
from genop.settlement.ledger import reconcile
from tests.integration.test_billing import (NOVEMBER_INVOICED, SMALL_DRAGOR, STROKE, UNFINISHED, aconto, by_payer,
                                            check_oioubl, folder, lines, settled, settled_november)
from tests.settlement_factories import NOW

SCHEMATRON = DEFAULT_SCHEMAS_DIR.parent / "oioubl-schematron-1.17.2"
AS_OF = date(2026, 12, 10)
BY = "Økonomimedarbejder B"
REASON = "Dragør bestrider et besøg den 9. november"


@pytest.fixture(scope="module")
def schematron():  # noqa: ANN201 - {kind: compiled XSLT}
    """The OIOUBL schematron (XSLT 2.0) compiled once; None (the XSD is still checked) where saxonche
    (``saxonche==12.10.1``) or the rules are absent."""
    try:
        import saxonche
    except ImportError:
        saxonche = None
    if saxonche is None or not SCHEMATRON.is_dir():
        yield None
        return
    processor = saxonche.PySaxonProcessor(license=False)
    compiler = processor.new_xslt30_processor()
    compiled = {kind: compiler.compile_stylesheet(stylesheet_file=str(SCHEMATRON / f"OIOUBL_{kind}_Schematron.xslt"))
                for kind in ("Invoice", "CreditNote")}
    yield processor, compiled


def oioubl_valid(schematron, document: SettlementDocumentRecord) -> etree._Element:  # noqa: ANN001
    """UBL 2.1 (XSD) and the OIOUBL schematron: no failed assertion."""
    root = check_oioubl(document)
    if schematron is None:
        return root
    processor, compiled = schematron
    source = processor.parse_xml(xml_text=document.xml.decode("utf-8"))
    svrl = etree.fromstring(compiled[document.kind].transform_to_string(xdm_node=source).encode("utf-8"))
    failed = [" ".join(f.itertext()).strip() for f in svrl.iter("{http://purl.oclc.org/dsdl/svrl}failed-assert")
              if f.get("flag", "fatal") != "warning"]
    assert failed == [], failed
    return root


def _open(runtime, session, subject: SubjectKind, reference: str, about: str = "visits_disputed"):  # noqa: ANN001, ANN202
    return open_dispute(session, runtime.agreement, subject=subject, reference=reference, about=about,
                        reason=REASON, by="Sagsbehandler A", day=AS_OF, now=NOW)


def _correct(runtime, tmp_path: Path, dispute: str, kind: str, **given):  # noqa: ANN001, ANN202
    request = checked(dispute, kind, BY, case=given.get("case"), visit=given.get("visit"),
                      completed_on=given.get("completed_on"), tariff_group=given.get("tariff_group"))
    with runtime.store.session() as session:
        done = correct(session, runtime.agreement, request, as_of=given.get("as_of", AS_OF),
                       folder=folder(tmp_path), now=NOW)
        result = (done.new, [d.number for d in done.documents], dict(done.redo.changes), done.redo.key)
    write_files(done.documents)  # after the commit, as tasks.corrections does
    hand_off(runtime.store, result[1])
    return result


def _visits(runtime, case_number: str) -> list[int]:
    with runtime.store.session() as session:
        case = get_case(session, case_number)
        return list(session.scalars(select(Visit.id).where(Visit.case_id == case.id).order_by(Visit.id)))


def _document(runtime, number: str) -> SettlementDocumentRecord:
    with runtime.store.session() as session:
        document = session.scalars(select(SettlementDocumentRecord)
                                   .where(SettlementDocumentRecord.number == number)).one()
        session.expunge(document)
        return document


def _count(runtime, model, *where) -> int:  # noqa: ANN001
    with runtime.store.session() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def test_disputed_visit_is_credited_once_at_its_tariff_naming_the_original_invoice(runtime, tmp_path, schematron):
    outcome = settled_november(runtime, tmp_path)
    original = by_payer(outcome.documents)["dragor"]
    original_xml = original.xml
    with runtime.store.session() as session:
        dispute = _open(runtime, session, SubjectKind.INVOICE, original.number)
        call_mediation(session, runtime.agreement, dispute, meeting_on=AS_OF + timedelta(days=8), by="A",
                       why="ikke enige", day=AS_OF, now=NOW)
        number = dispute.number
    disputed = _visits(runtime, SMALL_DRAGOR)[0]

    first = _correct(runtime, tmp_path, number, "remove-visit", visit=disputed)
    again = _correct(runtime, tmp_path, number, "remove-visit", visit=disputed)
    new, [credit_number], changes, key = first
    assert new and again == (False, [credit_number], changes, key)
    assert key == f"{number}:{Action.CORRECT_SETTLEMENT.value}:remove-visit:visit-{disputed}"

    credit = _document(runtime, credit_number)
    assert (credit.kind, credit.purpose, credit.payer) == ("CreditNote", "correction", "dragor")
    assert credit.line_total == Decimal("640.00") == credit.payable  # one BLNA visit, GEN1A as invoiced
    assert lines(credit) == [(SMALL_DRAGOR, "640.00")]
    root = oioubl_valid(schematron, credit)
    assert [r.text for r in root.iterfind("cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID", NS)] == [
        original.number]
    assert number in root.findtext("cbc:Note", namespaces=NS) and REASON not in credit.xml.decode()
    assert (changes["invoiced_before"], changes["invoiced_after"], changes["difference"]) == (
        "1920.00", "1280.00", "-640.00")
    assert changes["originals"] == [original.number]

    # handed off exactly once; the original is never changed or issued again
    assert _count(runtime, OutboxMessage, OutboxMessage.key == f"oioubl:{credit_number}",
                  OutboxMessage.status == "sent") == 1
    assert hand_off(runtime.store, [credit_number]).delivered == ()
    picked_up = folder(tmp_path) / "outgoing" / f"{credit_number}.xml"
    assert picked_up.read_bytes() == credit.xml
    assert _document(runtime, original.number).xml == original_xml
    assert _count(runtime, SettlementDocumentRecord, SettlementDocumentRecord.purpose == "correction") == 1

    with runtime.store.session() as session:
        visit = session.get(Visit, disputed)
        assert visit is not None and visit.removed_by_redo_id is not None
        assert invoiced_for(session, get_case(session, SMALL_DRAGOR)) == Decimal("1280.00")
        dispute = get_dispute(session, number)
        [redo] = dispute.redos
        assert (redo.status, redo.requested_by, redo.produced["documents"]) == (
            RedoStatus.DONE.value, BY, [credit_number])
        assert dispute.events[-1].details["produced"]["documents"] == [credit_number]
        move(session, dispute, State.RESOLVED, by="B", why="enige på mødet", day=AS_OF + timedelta(days=8), now=NOW)
    # staff see the visit removed where they found its id
    shown = CliRunner().invoke(cli, ["case", "show", SMALL_DRAGOR, "--json"])
    assert shown.exit_code == 0, shown.output
    assert [(v["id"], v["invoiced_on"], v["removed"]) for v in json.loads(shown.stdout)["visits"]] == [
        (visit, original.number, visit == disputed) for visit in _visits(runtime, SMALL_DRAGOR)]
    # a later regulation at the same tariffs finds nothing: the removed visit is not counted again
    with runtime.store.session() as session:
        regulated = regulate_since(session, runtime.agreement, since=date(2026, 1, 1), as_of=AS_OF,
                                   folder=folder(tmp_path), now=NOW)
    assert not regulated.new and regulated.documents == ()
    # resolved, the redo still returns what it produced
    assert _correct(runtime, tmp_path, number, "remove-visit", visit=disputed)[:2] == (False, [credit_number])


def test_reprice_invoices_the_difference_and_a_changed_completion_date_changes_no_money(runtime, tmp_path,
                                                                                         schematron):
    outcome = settled_november(runtime, tmp_path)
    original = by_payer(outcome.documents)["tarnby"]
    with runtime.store.session() as session:
        number = _open(runtime, session, SubjectKind.CASE, STROKE, about="price_disputed").number
        case = get_case(session, STROKE)
        blna = session.scalars(select(Visit.id).where(Visit.case_id == case.id, Visit.sks_code == "BLNA")
                               .order_by(Visit.id)).first()
        before = invoiced_for(session, case)

    new, [supplement], changes, _ = _correct(runtime, tmp_path, number, "reprice", visit=blna, tariff_group="gen2a")
    assert new and _correct(runtime, tmp_path, number, "reprice", visit=blna, tariff_group="GEN2A")[:2] == (
        False, [supplement])
    document = _document(runtime, supplement)
    assert (document.kind, document.payer, document.line_total) == ("Invoice", "tarnby", Decimal("215.00"))
    root = oioubl_valid(schematron, document)
    assert [r.text for r in root.iterfind("cac:BillingReference/cac:InvoiceDocumentReference/cbc:ID", NS)] == [
        original.number]
    assert changes["visits"][0]["tariff_group_before"] == "GEN1A" and changes["visits"][0]["price_after"] == "855.00"
    with runtime.store.session() as session:
        assert invoiced_for(session, get_case(session, STROKE)) == before + Decimal("215.00")
        regulated = regulate_since(session, runtime.agreement, since=date(2026, 1, 1), as_of=AS_OF,
                                   folder=folder(tmp_path), now=NOW)
    assert regulated.documents == ()  # the repriced visit keeps its corrected group

    # back to GEN1A: the same visit credited the difference
    _, [credit], _, _ = _correct(runtime, tmp_path, number, "reprice", visit=blna, tariff_group="GEN1A")
    credited = _document(runtime, credit)
    assert (credited.kind, credited.line_total) == ("CreditNote", Decimal("215.00"))
    oioubl_valid(schematron, credited)

    new, produced, changes, _ = _correct(runtime, tmp_path, number, "change-completion",
                                         completed_on=date(2026, 11, 27))
    assert new and produced == [] and changes["completed_on_before"] == "2026-11-20"
    with runtime.store.session() as session:
        case = get_case(session, STROKE)
        assert case.completed_on == date(2026, 11, 27)
        assert session.scalar(select(SettledCourse.completed_on).where(SettledCourse.case_id == case.id)) == date(
            2026, 11, 27)
    assert _correct(runtime, tmp_path, number, "change-completion", completed_on=date(2026, 11, 27))[:2] == (False, [])


def test_what_cannot_be_corrected_is_refused_in_one_line(runtime, tmp_path):
    outcome = settled_november(runtime, tmp_path)
    dragor = by_payer(outcome.documents)["dragor"]
    with runtime.store.session() as session:
        invoice_dispute = _open(runtime, session, SubjectKind.INVOICE, dragor.number).number
        stroke_dispute = _open(runtime, session, SubjectKind.CASE, STROKE).number
    tarnby_visit = _visits(runtime, STROKE)[0]
    refusals = [
        (invoice_dispute, "remove-visit", {"visit": tarnby_visit}, "not on invoice"),
        (invoice_dispute, "reprice", {}, "needs the tariff group"),
        (invoice_dispute, "reprice", {"tariff_group": "GEN9Z"}, "give the case"),
        (invoice_dispute, "reprice", {"case": SMALL_DRAGOR, "tariff_group": "GEN9Z"}, "not a tariff group"),
        (invoice_dispute, "remove-visit", {"case": UNFINISHED, "visit": _visits(runtime, UNFINISHED)[0]},
         "not on a settled course"),
        (invoice_dispute, "remove-visit", {"visit": 999999}, "no visit 999999"),
        (stroke_dispute, "change-completion", {"completed_on": date(2026, 12, 3)}, "2026-12 is not settled"),
        (stroke_dispute, "change-completion", {"completed_on": date(2026, 10, 30)}, "has a visit on 2026-11-02"),
        (stroke_dispute, "remove-visit", {"visit": _visits(runtime, SMALL_DRAGOR)[0]}, "not of case"),
        (stroke_dispute, "move-money", {}, "not a correction"),
        ("TV-2026-0999", "remove-visit", {"visit": tarnby_visit}, "no dispute"),
    ]
    for dispute, kind, given, message in refusals:
        with pytest.raises(Exception) as raised:
            _correct(runtime, tmp_path, dispute, kind, **given)
        assert message in str(raised.value) and "\n" not in str(raised.value), (kind, given, str(raised.value))
        assert getattr(raised.value, "code", None), raised.value
    assert _count(runtime, SettlementDocumentRecord, SettlementDocumentRecord.purpose == "correction") == 0
    assert isinstance(CorrectionRefused("x"), corrections.SettlementError)
    with runtime.store.session() as session:
        assert get_case(session, STROKE).completed_on == date(2026, 11, 20)
        assert session.scalar(select(func.count()).select_from(Case)) == 4
    assert NOVEMBER_INVOICED  # the month the refusals are about was settled on 1 December


def _budget(runtime, session) -> Decimal:  # noqa: ANN001
    """Dragør's completed cost of the year so far, as the escalation scan's budget forecast counts it."""
    ctx = ScanContext(AS_OF, runtime.agreement)
    rows = session.execute(cost_parts_query(ctx)).all()
    return costs_from(rows, runtime.agreement, AS_OF)["dragor"].completed


def test_a_removed_visit_is_not_counted_by_the_year_reconciliation_or_the_budget(runtime, tmp_path):
    outcome = settled_november(runtime, tmp_path)
    dragor = by_payer(outcome.documents)["dragor"]
    with runtime.store.session() as session:
        number = _open(runtime, session, SubjectKind.INVOICE, dragor.number).number
    with runtime.store.session() as session:
        costs_before = _budget(runtime, session)
    _correct(runtime, tmp_path, number, "remove-visit", visit=_visits(runtime, SMALL_DRAGOR)[0])
    with runtime.store.session() as session:  # the budget forecast counts the credit, not the visit
        assert costs_before - _budget(runtime, session) == Decimal("640.00")
    aconto(runtime, tmp_path, "2026-12")
    settled(runtime, tmp_path, "2026-12")
    with runtime.store.session() as session:
        rows, _ = reconcile(session, runtime.agreement, year=2026, as_of=date(2027, 1, 5), folder=folder(tmp_path),
                            now=NOW)
        assert {row.payer: row.settled for row in rows}["dragor"] == Decimal("1280.00")  # 3 visits, one credited
