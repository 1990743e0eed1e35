"""Plan files on disk: the inbox, staging batches, the processed archive and quarantine.

A file is never deleted before it is kept somewhere else: intake works on a *staging
batch* (a folder under ``$GENOP_HOME/staging``). Files get there by being claimed from
the inbox (an atomic rename, so two pollers never take the same file) or copied from a
path an operator names. After intake each file is moved to ``processed/<date>/<batch>/``
(its bytes are in the case store too) or to ``quarantine/<batch>/`` with a ``.reason``
file. A batch left behind by a crash is picked up again; intake is idempotent.

A hospital's file name can carry a name or a CPR number, so it never leaves genop's own
files and store: in a batch each file has a neutral name, its sequence number
(``0001.json``), and the batch keeps the original names in a private manifest. Batch
ids, sequence numbers and case numbers are what Prefect sees.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from genop.clock import local, now_utc
from genop.errors import GenopError
from genop.files import make_private, private_dir, write_atomically

IGNORED_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload")
MANIFEST = ".names.json"
ATTEMPTS = ".attempts"
STALE_AFTER_SECONDS = 600
"""A batch untouched this long was left behind by a crash and is taken up again."""
MAX_BATCH_ATTEMPTS = 3
"""Times a batch is taken up before its remaining files are quarantined (``intake_gave_up``)."""
NAME_LIMIT = 255
_NEUTRAL = re.compile(r"^\d{4,}(\.json|\.xml)?$")
_BATCH_ID = re.compile(r"^\d{8}T\d{6}-[0-9a-f]{8}$")


@dataclass(frozen=True)
class Folders:
    inbox: Path
    staging: Path
    processed: Path
    quarantine: Path

    def ensure(self) -> None:
        if not self.inbox.exists():  # a configured drop folder (GENOP_INBOX) keeps its own mode
            private_dir(self.inbox)
        for folder in (self.staging, self.processed, self.quarantine):
            private_dir(folder)


def is_plan_candidate(path: Path) -> bool:
    """Files a hospital is still writing (dot-files, *.part, *.tmp) are left for the next poll."""
    return path.is_file() and not path.name.startswith(".") and not path.name.endswith(IGNORED_SUFFIXES)


def display_name(name: str, limit: int = NAME_LIMIT) -> str:
    """A file name as text that can be stored and printed: bytes that are not UTF-8 (which
    Python hands over as lone surrogates) are shown as ``\\xNN``; at most ``limit`` characters."""
    try:
        text = os.fsencode(name).decode("utf-8", "backslashreplace")
    except UnicodeError:
        text = name.encode("utf-8", "backslashreplace").decode("utf-8")
    return text.replace("\x00", "\\x00")[:limit]


def new_batch(folders: Folders) -> Path:
    stamp = local(now_utc()).strftime("%Y%m%dT%H%M%S")
    batch = folders.staging / f"{stamp}-{uuid.uuid4().hex[:8]}"
    private_dir(folders.staging)
    batch.mkdir(mode=0o700)
    return batch


def staged_batch(given: object, folders: Folders) -> Path | None:
    """The staging batch ``given`` names — its id (``20261202T091500-1a2b3c4d``) or its path, as
    `genop plan submit` passes it — or ``None`` for anything else (a path typed in the UI)."""
    if not isinstance(given, str) or not given:
        return None
    candidate = folders.staging / given if _BATCH_ID.match(given) else Path(given)
    try:
        resolved = candidate.expanduser().resolve()
        is_batch = resolved.parent == folders.staging.resolve() and resolved.is_dir()
    except (OSError, RuntimeError, ValueError):  # a looping symlink, a NUL in a typed path
        return None
    return resolved if is_batch and _BATCH_ID.match(resolved.name) else None


def _neutral_name(sequence: int, original: str) -> str:
    suffix = Path(original).suffix.lower()
    return f"{sequence:04d}" + (suffix if suffix in (".json", ".xml") else "")


def original_names(batch: Path) -> dict[str, str]:
    """Neutral name → the name the file came with (genop's private record, never Prefect's)."""
    try:
        return json.loads((batch / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


class SourceNames:
    """The names files came with, from their batches' manifests (each read once)."""

    def __init__(self) -> None:
        self._manifests: dict[Path, dict[str, str]] = {}

    def __call__(self, path: Path) -> str:
        if path.parent not in self._manifests:
            self._manifests[path.parent] = original_names(path.parent)
        return self._manifests[path.parent].get(path.name) or display_name(path.name)


def _plan_names(batch: Path, originals: Iterable[str]) -> list[tuple[str, str]]:
    """Reserve neutral names for ``originals`` in the manifest *before* any file is moved,
    so a crash in between leaves no file whose original name is unknown."""
    names = original_names(batch)
    used = [int(Path(n).stem) for n in names if Path(n).stem.isdigit()]
    used += [int(p.stem) for p in batch.iterdir() if p.stem.isdigit()]
    start = max(used, default=0) + 1
    planned = [(_neutral_name(start + i, original), original) for i, original in enumerate(originals)]
    if planned:
        names.update({neutral: display_name(original) for neutral, original in planned})
        write_atomically(batch / MANIFEST, json.dumps(names, ensure_ascii=True, indent=0).encode("ascii"))
    return planned


