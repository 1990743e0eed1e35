"""`genop risks` and `genop case show` read the findings from the store (SQLite and PostgreSQL);
`genop escalate` without a server says so in one line."""

from __future__ import annotations

import json
import socket
from datetime import timedelta

from click.testing import CliRunner

from genop_cli.main import cli
from tests.integration.test_escalation_trail import RECEIVED, awaiting_case, scan_on


def _json(*args: str) -> dict:
    result = CliRunner().invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_risks_lists_open_findings_by_municipality_and_kind(runtime, tmp_path):
    tarnby = awaiting_case(runtime, tmp_path, "GOP-CLI-T", "185")
    dragor = awaiting_case(runtime, tmp_path, "GOP-CLI-D", "155")
    scan_on(runtime, RECEIVED + timedelta(days=runtime.agreement.escalation_on(RECEIVED).consent_missing_after_days))

    assert sorted(f["subject"] for f in _json("risks")["findings"]) == sorted([tarnby, dragor])
    assert [f["subject"] for f in _json("risks", "--municipality", "155")["findings"]] == [dragor]
    assert [f["level"] for f in _json("risks", "--municipality", "185")["findings"]] == ["breach"]
    assert _json("risks", "--kind", "sent_back")["findings"] == []
    [shown] = _json("case", "show", dragor)["findings"]
    assert (shown["kind"], shown["level"], shown["closed_on"]) == ("consent_missing", "breach", None)
    table = CliRunner().invoke(cli, ["risks"])
    assert table.exit_code == 0 and "2 open finding(s)" in table.output
    unknown = CliRunner().invoke(cli, ["risks", "--municipality", "999"])
    assert unknown.exit_code == 1 and unknown.stderr.strip() == \
        "genop: no municipality with code 999 in config/agreement.yaml"


def test_escalate_without_a_server_is_one_line(runtime, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        absent = f"http://127.0.0.1:{sock.getsockname()[1]}/api"
    monkeypatch.setenv("PREFECT_API_URL", absent)
    result = CliRunner().invoke(cli, ["escalate", "--as-of", "2026-11-06"])
    assert result.exit_code == 3
    assert result.stderr.strip().startswith("genop: no Prefect server at") and "Traceback" not in result.output
