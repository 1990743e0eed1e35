"""Plan intake (agreement "Case lifecycle" 1–2): from files to recorded, routed cases.

Works on a *batch*: a staging folder of plan files (see ``genop.inbox``). Each file ends
as exactly one of: a new case, a new revision of a case, an unchanged re-send of a case
(recorded), or a quarantined file with its reason. The store is written in bulk, one
transaction per chunk, so a folder of thousands of plans costs a handful of statements
rather than a flow run each.

Every file is decided on its own: whatever goes wrong with one file — reading, parsing,
checking, recording, even quarantining — quarantines that file (``intake_error``, the
details in genop's private error log) and the rest of the batch is recorded. When a
chunk's transaction fails, its files are recorded one by one to find the culprit. Only
a store that cannot be reached at all stops a batch; it is retried, and a batch taken up
``MAX_BATCH_ATTEMPTS`` times has its remaining files quarantined (``intake_gave_up``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from genop.clock import now_utc
from genop.config import Agreement
from genop.deadlines import CaseDeadlines, case_deadlines
from genop.errorlog import record_private_error
from genop.errors import PlanError
from genop.inbox import (
    MAX_BATCH_ATTEMPTS,
    Folders,
    SourceNames,
    archive_processed,
    is_plan_candidate,
    quarantine_file,
    quarantine_target,
)
from genop.lifecycle import CaseState, begin, past_intake
from genop.plans import Plan, parse_plan
from genop.routing import chosen_route
from genop.scope import ScopeDecision, decide_scope, validate_for_intake
from genop.store.db import Store
from genop.store.models import Case, PlanDocument, QuarantinedFile
from genop.store.repository import allocate_case_numbers, append_event, cases_by_plan_id

CHUNK_SIZE = 500
_WRITE_ATTEMPTS = 3
STORE_UNREACHABLE = (OperationalError, InterfaceError)
"""The store itself cannot be reached: no file's fault, so no file is quarantined for it."""
"""The store itself failing (down, locked, disconnected): no file's fault, so the batch is retried."""


@dataclass(frozen=True)
class IntakeOutcome:
    """What became of one file. Carries no personal data (safe to hand to Prefect): the file
    is named by its neutral name in its staging batch (``0003.json``), never the hospital's."""

    file: str
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
    source_name: str
    content: bytes
    sha256: str
    plan: Plan

    @property
    def encoding(self) -> str:
        return "xml" if self.content.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<") else "json"


@dataclass
class _Rejected:
    path: Path
    source_name: str
    sha256: str
    size: int
    error: PlanError


def read_plan_file(path: Path, agreement: Agreement, as_of: date, source_name: str | None = None,
                   ) -> _Received | _Rejected:
    """Read, size-check, parse and contract-check one file; never raises for bad input."""
    name = source_name or path.name
    size = path.stat().st_size
    limit = agreement.limits.max_plan_bytes
    if size > limit:
        digest = _sha256_file(path)
        return _Rejected(path, name, digest, size, PlanError(
            f"file is {size:,} bytes; a plan may be at most {limit:,} bytes (limits.max_plan_bytes)",
            code="too_large"))
    content = path.read_bytes()
    digest = hashlib.sha256(content).hexdigest()
    try:
        plan = parse_plan(content, filename=name)
        validate_for_intake(plan, agreement, as_of)
    except PlanError as error:
        return _Rejected(path, name, digest, size, error)
    return _Received(path, name, content, digest, plan)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _safe_text(text: str, limit: int | None = None) -> str:
    """Text every store takes: no lone surrogates, no NUL (PostgreSQL refuses both)."""
    safe = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")
    return safe[:limit] if limit else safe


