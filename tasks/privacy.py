"""Keeping personal data out of Prefect when something unexpected goes wrong.

Prefect stores a failed task's exception text as its state message and logs its
traceback. A domain error's message is written for that (case numbers, codes), but an
unexpected exception can quote its input — a pydantic error quotes the CPR it rejected,
a database error its parameters. Such exceptions are written, with their traceback, to
genop's own log ($GENOP_HOME/logs/errors.log, see ``genop.errorlog``) and replaced by a
reference.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from genop.errorlog import record_private_error
from genop.errors import GenopError
from genop.settings import load_settings

P = ParamSpec("P")
R = TypeVar("R")


def private_errors(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except GenopError:
            raise
        except Exception as exc:  # noqa: BLE001 - re-raised as a reference, details kept locally
            reference = record_private_error(load_settings().error_log, fn.__name__, exc)
            raise GenopError(f"unexpected {type(exc).__name__} in {fn.__name__} (reference {reference}; "
                             f"details in genop's errors.log)", code="internal_error") from None
    return wrapper
