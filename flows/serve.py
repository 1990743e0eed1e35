"""Serve genop's deployments, as declared in prefect.yaml, from this process.

`make run` starts this next to the Prefect server; scheduled and UI-triggered runs
execute here.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml
from prefect import Flow, serve
from prefect.events import DeploymentTriggerTypes
from prefect.schedules import Cron, Interval, Schedule
from pydantic import TypeAdapter

from genop.files import use_private_umask
from genop.settings import PROJECT_ROOT

PREFECT_YAML = PROJECT_ROOT / "prefect.yaml"


def load_flow(entrypoint: str) -> Flow[Any, Any]:
    """``flows/intake.py:plan_intake`` → the flow object."""
    file_part, _, attribute = entrypoint.partition(":")
    module = ".".join(Path(file_part).with_suffix("").parts)
    return getattr(importlib.import_module(module), attribute)


def _schedule(spec: dict[str, Any]) -> Schedule:
    timezone = spec.get("timezone", "Europe/Copenhagen")
    if "cron" in spec:
        return Cron(spec["cron"], timezone=timezone)
    return Interval(spec["interval"], timezone=timezone)


_TRIGGER = TypeAdapter(DeploymentTriggerTypes)


def _triggers(deployment: str, specs: list[dict[str, Any]]) -> list[Any]:
    """A deployment's ``triggers:`` as `prefect deploy` reads them: served, each becomes an
    automation owned by the deployment (re-created on every start)."""
    return [_TRIGGER.validate_python({"name": f"{deployment}__automation_{i}", **spec})
            for i, spec in enumerate(specs, start=1)]


def declared_deployments(path: Path = PREFECT_YAML) -> list[dict[str, Any]]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))["deployments"]


def build_deployments(path: Path = PREFECT_YAML) -> list[Any]:
    deployments = []
    for spec in declared_deployments(path):
        flow = load_flow(spec["entrypoint"])
        deployments.append(flow.to_deployment(
            name=spec["name"],
            description=spec.get("description"),
            tags=spec.get("tags"),
            parameters=spec.get("parameters") or {},
            schedules=[_schedule(s) for s in spec.get("schedules", [])],
            triggers=_triggers(spec["name"], spec.get("triggers") or []),
            paused=False,
        ))
    return deployments


def main() -> None:
    use_private_umask()
    # pause_on_shutdown=False: stopping `make run` must not leave schedules paused for the next start
    serve(*build_deployments(), print_starting_message=False, pause_on_shutdown=False)


if __name__ == "__main__":
    main()
