"""Plan files and GENOP_HOME are private even when they arrive or exist with looser modes."""

from __future__ import annotations

import os
import stat
from datetime import date
from pathlib import Path

from genop.inbox import batch_files, claim_inbox
from genop.settings import Settings
from tests.factories import write_plan


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_an_existing_world_readable_genop_home_is_made_private(tmp_path):
    home = tmp_path / "home"
    (home / "quarantine").mkdir(parents=True)
    os.chmod(home, 0o755)
    os.chmod(home / "quarantine", 0o777)

    Settings(home=home).ensure_dirs()

    assert _mode(home) == 0o700
    assert {name: _mode(home / name) for name in ("quarantine", "processed", "staging", "inbox")} == {
        "quarantine": 0o700, "processed": 0o700, "staging": 0o700, "inbox": 0o700}


def test_a_hospitals_world_readable_upload_is_private_once_claimed_and_archived(runtime):
    previous = os.umask(0o022)
    try:
        dropped = write_plan(runtime.settings.inbox_dir, "plan.json")
        os.chmod(dropped, 0o644)
        batch = claim_inbox(runtime.settings.folders)
        [staged] = batch_files(batch)
        assert _mode(batch) == 0o700 and _mode(staged) == 0o600
        [outcome] = runtime.intake.take_in([staged], date(2026, 11, 3))
    finally:
        os.umask(previous)
    assert outcome.outcome == "created"
    [archived] = runtime.settings.processed_dir.rglob("*.json")
    assert _mode(archived) == 0o600 and _mode(archived.parent) == 0o700
    assert _mode(batch / ".names.json") == 0o600
