"""Properties of settlement in the store (agreement §8), over any year of courses:

* every course is settled exactly once, never before it completes, also when its
  completion is recorded after its month was settled; every visit is invoiced once, also
  when it is recorded after its course was settled;
* everything invoiced minus everything credited over the year equals every visit priced
  at the tariff in force on its visit date — after a retro-regulation too;
* re-running any month's settlement issues nothing;
* each municipality's a-conto is either offset or refunded, to the øre.

Runs on SQLite (a migrated template copied per example); the same code paths run on
PostgreSQL in test_billing.py.
"""

from __future__ import annotations

import calendar
import shutil
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from genop.settlement import ledger
from genop.config import Agreement, TariffTable, load_agreement
from genop.deadlines import first_working_day_of_month
from genop.settlement.regulation import regulate_since
from genop.settings import PROJECT_ROOT
from genop.settlement.rules import aconto_split
from genop.store.db import Store
from genop.store.models import (
    SettledCourse,
    SettlementDocumentRecord,
    Visit,
    YearReconciliationRecord,
)
from tests.settlement_factories import NOW, add_course, add_visits

YEAR = 2026
CODES = ("BLNA", "BRA", "BLNR1", "BTP", "AAF6")
AGREEMENT = load_agreement(PROJECT_ROOT / "config" / "agreement.yaml")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "store.sqlite"
    Store(f"sqlite:///{path}").dispose()
    return path


@pytest.fixture
def fresh_store(template: Path, tmp_path: Path) -> Iterator[object]:
    """A new migrated store per Hypothesis example (a copy of the template)."""
    stores: list[Store] = []

    def make() -> Store:
        path = tmp_path / f"example-{len(stores)}.sqlite"
        shutil.copy(template, path)
        store = Store(f"sqlite:///{path}", migrate_schema=False)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.dispose()


@st.composite
def courses(draw: st.DrawFn) -> list[dict]:
    result = []
    for n in range(draw(st.integers(0, 12))):
        month = draw(st.integers(1, 12))
        completed = date(YEAR, month, draw(st.integers(1, calendar.monthrange(YEAR, month)[1])))
        visits = [(completed - timedelta(days=draw(st.integers(0, 60))), draw(st.sampled_from(CODES)))
                  for _ in range(draw(st.integers(0, 6)))]
        recorded_in = draw(st.integers(month, 12))  # > month: the completion is recorded late
        later = [(completed - timedelta(days=draw(st.integers(0, 30))), draw(st.sampled_from(CODES)))
                 for _ in range(draw(st.integers(0, 2)))]  # visits exported after the course was settled
        result.append({"number": f"GEN-{YEAR}-{n + 1:06d}", "payer": draw(st.sampled_from(["tarnby", "dragor"])),
                       "completed_on": completed, "visits": visits, "recorded_in": recorded_in,
                       "later_visits": later, "later_in": draw(st.integers(recorded_in, 12))})
    return result


@st.composite
def regulations(draw: st.DrawFn) -> tuple[date, dict[str, Decimal]] | None:
    if not draw(st.booleans()):
        return None
    since = date(YEAR, draw(st.integers(1, 12)), 1)
    prices = {group: Decimal(draw(st.integers(30000, 200000))) / 100 for group in ("GEN1A", "GEN2A", "GEN3A")}
    return since, prices


def _tariffs(since: date, prices: dict[str, Decimal]) -> tuple[TariffTable, ...]:
    dags = AGREEMENT.tariffs[0]
    new_groups = {key: group.model_copy(update={"price": prices[key]}) for key, group in dags.groups.items()}
    return (dags.model_copy(update={"valid_to": since - timedelta(days=1)}),
            dags.model_copy(update={"name": "Omkostningsbaseret", "valid_from": since, "valid_to": None,
                                    "groups": new_groups}))


