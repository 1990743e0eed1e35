"""`genop plan submit` takes plan files, not any path (issue 17): refused before anything is copied."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from genop_cli.main import cli, plan_files

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    from genop.runtime import current_runtime

    home = tmp_path / "home"
    monkeypatch.setenv("GENOP_HOME", str(home))
    monkeypatch.setenv("GENOP_DATABASE_URL", f"sqlite:///{tmp_path / 'genop.sqlite'}")
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # no server: never reached
    current_runtime.cache_clear()
    yield home
    current_runtime.cache_clear()


def copied_files(home: Path) -> list[Path]:
    return [p for folder in ("staging", "quarantine") if (home / folder).exists()
            for p in (home / folder).rglob("*") if p.is_file()]


def test_submitting_etc_passwd_is_refused_in_one_line_and_nothing_is_copied(home: Path, tmp_path: Path) -> None:
    secret = tmp_path / "etc" / "passwd"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (tmp_path / "a" / "b").mkdir(parents=True)
    result = CliRunner().invoke(cli, ["plan", "submit", str(tmp_path / "a" / "b" / ".." / ".." / "etc" / "passwd")])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
    assert "is not a .json or .xml file" in result.stderr and "nothing was copied" in result.stderr
    assert copied_files(home) == []


def test_a_json_file_that_is_not_a_plan_by_content_is_refused(home: Path, tmp_path: Path) -> None:
    fake = tmp_path / "scan.json"
    fake.write_bytes(b"%PDF-1.7 not a plan")
    result = CliRunner().invoke(cli, ["plan", "submit", str(fake)])
    assert result.exit_code == 1 and "does not start like a plan" in result.stderr
    assert copied_files(home) == []


def test_a_folder_gives_only_its_plan_files_and_names_the_others(tmp_path: Path, capsys) -> None:
    (tmp_path / "plan.json").write_bytes((EXAMPLES / "plan-example.json").read_bytes())
    (tmp_path / "plan.xml").write_bytes((EXAMPLES / "plan-example.xml").read_bytes())
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "list.json").write_text("[1]")
    assert plan_files(tmp_path) == {"plan.json", "plan.xml"}
    said = capsys.readouterr().err
    assert "notes.txt (is not a .json or .xml file)" in said and "list.json (does not start like a plan" in said


def test_a_folder_without_plan_files_is_refused(home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "readme.md").write_text("# x")
    result = CliRunner().invoke(cli, ["plan", "submit", str(folder)])
    assert result.exit_code == 1 and "holds no plan file" in result.stderr and "readme.md" in result.stderr
    assert copied_files(home) == []


def test_stage_copy_takes_only_the_accepted_files_of_a_folder(tmp_path: Path) -> None:
    from genop.inbox import Folders, batch_files, original_names, stage_copy

    source = tmp_path / "in"
    source.mkdir()
    (source / "plan.json").write_text("{}")
    (source / "notes.txt").write_text("x")
    folders = Folders(*(tmp_path / name for name in ("inbox", "staging", "processed", "quarantine")))
    batch = stage_copy(source, folders, accept=lambda path: path.name in plan_files(source))
    assert [p.name for p in batch_files(batch)] == ["0001.json"]
    assert original_names(batch) == {"0001.json": "plan.json"}


def test_a_symlinked_plan_file_is_taken_under_its_targets_name(tmp_path: Path) -> None:
    from genop_cli.main import plan_files

    target = tmp_path / "plans" / "real.json"
    target.parent.mkdir()
    target.write_text('{"plan_id": "x"}')
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert plan_files(link) == {"real.json"}