class Intake:
    """The intake service: parse, decide, record. Used by the intake flows' tasks."""

    def __init__(self, store: Store, agreement: Agreement, folders: Folders, *, error_log: Path) -> None:
        self.store = store
        self.agreement = agreement
        self.folders = folders
        self.error_log = error_log  # Settings.error_log: genop's one private error log

    def take_in(self, paths: Sequence[Path], as_of: date, *, give_up: bool = False) -> list[IntakeOutcome]:
        """Take in staged files: record cases (or quarantine), then archive the files.

        ``give_up``: the batch was taken up ``MAX_BATCH_ATTEMPTS`` times already; its files
        are quarantined for a person to look at instead of being tried again.
        """
        paths = [path for path in paths if is_plan_candidate(path)]
        outcomes: list[IntakeOutcome] = []
        for start in range(0, len(paths), CHUNK_SIZE):
            outcomes.extend(self._take_in_chunk(paths[start:start + CHUNK_SIZE], as_of, give_up))
        return outcomes

    def _take_in_chunk(self, paths: Sequence[Path], as_of: date, give_up: bool) -> list[IntakeOutcome]:
        names = SourceNames()
        received: list[_Received] = []
        rejected: list[_Rejected] = []
        for path in paths:
            item = self._gave_up(path, names(path)) if give_up else self._read(path, names(path), as_of)
            if isinstance(item, _Received):
                received.append(item)
            else:
                rejected.append(item)
        outcomes = [self._quarantine(item) for item in rejected]
        recorded, failed = self._record(received, as_of)
        outcomes += recorded + [self._quarantine(item) for item in failed]
        archive_processed([item.path for item in received], self.folders, as_of)  # quarantined ones are gone
        return outcomes

    def _read(self, path: Path, source_name: str, as_of: date) -> _Received | _Rejected:
        try:
            return read_plan_file(path, self.agreement, as_of, source_name)
        except Exception as exc:  # noqa: BLE001 - one file's surprise must not stop the batch
            return self._unexpected(path, source_name, "reading or checking it", exc)

    def _unexpected(self, path: Path, source_name: str, doing: str, exc: Exception) -> _Rejected:
        reference = record_private_error(self.error_log, f"intake of {path}", exc)
        try:
            content = path.read_bytes()
        except OSError:
            content = b""
        return _Rejected(path, source_name, hashlib.sha256(content).hexdigest(), len(content), PlanError(
            f"genop could not take this file in: an unexpected {type(exc).__name__} while {doing} "
            f"(reference {reference} in genop's errors.log); the file is kept here unchanged",
            code="intake_error"))

    def _gave_up(self, path: Path, source_name: str) -> _Rejected:
        content = path.read_bytes()
        return _Rejected(path, source_name, hashlib.sha256(content).hexdigest(), len(content), PlanError(
            f"the batch {path.parent.name} failed to be taken in {MAX_BATCH_ATTEMPTS} times; this file "
            "was not taken in and is kept here so that newer files are not held up (see genop's "
            "errors.log, then submit it again with `genop plan submit`)", code="intake_gave_up"))

    def _quarantine(self, item: _Rejected) -> IntakeOutcome:
        """Keep the file in quarantine with one row; taken up again, it finds its row."""
        now = now_utc()
        target = quarantine_target(item.path, self.folders)
        try:
            row_id, code = self._quarantine_row(item, target, now, item.error.code, item.error.message)
        except STORE_UNREACHABLE:
            raise
        except Exception as exc:  # noqa: BLE001 - the reason itself could not be kept: keep a plain one
            fallback = self._unexpected(item.path, item.source_name, "quarantining it", exc)
            row_id, code = self._quarantine_row(fallback, target, now, "intake_error", fallback.error.message)
        item.path.unlink(missing_ok=True)
        return IntakeOutcome(item.path.name, "quarantined", quarantine_id=row_id, reason_code=code)

    def _quarantine_row(self, item: _Rejected, target: Path, now: datetime, code: str, reason: str,
                        ) -> tuple[int, str]:
        """The file's quarantine row (id, code): the one an earlier attempt left, or a new one."""
        source_name, reason = _safe_text(item.source_name, 255), _safe_text(reason)
        with self.store.session() as session:
            existing = session.execute(select(QuarantinedFile.id, QuarantinedFile.reason_code).where(
                QuarantinedFile.stored_path == str(target))).first()
            if existing is not None:
                return existing.id, existing.reason_code
            quarantine_file(item.path, self.folders, source_name=source_name, code=code, reason=reason, at=now)
            row = QuarantinedFile(source_name=source_name, stored_path=str(target), sha256=item.sha256,
                                  size=item.size, reason_code=code, reason=reason, received_at=now)
            session.add(row)
            session.flush()
            return row.id, code

    def _record(self, received: list[_Received], as_of: date) -> tuple[list[IntakeOutcome], list[_Rejected]]:
        """The chunk in one transaction; if that fails, file by file, so one bad file is found
        and quarantined and the others are recorded."""
        if not received:
            return [], []
        try:
            return self._record_with_retry(received, as_of), []
        except STORE_UNREACHABLE:
            raise
        except Exception:  # noqa: BLE001 - a file's data the store refused: find which one
            return self._record_one_by_one(received, as_of)

    def _record_one_by_one(self, received: list[_Received], as_of: date,
                           ) -> tuple[list[IntakeOutcome], list[_Rejected]]:
        outcomes: list[IntakeOutcome] = []
        failed: list[_Rejected] = []
        for item in received:
            try:
                outcomes += self._record_with_retry([item], as_of)
            except STORE_UNREACHABLE:
                raise
            except Exception as exc:  # noqa: BLE001 - this file, and only it, is quarantined
                failed.append(self._unexpected(item.path, item.source_name, "recording it", exc))
        return outcomes, failed

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

    def _decide(self, plan: Plan, case: Case | None = None) -> ScopeDecision:
        return decide(self.session, self.agreement, plan, case)

    def _create(self, item: _Received, case_number: str) -> Case:
        plan = item.plan
        decision = self._decide(plan)
        deadlines = self._deadlines(plan)
        case = Case(case_number=case_number, plan_id=plan.plan_id, revision=1,
                    received_on=self.as_of, created_at=self.now, updated_at=self.now)
        take_plan(case, plan, deadlines)
        _apply(case, decision)
        self.session.add(case)
        self._add_document(case, item, revision=1)
        hospital = plan.hospital.name if plan.hospital else "unknown hospital"
        append_event(self.session, case, "plan_received",
                     f"plan {plan.plan_id} received from {hospital} as {item.source_name} "
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
                         f"{item.source_name} is identical to revision {known[item.sha256]}: nothing changed",
                         self.now, {"sha256": item.sha256})
            return "unchanged"
        revision = case.revision + 1
        case.revision = revision
        case.updated_at = self.now
        self._add_document(case, item, revision=revision)
        append_event(self.session, case, "plan_revised",
                     f"changed plan received as {item.source_name}: recorded as revision {revision}",
                     self.now, {"sha256": item.sha256, "revision": revision})
        if past_intake(case):
            append_event(self.session, case, "revision_not_rerouted",
                         f"case is {case.state}, past intake: revision {revision} kept for the record, "
                         "route unchanged", self.now)
            return "revised"
        plan = item.plan
        take_plan(case, plan, self._deadlines(plan))
        decision = self._decide(plan, case)
        _apply(case, decision)
        self._decided(case, decision)
        return "revised"

    def _deadlines(self, plan: Plan) -> CaseDeadlines:
        return plan_deadlines(plan, self.agreement)

    def _add_document(self, case: Case, item: _Received, *, revision: int) -> None:
        self.session.add(PlanDocument(
            case=case, revision=revision, sha256=item.sha256, encoding=item.encoding,
            source_name=_safe_text(item.source_name, 255), content=item.content, parsed=item.plan.to_document(),
            received_at=self.now,
        ))

    def _decided(self, case: Case, decision: ScopeDecision) -> None:
        route = decision.route.value if decision.route else "none"
        append_event(self.session, case, "scope_decided",
                     f"route {route}, state {decision.state.value}: " + "; ".join(decision.reasons),
                     self.now, {"route": decision.route, "state": decision.state.value,
                                "reasons": list(decision.reasons)})


