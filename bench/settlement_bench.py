"""Settlement speed: one month's completed courses priced, offset and written as OIOUBL.

    .venv/bin/python bench/settlement_bench.py [--courses N] [--visits V] [--no-postgres]

Prints figures; asserts nothing (speed is measured here, never in tests).
For scale: Bilag 3 expects 386 courses (4,978 visits) a year for Tårnby and Dragør; the
default, 2,000 courses of 13 visits in one month, is several years of theirs at once.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.postgres import throwaway_database
from tests.settlement_factories import add_course

CODES = ("BLNA", "BLNR1", "BTP", "BRA", "AAF6")


def bench(label: str, url: str, courses: int, visits: int, work: Path) -> None:
    from genop.settlement import ledger, regulation
    from genop.config import load_agreement
    from genop.settings import PROJECT_ROOT
    from genop.settlement.documents import write_files
    from genop.store.db import Store

    agreement = load_agreement(PROJECT_ROOT / "config" / "agreement.yaml")
    store = Store(url)
    now = datetime.now(UTC)
    folder = work / label / "invoices"
    with store.session() as session:
        for n in range(courses):
            add_course(session, f"GEN-2026-{n + 1:06d}", payer="tarnby" if n % 4 else "dragor",
                       completed_on=date(2026, 11, 1 + n % 28),
                       visits=[(date(2026, 10, 1 + v % 28), CODES[(n + v) % len(CODES)]) for v in range(visits)])
    with store.session() as session:
        ledger.record_aconto(session, agreement, month="2026-11", as_of=date(2026, 11, 2), folder=folder, now=now)

    started = time.perf_counter()
    with store.session() as session:
        outcome = ledger.settle(session, agreement, month="2026-11", invoice_date=date(2026, 12, 1),
                                 folder=folder, now=now)
    write_files(outcome.documents)
    settle = time.perf_counter() - started

    started = time.perf_counter()
    with store.session() as session:
        again = ledger.settle(session, agreement, month="2026-11", invoice_date=date(2026, 12, 1),
                               folder=folder, now=now)
        assert not again.new
    rerun = time.perf_counter() - started

    dags = agreement.tariffs[0]
    groups = {k: g.model_copy(update={"price": g.price + 10}) for k, g in dags.groups.items()}
    regulated = agreement.model_copy(update={"tariffs": (
        dags.model_copy(update={"valid_to": date(2025, 12, 31)}),
        dags.model_copy(update={"name": "bench", "valid_from": date(2026, 1, 1), "groups": groups}))})
    started = time.perf_counter()
    with store.session() as session:
        regulation.regulate_since(session, regulated, since=date(2026, 1, 1), as_of=date(2026, 12, 10),
                               folder=folder, now=now)
    regulate = time.perf_counter() - started
    store.dispose()
    print(f"{label:<11} {courses:>6} courses x {visits} visits  settle month: {settle:6.2f} s "
          f"({courses / settle:6.0f} courses/s, {len(outcome.documents)} invoices)   re-run: {rerun:5.2f} s   "
          f"regulate all: {regulate:6.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--courses", type=int, default=2000)
    parser.add_argument("--visits", type=int, default=13)
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="genop-bench-") as tmp:
        work = Path(tmp)
        bench("sqlite", f"sqlite:///{work / 'bench.sqlite'}", args.courses, args.visits, work)
        if not args.no_postgres:
            with throwaway_database() as url:
                if url:
                    bench("postgresql", url, args.courses, args.visits, work)


if __name__ == "__main__":
    main()
