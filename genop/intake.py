"""Plan intake (agreement "Case lifecycle" 1–2): from files to recorded, routed cases.

Works on a *batch*: a staging folder of plan files (see ``genop.inbox``). Each file ends
as exactly one of: a new case, a new revision of a case, an unchanged re-send of a case
(recorded), or a quarantined file with its reason. The store is written in bulk, one
transaction per chunk, so a folder of thousands of plans costs a handful of statements
rather than a flow run each.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from genop.clock import now_utc
from genop.config import Agreement
from genop.deadlines import case_deadlines
from genop.errors import PlanError
from genop.inbox import Folders, archive_processed, quarantine_file
from genop.plans import Plan, parse_plan
from genop.scope import ScopeDecision, decide_scope, geriatric_quota_has_room, validate_for_intake
from genop.states import INTAKE_STATES, CaseState
from genop.store.db import Store
from genop.store.models import Case, PlanDocument, QuarantinedFile
from genop.store.repository import allocate_case_numbers, append_event, cases_by_plan_id, geriatric_counts

CHUNK_SIZE = 500
_WRITE_ATTEMPTS = 3


@dataclass(frozen=True)
class IntakeOutcome:
    """What became of one file. Carries no personal data (safe to hand to Prefect)."""

    source_name: str
    outcome: str  # created | revised | unchanged | quarantined
    case_number: str | None = None
    state: str | None = None
    route: str | None = None
    quarantine_id: int | None = None
    reason_code: str | None = None

    def as_dict(self) -> dict[str, str | int | None]:
        return asdict(self)

    @property
    def needs_consent_wait(self) -> bool:
        """A case newly at awaiting_consent: its consent wait is opened (agreement §6)."""
        return self.outcome in ("created", "revised") and self.state == CaseState.AWAITING_CONSENT


@dataclass
class _Received:
    path: Path
    content: bytes
    sha256: str
    plan: Plan

    @property
    def encoding(self) -> str:
        return "xml" if self.content.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") else "json"


@dataclass
class _Rejected:
    path: Path
    sha256: str
    size: int
    error: PlanError


def read_plan_file(path: Path, agreement: Agreement, as_of: date) -> _Received | _Rejected:
    """Read, size-check, parse and contract-check one file; never raises for bad input."""
    size = path.stat().st_size
    limit = agreement.limits.max_plan_bytes
    if size > limit:
        digest = _sha256_file(path)
        return _Rejected(path, digest, size, PlanError(
            f"file is {size:,} bytes; a plan may be at most {limit:,} bytes (limits.max_plan_bytes)",
            code="too_large"))
    content = path.read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    try:
        plan = parse_plan(content, filename=path.name)
        validate_for_intake(plan, agreement, as_of)
    except PlanError as error:
        return _Rejected(path, digest, size, error)
    return _Received(path, content, digest, plan)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Intake:
    """The intake service: parse, decide, record. Used by the intake flows' tasks."""

    def __init__(self, store: Store, agreement: Agreement, folders: Folders) -> None:
        self.store = store
        self.agreement = agreement
        self.folders = folders

    def take_in(self, paths: Sequence[Path], as_of: date) -> list[IntakeOutcome]:
        """Take in staged files: record cases (or quarantine), then archive the files."""
        outcomes: list[IntakeOutcome] = []
        for start in range(0, len(paths), CHUNK_SIZE):
            outcomes.extend(self._take_in_chunk(paths[start:start + CHUNK_SIZE], as_of))
        return outcomes

    def _take_in_chunk(self, paths: Sequence[Path], as_of: date) -> list[IntakeOutcome]:
        received: list[_Received] = []
        rejected: list[_Rejected] = []
        for path in paths:
            item = read_plan_file(path, self.agreement, as_of)
            (received if isinstance(item, _Received) else rejected).append(item)
        outcomes = self._quarantine(rejected)
        outcomes += self._record_with_retry(received, as_of)
        archive_processed([item.path for item in received], self.folders, as_of)
        return outcomes

    def _quarantine(self, rejected: list[_Rejected]) -> list[IntakeOutcome]:
        if not rejected:
            return []
        now = now_utc()
        outcomes: list[IntakeOutcome] = []
        with self.store.session() as session:
            for item in rejected:
                stored = quarantine_file(item.path, self.folders, item.error.code, item.error.message, now)
                row = QuarantinedFile(
                    source_name=item.path.name, stored_path=str(stored), sha256=item.sha256,
                    size=item.size, reason_code=item.error.code, reason=item.error.message,
                    received_at=now,
                )
                session.add(row)
                session.flush()
                outcomes.append(IntakeOutcome(item.path.name, "quarantined", quarantine_id=row.id,
                                              reason_code=item.error.code))
        for item in rejected:
            item.path.unlink(missing_ok=True)
        return outcomes

    def _record_with_retry(self, received: list[_Received], as_of: date) -> list[IntakeOutcome]:
        """Two workers taking in the same plan_id at once: the loser retries and sees a revision."""
        for attempt in range(1, _WRITE_ATTEMPTS + 1):
            try:
                with self.store.session() as session:
                    return _Recorder(session, self.agreement, as_of).record(received)
            except IntegrityError:
                if attempt == _WRITE_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")


