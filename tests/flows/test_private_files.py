"""Files with personal data are private (issue 17): GENOP_HOME 0700, every file genop writes
0600, whatever umask the operator's shell had — checked after a real intake (with a
quarantined file), a consent given (mail) and refused (letter) and a visits import with a
rejected line. Only the demo certificates are world-readable: they are public."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from genop_cli.main import cli
from tests.conftest import EXAMPLES
from tests.flows.helpers import OUTCOME_SECONDS, consent, submit, suspended_run, wait_for


@pytest.fixture
def operators_umask() -> Iterator[None]:
    """A login shell's usual umask (0022), in force when genop's processes are started."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the store as a file
def test_every_file_genop_writes_is_private(operators_umask, system, tmp_path):
    from sqlalchemy.engine import make_url

    runtime = system["runtime"]
    home = runtime.settings.home_dir
    store_file = Path(make_url(runtime.settings.store_url).database)
    bad = tmp_path / "bad-cpr.json"
    bad.write_bytes((EXAMPLES / "plan-example.json").read_bytes().replace(b"010145-1234", b"310445-1234"))
    os.chmod(bad, 0o644)
    assert CliRunner().invoke(cli, ["plan", "submit", str(bad), "--as-of", "2026-11-03"]).exit_code == 5
    given = submit(EXAMPLES / "plan-example.json")
    suspended_run(runtime, given)
    assert consent(given, "--given").exit_code == 0
    refused = submit(EXAMPLES / "plan-dragor.json")
    suspended_run(runtime, refused)
    assert consent(refused, "--refused").exit_code == 0
    wait_for(lambda: list(runtime.settings.letters_dir.rglob("*.html")), OUTCOME_SECONDS, "the refusal letter")
    visits = tmp_path / "visits.csv"
    visits.write_text("case_number,visit_date,sks_code,minutes,mode,group_size\n"
                      f"{given},2026-11-30,BLNR1,abc,individual,\n", encoding="utf-8")
    imported = CliRunner().invoke(cli, ["visits", "import", str(visits), "--as-of", "2026-12-15", "--json"])
    assert imported.exit_code in (0, 1), imported.output

    kinds = {
        "store": [store_file, *store_file.parent.glob(store_file.name + "-wal")],
        "quarantined plan": [p for p in runtime.settings.quarantine_dir.rglob("*") if p.is_file()
                             and not p.name.endswith(".reason")],
        "quarantine reason": list(runtime.settings.quarantine_dir.rglob("*.reason")),
        "processed plan": [p for p in runtime.settings.processed_dir.rglob("*") if p.is_file()],
        "rejects": list((home / "rejects").glob("*.csv")),
        "mail": list(system["mail"].glob("*.eml")),
        "letter": [p for p in runtime.settings.letters_dir.rglob("*") if p.is_file()],
        "key": list(system["certs"].glob("*.key")),
    }
    for kind, files in kinds.items():
        assert files, f"the scenario must have written a {kind}"
        for path in files:
            assert _mode(path) == 0o600, f"{kind} {path.relative_to(home)} is {_mode(path):o}"
    assert _mode(home) == 0o700
    for folder in (p for p in home.rglob("*") if p.is_dir()):
        assert _mode(folder) & 0o077 == 0, f"{folder.relative_to(home)} is {_mode(folder):o}"
    for path in (p for p in home.rglob("*") if p.is_file()):
        if path.suffix == ".crt" or path == system["certs"] / "README.txt":
            assert _mode(path) == 0o644  # certificates (and their README) are public; keys are not
        elif path.name != "serve.log":  # the test harness's own log of the served process
            assert _mode(path) & 0o077 == 0, f"{path.relative_to(home)} is {_mode(path):o}"
    assert json.loads(imported.stdout)["rejected"] >= 1
