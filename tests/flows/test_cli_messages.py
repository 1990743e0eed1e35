"""What an operator sees when a file is wrong (issue 17, points 6 and 7): one line, its own
message, a non-zero exit, nothing taken in that should not be — through the running server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from genop_cli.main import cli
from tests.conftest import EXAMPLES, ROOT

pytestmark = pytest.mark.usefixtures("prefect_server")


def last_line(text: str) -> str:
    """The line genop itself prints (in this test process Prefect's console log may come first)."""
    return text.strip().splitlines()[-1]


def test_an_empty_visits_file_is_refused_in_one_line_by_the_real_command(runtime, tmp_path):
    """Run as an operator's shell runs it (without the test suite's Prefect console settings)."""
    empty = tmp_path / "visits.csv"
    empty.write_text("case_number,visit_date,sks_code,minutes,mode,group_size\n")
    shell = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_LOGGING_HANDLERS_CONSOLE")}
    done = subprocess.run([sys.executable, "-c", "from genop_cli.main import main; main()", "visits", "import",
                           str(empty), "--as-of", "2026-12-01"], cwd=ROOT, env=shell,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert done.stderr.strip() == ("genop: visits.csv holds no visit lines (only the header line); nothing was "
                                   "imported: check that the export from Copenhagen finished"), done.stderr
    assert done.stdout == ""


def test_a_final_status_that_is_a_json_list_names_what_it_is(runtime, tmp_path):
    status = tmp_path / "slutstatus.json"
    status.write_text("[]")
    result = CliRunner().invoke(cli, ["complete", "GEN-2026-000001", "--status", str(status)])
    assert result.exit_code == 1
    assert last_line(result.stderr).startswith("genop: the final status file is a JSON list")
    assert "the final status file is a JSON list, not one JSON object with case_number" in result.stderr


def test_a_folder_is_taken_in_without_its_other_files(runtime, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "plan.json").write_bytes((EXAMPLES / "plan-example.json").read_bytes())
    (folder / "notes.txt").write_text("not a plan")
    result = CliRunner().invoke(cli, ["plan", "submit", str(folder), "--as-of", "2026-11-03", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["files"] == 1
    assert "notes.txt (is not a .json or .xml file)" in result.stderr
    home = runtime.settings.home_dir
    assert not [p for p in Path(home).rglob("notes.txt*")]
