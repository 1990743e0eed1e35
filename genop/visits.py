"""Training visits from Copenhagen (agreement "Case lifecycle" 7, "Settlement rules").

Copenhagen registers every visit with an SKS procedure code; the code's tariff group
prices the course when it is settled. A visits file (CSV or JSON lines, PLAN_FORMAT.md
"Training visits") is taken in line by line: valid lines are kept, every other line is
reported with its reason and copied to a rejects file, and a visit already recorded
(same fingerprint) is ignored, so the same file can be imported any number of times.

All lines of one case are written in the same transaction (chunks of whole cases), so
a case gets its visits, its state change and one summary event together or not at all.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterator
from itertools import groupby
from operator import attrgetter
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from genop.clock import local
from genop.config import Agreement
from genop.errors import GenopError
from genop.files import open_new_private, private_dir
from genop.lifecycle import TRAINED_BY_COPENHAGEN, CaseState, move
from genop.settlement.rules import tariff_group, tariff_table_on
from genop.store.db import Store
from genop.store.models import Case, Visit, VisitImport
from genop.store.repository import append_event

COLUMNS = ("case_number", "visit_date", "sks_code", "minutes", "mode", "group_size")
REQUIRED = COLUMNS[:5]
CHUNK_SIZE = 500
MAX_MINUTES = 24 * 60
MAX_GROUP_SIZE = 1000
_WRITE_ATTEMPTS = 3
_JSON_SUFFIXES = frozenset({".json", ".jsonl", ".ndjson"})
_CASE_NUMBER = re.compile(r"GEN-[0-9]{4}-[0-9]{6,12}")
_SKS_CODE = re.compile(r"[A-Z][A-Z0-9]{1,15}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_WHOLE = re.compile(r"[0-9]{1,18}")

@dataclass(frozen=True)
class LineResult:
    """What became of one line of a visits file (no personal data: it is safe to print)."""

    line: int
    status: Literal["accepted", "duplicate", "rejected"]
    case_number: str | None
    reason: str | None


@dataclass(frozen=True)
class VisitImportReport:
    import_id: int
    source_name: str
    accepted: int
    duplicates: int
    rejected: int
    lines: tuple[LineResult, ...]
    rejects_path: str | None

    def as_dict(self) -> dict[str, Any]:
        """Counts and the lines someone must look at (``--json``); accepted lines are only counted."""
        return {
            "import_id": self.import_id, "source_name": self.source_name, "accepted": self.accepted,
            "duplicates": self.duplicates, "rejected": self.rejected, "rejects_path": self.rejects_path,
            "lines": [asdict(result) for result in self.lines if result.status != "accepted"],
        }


@dataclass(frozen=True)
class _RawLine:
    line: int
    text: str
    fields: dict[str, str | None]
    problem: str | None = None


@dataclass(frozen=True)
class _Parsed:
    lines: list[_RawLine]
    header: str | None = None  # a valid CSV header: the rejects file repeats it (re-importable)
    columns: int = 0
    delimiter: str = ","


@dataclass(frozen=True)
class _VisitLine:
    line: int
    case_number: str
    visit_date: date
    sks_code: str
    tariff_group: str
    minutes: int
    mode: str
    group_size: int | None

    @property
    def fingerprint(self) -> str:
        """Same case, day, code, minutes, mode and group size: the same visit (unique in the store)."""
        fields = (self.case_number, self.visit_date.isoformat(), self.sks_code, str(self.minutes),
                  self.mode, "" if self.group_size is None else str(self.group_size))
        return hashlib.sha256("|".join(fields).encode()).hexdigest()


@dataclass(frozen=True)
class _Import:
    id: int
    source_name: str
    now: datetime
    label: str


def import_visits(store: Store, agreement: Agreement, content: bytes, *, source_name: str, as_of: date,
                  rejects_dir: Path, now: datetime, label: str | None = None) -> VisitImportReport:
    """Import one visits file; raises only when the file as a whole is unusable: not text at all
    (``visits_not_utf8``) or without a single visit line (``visits_empty``).

    ``source_name`` (the name the file came with) is recorded in the store; ``label``, when
    given (a staged file's neutral name, see genop.staged), names the file in messages and
    in the rejects file's name instead, since those reach Prefect (issue 17, point 3)."""
    shown = label or source_name
    parsed = _read_visits(content, shown)
    if not parsed.lines:
        raise GenopError(f"{shown} holds no visit lines ({_emptiness(content)}); nothing was imported: "
                         "check that the export from Copenhagen finished", code="visits_empty")
    results: list[LineResult] = []
    visits: list[_VisitLine] = []
    for raw in parsed.lines:
        checked = raw.problem or _check_line(raw.line, raw.fields, agreement, as_of)
        if isinstance(checked, _VisitLine):
            visits.append(checked)
        else:
            number = _case_number(raw.fields)
            results.append(LineResult(raw.line, "rejected", number, f"line {raw.line}: {checked}"))
    with store.session() as session:
        row = VisitImport(source_name=source_name[:255], sha256=hashlib.sha256(content).hexdigest(),
                          as_of=as_of, accepted=0, duplicates=0, rejected=len(results), imported_at=now)
        session.add(row)
        session.flush()
        batch = _Import(row.id, source_name, now, shown)
    for chunk in _chunks(visits):
        results.extend(_record_with_retry(store, chunk, batch))
    results.sort(key=lambda result: result.line)
    rejected = [result for result in results if result.status == "rejected"]
    rejects_path = None
    if rejected:
        rejects_path = str(_write_rejects(parsed, rejected, rejects_dir, batch))
        with store.session() as session:
            session.execute(update(VisitImport).where(VisitImport.id == batch.id)
                            .values(rejects_path=rejects_path))
    count = Counter(result.status for result in results)
    return VisitImportReport(batch.id, source_name, count["accepted"], count["duplicate"], count["rejected"],
                             tuple(results), rejects_path)


def visits_by_group(session: Session, case_id: int) -> dict[str, int]:
    """Recorded visits of a case per tariff group (what the course is settled on)."""
    rows = session.execute(select(Visit.tariff_group, func.count()).where(Visit.case_id == case_id)
                           .group_by(Visit.tariff_group).order_by(Visit.tariff_group))
    return {group: count for group, count in rows}


# -- reading ----------------------------------------------------------------------------


def _read_visits(content: bytes, source_name: str) -> _Parsed:
    """Split a visits file into numbered lines of named fields; blank lines are skipped."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise GenopError(f"{source_name} is not UTF-8 text (byte {content[error.start]:#04x} at position "
                         f"{error.start}); export the visits as UTF-8 CSV or JSON lines",
                         code="visits_not_utf8") from error
    rows = [(n, line) for n, line in enumerate(re.split(r"\r\n|\r|\n", text), start=1) if line.strip()]
    if not rows:
        return _Parsed([])
    first = rows[0][1].lstrip()
    json_lines = first.startswith("{") or (
        "case_number" not in first and Path(source_name).suffix.lower() in _JSON_SUFFIXES)
    return _json_lines(rows) if json_lines else _csv_lines(rows)


def _emptiness(content: bytes) -> str:
    if not content:
        return "the file is empty"
    if not content.decode("utf-8-sig").strip():
        return "only blank lines"
    return "only the header line"


def _json_lines(rows: list[tuple[int, str]]) -> _Parsed:
    lines: list[_RawLine] = []
    for n, text in rows:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as error:
            lines.append(_RawLine(n, text, {}, f"malformed JSON ({error.msg} at column {error.colno})"))
            continue
        if not isinstance(value, dict):
            lines.append(_RawLine(n, text, {}, f"expected a JSON object with {', '.join(REQUIRED)}, "
                                               f"found a JSON {type(value).__name__}"))
            continue
        fields = {name: _as_text(value.get(name)) for name in COLUMNS}
        lines.append(_RawLine(n, text, fields))
    return _Parsed(lines)


def _as_text(value: Any) -> str | None:
    """JSON values as the text a CSV cell would hold (45 and "45" are the same minutes)."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value)


def _csv_lines(rows: list[tuple[int, str]]) -> _Parsed:
    (header_line, header), body = rows[0], rows[1:]
    delimiter = ";" if header.count(";") > header.count(",") else ","
    names = [name.strip().lower() for name in _split(header, delimiter)]
    missing = ", ".join(name for name in REQUIRED if name not in names)
    if missing:
        expected = ",".join(COLUMNS)
        not_a_header = f"not a header: no column {missing} (expected {expected})"
        lines = [_RawLine(header_line, header, {}, not_a_header)]
        lines += [_RawLine(n, text, {}, f"the header (line {header_line}) has no column {missing}")
                  for n, text in body]
        return _Parsed(lines)
    lines = []
    for n, text in body:
        values = _split(text, delimiter)
        extra = [value for value in values[len(names):] if value.strip()]
        problem = f"{len(values)} values where the header has {len(names)} columns" if extra else None
        fields: dict[str, str | None] = dict.fromkeys(COLUMNS)
        fields.update(zip(names, values, strict=False))
        lines.append(_RawLine(n, text, fields, problem))
    return _Parsed(lines, header=header, columns=len(names), delimiter=delimiter)


def _split(text: str, delimiter: str) -> list[str]:
    return next(csv.reader([text], delimiter=delimiter))


# -- checking one line (no store needed) ------------------------------------------------


def _check_line(line: int, fields: dict[str, str | None], agreement: Agreement,
                as_of: date) -> _VisitLine | str:
    """The visit on a line, or every problem with it: a visit after ``as_of`` cannot have happened."""
    missing = [name for name in REQUIRED if not (fields.get(name) or "").strip()]
    if missing:
        return "; ".join(f"{name} is missing" for name in missing)
    value = {name: (fields.get(name) or "").strip() for name in COLUMNS}
    problems: list[str] = []
    number = _case_number(fields)
    if number is None:
        problems.append("case_number is not a case number (GEN-YYYY-NNNNNN); its value is not repeated here")
    visit_date = _date(value["visit_date"])
    if visit_date is None:
        problems.append(f"visit_date {_shown(value['visit_date'])} is not a date (use YYYY-MM-DD)")
    elif visit_date > as_of:
        problems.append(f"visit_date {visit_date} is after the as-of day {as_of}")
    code = value["sks_code"].upper()
    group = None
    if not _SKS_CODE.fullmatch(code):
        problems.append(f"sks_code {_shown(value['sks_code'])} is not an SKS code")
    elif visit_date is not None:
        table = tariff_table_on(agreement.tariffs, visit_date)
        if table is None:
            problems.append(f"SKS code {code} cannot be priced: no tariff table in force on "
                            f"{visit_date.isoformat()} (config: tariffs)")
        else:
            group = tariff_group(table, code)
            if group is None:
                problems.append(f"unknown SKS code {code} (no tariff group in config on {visit_date})")
    minutes = _whole(value["minutes"])
    if minutes is None:
        problems.append(f"minutes {_shown(value['minutes'])} is not a whole number")
    elif not 1 <= minutes <= MAX_MINUTES:
        problems.append(f"minutes {minutes} must be 1 to {MAX_MINUTES}")
    mode, size = value["mode"].lower(), _whole(value["group_size"])
    if mode not in ("individual", "group"):
        problems.append(f"mode {_shown(value['mode'])} must be individual or group")
    elif problem := _group_size_problem(mode, value["group_size"], size):
        problems.append(problem)
    if problems or number is None or visit_date is None or group is None or minutes is None:
        return "; ".join(problems)
    return _VisitLine(line, number, visit_date, code, group, minutes, mode, size)


def _group_size_problem(mode: str, text: str, size: int | None) -> str | None:
    if mode == "individual":
        return f"individual visit with group_size {_shown(text)} (leave it empty)" if text else None
    if not text:
        return "group visit without group_size"
    if size is None:
        return f"group_size {_shown(text)} is not a whole number"
    if not 2 <= size <= MAX_GROUP_SIZE:
        return f"group_size {size} must be 2 to {MAX_GROUP_SIZE} for a group visit"
    return None


def _case_number(fields: dict[str, str | None]) -> str | None:
    """Only something shaped like a case number is repeated in reports (never, say, a CPR number)."""
    number = (fields.get("case_number") or "").strip().upper()
    return number if _CASE_NUMBER.fullmatch(number) else None


def _date(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if _ISO_DATE.fullmatch(text) else None
    except ValueError:
        return None


def _whole(text: str) -> int | None:
    return int(text) if _WHOLE.fullmatch(text) else None


def _shown(text: str) -> str:
    return repr(text if len(text) <= 24 else text[:24] + "…")


# -- recording --------------------------------------------------------------------------


def _chunks(visits: list[_VisitLine]) -> Iterator[list[_VisitLine]]:
    """Chunks of whole cases, in case-number order (two importers lock cases in the same order)."""
    chunk: list[_VisitLine] = []
    for _, lines in groupby(sorted(visits, key=attrgetter("case_number")), key=attrgetter("case_number")):
        chunk += lines
        if len(chunk) >= CHUNK_SIZE:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _record_with_retry(store: Store, chunk: list[_VisitLine], batch: _Import) -> list[LineResult]:
    """Another importer recorded one of these visits first: the retry sees it as a duplicate."""
    for attempt in range(1, _WRITE_ATTEMPTS + 1):
        try:
            with store.session() as session:
                return _record(session, chunk, batch)
        except IntegrityError:
            if attempt == _WRITE_ATTEMPTS:
                raise
    raise AssertionError("unreachable")


def _record(session: Session, chunk: list[_VisitLine], batch: _Import) -> list[LineResult]:
    numbers = sorted({visit.case_number for visit in chunk})
    cases = {case.case_number: case for case in session.scalars(
        select(Case).where(Case.case_number.in_(numbers)).order_by(Case.case_number).with_for_update())}
    known = _recorded_fingerprints(session, [visit.fingerprint for visit in chunk])
    results: list[LineResult] = []
    first_seen: dict[str, int] = {}
    recorded: dict[str, list[_VisitLine]] = defaultdict(list)
    for visit in sorted(chunk, key=lambda item: item.line):
        fingerprint, where = visit.fingerprint, f"line {visit.line}: "
        if fingerprint in known:
            by = f" by import {known[fingerprint]}" if known[fingerprint] is not None else ""
            results.append(LineResult(visit.line, "duplicate", visit.case_number,
                                      f"{where}visit already recorded{by}: ignored"))
        elif refusal := _refusal(cases.get(visit.case_number), visit):
            results.append(LineResult(visit.line, "rejected", visit.case_number, where + refusal))
        elif fingerprint in first_seen:
            results.append(LineResult(visit.line, "duplicate", visit.case_number,
                                      f"{where}same visit as line {first_seen[fingerprint]}: ignored"))
        else:
            first_seen[fingerprint] = visit.line
            recorded[visit.case_number].append(visit)
            results.append(LineResult(visit.line, "accepted", visit.case_number, None))
    rows = [_visit_row(cases[number].id, visit, batch) for number, new in recorded.items() for visit in new]
    if rows:
        session.execute(insert(Visit), rows)
    for number, visits in recorded.items():
        _case_recorded(session, cases[number], visits, batch)
    count = Counter(result.status for result in results)
    session.execute(update(VisitImport).where(VisitImport.id == batch.id).values(
        accepted=VisitImport.accepted + count["accepted"], rejected=VisitImport.rejected + count["rejected"],
        duplicates=VisitImport.duplicates + count["duplicate"]))
    return results


def _recorded_fingerprints(session: Session, fingerprints: list[str]) -> dict[str, int | None]:
    """Visits already in the store: fingerprint → the import that recorded it."""
    query = select(Visit.fingerprint, Visit.import_id).where(Visit.fingerprint.in_(fingerprints))
    return dict(session.execute(query).tuples().all())


def _refusal(case: Case | None, visit: _VisitLine) -> str | None:
    """Visits belong to a forwarded case, between its forwarding and its completion (slutstatus)."""
    if case is None:
        return f"case {visit.case_number} is unknown"
    if case.state not in TRAINED_BY_COPENHAGEN:
        return f"case {case.case_number} is {case.state}: visits are recorded only for forwarded cases"
    if case.forwarded_on is not None and visit.visit_date < case.forwarded_on:
        return f"visit_date {visit.visit_date} is before the case was forwarded ({case.forwarded_on})"
    if case.state == CaseState.COMPLETED and case.completed_on and visit.visit_date > case.completed_on:
        return f"visit_date {visit.visit_date} is after the case was completed ({case.completed_on})"
    return None


def _visit_row(case_id: int, visit: _VisitLine, batch: _Import) -> dict[str, Any]:
    return {"case_id": case_id, "visit_date": visit.visit_date, "sks_code": visit.sks_code,
            "tariff_group": visit.tariff_group, "minutes": visit.minutes, "mode": visit.mode,
            "group_size": visit.group_size, "fingerprint": visit.fingerprint, "import_id": batch.id,
            "recorded_at": batch.now}


def _case_recorded(session: Session, case: Case, visits: list[_VisitLine], batch: _Import) -> None:
    """The first visit starts the training (lifecycle 7); one summary event per case per import."""
    first, last = min(v.visit_date for v in visits), max(v.visit_date for v in visits)
    if case.state == CaseState.FORWARDED:
        move(session, case, CaseState.IN_TRAINING, at=batch.now,
             detail=f"first training visit on {first} recorded from {batch.source_name}: case is in training",
             data={"first_visit": first.isoformat(), "import_id": batch.id})
    groups = dict(sorted(Counter(visit.tariff_group for visit in visits).items()))
    summary = ", ".join(f"{group} {count}" for group, count in groups.items())
    append_event(session, case, "visits_recorded",
                 f"{len(visits)} visit(s) recorded from {batch.source_name}: {summary}", batch.now,
                 {"import_id": batch.id, "visits": len(visits), "by_tariff_group": groups,
                  "first_visit": first.isoformat(), "last_visit": last.isoformat()})
    case.updated_at = batch.now


# -- rejects file -----------------------------------------------------------------------


def _write_rejects(parsed: _Parsed, rejected: list[LineResult], folder: Path, batch: _Import) -> Path:
    """Rejected lines as they came, plus a ``reason`` column; a CSV file keeps its header, so
    the rejects file can be corrected and imported again (extra columns are ignored)."""
    texts = {raw.line: raw.text for raw in parsed.lines}
    out = io.StringIO()
    writer = csv.writer(out, delimiter=parsed.delimiter, lineterminator="\n")
    if parsed.header is None:
        writer.writerow(["original", "reason"])
        writer.writerows([texts[result.line], result.reason] for result in rejected)
    else:
        out.write(parsed.header + parsed.delimiter + "reason\n")
        for result in rejected:
            text = texts[result.line]
            padding = parsed.delimiter * max(0, parsed.columns - len(_split(text, parsed.delimiter)))
            out.write(text + padding + parsed.delimiter)
            writer.writerow([result.reason])
    private_dir(folder)
    stamp = local(batch.now).strftime("%Y%m%dT%H%M%S")
    name = re.sub(r"[^A-Za-z0-9._-]", "_", Path(batch.label).name) or "visits"
    target = folder / f"{stamp}-{name}.rejects.csv"
    try:  # rejected lines keep their CPR numbers: 0600
        handle = open_new_private(target, newline="")
    except FileExistsError:  # the same file imported twice within a second: never overwrite
        target = folder / f"{stamp}-{name}.{batch.id}.rejects.csv"
        handle = open_new_private(target, newline="")
    with handle:
        handle.write(out.getvalue())
    return target
