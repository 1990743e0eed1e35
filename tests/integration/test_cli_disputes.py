"""`genop dispute …` on the store (SQLite and PostgreSQL): a dispute opened, shown with its timeline,
listed, moved as §10 allows, listed on its case; the mediation call refused past 8 days, composed
with the move to the parties concerned only (once each), and not recorded without a server; the
escalation scan finds a mediation without outcome and a dispute open too long."""

from __future__ import annotations

import json
import socket
from datetime import date, timedelta

import pytest
from click.testing import CliRunner

from genop.clock import now_utc
from genop.disputes.mediation import call_and_compose, call_key, mail_of_dispute, parties_called
from genop.disputes.records import get_dispute
from genop.escalation import Kind, Level
from genop.escalation.notices import compose_notices, recipients
from genop.escalation.scan import ScanContext, scan_kind
from genop.escalation.trail import record
from genop_cli.main import cli
from tests.integration.test_escalation_trail import awaiting_case

DAY = date(2026, 11, 20)
REASON = "Københavns Kommune oplyser, at bestillingen aldrig kom frem"


def _run(*args: str) -> object:
    return CliRunner().invoke(cli, list(args))


def _json(*args: str) -> dict:
    result = _run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _open(case_number: str, about: str = "order_not_received") -> str:
    opened = _json("dispute", "open", "--case", case_number, "--about", about, "--reason", REASON,
                   "--by", "Sagsbehandler A", "--as-of", DAY.isoformat())
    return opened["number"]


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        absent = f"http://127.0.0.1:{sock.getsockname()[1]}/api"
    monkeypatch.setenv("PREFECT_API_URL", absent)
    return absent


def test_a_dispute_is_opened_shown_listed_and_resolved_from_the_cli(runtime, tmp_path):
    case_number = awaiting_case(runtime, tmp_path, "GOP-CLI-DSP-1", "155")
    number = _open(case_number)
    assert number == "TV-2026-0001"

    shown = _json("dispute", "show", number.lower())
    assert (shown["state"], shown["case_number"], shown["municipality"], shown["reason"]) == (
        "open", case_number, "dragor", REASON)
    [opened] = shown["timeline"]
    assert (opened["change"], opened["by"], opened["day"], opened["why"]) == (
        "opened", "Sagsbehandler A", DAY.isoformat(), REASON)
    assert opened["at"][-6:] in ("+01:00", "+02:00")  # Copenhagen time with its offset
    assert shown["redos"] == []

    refused = _run("dispute", "to-court", number, "--by", "B", "--why", "uenige")
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert refused.stderr.strip() == (f"genop: {number} is open: it cannot move to to_court (moves from open: "
                                      "mediation_called, resolved)")

    assert [d["number"] for d in _json("dispute", "list", "--state", "open")["disputes"]] == [number]
    assert [(d["number"], d["state"]) for d in _json("case", "show", case_number)["disputes"]] == [(number, "open")]

    resolved = _json("dispute", "resolve", number, "--by", "Sagsbehandler B", "--why", "Bestillingen gensendt",
                     "--as-of", (DAY + timedelta(days=2)).isoformat())
    assert (resolved["state"], resolved["closed_on"]) == ("resolved", (DAY + timedelta(days=2)).isoformat())
    assert [(e["change"], e["by"], e["why"]) for e in resolved["timeline"]][1:] == [
        ("resolved", "Sagsbehandler B", "Bestillingen gensendt")]
    assert _json("dispute", "list", "--state", "open")["disputes"] == []
    table = _run("dispute", "show", number)
    assert table.exit_code == 0 and "timeline" in table.output and "resolved" in table.output
    listed = _run("dispute", "list")
    assert listed.exit_code == 0 and number in listed.output and "1 dispute(s)" in listed.output


def test_opening_a_dispute_refuses_bad_input_in_one_line(runtime, tmp_path):
    case_number = awaiting_case(runtime, tmp_path, "GOP-CLI-DSP-2")
    unknown = _run("dispute", "open", "--case", case_number, "--about", "weather", "--reason", "x", "--by", "A")
    assert unknown.exit_code == 2 and "order_not_received" in unknown.output
    both = _run("dispute", "open", "--case", case_number, "--invoice", "FAK-1", "--about", "other",
                "--reason", "x", "--by", "A")
    assert both.exit_code == 1
    assert both.stderr.strip() == "genop: say what the dispute is about: exactly one of --case, --invoice or --month"
    missing = _run("dispute", "show", "TV-2026-0042")
    assert missing.exit_code == 1 and missing.stderr.strip().startswith("genop: no dispute 'TV-2026-0042'")
    assert "Traceback" not in unknown.output + both.output + missing.output


def test_mediation_is_refused_past_8_days_and_not_recorded_without_a_server(certified, tmp_path, no_server):
    runtime = certified
    number = _open(awaiting_case(runtime, tmp_path, "GOP-CLI-DSP-3"))
    late = _run("dispute", "call-mediation", number, "--on", (DAY + timedelta(days=9)).isoformat(), "--by", "A",
                "--why", "ikke enige", "--as-of", DAY.isoformat())
    assert late.exit_code == 1 and "Traceback" not in late.output
    assert late.stderr.strip() == (f"genop: the meeting ({(DAY + timedelta(days=9)).isoformat()}) must be held "
                                   f"within 8 days of the call (§10): on {(DAY + timedelta(days=8)).isoformat()} "
                                   "at the latest")
    bad = _run("dispute", "call-mediation", number, "--on", "28-11-2026", "--by", "A", "--why", "x")
    assert bad.exit_code == 1 and "is not a date" in bad.stderr

    absent = _run("dispute", "call-mediation", number, "--on", (DAY + timedelta(days=8)).isoformat(), "--by", "A",
                  "--why", "ikke enige", "--as-of", DAY.isoformat())
    assert absent.exit_code == 3 and absent.stderr.strip().startswith("genop: no Prefect server at")
    with runtime.store.session() as session:  # nothing half done: not called, nothing composed
        assert get_dispute(session, number).state == "open" and mail_of_dispute(session, number) == []