def decide(session: Session, agreement: Agreement, plan: Plan, case: Case | None = None) -> ScopeDecision:
    """The scope decision intake makes for a plan; for an existing case it keeps the route staff
    chose for it (agreement §4: a geriatric case sent to Copenhagen stays sent there)."""
    decision = decide_scope(plan, agreement)
    if case is not None and decision.diagnosis_group in agreement.chosen_groups:
        chosen = chosen_route(session, case)
        if chosen is not None:
            decision = decide_scope(plan, agreement, chosen_route=chosen)
    return decision


def plan_deadlines(plan: Plan, agreement: Agreement) -> CaseDeadlines:
    """The case's deadlines from its plan (free choice of provider, start by)."""
    return case_deadlines(plan.discharge_date, plan.start_by, agreement.deadlines.free_choice_days)


def take_plan(case: Case, plan: Plan, deadlines: CaseDeadlines) -> None:
    """What a case keeps of its plan and its deadlines: set on creation and on each revision
    taken in during intake."""
    case.municipality_code = plan.citizen.municipality_code
    case.level = plan.level
    case.urgent = plan.urgent
    case.transport_first_session = plan.transport_first_session
    case.discharge_date = plan.discharge_date
    case.start_by = deadlines.start_by
    case.free_choice_from = deadlines.free_choice_from
    case.cpr = plan.citizen.cpr


def _apply(case: Case, decision: ScopeDecision) -> None:
    begin(case, decision.state)
    apply_decision(case, decision)


def apply_decision(case: Case, decision: ScopeDecision) -> None:
    """What a case keeps of its scope decision besides its state (the state is the lifecycle's)."""
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
