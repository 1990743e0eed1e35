"""Plan files on disk: the inbox, staging batches, the processed archive and quarantine.

A file is never deleted before it is kept somewhere else: intake works on a *staging
batch* (a folder under ``$GENOP_HOME/staging``). Files get there by being claimed from
the inbox (an atomic rename, so two pollers never take the same file) or copied from a
path an operator names. After intake each file is moved to ``processed/<date>/<batch>/``
(its bytes are in the case store too) or to ``quarantine/`` with a ``.reason`` file.
A batch left behind by a crash is picked up again; intake is idempotent.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from genop.clock import local, now_utc
from genop.errors import GenopError

IGNORED_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload")


@dataclass(frozen=True)
class Folders:
    inbox: Path
    staging: Path
    processed: Path
    quarantine: Path

    def ensure(self) -> None:
        for folder in (self.inbox, self.staging, self.processed, self.quarantine):
            folder.mkdir(parents=True, exist_ok=True)


def is_plan_candidate(path: Path) -> bool:
    """Files a hospital is still writing (dot-files, *.part, *.tmp) are left for the next poll."""
    return path.is_file() and not path.name.startswith(".") and not path.name.endswith(IGNORED_SUFFIXES)


def new_batch(folders: Folders) -> Path:
    stamp = local(now_utc()).strftime("%Y%m%dT%H%M%S")
    batch = folders.staging / f"{stamp}-{uuid.uuid4().hex[:8]}"
    batch.mkdir(parents=True)
    return batch


def batch_files(batch: Path) -> list[Path]:
    return sorted(p for p in batch.iterdir() if is_plan_candidate(p))


def stage_copy(source: Path, folders: Folders, *, accept: Callable[[Path], bool] | None = None) -> Path:
    """Copy a plan file, or the plan files of a folder, into a new staging batch.

    ``accept`` chooses a folder's files (the CLI passes only what is a plan file).
    """
    source = source.expanduser().resolve()
    if not source.exists():
        raise GenopError(f"{source} does not exist", code="not_found")
    if source.is_file() and not is_plan_candidate(source):
        raise GenopError(f"{source.name} looks like a file still being written (a name starting with '.' "
                         f"or ending {', '.join(IGNORED_SUFFIXES)}); rename it when it is complete",
                         code="incomplete_file")
    files = [source] if source.is_file() else sorted(p for p in source.iterdir() if is_plan_candidate(p))
    files = [path for path in files if accept is None or accept(path)]
    batch = new_batch(folders)
    try:
        for path in files:
            shutil.copy2(path, _free_name(batch, path.name))
    except OSError as exc:
        raise GenopError(f"cannot read {exc.filename}: {exc.strerror}", code="unreadable") from exc
    return batch


def claim_inbox(folders: Folders, *, limit: int | None = None) -> Path | None:
    """Move the inbox's files into a new batch; a file another poller took first is skipped."""
    candidates = sorted(p for p in folders.inbox.iterdir() if is_plan_candidate(p))
    if limit is not None:
        candidates = candidates[:limit]
    if not candidates:
        return None
    batch = new_batch(folders)
    for path in candidates:
        try:
            os.rename(path, _free_name(batch, path.name))
        except FileNotFoundError:
            continue
    return batch


def stale_batches(folders: Folders, *, older_than_seconds: float = 600) -> list[Path]:
    """Batches left behind (a crash between claiming and archiving); safe to take in again."""
    cutoff = time.time() - older_than_seconds
    return sorted(
        batch for batch in folders.staging.iterdir()
        if batch.is_dir() and batch.stat().st_mtime < cutoff
    )


def archive_processed(paths: Iterable[Path], folders: Folders, as_of: date) -> None:
    for path in paths:
        if not path.exists():
            continue
        target_dir = folders.processed / as_of.isoformat() / path.parent.name
        target_dir.mkdir(parents=True, exist_ok=True)
        os.replace(path, _free_name(target_dir, path.name))


def quarantine_file(path: Path, folders: Folders, code: str, reason: str, at: datetime) -> Path:
    """Copy a file into quarantine with a ``.reason`` beside it; returns where it is kept."""
    folders.quarantine.mkdir(parents=True, exist_ok=True)
    stamp = local(at).strftime("%Y%m%dT%H%M%S")
    target = _free_name(folders.quarantine, f"{stamp}-{path.name}")
    shutil.copy2(path, target)
    target.with_name(target.name + ".reason").write_text(
        f"file: {path.name}\nquarantined: {local(at).isoformat(timespec='seconds')}\n"
        f"code: {code}\nreason: {reason}\n",
        encoding="utf-8",
    )
    return target


def remove_empty_batch(batch: Path) -> None:
    try:
        batch.rmdir()
    except OSError:
        pass


def _free_name(folder: Path, name: str) -> Path:
    target = folder / name
    counter = 1
    while target.exists():
        target = folder / f"{Path(name).stem}.{counter}{Path(name).suffix}"
        counter += 1
    return target
