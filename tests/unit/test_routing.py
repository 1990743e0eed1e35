"""Tårnby's choice per case (agreement §4) and the capacity figure (agreement §3.1): the rules."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from genop.config import load_agreement
from genop.routing import Capacity, RoutingError, at_own_centre, reason_text, why_not_to_copenhagen
from genop.store.models import Case


@pytest.fixture(scope="module")
def agreement():
    return load_agreement()


def _case(**changes) -> Case:
    fields = {"case_number": "GEN-2026-000007", "state": "routed_elsewhere", "route": "lojtegaardsvej",
              "diagnosis_group": "geriatric", "forwarded_at": None, "first_session_at": None}
    return Case(**{**fields, **changes})


def test_a_geriatric_case_routed_to_lojtegaardsvej_can_be_sent_to_copenhagen(agreement):
    assert why_not_to_copenhagen(_case(), agreement) is None
    assert why_not_to_copenhagen(_case(state="incomplete"), agreement) is None  # waiting for a full plan


@pytest.mark.parametrize(("changes", "words"), [
    ({"diagnosis_group": "hip_fracture", "route": "copenhagen", "state": "awaiting_consent"},
     "its route follows the agreement"),
    ({"route": "region"}, "only an open case routed to Løjtegårdsvej"),
    ({"state": "completed"}, "is completed"),
    ({"state": "rejected", "route": "rejected"}, "only an open case"),
    ({"forwarded_at": datetime(2026, 11, 4, 9, tzinfo=UTC)}, "sent back to Løjtegårdsvej by Copenhagen"),
    ({"first_session_at": datetime(2026, 11, 6, 9, tzinfo=UTC)}, "first session offered at Løjtegårdsvej"),
])
def test_refusals_name_the_case_and_say_why(agreement, changes, words):
    refusal = why_not_to_copenhagen(_case(**changes), agreement)
    assert refusal is not None and "GEN-2026-000007" in refusal and words in refusal
    assert "geriatric" not in refusal  # the message may reach Prefect: no diagnosis in it


def test_the_reason_is_a_key_of_the_closed_list_in_config(agreement):
    assert reason_text(agreement, "citizens_wish") == "Borgerens ønske"
    with pytest.raises(RoutingError) as error:
        reason_text(agreement, "because")
    assert error.value.code == "unknown_reason" and "capacity" in error.value.message


def test_only_a_case_routed_to_lojtegaardsvej_is_at_tarnbys_own_centre():
    assert at_own_centre(_case())
    assert not at_own_centre(_case(route="region"))
    assert not at_own_centre(_case(state="incomplete"))
    assert not at_own_centre(_case(route="copenhagen", state="forwarded"))


def test_capacity_is_the_share_sent_to_copenhagen_against_the_expected_share():
    figure = Capacity(2026, cases=30, to_copenhagen=4, expected_share=Decimal("0.10"))
    assert figure.share == Decimal("0.133")
    assert figure.as_dict() == {"year": 2026, "cases": 30, "to_copenhagen": 4, "share": "0.133",
                                "expected_share": "0.10"}
    assert "sent to Copenhagen 4 (13.3%); expected share 10%" in figure.line()
    assert "not a quota" in figure.line()


def test_capacity_without_cases_has_no_share():
    figure = Capacity(2027, cases=0, to_copenhagen=0, expected_share=Decimal("0.10"))
    assert figure.share is None and figure.as_dict()["share"] is None and "no share yet" in figure.line()
