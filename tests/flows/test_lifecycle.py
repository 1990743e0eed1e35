"""One case through the whole lifecycle, all through flows (SQLite and PostgreSQL):
intake → consent missing past the reminder day (one escalation notice to Tårnby) → consent
(the finding closes) → forwarded → first session offered + transport booked → moved (re-booked)
→ free-choice letter → visits → completed with slutstatus forwarded → settled in its month;
every re-run doubles nothing.
"""

from __future__ import annotations

import json
from datetime import timedelta

from click.testing import CliRunner

from genop.clock import today
from genop.deadlines import first_working_day_of_month
from genop.store.repository import get_case
from genop_cli.main import cli
from tests.conftest import EXAMPLES
from tests.flows.helpers import (
    AS_OF,
    OUTCOME_SECONDS,
    consent,
    everything_prefect_holds,
    openssl_decrypt_and_verify,
    prefect_database_bytes,
    submit,
    suspended_run,
    wait_for,
)


def _run(*args: str) -> object:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result


def _mails(system) -> int:
    """Mails about the case's steps, the consent reminder included: other risk notices (an empty store's
    budget, the plan's start_by) are the escalation tests' to count."""
    import email
    import email.policy

    subjects = [str(email.message_from_bytes(path.read_bytes(), policy=email.policy.default)["Subject"])
                for path in system["mail"].glob("*.eml")]
    risk = ("Varsel:", "Overskredet:", "Fortsat overskredet:")
    return sum(1 for subject in subjects if not subject.startswith(risk) or "samtykke mangler" in subject)


