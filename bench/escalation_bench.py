"""The escalation scan at scale: one set-based query per kind over indexed columns.

    .venv/bin/python bench/escalation_bench.py [--cases N] [--sqlite-cases N] [--no-postgres] [--no-sqlite]

Fills PostgreSQL with 1,000,000 open cases (COPY) and SQLite with 100,000 (executemany): a
spread of states and dates, visits for the courses in training, reports, completed and
settled courses of the year. Then runs the whole scan, and prints its wall time, each
kind's query time and row count, and each query's plan (``EXPLAIN`` on PostgreSQL,
``EXPLAIN QUERY PLAN`` on SQLite). Prints figures; asserts nothing (speed is measured here,
never in tests). Target: the whole scan in 10 s on PostgreSQL with 1,000,000 cases.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from bench.postgres import throwaway_database  # noqa: E402
from genop.config import load_agreement  # noqa: E402
from genop.escalation import Kind  # noqa: E402
from genop.escalation.scan import QUERIES, RULES, ScanContext, scan, tune  # noqa: E402
from genop.store.db import Store  # noqa: E402
from genop.store.models import Case, CaseEvent, SettledCourse, SettlementDocumentRecord, Visit  # noqa: E402

AS_OF = date(2026, 11, 16)
NOW = datetime(2026, 11, 16, 6, 0, tzinfo=UTC)
STATES = [("in_training", 55), ("forwarded", 20), ("routed_elsewhere", 15), ("awaiting_consent", 6),
          ("incomplete", 2), ("forwarding", 1.5), ("forward_failed", 0.5)]
CODES = ["BLNA", "BLNA", "BLNA", "BLNR", "BLNR", "BTP", "AAF6"]
CASE_COLUMNS = ["id", "case_number", "plan_id", "state", "route", "municipality_code", "payer", "diagnosis_group",
                "level", "urgent", "transport_first_session", "discharge_date", "start_by", "free_choice_from", "cpr",
                "reasons", "revision", "received_on", "consent_recorded_at", "forwarded_on", "first_session_at",
                "first_session_offered_on", "completed_on", "created_at", "updated_at"]
VISIT_COLUMNS = ["id", "case_id", "visit_date", "sks_code", "tariff_group", "minutes", "mode", "group_size",
                 "fingerprint", "recorded_at", "settled_document_id"]
TARIFF = {"BLNA": "GEN1A", "BLNR": "GEN2A", "BTP": "GEN2A", "AAF6": "GEN3A"}


def days_ago(rng: random.Random, mean: float, limit: int = 150) -> int:
    return min(int(rng.expovariate(1 / mean)), limit)


class Fill:
    """Rows for the cases, visits, events and settlement of one benchmark database."""

    def __init__(self, cases: int, groups: list[str]) -> None:
        self.rng = random.Random(11)
        self.cases, self.groups = cases, groups
        self.visit_id = 0
        self.completed = max(cases // 30, 10)

    def _case(self, n: int, state: str, **fields: Any) -> dict[str, Any]:
        rng = self.rng
        municipality = "155" if n % 4 == 0 else "185"
        received = fields.pop("received_on")
        discharge = received - timedelta(days=rng.randint(0, 2))
        row: dict[str, Any] = {
            "id": n, "case_number": f"GEN-2026-{n:07d}", "plan_id": f"GOP-BENCH-{n:07d}", "state": state,
            "route": "copenhagen", "municipality_code": municipality, "payer": None,
            "diagnosis_group": self.groups[n % len(self.groups)], "level": "basal", "urgent": n % 20 == 0,
            "transport_first_session": n % 3 == 0, "discharge_date": discharge,
            "start_by": discharge + timedelta(days=rng.randint(7, 30)) if n % 10 < 7 else None,
            "free_choice_from": discharge + timedelta(days=7), "cpr": "0101701234", "reasons": "[]", "revision": 1,
            "received_on": received, "consent_recorded_at": None, "forwarded_on": None, "first_session_at": None,
            "first_session_offered_on": None, "completed_on": None, "created_at": NOW, "updated_at": NOW}
        row.update(fields)
        return row

    def open_cases(self) -> Iterator[dict[str, Any]]:
        rng = self.rng
        names = [s for s, _ in STATES]
        weights = [w for _, w in STATES]
        for n in range(1, self.cases + 1):
            state = rng.choices(names, weights)[0]
            if state in ("awaiting_consent", "incomplete"):
                yield self._case(n, state, received_on=AS_OF - timedelta(days=days_ago(rng, 4)))
                continue
            if state == "routed_elsewhere":
                received = AS_OF - timedelta(days=days_ago(rng, 30))
                offered = received + timedelta(days=rng.randint(1, 6)) if rng.random() < 0.97 else None
                session = offered + timedelta(days=rng.randint(1, 10)) if offered else None
                yield self._case(n, state, route="lojtegaardsvej", received_on=received,
                                 first_session_offered_on=min(offered, AS_OF) if offered else None,
                                 first_session_at=datetime.combine(session, datetime.min.time(), UTC)
                                 + timedelta(hours=8) if session else None)
                continue
            age = days_ago(rng, 3 if state in ("forwarding", "forward_failed") else 12)
            if state == "in_training":
                age = rng.randint(5, 45)
            received = AS_OF - timedelta(days=age + 2)
            consent = datetime.combine(received + timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=9)
            fields: dict[str, Any] = {"received_on": received, "consent_recorded_at": consent}
            if state in ("forwarded", "in_training"):
                fields["forwarded_on"] = received + timedelta(days=1)
                if state == "in_training" or rng.random() < 0.95:
                    first = received + timedelta(days=rng.randint(2, 8))
                    fields["first_session_at"] = datetime.combine(first, datetime.min.time(), UTC) + timedelta(hours=8)
                    fields["first_session_offered_on"] = min(received + timedelta(days=2), AS_OF)
            yield self._case(n, state, **fields)

    def visits_for(self, case: dict[str, Any], settled_document: int | None = None,
                   until: date = AS_OF) -> Iterator[dict[str, Any]]:
        """A visit every 2-9 days from the first session; one course in twenty stopped early."""
        rng = self.rng
        day = case["first_session_at"].date() if case["first_session_at"] else case["received_on"]
        if rng.random() < 0.05:
            until = day + timedelta(days=rng.randint(0, max((until - day).days, 0)))
        while True:
            self.visit_id += 1
            code = rng.choice(CODES)
            grouped = rng.random() < 0.3
            yield {"id": self.visit_id, "case_id": case["id"], "visit_date": day, "sks_code": code,
                   "tariff_group": TARIFF[code], "minutes": rng.choice((30, 45, 60, 90)),
                   "mode": "group" if grouped else "individual", "group_size": rng.choice((4, 8)) if grouped else None,
                   "fingerprint": f"bench-{self.visit_id}", "recorded_at": NOW, "settled_document_id": settled_document}
            day += timedelta(days=rng.randint(3, 9))
            if day > until:
                return

    def completed_cases(self) -> Iterator[tuple[dict[str, Any], int | None]]:
        """Courses completed this year; those completed before October are settled (document per month)."""
        rng = self.rng
        for k in range(self.completed):
            n = self.cases + 1 + k
            completed = date(2026, 1, 5) + timedelta(days=rng.randint(0, (AS_OF - date(2026, 1, 5)).days))
            received = completed - timedelta(days=rng.randint(30, 70))
            case = self._case(n, "completed", received_on=received, completed_on=completed,
                              first_session_at=datetime.combine(received + timedelta(days=4), datetime.min.time(),
                                                                UTC))
            yield case, (completed.month if completed.month < 10 else None)


def documents() -> list[dict[str, Any]]:
    rows = []
    for month in range(1, 10):
        for payer in ("tarnby", "dragor"):
            rows.append({"id": month * 10 + (payer == "dragor"), "key": f"settlement:2026-{month:02d}:{payer}",
                         "number": f"BENCH-{month:02d}-{payer}", "kind": "Invoice", "purpose": "settlement",
                         "payer": payer, "ean": "5798009884381", "period": f"2026-{month:02d}",
                         "issue_date": date(2026, month + 1, 3), "due_date": None, "line_total": 0, "prepaid": 0,
                         "payable": 0, "aconto": 0, "carried": 0, "note": None, "xml": b"", "html": "",
                         "xml_path": "", "html_path": "", "created_at": NOW})
    return rows


def fill(engine: Engine, cases: int) -> tuple[int, int]:
    agreement = load_agreement()
    work = Fill(cases, [k for k, g in agreement.diagnosis_groups.items() if g.covered])
    postgres = engine.dialect.name == "postgresql"
    case_rows: list[dict[str, Any]] = []
    visit_rows: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    settled: list[dict[str, Any]] = []
    total_cases = total_visits = 0

    def flush(final: bool = False) -> None:
        nonlocal case_rows, visit_rows, total_cases, total_visits
        if len(case_rows) >= 100_000 or len(visit_rows) >= 300_000 or final:  # cases first: visits refer to them
            write(engine, postgres, Case.__table__.name, CASE_COLUMNS, case_rows)
            total_cases += len(case_rows)
            case_rows = []
            write(engine, postgres, Visit.__table__.name, VISIT_COLUMNS, visit_rows)
            total_visits += len(visit_rows)
            visit_rows = []

    with engine.begin() as conn:
        conn.execute(insert(SettlementDocumentRecord), documents())
    for case in work.open_cases():
        case_rows.append(case)
        if case["state"] == "in_training":
            visit_rows += work.visits_for(case)
            if case["id"] % 200 == 0:
                events.append({"case_id": case["id"], "at": NOW - timedelta(days=case["id"] % 20),
                               "kind": "cannot_follow", "detail": "bench", "data": {}})
        if case["state"] == "routed_elsewhere" and case["id"] % 500 == 0:
            events.append({"case_id": case["id"], "at": NOW - timedelta(days=case["id"] % 20), "kind": "sent_back",
                           "detail": "bench", "data": {}})
        flush()
    for case, month in work.completed_cases():
        case_rows.append(case)
        document = None if month is None else month * 10 + (case["municipality_code"] == "155")
        course_visits = list(work.visits_for(case, document, until=case["completed_on"]))
        visit_rows += course_visits
        if document is not None:
            settled.append({"case_id": case["id"], "supplement": False, "document_id": document, "line_no": 1,
                            "month": f"2026-{month:02d}", "completed_on": case["completed_on"], "visits": {},
                            "amount": 640 * len(course_visits)})
        flush()
    flush(final=True)
    with engine.begin() as conn:
        conn.execute(insert(CaseEvent), events)
        conn.execute(insert(SettledCourse), settled)
    if postgres:  # as autovacuum leaves a table in use: statistics and the visibility map
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return total_cases, total_visits


def write(engine: Engine, postgres: bool, table: str, columns: list[str], rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    if postgres:
        raw = engine.raw_connection()
        try:
            with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([row[c] for c in columns])
            raw.commit()
        finally:
            raw.close()
        return
    model = {"cases": Case, "visits": Visit}[table]
    with engine.begin() as conn:
        conn.execute(insert(model), [{**row, "reasons": []} if table == "cases" else row for row in rows])


def explain(engine: Engine, kind: Kind, ctx: ScanContext) -> str:
    compiled = QUERIES[kind](ctx).compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
    sql = str(compiled)
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            lines = conn.exec_driver_sql("EXPLAIN " + sql, compiled.params).scalars().all()
        else:
            params = tuple(compiled.params[name] for name in compiled.positiontup or ())
            params = tuple(v.astimezone(UTC).replace(tzinfo=None).isoformat(" ") if isinstance(v, datetime)
                           else v.isoformat() if isinstance(v, date) else v for v in params)
            lines = [f"{'  ' * (row[1] > 0)}{row[3]}" for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql,
                                                                                         params)]
    return "\n".join(f"    {line}" for line in lines)


def bench(label: str, url: str, cases: int, show_plans: bool) -> None:
    store = Store(url)
    with store.engine.connect() as conn:
        filled = conn.execute(text("SELECT count(*) FROM cases")).scalar_one()
    if filled:
        print(f"{label}: {filled:,} cases already in the database: not filled again")
    else:
        started = time.perf_counter()
        total, visits = fill(store.engine, cases)
        print(f"{label}: {total:,} cases ({cases:,} open), {visits:,} visits filled in "
              f"{time.perf_counter() - started:.1f} s")
    agreement = load_agreement()
    ctx = ScanContext(AS_OF, agreement)
    with store.session() as session:
        scan(session, as_of=AS_OF, agreement=agreement)  # warm the cache once
        tune(session)
        started = time.perf_counter()
        findings = scan(session, as_of=AS_OF, agreement=agreement)
        whole = time.perf_counter() - started
        print(f"{label}: whole scan {whole:.2f} s, {len(findings):,} findings (as of {AS_OF})")
        if store.engine.dialect.name == "postgresql":  # SQLite scans sequentially (one writer)
            with store.session() as fresh:
                started = time.perf_counter()
                overlapped = scan(fresh, as_of=AS_OF, agreement=agreement, concurrent=True)
                print(f"{label}: whole scan, concurrent (as escalation-scan runs it) "
                      f"{time.perf_counter() - started:.2f} s, {len(overlapped):,} findings")
        for kind in Kind:
            started = time.perf_counter()
            rows = session.execute(QUERIES[kind](ctx)).all()
            queried = time.perf_counter() - started
            found = RULES[kind].findings(ctx, rows)
            print(f"  {kind.value:<24} query {queried:6.2f} s  {len(rows):>8,} rows  {len(found):>8,} findings  "
                  f"(+{time.perf_counter() - started - queried:.2f} s to findings)")
    if show_plans:
        for kind in Kind:
            print(f"  plan of {kind.value}:")
            print(explain(store.engine, kind, ctx))
    store.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=1_000_000, help="open cases on PostgreSQL")
    parser.add_argument("--sqlite-cases", type=int, default=100_000, help="open cases on SQLite")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--no-plans", action="store_true")
    parser.add_argument("--postgres-url", help="an existing database to fill once and scan again (kept)")
    args = parser.parse_args()
    if args.postgres_url:
        bench("postgresql", args.postgres_url, args.cases, not args.no_plans)
    elif not args.no_postgres:
        with throwaway_database() as url:
            if url:
                bench("postgresql", url, args.cases, not args.no_plans)
    if not args.no_sqlite:
        with tempfile.TemporaryDirectory(prefix="genop-bench-") as tmp:
            bench("sqlite", f"sqlite:///{Path(tmp) / 'bench.sqlite'}", args.sqlite_cases, not args.no_plans)


if __name__ == "__main__":
    main()
