"""The escalation scan (sub-agreement §7): every finding of every kind on one business day.

``RULES`` holds, per kind, its query (``QUERIES[kind](ctx)`` is a Core ``select`` a
benchmark can EXPLAIN on its own) and the function turning its rows into findings;
``scan_kind`` runs one kind, ``scan`` all of them. Kinds that share a query (the budget's
two kinds share the year's cost parts) run it once per scan.

On PostgreSQL, ``scan(..., concurrent=True)`` overlaps the database's work with genop's: two
helper connections run the queries (in kind order) in the very snapshot of the caller's
transaction (``pg_export_snapshot``), while the caller turns the rows that have arrived into
findings. It is for a caller whose transaction has written nothing yet (the helpers cannot see
uncommitted rows), as the escalation-scan task's has not when it scans.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import date
from typing import Any

from sqlalchemy import Connection, Row, Select, text
from sqlalchemy.orm import Session

from genop.config import Agreement
from genop.escalation import Finding, Kind
from genop.escalation.budget import BUDGET_RULES
from genop.escalation.disputes import DISPUTE_RULES
from genop.escalation.rules import CASE_RULES, Rule, ScanContext

__all__ = ["QUERIES", "RULES", "ScanContext", "scan", "scan_kind", "tune"]

RULES: dict[Kind, Rule] = {**CASE_RULES, **BUDGET_RULES, **DISPUTE_RULES}
QUERIES: dict[Kind, Callable[[ScanContext], Select[Any]]] = {kind: rule.query for kind, rule in RULES.items()}

if set(RULES) != set(Kind):  # every kind of the vocabulary has its rule
    raise RuntimeError(f"no escalation rule for {sorted(set(Kind) - set(RULES))}")


def _rows(session: Session, kind: Kind, ctx: ScanContext) -> list[Row[Any]]:
    return list(session.execute(RULES[kind].query(ctx)))


def scan_kind(session: Session, kind: Kind, ctx: ScanContext) -> list[Finding]:
    """The findings of one kind on ``ctx.as_of``."""
    return RULES[kind].findings(ctx, _rows(session, kind, ctx))


def tune(session: Session) -> None:
    """PostgreSQL, for this transaction only: the scan's aggregates over every course in training
    sort and hash in memory (the server's default 4 MB spills them to disk), and its queries are
    short enough that JIT compilation costs more than it saves."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL work_mem = '64MB'"))
        session.execute(text("SET LOCAL jit = off"))


HELPERS = 2
"""Connections that run the scan's queries when it is concurrent (the machine has two cores)."""

Query = Callable[[ScanContext], Select[Any]]


def _queries() -> list[Query]:
    """Each distinct query once, in kind order."""
    return list(dict.fromkeys(RULES[kind].query for kind in Kind))


@contextmanager
def _in_snapshot(session: Session, snapshot: str) -> Iterator[Connection]:
    with session.get_bind().engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            conn.execute(text("SET TRANSACTION READ ONLY"))
            conn.execute(text(f"SET TRANSACTION SNAPSHOT '{snapshot}'"))  # pg_export_snapshot's own value
            conn.execute(text("SET LOCAL work_mem = '64MB'"))
            conn.execute(text("SET LOCAL jit = off"))
            yield conn


def _fetch_concurrently(session: Session, ctx: ScanContext,
                        queries: list[Query]) -> Iterator[tuple[Query, list[Row[Any]]]]:
    snapshot = session.execute(text("SELECT pg_export_snapshot()")).scalar_one()
    todo = list(queries)

    def work() -> dict[Query, list[Row[Any]]]:
        done: dict[Query, list[Row[Any]]] = {}
        with _in_snapshot(session, snapshot) as conn:
            while todo:
                try:
                    query = todo.pop(0)
                except IndexError:
                    break
                done[query] = list(conn.execute(query(ctx)))
                arrived[query].set_result(done[query])
        return done

    arrived: dict[Query, Future[list[Row[Any]]]] = {query: Future() for query in queries}
    with ThreadPoolExecutor(max_workers=HELPERS, thread_name_prefix="escalation-scan") as pool:
        workers = [pool.submit(work) for _ in range(HELPERS)]
        for query in queries:
            while not arrived[query].done():
                failed = next((w for w in workers if w.done() and w.exception() is not None), None)
                if failed is not None:
                    raise failed.exception()  # type: ignore[misc]
                try:
                    arrived[query].result(timeout=0.5)
                except TimeoutError:
                    continue
            yield query, arrived[query].result()


def scan(session: Session, *, as_of: date, agreement: Agreement, concurrent: bool = False) -> list[Finding]:
    """Every finding of every kind on the business day ``as_of`` (a Copenhagen date), in kind
    order and then by subject and instance. Reads only; the trail decides what is new."""
    ctx = ScanContext(as_of, agreement)
    tune(session)
    queries = _queries()
    if concurrent and session.get_bind().dialect.name == "postgresql":
        fetched: Iterator[tuple[Query, list[Row[Any]]]] = _fetch_concurrently(session, ctx, queries)
    else:
        fetched = ((query, list(session.execute(query(ctx)))) for query in queries)
    shared: dict[Query, list[Row[Any]]] = {}
    found: list[Finding] = []
    for kind in Kind:
        rule = RULES[kind]
        while rule.query not in shared:
            query, rows = next(fetched)
            shared[query] = rows
        found += sorted(rule.findings(ctx, shared[rule.query]), key=lambda f: (f.subject, f.instance))
    return found
