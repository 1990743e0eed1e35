"""Telling the parties what is at risk (sub-agreement §7): one notice per finding, level and
recipient, through the outbox (signed by the sender in config, encrypted to the recipient).

A finding opened or raised is told to the recipients ``escalation_notices`` lists for its
concern and level; a level that holds is never told again (the outbox key
``risk:<finding id>:<level>:<party>`` exists once), a lowered level tells nothing new, and a
closed finding sends nothing — its trail records the day it closed.

Dragør receives notices about Dragør citizens and about the shared budget (and its own),
never details of a Tårnby citizen's case: a municipality is told of a case or a budget only
when it is the one concerned or handles that one's cases (``handled_by``), whatever the
config lists. A dispute's finding (agreement §10) concerns the dispute's municipality (both for
a dispute about a settled month).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from genop.config import CONCERNED, Agreement
from genop.escalation import BUDGET_TOTAL, CONCERN, Concern, Kind
from genop.escalation.trail import Change, TrailChange
from genop.mail.compose import SecureMail, compose, contact_of
from genop.mail.outbox import Status
from genop.settings import Settings
from genop.store.models import OutboxMessage, RiskFinding
from genop.templates import render

PURPOSE = "risk_notice"


@dataclass(frozen=True)
class Notice:
    finding_id: int
    level: str
    party: str

    @property
    def key(self) -> str:
        return f"risk:{self.finding_id}:{self.level}:{self.party}"


def municipalities_concerned(municipality: str, agreement: Agreement) -> tuple[str, ...]:
    """The party keys a finding is about: its municipality, or every one for the shared budget."""
    if municipality == BUDGET_TOTAL:
        return tuple(key for key, party in agreement.parties.items() if party.kind == "municipality")
    return (municipality,)


def may_be_told(party: str, concerned: tuple[str, ...], agreement: Agreement) -> bool:
    """A municipality hears of a case or budget only when it is concerned or handles the one that is."""
    if agreement.party(party).kind != "municipality":
        return True
    return any(party == key or agreement.party(key).handled_by == party for key in concerned)


def recipients(finding: RiskFinding, agreement: Agreement) -> list[str]:
    """The parties told of ``finding`` at its current level, in config order, each once."""
    concerned = municipalities_concerned(finding.municipality, agreement)
    listed = agreement.escalation_notices.recipients(CONCERN[Kind(finding.kind)].value, finding.level)
    parties: list[str] = []
    for entry in listed:
        for party in (concerned if entry == CONCERNED else (entry,)):
            if party not in parties and may_be_told(party, concerned, agreement):
                parties.append(party)
    return parties


def compose_notices(session: Session, changes: Iterable[TrailChange], *, agreement: Agreement,
                    settings: Settings, now: datetime) -> list[OutboxMessage]:
    """The outbox rows for the findings opened or raised; rows already composed are returned as they are."""
    rows: list[OutboxMessage] = []
    for change in changes:
        if change.change not in (Change.OPENED, Change.RAISED):
            continue
        for party in recipients(change.finding, agreement):
            rows.append(_compose(session, change, party, agreement=agreement, settings=settings, now=now))
    return rows


def undelivered_notices(session: Session) -> list[int]:
    """Risk notices composed and not sent (nor refused for good): what the triggered delivery sends.
    A row another worker is sending is claimed by it (genop.mail.outbox): delivering it again is a no-op."""
    return list(session.scalars(select(OutboxMessage.id)
                                .where(OutboxMessage.purpose == PURPOSE, OutboxMessage.channel == "smtp",
                                       OutboxMessage.status.in_([Status.PENDING, Status.SENDING]))
                                .order_by(OutboxMessage.id)))


def _compose(session: Session, change: TrailChange, party: str, *, agreement: Agreement, settings: Settings,
             now: datetime) -> OutboxMessage:
    finding = change.finding
    sender = agreement.escalation_notices.sender
    case_number = finding.case.case_number if finding.case is not None else None
    dispute = finding.subject if CONCERN[Kind(finding.kind)] is Concern.DISPUTE else None
    context = {"kind": finding.kind, "level": finding.level, "case_number": case_number, "dispute": dispute,
               "budget": finding.subject.removeprefix("budget:")}
    subject = render("notices/risk.subject.da.txt.j2", **context).strip()
    body = render("notices/risk.da.txt.j2", **context, concern=CONCERN[Kind(finding.kind)].value,
                  municipality=finding.municipality, since=finding.since, scan_on=finding.level_since,
                  previous=change.previous.value if change.previous else None, figures=finding.figures,
                  sender=contact_of(sender, agreement), recipient=contact_of(party, agreement))
    notice = Notice(finding.id, finding.level, party)
    return compose(session, finding.case, SecureMail(PURPOSE, sender, party, subject, body),
                   agreement=agreement, settings=settings, now=now, key=notice.key)
