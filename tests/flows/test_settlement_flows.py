"""Settlement through its flows (agreement §8), on SQLite and PostgreSQL: the a-conto with
catch-up, the monthly settlement by `genop settle` and by the scheduled deployment, a late
course, retro-regulation with a new tariff table, the January refund — and every re-run
issues nothing twice.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import yaml
from click.testing import CliRunner
from lxml import etree
from sqlalchemy import func, select

from genop.settlement.oioubl import DEFAULT_SCHEMAS_DIR, NS, validate_ubl
from genop.store.models import SettlementDocumentRecord
from genop_cli.main import cli
from tests.conftest import ROOT
from tests.flows.helpers import OUTCOME_SECONDS, everything_prefect_holds, prefect_database_bytes
from tests.settlement_factories import add_course, visits_on

STROKE_YEAR = {"BLNA": 175, "BLNR": 385, "AAF6": 6}  # Bilag 3: 31 stroke courses, DKK 449,461.00
CPR = "0101701234"  # the factory's citizen


def _genop(*args: str) -> dict:
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _documents(runtime) -> int:
    with runtime.store.session() as session:
        return session.scalar(select(func.count()).select_from(SettlementDocumentRecord))


def _check_oioubl(invoice: dict) -> None:
    xml = Path(invoice["oioubl_path"]).read_bytes()
    if (DEFAULT_SCHEMAS_DIR / "maindoc").is_dir():
        validate_ubl(xml, "Invoice")
    root = etree.fromstring(xml)
    endpoint = root.find("cac:AccountingCustomerParty/cac:Party/cbc:EndpointID", NS)
    assert (endpoint.text, endpoint.get("schemeID")) == (invoice["ean"], "GLN")
    assert root.findtext("cbc:DocumentCurrencyCode", namespaces=NS) == "DKK"
    assert root.findtext("cac:PaymentMeans/cbc:PaymentDueDate", namespaces=NS) == invoice["due_date"]
    assert root.findtext("cac:LegalMonetaryTotal/cbc:PayableAmount", namespaces=NS) == invoice["amount_due"]
    assert [line.findtext("cac:OrderLineReference/cbc:LineID", namespaces=NS)
            for line in root.findall("cac:InvoiceLine", NS)] == [line["case_number"] for line in invoice["lines"]]
    assert CPR.encode() not in xml and CPR not in Path(invoice["html_path"]).read_text(encoding="utf-8")


def _run_deployment(name: str, **parameters: object) -> None:
    from prefect.deployments import run_deployment

    run = run_deployment(name, parameters=parameters, timeout=OUTCOME_SECONDS)
    assert run.state is not None and run.state.is_completed(), run.state


def test_aconto_and_settlement_through_flows(system, tmp_path, monkeypatch):
    runtime = system["runtime"]
    with runtime.store.session() as session:
        add_course(session, "GEN-2026-000101", group="stroke", completed_on=date(2026, 10, 28),
                   visits=visits_on(date(2026, 10, 5), **STROKE_YEAR))
        add_course(session, "GEN-2026-000102", payer="dragor", group="knee_replacement",
                   completed_on=date(2026, 10, 30), visits=visits_on(date(2026, 10, 6), BLNA=2, BLNR=1))
        add_course(session, "GEN-2026-000103", completed_on=None, visits=visits_on(date(2026, 10, 7), BLNA=4))

    # a-conto: the first month, then two months caught up at once, then nothing more
    first = _genop("aconto", "--as-of", "2026-10-01")
    assert [m["month"] for m in first["months"]] == ["2026-10"]
    assert {d["municipality"]: d["total"] for d in first["months"][0]["documents"]} == {
        "185": "150000.00", "155": "50000.00"}
    caught_up = _genop("aconto", "--as-of", "2026-12-01")
    assert [m["month"] for m in caught_up["months"]] == ["2026-11", "2026-12"]
    assert _genop("aconto", "--as-of", "2026-12-01")["months"] == []
    assert _documents(runtime) == 6

    # the monthly settlement, in the JSON shape
    october = _genop("settle", "--month", "2026-10", "--as-of", "2026-11-02")
    assert october["month"] == "2026-10"
    tarnby, dragor = sorted(october["invoices"], key=lambda i: i["municipality"], reverse=True)
    assert (tarnby["municipality"], tarnby["ean"]) == ("185", "5798009884381")
    assert [(line["case_number"], line["diagnosis_group"], line["visits"], line["amount"])
            for line in tarnby["lines"]] == [
        ("GEN-2026-000101", "stroke", {"GEN1A": 175, "GEN2A": 385, "GEN3A": 6}, "449461.00")]
    assert (tarnby["total"], tarnby["aconto"], tarnby["amount_due"], tarnby["due_date"]) == (
        "449461.00", "150000.00", "299461.00", "2026-12-02")
    # Dragør: 2 x 640 + 855 = 2135.00, all covered by the a-conto; the document is made anyway
    assert (dragor["municipality"], dragor["total"], dragor["amount_due"]) == ("155", "2135.00", "0.00")
    assert dragor["carried_to_reconciliation"] == str(Decimal("50000.00") - Decimal("2135.00"))
    for invoice in (tarnby, dragor):
        _check_oioubl(invoice)
    again = _genop("settle", "--month", "2026-10", "--as-of", "2026-11-20")  # a dispute re-run
    assert (again["new"], again["invoices"]) == (False, october["invoices"])
    assert _documents(runtime) == 8
    handoffs = [o for o in _genop("outbox", "list")["outbox"] if o["channel"] == "nemhandel"]
    assert len(handoffs) == 8 and {o["status"] for o in handoffs} == {"sent"}  # each handed to NemHandel once
    assert Path(runtime.settings.home_dir / "invoices" / "outgoing" / f"{tarnby['number']}.xml").read_bytes() == \
        _stored_xml(runtime, tarnby["number"])

    # a course of October recorded late goes into November, settled by the scheduled deployment
    with runtime.store.session() as session:
        add_course(session, "GEN-2026-000104", completed_on=date(2026, 10, 31),
                   visits=visits_on(date(2026, 10, 20), BLNR=2))
    _run_deployment("settle/settle", as_of="2026-12-01")  # the first working day after November
    listed = _genop("invoices", "list", "--period", "2026-11")["documents"]
    [november] = [d for d in listed if d["purpose"] == "settlement"]
    assert [(line["case_number"], line["amount"]) for line in november["lines"]] == [("GEN-2026-000104", "1710.00")]
    assert "efterregistreret" in november["lines"][0]["description"]
    Path(tarnby["oioubl_path"]).unlink()  # a file lost: the next daily run writes it again from the store
    _run_deployment("settle/settle", as_of="2026-12-02")
    assert _documents(runtime) == 9
    assert Path(tarnby["oioubl_path"]).read_bytes() == _stored_xml(runtime, tarnby["number"])

    # retro-regulation: cost-based tariffs from 1 January 2026 (GEN1A down, GEN2A up)
    regulated = tmp_path / "agreement.yaml"
    config = yaml.safe_load((ROOT / "config" / "agreement.yaml").read_text(encoding="utf-8"))
    dags = config["tariffs"][0]
    dags["valid_to"] = date(2025, 12, 31)
    cost_based = {**dags, "name": "Omkostningsbaseret 2026", "valid_from": date(2026, 1, 1), "valid_to": None,
                  "groups": {g: {**v, "price": {"GEN1A": "600.00", "GEN2A": "900.00"}.get(g, v["price"])}
                             for g, v in dags["groups"].items()}}
    config["tariffs"].append(cost_based)
    regulated.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    monkeypatch.setenv("GENOP_AGREEMENT_FILE", str(regulated))
    from genop.runtime import current_runtime

    current_runtime.cache_clear()
    adjustment = _genop("settle", "--regulate", "--from", "2026-01-01", "--as-of", "2026-12-10")
    by_key = {(d["municipality"], d["kind"]): d for d in adjustment["documents"]}
    # Tårnby stroke: 175 x -40 + 385 x +45 = +10,325.00; late course 2 x +45 = +90.00 → one invoice
    assert by_key[("185", "Invoice")]["total"] == "10415.00"
    # Dragør knee: 2 x -40 + 45 = -35.00 → a credit note
    assert by_key[("155", "CreditNote")]["total"] == "35.00"
    assert set(by_key) == {("185", "Invoice"), ("155", "CreditNote")}
    assert Path(tarnby["oioubl_path"]).read_bytes() == _stored_xml(runtime, tarnby["number"])
    again = _genop("settle", "--regulate", "--from", "2026-01-01", "--as-of", "2026-12-11")
    assert again["new"] is False and _documents(runtime) == 11

    # December (nothing completed), then the January reconciliation of 2026
    _genop("settle", "--month", "2026-12", "--as-of", "2027-01-04")
    year = _genop("settle", "--reconcile", "2026", "--as-of", "2027-01-05")
    rows = {row["municipality"]: row for row in year["municipalities"]}
    assert (rows["185"]["aconto_paid"], rows["185"]["aconto_used"], rows["185"]["refund"]) == (
        "450000.00", "151710.00", "298290.00")
    assert (rows["155"]["aconto_paid"], rows["155"]["aconto_used"], rows["155"]["refund"]) == (
        "150000.00", "2135.00", "147865.00")
    assert rows["185"]["credit_note"]["kind"] == "CreditNote" and year["readiness_clause"] is True
    assert _genop("settle", "--reconcile", "2026", "--as-of", "2027-01-20") == year
    assert _documents(runtime) == 13

    # the UI shows totals per municipality; nothing personal reached Prefect
    rows = [row for table in _artifact_tables() for row in table]
    assert {"document": tarnby["number"], "kind": "Invoice", "purpose": "settlement", "period": "2026-10",
            "municipality": "185 Tårnby Kommune", "total": "449461.00", "aconto": "150000.00",
            "amount_due": "299461.00", "due_date": "2026-12-02"} in rows
    haystack = everything_prefect_holds()
    for secret in (CPR, "knee_replacement"):
        assert secret not in haystack, f"{secret!r} found in Prefect"
    assert CPR.encode() not in prefect_database_bytes()


def _stored_xml(runtime, number: str) -> bytes:
    with runtime.store.session() as session:
        return session.scalar(select(SettlementDocumentRecord.xml).where(SettlementDocumentRecord.number == number))


def _artifact_tables() -> list[list[dict]]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterType

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(type=ArtifactFilterType(any_=["table"])))
    return [json.loads(a.data) if isinstance(a.data, str) else a.data for a in artifacts]


def test_settling_before_the_aconto_is_recorded_is_refused_with_the_command_to_run(system):
    runtime = system["runtime"]
    with runtime.store.session() as session:
        add_course(session, "GEN-2026-000201", completed_on=date(2026, 9, 20),
                   visits=visits_on(date(2026, 9, 1), BLNA=1))
    result = CliRunner().invoke(cli, ["settle", "--month", "2026-09", "--as-of", "2026-10-01"])
    assert result.exit_code == 1
    assert "genop aconto --month 2026-09" in result.output
    assert _documents(runtime) == 0
    daily = CliRunner().invoke(cli, ["settle", "--as-of", "2026-10-01"])  # what the daily run would do
    assert daily.exit_code == 0 and "no a-conto is recorded yet" in daily.output
    _genop("aconto", "--month", "2026-09", "--as-of", "2026-10-01")
    early = CliRunner().invoke(cli, ["settle", "--as-of", "2026-09-30"])
    assert early.exit_code == 0 and "2026-09 is settled from 2026-10-01" in early.output
    [september] = _genop("settle", "--as-of", "2026-10-01")["months"]  # Thursday 1 October: due
    assert [(i["municipality"], i["total"], i["amount_due"]) for i in september["invoices"]] == [
        ("185", "640.00", "0.00")]


def test_a_regulation_date_that_is_not_a_date_is_named():
    result = CliRunner().invoke(cli, ["settle", "--regulate", "--from", "2026-13-01"])
    assert result.exit_code == 2 and "'2026-13-01' is not a date" in result.output and "--from" in result.output