def test_case_goes_from_plan_to_completion_through_flows(system, tmp_path):
    runtime = system["runtime"]
    number = submit(EXAMPLES / "plan-example.json")
    suspended_run(runtime, number)
    reminder = AS_OF + timedelta(days=runtime.agreement.escalation_on(AS_OF).consent_reminder_after_days)
    escalated = json.loads(_run("escalate", "--as-of", reminder.isoformat(), "--json").stdout)
    assert [(c["change"], c["subject"], c["level"]) for c in escalated["changes"]
            if c["subject"] == number and c["kind"] == "consent_missing"] == [
        ("opened", number, "warning")]
    wait_for(lambda: _mails(system) == 1, OUTCOME_SECONDS, "the consent reminder to Tårnby")
    assert json.loads(consent(number, "--given").stdout)["state"] == "forwarded"
    assert _mails(system) == 2  # the reminder + the order
    closed = json.loads(_run("escalate", "--as-of", (reminder + timedelta(days=1)).isoformat(), "--json").stdout)
    assert [(c["change"], c["subject"]) for c in closed["changes"]
            if c["subject"] == number and c["kind"] == "consent_missing"] == [
        ("closed", number)]

    day = today()
    first, moved = day + timedelta(days=2), day + timedelta(days=3)
    _run("case", "offer", number, "--first-session", f"{first}T10:00", "--as-of", day.isoformat())
    assert _mails(system) == 3  # the order + the transport booking
    _run("case", "offer", number, "--first-session", f"{first}T10:00", "--as-of", day.isoformat())
    assert _mails(system) == 3  # the same offer again books nothing
    _run("case", "offer", number, "--first-session", f"{moved}T09:30", "--as-of", day.isoformat())
    assert _mails(system) == 5  # cancellation + new booking

    letters = json.loads(_run("deadlines", "--as-of", day.isoformat(), "--json").stdout)
    assert number in letters["case_numbers"]  # discharge 2 Nov + 7 days passed without a start
    assert json.loads(_run("deadlines", "--as-of", day.isoformat(), "--json").stdout)["case_numbers"] == []

    visits = tmp_path / "visits.csv"
    later = day + timedelta(days=12)
    visits.write_text(
        "case_number,visit_date,sks_code,minutes,mode,group_size\n"
        f"{number},{moved},BLNR1,60,individual,\n"
        f"{number},{moved + timedelta(days=2)},BLNA,90,group,4\n"
        f"{number},{moved + timedelta(days=4)},AAF6,45,individual,\n"
        f"{number},{moved + timedelta(days=5)},BXYZ9,45,individual,\n"
        f"{number},{later + timedelta(days=3)},BLNR,60,individual,\n", encoding="utf-8")
    report = json.loads(_run("visits", "import", str(visits), "--as-of", later.isoformat(), "--json").stdout)
    assert (report["accepted"], report["duplicates"], report["rejected"]) == (3, 0, 2)
    again = json.loads(_run("visits", "import", str(visits), "--as-of", later.isoformat(), "--json").stdout)
    assert (again["accepted"], again["duplicates"]) == (0, 3)

    status = tmp_path / "slutstatus.json"
    status.write_text(json.dumps({"case_number": number, "completed_on": later.isoformat(),
                                  "assessment": "Går uden rollator, klarer trapper selv.",
                                  "consent_to_share": True}), encoding="utf-8")
    done = json.loads(_run("complete", number, "--status", str(status), "--as-of", later.isoformat(),
                           "--json").stdout)
    assert done["state"] == "completed"
    assert _mails(system) == 6
    _run("complete", number, "--status", str(status), "--as-of", later.isoformat())
    assert _mails(system) == 6

    final_mail = max(system["mail"].glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    content = openssl_decrypt_and_verify(final_mail, system["certs"], tmp_path, reader="tarnby")
    report_html = next(p.get_payload(decode=True) for p in content.walk()
                       if (p.get_filename() or "").startswith("slutstatus"))
    assert "Går uden rollator".encode() in report_html

    with runtime.store.session() as session:
        case = get_case(session, number, with_events=True)
        assert case.completed_on == later
        kinds = [e.kind for e in case.events]
    for kind in ("forwarded", "first_session_offered", "first_session_moved", "free_choice_announced",
                 "completed", "final_status_prepared"):
        assert kind in kinds, kind
    # settled in the month it completed: 640 (BLNA) + 855 (BLNR1) + 1,381 (AAF6), within the a-conto
    month = f"{later:%Y-%m}"
    aconto_day = max(later, first_working_day_of_month(later.year, later.month))
    _run("aconto", "--month", month, "--as-of", aconto_day.isoformat())
    month_after = (later.replace(day=1) + timedelta(days=32)).replace(day=1)
    settled = json.loads(_run("settle", "--month", month, "--as-of", month_after.isoformat(), "--json").stdout)
    [invoice] = settled["invoices"]
    assert (invoice["municipality"], invoice["total"], invoice["aconto"], invoice["amount_due"]) == (
        "185", "2876.00", "2876.00", "0.00")  # the a-conto offset is the month's total
    assert [(line["case_number"], line["visits"]) for line in invoice["lines"]] == [
        (number, {"GEN1A": 1, "GEN2A": 1, "GEN3A": 1})]

    outbox = json.loads(_run("outbox", "list", "--json").stdout)["outbox"]
    assert all(o["status"] == "sent" for o in outbox)
    [notice] = [o for o in outbox if o["key"].startswith("risk:") and "samtykke mangler" in o["subject"]]
    assert notice["subject"] == f"Varsel: samtykke mangler – sag {number}"
    assert sorted(o["key"].split(":")[1] for o in outbox if o["key"].startswith(number)) == sorted(
        ["order", "transport_booking_1", "transport_cancel_1", "transport_booking_2", "final_status",
         "free_choice_letter"])

    # nothing personal reached Prefect through any of those stages
    haystack = everything_prefect_holds()
    assert f"consent-{number}" in haystack and f"complete-{number}" in haystack
    for secret in ("010145-1234", "0101451234", "Karen Jensen", "Englandsvej", "DS720", "lårbenshals",
                   "Går uden rollator"):
        assert secret not in haystack, f"{secret!r} found in Prefect"
        assert secret.encode() not in prefect_database_bytes(), f"{secret!r} in Prefect's database"


def test_final_status_without_consent_is_not_sent(system, tmp_path):
    runtime = system["runtime"]
    number = submit(EXAMPLES / "plan-dragor.json")
    suspended_run(runtime, number)
    assert json.loads(consent(number, "--given").stdout)["state"] == "forwarded"
    day = today()
    status = tmp_path / "slutstatus.json"
    status.write_text(json.dumps({"case_number": number, "completed_on": day.isoformat(),
                                  "assessment": "Selvhjulpen.", "consent_to_share": False}), encoding="utf-8")
    before = _mails(system)
    done = json.loads(_run("complete", number, "--status", str(status), "--as-of", day.isoformat(),
                           "--json").stdout)
    assert done["state"] == "completed"
    assert _mails(system) == before
    assert any("did not consent" in e["detail"] for e in done["events"])


def test_cannot_follow_and_send_back_reach_tarnby_by_secure_mail(system, tmp_path):
    runtime = system["runtime"]
    number = submit(EXAMPLES / "plan-example.json")
    suspended_run(runtime, number)
    assert json.loads(consent(number, "--given").stdout)["state"] == "forwarded"
    before = _mails(system)

    _run("case", "cannot-follow", number, "--reason", "Borgeren er genindlagt")
    assert _mails(system) == before + 1
    notice = max(system["mail"].glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    assert b"genindlagt" not in notice.read_bytes()
    text = openssl_decrypt_and_verify(notice, system["certs"], tmp_path, reader="tarnby")
    body = next(p.get_payload(decode=True).decode("utf-8") for p in text.walk()
                if p.get_content_type() == "text/plain")
    assert "Borgeren er genindlagt" in body

    shown = json.loads(_run("case", "send-back", number, "--reason", "Hører til Løjtegårdsvej",
                            "--json").stdout)
    assert (shown["route"], shown["state"]) == ("lojtegaardsvej", "routed_elsewhere")
    assert _mails(system) == before + 2
    _run("case", "deliver", number)
    assert _mails(system) == before + 2
