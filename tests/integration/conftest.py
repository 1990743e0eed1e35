"""Fixtures for integration tests: demo certificates and a real SMTP sink."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from genop.mail.sink import SinkController, start_sink
from genop_cli.main import create_demo_certificates


@pytest.fixture
def certified(runtime):  # noqa: ANN001, ANN201 - genop.runtime.Runtime
    """The runtime with a DEMO CA and party certificates in its certificates folder."""
    create_demo_certificates(runtime)
    return runtime


@pytest.fixture
def sink(tmp_path) -> Iterator[SinkController]:  # noqa: ANN001
    controller = start_sink(tmp_path / "mail")
    yield controller
    controller.stop()
