"""The escalation scan (sub-agreement §7): every finding of every kind on one business day.

``RULES`` holds, per kind, its query (``QUERIES[kind](ctx)`` is a Core ``select`` a
benchmark can EXPLAIN on its own) and the function turning its rows into findings;
``scan_kind`` runs one kind, ``scan`` all of them. Kinds that share a query (the budget's
two kinds share the year's cost parts) run it once per scan.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import Row, Select, text
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


def scan(session: Session, *, as_of: date, agreement: Agreement) -> list[Finding]:
    """Every finding of every kind on the business day ``as_of`` (a Copenhagen date), in kind
    order and then by subject and instance. Reads only; the trail decides what is new."""
    ctx = ScanContext(as_of, agreement)
    tune(session)
    shared: dict[Callable[[ScanContext], Select[Any]], list[Row[Any]]] = {}
    found: list[Finding] = []
    for kind in Kind:
        rule = RULES[kind]
        if rule.query not in shared:
            shared[rule.query] = list(session.execute(rule.query(ctx)))
        found += sorted(rule.findings(ctx, shared[rule.query]), key=lambda f: (f.subject, f.instance))
    return found
