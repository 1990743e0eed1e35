"""Installation settings: where genop keeps its data and how it reaches its services.

Everything comes from ``GENOP_*`` environment variables (or a ``.env`` file in the
working directory). The agreement's own figures are not settings: they live in
``config/agreement.yaml``.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from genop.errors import SettingsError
from genop.files import private_dir
from genop.inbox import Folders

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GENOP_", env_file=".env", extra="ignore")

    home: Path = Field(default=PROJECT_ROOT / ".genop", description="Data folder")
    database_url: str | None = Field(default=None, description="SQLAlchemy URL of the case store")
    agreement_file: Path = Field(default=PROJECT_ROOT / "config" / "agreement.yaml")
    inbox: Path | None = Field(default=None, description="Folder polled for new plan files")
    prefect_port: int = Field(default=4200, ge=1, le=65535)
    prefect_host: str = "127.0.0.1"
    prefect_database_url: str | None = Field(
        default=None, description="PostgreSQL URL for Prefect's own database (default: SQLite, one desk)")
    inbox_poll_seconds: int = Field(default=60, ge=5)

    # mail (agreement §4: encrypted mail with digital signature)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=8025, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_ca_file: Path | None = None
    smtp_retry_delays: list[int] = Field(
        default=[10, 60, 300], description="seconds between SMTP attempts (one retry per entry)")
    certs_dir: Path | None = Field(default=None, description="PEM files: ca.crt, <party>.crt/.key")
    mail_from: str | None = Field(default=None, description="Tårnby's sending address (default: config)")
    order_recipient: str | None = Field(default=None, description="Copenhagen's address (default: config)")
    consent_wait_days: int = Field(default=90, ge=1, description="how long a consent wait stays open")

    @cached_property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def store_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home_dir / 'genop.sqlite'}"

    @property
    def inbox_dir(self) -> Path:
        return (self.inbox or self.home_dir / "inbox").expanduser().resolve()

    @property
    def quarantine_dir(self) -> Path:
        return self.home_dir / "quarantine"

    @property
    def processed_dir(self) -> Path:
        return self.home_dir / "processed"

    @property
    def staging_dir(self) -> Path:
        return self.home_dir / "staging"

    @property
    def certificates_dir(self) -> Path:
        return (self.certs_dir or self.home_dir / "certs").expanduser().resolve()

    @property
    def mail_dir(self) -> Path:
        return self.home_dir / "mail"

    @property
    def letters_dir(self) -> Path:
        return self.home_dir / "letters"

    @property
    def error_log(self) -> Path:
        """genop's private log of unexpected errors (see ``genop.errorlog``)."""
        return self.home_dir / "logs" / "errors.log"

    @property
    def prefect_home(self) -> Path:
        return self.home_dir / "prefect"

    @property
    def prefect_api_url(self) -> str:
        return f"http://{self.prefect_host}:{self.prefect_port}/api"

    @property
    def folders(self) -> Folders:
        return Folders(inbox=self.inbox_dir, staging=self.staging_dir,
                       processed=self.processed_dir, quarantine=self.quarantine_dir)

    def ensure_dirs(self) -> None:
        """GENOP_HOME and its folders, 0700 (tightened if they exist looser): they hold plans,
        letters and the case store, all personal data."""
        private_dir(self.home_dir)
        self.folders.ensure()


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        key = "GENOP_" + "_".join(str(p) for p in first["loc"]).upper()
        raise SettingsError(f"{key}: {first['msg']}") from exc
