"""Domain exceptions. Messages are written for a caseworker, not a programmer.

They are raised in the domain and turned into exit codes / UI messages at the edge
(CLI, flows). Each plan problem has a stable ``code`` so that quarantine records and
tests can tell the problems apart without parsing prose.
"""

from __future__ import annotations


class GenopError(Exception):
    """Base of every error genop reports to a person."""

    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else self.code


class ConfigError(GenopError):
    """The agreement configuration (config/agreement.yaml) is invalid; the message names the key."""

    code = "config_error"


class SettingsError(GenopError):
    """A GENOP_* setting is invalid."""

    code = "settings_error"


class PlanError(GenopError):
    """A plan document violates the input contract (PLAN_FORMAT.md); the file is quarantined.

    Its ``code`` is one of ``PLAN_ERROR_CODES``; the message names the field and the problem
    and never quotes a CPR number or the citizen's name.
    """

    code = "invalid_plan"


PLAN_ERROR_CODES: tuple[str, ...] = (
    # the file as a whole
    "empty_file", "too_large", "unreadable", "unsupported_encoding", "not_a_plan",
    "malformed_json", "malformed_xml", "too_deeply_nested", "invalid_number", "duplicate_key",
    # text and fields
    "invalid_text", "invalid_characters", "field_too_long", "missing_field", "invalid_field",
    "cpr_shaped_plan_id",
    # the rules of the contract
    "invalid_cpr", "implausible_age", "invalid_municipality_code", "unknown_level",
    "unknown_diagnosis_group", "discharge_in_future", "start_by_before_discharge",
)
"""Every code a quarantined plan can carry (README "Intake", docs/PLAN_XML.md)."""


class InvalidCPR(PlanError):
    """A CPR number that cannot be a CPR number (format or birth date)."""

    code = "invalid_cpr"


class CaseNotFound(GenopError):
    code = "case_not_found"


class CertificateError(GenopError):
    """A certificate or key for encrypted, signed mail is missing or unusable (agreement §4).

    Mail is never sent in plain text instead. Known codes: ``certificate_missing``,
    ``certificate_unreadable``, ``certificate_expired``, ``certificate_not_yet_valid``,
    ``certificate_wrong_purpose``, ``certificate_address_mismatch``,
    ``certificate_untrusted``, ``certificate_unsupported_key``, ``key_missing``,
    ``key_unreadable``, ``key_mismatch``, ``no_recipients``, ``demo_pki_incomplete``.
    """

    code = "certificate_error"


class TemporaryDeliveryError(GenopError):
    """A delivery (mail, file hand-off) failed in a way that may pass on a later attempt: the
    outbox row goes back to pending and is tried again."""

    code = "delivery_temporary"


class SmtpTemporaryError(TemporaryDeliveryError):
    """Sending a mail failed in a way that may pass on a later attempt (4xx, network, timeout)."""

    code = "smtp_temporary"


class SmtpPermanentError(GenopError):
    """The mail server refused the mail for good (5xx) or cannot be trusted; a person must act.

    Known codes: ``smtp_permanent``, ``smtp_tls_untrusted``, ``smtp_message_id_mismatch``,
    ``smtp_invalid_address``.
    """

    code = "smtp_permanent"
