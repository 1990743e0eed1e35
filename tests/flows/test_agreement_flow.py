"""The daily agreement-term run (agreement §12) against the test Prefect server: its artifact."""

from __future__ import annotations

from datetime import date

import pytest

pytestmark = pytest.mark.usefixtures("prefect_server")


def _term_artifacts() -> list:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
    from prefect.client.schemas.sorting import ArtifactSort

    with get_client(sync_client=True) as client:
        return client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["agreement-term"])),
                                     sort=ArtifactSort.CREATED_DESC)


def test_agreement_term_run_leaves_the_term_status_as_a_markdown_artifact(tmp_path, monkeypatch):
    from flows.agreement import agreement_term

    monkeypatch.setenv("GENOP_HOME", str(tmp_path / "home"))
    before = len(_term_artifacts())

    inside = agreement_term(as_of=date(2008, 5, 1))
    assert (inside["in_term"], inside["runs_until"], inside["artifact_updated"]) == (True, "2009-12-31", True)
    latest = _term_artifacts()[0]
    assert (latest.key, latest.type) == ("agreement-term", "markdown")
    assert "**In term** until **2009-12-31** (agreement §12)." in latest.data
    assert "| 2007-01-01 | 2009-12-31 | agreement §12" in latest.data

    again = agreement_term(as_of=date(2008, 5, 2))  # nothing changed: no new version
    assert again["artifact_updated"] is False
    assert len(_term_artifacts()) == before + 1

    outside = agreement_term(as_of=date(2026, 12, 2))
    assert (outside["in_term"], outside["artifact_updated"]) == (False, True)
    latest = _term_artifacts()[0]
    assert "**Outside any recorded term of the agreement** (agreement §12)." in latest.data
    assert "The last recorded term ended 2009-12-31." in latest.data and "`terms.periods`" in latest.data
    assert "2027-12-31 at the earliest" in latest.data
    assert len(_term_artifacts()) == before + 2
