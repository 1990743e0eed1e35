"""Fixtures for the fault tests: demo certificates and a real SMTP sink."""

from tests.integration.conftest import certified, sink  # noqa: F401 - shared fixtures