def test_the_call_goes_once_to_each_party_and_never_to_the_other_municipality(certified, tmp_path):
    runtime = certified
    dragor = _open(awaiting_case(runtime, tmp_path, "GOP-CLI-DSP-4", "155"))
    tarnby = _open(awaiting_case(runtime, tmp_path, "GOP-CLI-DSP-5", "185"), about="price_disputed")
    meeting = DAY + timedelta(days=8)
    with runtime.store.session() as session:
        for number in (dragor, tarnby):
            call_and_compose(session, runtime.agreement, runtime.settings, get_dispute(session, number),
                             meeting_on=meeting, by="A", why="ikke enige", day=DAY, now=now_utc())
    with runtime.store.session() as session:
        assert parties_called(get_dispute(session, dragor), runtime.agreement) == ["tarnby", "copenhagen", "dragor"]
        assert parties_called(get_dispute(session, tarnby), runtime.agreement) == ["tarnby", "copenhagen"]
        rows = mail_of_dispute(session, tarnby)
        assert [row.key for row in rows] == [call_key(tarnby, "tarnby"), call_key(tarnby, "copenhagen")]
        [subject] = {row.subject for row in rows}
        case_number = get_dispute(session, tarnby).case.case_number
        assert subject == f"Indkaldelse til mediationsmøde – tvist {tarnby} (price_disputed) – sag {case_number}"
        assert all(REASON.encode() not in row.raw for row in rows)  # the body is encrypted
        assert len(mail_of_dispute(session, dragor)) == 3
    again = _run("dispute", "call-mediation", tarnby, "--on", meeting.isoformat(), "--by", "A", "--why", "x",
                 "--as-of", DAY.isoformat())
    assert again.exit_code == 1 and "is mediation_called: it cannot move to mediation_called" in again.stderr
    with runtime.store.session() as session:
        assert len(mail_of_dispute(session, tarnby)) == 2


def test_escalation_finds_a_mediation_without_outcome_and_a_dispute_open_too_long(certified, tmp_path):
    runtime = certified
    called = _open(awaiting_case(runtime, tmp_path, "GOP-CLI-DSP-6", "155"))
    still_open = _open(awaiting_case(runtime, tmp_path, "GOP-CLI-DSP-7", "185"))
    meeting = DAY + timedelta(days=5)
    with runtime.store.session() as session:
        call_and_compose(session, runtime.agreement, runtime.settings, get_dispute(session, called),
                         meeting_on=meeting, by="A", why="ikke enige", day=DAY, now=now_utc())
    warn_after = runtime.agreement.disputes.open_warning_days

    def found(kind: Kind, day: date) -> list[tuple[str, str, str]]:
        with runtime.store.session() as session:
            return [(f.subject, f.municipality, f.level.value)
                    for f in scan_kind(session, kind, ScanContext(day, runtime.agreement))]

    assert found(Kind.MEDIATION_OVERDUE, meeting) == []
    assert found(Kind.MEDIATION_OVERDUE, meeting + timedelta(days=1)) == [(called, "dragor", Level.BREACH.value)]
    assert found(Kind.DISPUTE_OPEN_TOO_LONG, DAY + timedelta(days=warn_after - 1)) == []
    assert found(Kind.DISPUTE_OPEN_TOO_LONG, DAY + timedelta(days=warn_after)) == [
        (still_open, "tarnby", Level.WARNING.value)]

    day = DAY + timedelta(days=warn_after)
    with runtime.store.session() as session:
        findings = [f for kind in (Kind.MEDIATION_OVERDUE, Kind.DISPUTE_OPEN_TOO_LONG)
                    for f in scan_kind(session, kind, ScanContext(day, runtime.agreement))]
        assert all(REASON not in f.reason and REASON not in json.dumps(f.figures) for f in findings)
        changes = record(session, findings, scan_on=day, now=now_utc(), agreement=runtime.agreement)
        told = {c.finding.subject: recipients(c.finding, runtime.agreement) for c in changes}
        assert told == {called: ["tarnby", "dragor", "copenhagen"], still_open: ["tarnby"]}
        rows = compose_notices(session, changes, agreement=runtime.agreement, settings=runtime.settings,
                               now=now_utc())
        subjects = sorted({row.subject for row in rows})
    # the meeting's day passed long enough ago that the breach is already persisting
    assert subjects == [f"Fortsat overskredet: mediationsmødet er afholdt uden registreret udfald – tvist {called}",
                        f"Varsel: tvisten har længe været åben uden mediation – tvist {still_open}"]
    risks = _json("risks", "--kind", "mediation_overdue")["findings"]
    assert [(f["subject"], f["level"]) for f in risks] == [(called, "persisting")]
    _json("dispute", "resolve", called, "--by", "B", "--why", "enige på mødet", "--as-of", day.isoformat())
    assert found(Kind.MEDIATION_OVERDUE, day) == []
