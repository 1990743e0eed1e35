"""genop's private error log ($GENOP_HOME/logs/errors.log, mode 0600).

An unexpected exception can quote its input — a pydantic error the CPR it rejected, a
database error its parameters, an encoding error the text it could not encode. Its
details are written here, with the traceback, and only a reference goes anywhere else
(a quarantine reason, a Prefect state message).
"""

from __future__ import annotations

import traceback
import uuid
from datetime import UTC, datetime
from pathlib import Path

from genop.files import append_private, private_dir


def record_private_error(log: Path, where: str, exc: BaseException) -> str:
    """Write ``exc`` with its traceback to ``log``; returns the reference to quote instead."""
    reference = uuid.uuid4().hex[:10]
    private_dir(log.parent)
    append_private(log, f"--- {datetime.now(UTC).isoformat()} {where} reference {reference}\n"
                        + "".join(traceback.format_exception(exc)))
    return reference
