"""CLI commands for disputes (issue 12, agreement §10): ``genop dispute …``.

The free-text reason and notes are stored by the command itself in genop's store; anything
that runs a flow gives Prefect the dispute's number only.
"""

from __future__ import annotations

from genop_cli.main import GenopGroup, cli


@cli.group("dispute", cls=GenopGroup)
def dispute() -> None:
    """Disputes between the parties (agreement §10): open, mediation, resolved or to court; redos."""