def _price(tables: tuple[TariffTable, ...], day: date, code: str) -> Decimal:
    """The test's own reading of Bilag 7: the table in force that day, the group by code prefix."""
    [table] = [t for t in tables if t.valid_from <= day and (t.valid_to is None or day <= t.valid_to)]
    [group] = [g for g in table.groups.values() if any(code.startswith(listed) for listed in g.sks_codes)]
    return group.price


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(year=courses(), regulation=regulations(), rerun=st.integers(1, 12))
def test_a_year_of_settlement_invoices_every_visit_once_at_its_tariff(fresh_store, tmp_path, year, regulation,
                                                                      rerun):
    store = fresh_store()
    folder = tmp_path / "invoices"
    agreement: Agreement = AGREEMENT
    for number in range(1, 13):
        month = f"{YEAR}-{number:02d}"
        with store.session() as session:
            for course in (c for c in year if c["recorded_in"] == number):
                add_course(session, course["number"], payer=course["payer"], completed_on=course["completed_on"],
                           visits=course["visits"])
            for course in (c for c in year if c["later_in"] == number):
                add_visits(session, course["number"], course["later_visits"])
        with store.session() as session:
            ledger.record_aconto(session, agreement, month=month, as_of=first_working_day_of_month(YEAR, number),
                                  folder=folder, now=NOW)
        invoice_date = date(YEAR + number // 12, number % 12 + 1, 1)
        with store.session() as session:
            ledger.settle(session, agreement, month=month, invoice_date=invoice_date, folder=folder, now=NOW)
    with store.session() as session:
        again = ledger.settle(session, agreement, month=f"{YEAR}-{rerun:02d}", invoice_date=date(YEAR + 1, 2, 1),
                               folder=folder, now=NOW)
        assert again.new is False

    tables = agreement.tariffs
    if regulation is not None:
        since, prices = regulation
        tables = _tariffs(since, prices)
        agreement = AGREEMENT.model_copy(update={"tariffs": tables})
        with store.session() as session:
            regulate_since(session, agreement, since=since, as_of=date(YEAR + 1, 1, 2), folder=folder, now=NOW)
        with store.session() as session:
            assert regulate_since(session, agreement, since=since, as_of=date(YEAR + 1, 1, 3), folder=folder,
                                          now=NOW).new is False

    with store.session() as session:
        settled = {course.case.case_number: (course.month, course.document.issue_date)
                   for course in session.scalars(select(SettledCourse).where(~SettledCourse.supplement))}
        documents = session.scalars(select(SettlementDocumentRecord)).all()
        invoiced = sum((d.line_total for d in documents if d.purpose in {"settlement", "regulation"}
                        and d.kind == "Invoice"), Decimal("0.00"))
        credited = sum((d.line_total for d in documents if d.purpose == "regulation" and d.kind == "CreditNote"),
                       Decimal("0.00"))
        assert session.scalar(
            select(func.count()).select_from(SettledCourse).where(~SettledCourse.supplement)) == len(year)
        assert session.scalar(select(func.count()).select_from(Visit).where(Visit.settled_document_id.is_(None))) == 0

    assert set(settled) == {c["number"] for c in year}
    expected = Decimal("0.00")
    for course in year:
        month, issued = settled[course["number"]]
        assert month == f"{YEAR}-{course['recorded_in']:02d}"  # its own month, or the first after it was recorded
        assert issued > course["completed_on"]
        regulated = regulation is not None and course["completed_on"] >= regulation[0]
        priced_with = tables if regulated else tuple(AGREEMENT.tariffs)  # completed before: original price
        expected += sum((_price(priced_with, day, code) for day, code in course["visits"] + course["later_visits"]),
                        Decimal("0.00"))
    assert invoiced - credited == expected

    with store.session() as session:
        rows, _ = ledger.reconcile(session, agreement, year=YEAR, as_of=date(YEAR + 1, 1, 5), folder=folder, now=NOW)
        for row in rows:
            assert row.refund + row.prepaid_used == row.aconto_paid == 12 * aconto_split(AGREEMENT)[row.payer]
            assert row.refund >= 0
        assert session.scalar(select(func.count()).select_from(YearReconciliationRecord)) == 2
