"""Partner files staged under a neutral reference (issue 17, point 3): the copy is private, its
name and reference hold nothing of the original name, the original name is kept in the
private manifest, a typed path is refused without being repeated, and the CLI refuses a
missing or unreadable file in one line before anything is staged."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from genop.staged import (
    NotStaged,
    StagedKind,
    discard,
    is_reference,
    open_staged,
    read_source,
    stage_file,
    sweep,
    uploads_dir,
)
from genop.errors import GenopError
from genop_cli.main import cli

PRIVATE_NAME = "visits_010145-1234_Karen Jensen.csv"
SECRETS = ("010145", "1234", "Karen", "Jensen")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_staged_file_has_a_neutral_private_name_and_keeps_the_original_in_its_manifest(tmp_path):
    staged = stage_file(b"case_number,visit_date\n", PRIVATE_NAME, StagedKind.VISITS, tmp_path)
    assert is_reference(staged.reference) and staged.reference.startswith("visits-")
    assert staged.label == staged.reference + ".csv"  # the suffix decides CSV or JSON lines
    for secret in SECRETS:
        assert secret not in staged.reference and secret not in str(staged.path.relative_to(tmp_path))
    assert staged.read_bytes() == b"case_number,visit_date\n"
    assert (_mode(uploads_dir(tmp_path)), _mode(staged.path.parent), _mode(staged.path)) == (0o700, 0o700, 0o600)
    assert all(_mode(p) == 0o600 for p in staged.path.parent.iterdir())
    again = open_staged(staged.reference, StagedKind.VISITS, tmp_path)
    assert (again.source_name, again.path) == (PRIVATE_NAME, staged.path)
    assert staged.named(f"{staged.label} holds no visit lines") == f"{PRIVATE_NAME} holds no visit lines"


def test_a_suffix_that_could_be_a_name_is_not_kept(tmp_path):
    staged = stage_file(b"{}", "slutstatus Karen.Jensen", StagedKind.FINAL_STATUS, tmp_path)
    assert staged.label == staged.reference


@pytest.mark.parametrize("given", ["/home/staff/" + PRIVATE_NAME, PRIVATE_NAME, "offers-20261202T091500-1a2b3c4d",
                                   "visits-../../etc/passwd", ""])
def test_a_flow_given_anything_but_a_staged_reference_of_its_kind_refuses_without_repeating_it(tmp_path, given):
    with pytest.raises(NotStaged) as refused:
        open_staged(given, StagedKind.VISITS, tmp_path)
    assert "genop visits import FILE" in refused.value.message
    assert not any(secret in refused.value.message for secret in SECRETS)
    assert refused.value.code == "not_staged"


def test_a_discarded_reference_is_not_staged_any_more(tmp_path):
    staged = stage_file(b"x", "offers.csv", StagedKind.OFFERS, tmp_path)
    discard(staged)
    assert not any(uploads_dir(tmp_path).iterdir())
    with pytest.raises(NotStaged, match="run `genop offers import FILE` again"):
        open_staged(staged.reference, StagedKind.OFFERS, tmp_path)


def test_a_reference_a_killed_command_left_behind_is_swept_after_a_day(tmp_path):
    old = stage_file(b"x", "visits.csv", StagedKind.VISITS, tmp_path)
    young = stage_file(b"y", "visits.csv", StagedKind.VISITS, tmp_path)
    day_ago = time.time() - 86_400 - 60
    os.utime(old.path.parent, (day_ago, day_ago))
    sweep(uploads_dir(tmp_path))
    assert not old.path.parent.exists() and young.path.exists()


def test_a_missing_file_or_a_folder_is_refused_in_words(tmp_path):
    with pytest.raises(GenopError, match="does not exist") as missing:
        read_source(tmp_path / PRIVATE_NAME)
    assert missing.value.code == "not_found"
    with pytest.raises(GenopError, match="is a folder") as folder:
        read_source(tmp_path)
    assert folder.value.code == "not_a_file"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("command", [["visits", "import"], ["offers", "import"],
                                     ["complete", "GEN-2026-000001", "--status"]])
@pytest.mark.parametrize("problem", ["missing", "folder", "unreadable"])
def test_the_cli_refuses_a_file_it_cannot_read_in_one_line_before_anything_is_staged(
        runtime, tmp_path, monkeypatch, command, problem):
    """No Prefect server is needed to be told: the file is read before the server is looked for."""
    path = tmp_path / PRIVATE_NAME
    if problem == "folder":
        path.mkdir()
    elif problem == "unreadable":
        path.write_text("case_number\n")
        real_read_bytes = Path.read_bytes

        def denied(self: Path) -> bytes:  # tests run as root, for whom chmod 000 still reads
            if self == path:
                raise PermissionError(13, "Permission denied", str(self))
            return real_read_bytes(self)

        monkeypatch.setattr(Path, "read_bytes", denied)
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # nothing there: never asked
    result = CliRunner().invoke(cli, [*command, str(path)])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    expected = {"missing": "does not exist", "folder": "is a folder", "unreadable": "cannot read"}[problem]
    assert line.startswith("genop: ") and expected in line and "nothing was staged" in line, line
    assert "Traceback" not in result.output
    uploads = uploads_dir(runtime.settings.home_dir)
    assert not uploads.exists() or not any(uploads.iterdir())
