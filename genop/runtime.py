"""What a process needs to do genop's work: settings, the agreement, the case store.

Built once per process (the CLI, a served flow, a test) from the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from genop.config import Agreement, load_agreement
from genop.intake import Intake
from genop.settings import Settings, load_settings
from genop.store.db import Store, open_store


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    agreement: Agreement
    store: Store

    @property
    def intake(self) -> Intake:
        return Intake(self.store, self.agreement, self.settings.folders, error_log=self.settings.error_log)


def build_runtime(settings: Settings | None = None) -> Runtime:
    settings = settings or load_settings()
    settings.ensure_dirs()
    agreement = load_agreement(settings.agreement_file)
    return Runtime(settings=settings, agreement=agreement, store=open_store(settings.store_url))


@lru_cache(maxsize=1)
def current_runtime() -> Runtime:
    """The process-wide runtime (reset with ``current_runtime.cache_clear()`` in tests)."""
    return build_runtime()
