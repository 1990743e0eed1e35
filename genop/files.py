"""Writing a file whole: readers (a print service, an access point, a mail client) never
see half of one, and two writers never share a temporary name."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_atomically(path: Path, content: bytes, *, staging: Path | None = None) -> None:
    """Write ``content`` to a unique temporary file in ``staging`` (default: beside ``path``;
    it must be on the same filesystem), flush it to disk, then rename it onto ``path``."""
    folder = staging or path.parent
    folder.mkdir(parents=True, exist_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
