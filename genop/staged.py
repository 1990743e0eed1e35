"""Partner files staged under a neutral reference before a flow works on them (issue 17, point 3).

A visits file, an offers file or a slutstatus file is named by whoever exported it, and
such names carry names and CPR numbers (``visits_010145-1234_Karen Jensen.csv``). The
``genop`` command therefore copies the file into a private staging folder first
(``$GENOP_HOME/uploads/<reference>/``, 0700; the copy 0600) under a neutral reference
such as ``visits-20261202T091500-1a2b3c4d``, and a flow's parameters, run name, logs and
artifacts carry only that reference. The original name stays in the reference's private
manifest, and from there in genop's store where the import is recorded
(``VisitImport.source_name``, the completed case's trail).

A staged file lives as long as the run that reads it: the command that staged it discards
it afterwards, whatever the outcome (the original file stays where staff had it); a
reference left behind by a killed command is swept after a day.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from genop.clock import local, now_utc
from genop.errors import GenopError
from genop.files import private_dir, write_atomically
from genop.inbox import display_name

MANIFEST = "source.json"
KEEP_SECONDS = 86_400
"""A reference older than this was left behind by a command that did not finish; it is swept."""
_SUFFIXES = frozenset({".csv", ".json", ".jsonl", ".ndjson", ".txt"})
"""Suffixes kept on the staged copy (visits are read as JSON lines by theirs); any other is
dropped, since the part after a dot can be a name too (``Karen.Jensen``)."""


class StagedKind(StrEnum):
    """What a staged file is, and the first part of its reference."""

    VISITS = "visits"
    OFFERS = "offers"
    FINAL_STATUS = "slutstatus"


_REFERENCE = re.compile(r"^(visits|offers|slutstatus)-\d{8}T\d{6}-[0-9a-f]{8}$")
_HOW = {
    StagedKind.VISITS: "genop visits import FILE",
    StagedKind.OFFERS: "genop offers import FILE",
    StagedKind.FINAL_STATUS: "genop complete CASE --status FILE",
}


class NotStaged(GenopError):
    """A flow was given something that is not a staged reference (a path typed in the UI's Run
    form); the message never repeats what was given, as it may be a file name with a CPR."""

    code = "not_staged"


@dataclass(frozen=True)
class StagedFile:
    reference: str
    kind: StagedKind
    path: Path
    """The staged copy: ``<reference><suffix>`` in the reference's folder."""
    source_name: str
    """The name the file came with (genop's private record; never given to Prefect)."""

    @property
    def label(self) -> str:
        """How flows and their messages name the file: neutral, with the original's suffix."""
        return self.path.name

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()

    def named(self, message: str) -> str:
        """A message about the staged file, for the person who staged it: with their file's name."""
        return message.replace(self.label, self.source_name).replace(self.reference, self.source_name)


def is_reference(value: object) -> bool:
    """Whether ``value`` has the shape of a staged reference (and so may name a run)."""
    return isinstance(value, str) and bool(_REFERENCE.match(value))


def uploads_dir(home: Path) -> Path:
    return home / "uploads"


def read_source(path: Path) -> bytes:
    """A partner's file as the command is given it, or one line saying why it cannot be used —
    before anything is staged."""
    shown = display_name(path.name)
    if not path.exists():
        raise GenopError(f"{shown} does not exist (looked for {display_name(str(path))}); nothing was staged "
                         "or imported", code="not_found")
    if path.is_dir():
        raise GenopError(f"{shown} is a folder; give the file itself; nothing was staged or imported",
                         code="not_a_file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise GenopError(f"cannot read {shown} ({exc.strerror}); nothing was staged or imported",
                         code="unreadable") from None


def stage_file(content: bytes, source_name: str, kind: StagedKind, home: Path) -> StagedFile:
    """Keep ``content`` under a new neutral reference, its original name in a private manifest."""
    root = private_dir(uploads_dir(home))
    sweep(root)
    stamp = local(now_utc()).strftime("%Y%m%dT%H%M%S")
    reference = f"{kind.value}-{stamp}-{uuid.uuid4().hex[:8]}"
    folder = root / reference
    folder.mkdir(mode=0o700)
    suffix = Path(source_name).suffix.lower()
    staged = StagedFile(reference, kind, folder / (reference + (suffix if suffix in _SUFFIXES else "")),
                        display_name(source_name))
    try:
        manifest = {"reference": reference, "kind": kind.value, "source_name": staged.source_name,
                    "file": staged.path.name, "sha256": hashlib.sha256(content).hexdigest(),
                    "bytes": len(content), "staged_at": local(now_utc()).isoformat(timespec="seconds")}
        write_atomically(folder / MANIFEST, json.dumps(manifest, ensure_ascii=True).encode("ascii"))
        write_atomically(staged.path, content)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return staged


def open_staged(reference: str, kind: StagedKind, home: Path) -> StagedFile:
    """The staged file a flow was given, or ``NotStaged`` saying what staff do instead."""
    if not is_reference(reference) or not reference.startswith(kind.value + "-"):
        raise NotStaged(f"this takes the reference of a staged {kind.value} file ({kind.value}-YYYYMMDDTHHMMSS-"
                        f"xxxxxxxx), not a path: run `{_HOW[kind]}` on the genop host; it stages the file "
                        "under a neutral name (so no file name reaches Prefect) and runs this flow")
    folder = uploads_dir(home) / reference
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="ascii"))
        staged = StagedFile(reference, kind, folder / manifest["file"], manifest["source_name"])
    except (OSError, ValueError, KeyError):
        raise NotStaged(f"{reference} is not staged (any more): a staged file is kept only while its run "
                        f"lasts; run `{_HOW[kind]}` again") from None
    if not staged.path.exists() or staged.path.is_dir():
        raise NotStaged(f"{reference} has no staged file; run `{_HOW[kind]}` again")
    return staged


def discard(staged: StagedFile) -> None:
    """The run is over: the copy and its manifest go (the store keeps what was recorded)."""
    shutil.rmtree(staged.path.parent, ignore_errors=True)


def sweep(root: Path, *, older_than_seconds: float = KEEP_SECONDS) -> None:
    cutoff = time.time() - older_than_seconds
    for folder in root.iterdir():
        if folder.is_dir() and _REFERENCE.match(folder.name) and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)
