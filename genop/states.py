"""The states a case passes through (AGREEMENT.md "Case lifecycle")."""

from __future__ import annotations

from enum import StrEnum


class CaseState(StrEnum):
    # end of intake (lifecycle 1–2)
    AWAITING_CONSENT = "awaiting_consent"
    ROUTED_ELSEWHERE = "routed_elsewhere"
    REJECTED = "rejected"
    INCOMPLETE = "incomplete"
    # consent and forwarding (lifecycle 3–4)
    CONSENT_REFUSED = "consent_refused"
    FORWARDING = "forwarding"
    FORWARD_FAILED = "forward_failed"
    FORWARDED = "forwarded"
    # training and completion (lifecycle 5–7)
    IN_TRAINING = "in_training"
    COMPLETED = "completed"


INTAKE_STATES = frozenset({CaseState.AWAITING_CONSENT, CaseState.ROUTED_ELSEWHERE,
                           CaseState.REJECTED, CaseState.INCOMPLETE})