def batch_files(batch: Path) -> list[Path]:
    """The batch's plan files in order. A file put there under another name (a batch staged
    by an older genop, or by hand) is given its neutral name first."""
    strays = sorted(p.name for p in batch.iterdir() if is_plan_candidate(p) and not _NEUTRAL.match(p.name))
    for neutral, original in _plan_names(batch, strays):
        os.rename(batch / original, batch / neutral)
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
        for (neutral, _), path in zip(_plan_names(batch, [p.name for p in files]), files, strict=True):
            shutil.copyfile(path, batch / neutral)
            make_private(batch / neutral)
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
    for neutral, original in _plan_names(batch, [p.name for p in candidates]):
        try:
            os.rename(folders.inbox / original, batch / neutral)
        except FileNotFoundError:
            continue
        try:
            make_private(batch / neutral)
        except OSError:
            pass  # a file another account owns (a shared drop folder): private in its 0700 batch
    return batch


def stale_batches(folders: Folders, *, older_than_seconds: float = STALE_AFTER_SECONDS) -> list[Path]:
    """Batches left behind (a crash between claiming and archiving); safe to take in again."""
    cutoff = time.time() - older_than_seconds
    return sorted(
        batch for batch in folders.staging.iterdir()
        if batch.is_dir() and batch.stat().st_mtime < cutoff
    )


TAKEN = ".taken-"
"""A marker per time a left-behind batch was taken up again: ``.taken-0``, ``.taken-1``, …"""


def take_stale(batch: Path, *, older_than_seconds: float = STALE_AFTER_SECONDS) -> bool:
    """Take up a left-behind batch, unless an overlapping poll took it first.

    The markers are counted first, then the batch's age is checked, then the next marker is
    created with ``O_EXCL``: a poll that comes after another took the batch either finds the
    batch young again (creating a marker refreshes its age) or loses the race for the marker.
    """
    try:
        taken = sum(1 for _ in batch.glob(TAKEN + "*"))
        if batch.stat().st_mtime >= time.time() - older_than_seconds:
            return False
        descriptor = os.open(batch / f"{TAKEN}{taken}", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except (FileExistsError, FileNotFoundError):  # taken by another poll, or closed by it
        return False
    os.close(descriptor)
    return True


def count_attempt(batch: Path) -> int:
    """Note that a run takes the batch up; returns how many times it has been."""
    attempt = batch_attempts(batch) + 1
    write_atomically(batch / ATTEMPTS, str(attempt).encode("ascii"))
    return attempt


def forget_attempt(batch: Path) -> None:
    """The last attempt failed for a reason that is not the batch's (the store was down)."""
    attempts = batch_attempts(batch)
    if attempts > 0:
        write_atomically(batch / ATTEMPTS, str(attempts - 1).encode("ascii"))


def batch_attempts(batch: Path) -> int:
    try:
        return int((batch / ATTEMPTS).read_text(encoding="ascii"))
    except (OSError, ValueError):
        return 0


def archive_processed(paths: Iterable[Path], folders: Folders, as_of: date) -> None:
    for path in paths:
        if not path.exists():
            continue
        target_dir = private_dir(folders.processed / as_of.isoformat() / path.parent.name)
        os.replace(path, _free_name(target_dir, path.name))


def quarantine_target(path: Path, folders: Folders) -> Path:
    """Where a staged file is kept in quarantine: the same place however often it is tried."""
    return folders.quarantine / path.parent.name / path.name


def quarantine_file(path: Path, folders: Folders, *, source_name: str, code: str, reason: str,
                    at: datetime) -> Path:
    """Copy a staged file into quarantine with a ``.reason`` beside it; returns where it is kept.

    Idempotent: a second attempt for the same staged file overwrites the same two files.
    """
    target = quarantine_target(path, folders)
    private_dir(target.parent)
    if not target.exists() or target.stat().st_size != path.stat().st_size:
        temporary = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
        shutil.copyfile(path, temporary)
        make_private(temporary)
        os.replace(temporary, target)
    text = (f"file: {display_name(source_name)}\nbatch: {path.parent.name}\nstaged as: {path.name}\n"
            f"quarantined: {local(at).isoformat(timespec='seconds')}\ncode: {code}\nreason: {reason}\n")
    write_atomically(target.with_name(target.name + ".reason"), text.encode("utf-8", "backslashreplace"))
    return target


def close_batch(batch: Path) -> None:
    """Remove a batch whose every file was archived or quarantined (the store keeps the names)."""
    if any(is_plan_candidate(p) for p in batch.iterdir()):
        return
    for bookkeeping in (MANIFEST, ATTEMPTS, *(p.name for p in batch.glob(TAKEN + "*"))):
        (batch / bookkeeping).unlink(missing_ok=True)
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