class _Recorder:
    """One transaction's worth of intake writes."""

    def __init__(self, session: Session, agreement: Agreement, as_of: date) -> None:
        self.session = session
        self.agreement = agreement
        self.as_of = as_of
        self.now: datetime = now_utc()
        self._geriatric: tuple[int, int] | None = None

    def record(self, received: list[_Received]) -> list[IntakeOutcome]:
        existing = cases_by_plan_id(self.session, (item.plan.plan_id for item in received))
        new_ids = list(dict.fromkeys(i.plan.plan_id for i in received if i.plan.plan_id not in existing))
        numbers = iter(allocate_case_numbers(self.session, self.as_of.year, len(new_ids)))
        outcomes: list[IntakeOutcome] = []
        for item in received:
            case = existing.get(item.plan.plan_id)
            if case is None:
                case = self._create(item, next(numbers))
                existing[item.plan.plan_id] = case
                outcomes.append(_outcome(item, case, "created"))
            else:
                outcomes.append(_outcome(item, case, self._revise(case, item)))
        self.session.flush()
        return outcomes

    def _decide(self, plan: Plan) -> ScopeDecision:
        room = False
        routing = self.agreement.geriatric_routing
        if routing.mode == "quota":
            if self._geriatric is None:
                self._geriatric = geriatric_counts(self.session, self.as_of.year)
            total, sent = self._geriatric
            room = geriatric_quota_has_room(sent, total, routing.copenhagen_share)
        decision = decide_scope(plan, self.agreement, geriatric_quota_open=room)
        if self._geriatric is not None and decision.diagnosis_group == "geriatric":
            total, sent = self._geriatric
            self._geriatric = (total + 1, sent + (decision.route == "copenhagen"))
        return decision

    def _create(self, item: _Received, case_number: str) -> Case:
        plan = item.plan
        decision = self._decide(plan)
        deadlines = case_deadlines(plan.discharge_date, plan.start_by,
                                   self.agreement.deadlines.free_choice_days)
        case = Case(
            case_number=case_number, plan_id=plan.plan_id, revision=1,
            municipality_code=plan.citizen.municipality_code, level=plan.level,
            urgent=plan.urgent, transport_first_session=plan.transport_first_session,
            discharge_date=plan.discharge_date, start_by=deadlines.start_by,
            free_choice_from=deadlines.free_choice_from, cpr=plan.citizen.cpr,
            received_on=self.as_of, created_at=self.now, updated_at=self.now,
        )
        _apply(case, decision)
        self.session.add(case)
        self._add_document(case, item, revision=1)
        hospital = plan.hospital.name if plan.hospital else "unknown hospital"
        append_event(self.session, case, "plan_received",
                     f"plan {plan.plan_id} received from {hospital} as {item.path.name} "
                     f"({item.encoding.upper()}), revision 1", self.now,
                     {"plan_id": plan.plan_id, "sha256": item.sha256, "revision": 1})
        self._decided(case, decision)
        append_event(self.session, case, "deadlines_set",
                     f"free choice of provider from {deadlines.free_choice_from} (discharge "
                     f"{plan.discharge_date} + {self.agreement.deadlines.free_choice_days} days, "
                     f"Health Act §140(4)); start by {deadlines.start_by or 'not stated in the plan'}",
                     self.now, deadlines.as_dict())
        return case

    def _revise(self, case: Case, item: _Received) -> str:
        known = {doc.sha256: doc.revision for doc in case.documents}
        if item.sha256 in known:
            append_event(self.session, case, "plan_received_again",
                         f"{item.path.name} is identical to revision {known[item.sha256]}: nothing changed",
                         self.now, {"sha256": item.sha256})
            return "unchanged"
        revision = case.revision + 1
        case.revision = revision
        case.updated_at = self.now
        self._add_document(case, item, revision=revision)
        append_event(self.session, case, "plan_revised",
                     f"changed plan received as {item.path.name}: recorded as revision {revision}",
                     self.now, {"sha256": item.sha256, "revision": revision})
        if case.state not in INTAKE_STATES:
            append_event(self.session, case, "revision_not_rerouted",
                         f"case is {case.state}, past intake: revision {revision} kept for the record, "
                         "route unchanged", self.now)
            return "revised"
        plan = item.plan
        deadlines = case_deadlines(plan.discharge_date, plan.start_by,
                                   self.agreement.deadlines.free_choice_days)
        case.municipality_code = plan.citizen.municipality_code
        case.level = plan.level
        case.urgent = plan.urgent
        case.transport_first_session = plan.transport_first_session
        case.discharge_date = plan.discharge_date
        case.start_by = deadlines.start_by
        case.free_choice_from = deadlines.free_choice_from
        case.cpr = plan.citizen.cpr
        decision = self._decide(plan)
        _apply(case, decision)
        self._decided(case, decision)
        return "revised"

    def _add_document(self, case: Case, item: _Received, *, revision: int) -> None:
        self.session.add(PlanDocument(
            case=case, revision=revision, sha256=item.sha256, encoding=item.encoding,
            source_name=item.path.name, content=item.content, parsed=item.plan.to_document(),
            received_at=self.now,
        ))

    def _decided(self, case: Case, decision: ScopeDecision) -> None:
        route = decision.route.value if decision.route else "none"
        append_event(self.session, case, "scope_decided",
                     f"route {route}, state {decision.state.value}: " + "; ".join(decision.reasons),
                     self.now, {"route": decision.route, "state": decision.state.value,
                                "reasons": list(decision.reasons)})


def _apply(case: Case, decision: ScopeDecision) -> None:
    case.state = decision.state.value
    case.route = decision.route.value if decision.route else None
    case.diagnosis_group = decision.diagnosis_group
    case.payer = decision.payer
    case.reasons = list(decision.reasons)


def _outcome(item: _Received, case: Case, outcome: str) -> IntakeOutcome:
    return IntakeOutcome(item.path.name, outcome, case_number=case.case_number, state=case.state,
                         route=case.route)


def summarise(outcomes: Iterable[IntakeOutcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        key = outcome.state if outcome.outcome != "quarantined" else "quarantined"
        counts[key or "unknown"] = counts.get(key or "unknown", 0) + 1
    return counts
