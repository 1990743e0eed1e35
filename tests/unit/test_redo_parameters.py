"""`genop dispute redo` gives a redo deployment only the parameters its action takes (issue 12)."""

from __future__ import annotations

from datetime import date

import pytest

from genop.disputes import DEPLOYMENTS, Action
from genop.disputes.records import DisputeError
from genop_cli.redo import deployment_of, redo_parameters

NONE = {"notice": None, "visit": None, "completed_on": None, "tariff_group": None, "correction": None}


def test_a_resend_gets_the_fixed_parameters_only():
    assert redo_parameters("TV-2026-0001", Action.RESEND_ORDER, by="A", case=" gen-2026-000001",
                           as_of=date(2026, 11, 20), **NONE) == {
        "dispute": "TV-2026-0001", "by": "A", "case": "GEN-2026-000001", "as_of": "2026-11-20"}
    assert deployment_of(Action.RESEND_ORDER) == "dispute-resend-order/dispute-resend-order"
    assert all(deployment_of(a) == f"{DEPLOYMENTS[a]}/{DEPLOYMENTS[a]}" for a in Action)


def test_correct_settlement_options_pass_through_and_others_are_refused():
    options = {**NONE, "correction": "change-completion", "completed_on": date(2026, 11, 28), "visit": 7}
    assert redo_parameters("TV-2026-0001", Action.CORRECT_SETTLEMENT, by="A", case=None, as_of=None, **options) == {
        "dispute": "TV-2026-0001", "by": "A", "correction": "change-completion", "completed_on": "2026-11-28",
        "visit": 7}
    with pytest.raises(DisputeError, match="--visit is not an option of resend-order"):
        redo_parameters("TV-2026-0001", Action.RESEND_ORDER, by="A", case=None, as_of=None, **{**NONE, "visit": 7})
    with pytest.raises(DisputeError, match="resend-notice needs --notice"):
        redo_parameters("TV-2026-0001", Action.RESEND_NOTICE, by="A", case=None, as_of=None, **NONE)
    with pytest.raises(DisputeError, match="not a dispute number"):
        redo_parameters("GEN-2026-000001", Action.RESEND_ORDER, by="A", case=None, as_of=None, **NONE)
