"""Plans for tests, built from PLAN_FORMAT.md's example with a few fields changed."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

EXAMPLE: dict[str, Any] = {
    "plan_id": "GOP-AMH-2026-000123",
    "issued_at": "2026-11-02T14:10:00+01:00",
    "discharge_date": "2026-11-02",
    "hospital": {"name": "Amager Hospital", "department": "Ortopædkirurgisk afd."},
    "citizen": {
        "cpr": "010145-1234",
        "name": "Karen Jensen",
        "address": {"street": "Englandsvej 12", "postcode": "2770", "city": "Kastrup"},
        "municipality_code": "185",
    },
    "level": "basal",
    "diagnoses": [{"system": "ICD-10", "code": "DS720", "text": "Brud på lårbenshals"}],
    "diagnosis_group": "hip_fracture",
    "urgent": False,
    "start_by": "2026-11-09",
    "transport_first_session": True,
    "function_before": "Selvhjulpen, gik ture dagligt.",
    "function_at_discharge": "Går med rollator, behov for hjælp til trapper.",
    "rehab_need": "Gangfunktion, balance og styrke i højre underekstremitet.",
}

CHILD_CPR = "010115-4321"  # 7th digit 4, year 15 → born 2015


def plan_dict(**changes: Any) -> dict[str, Any]:
    """``citizen__municipality_code="155"`` sets a nested field; ``None`` removes a field."""
    document = copy.deepcopy(EXAMPLE)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        target = document
        for key in parents:
            target = target[key]
        if value is None:
            target.pop(leaf, None)
        else:
            target[leaf] = value
    return document


def plan_bytes(**changes: Any) -> bytes:
    return json.dumps(plan_dict(**changes), ensure_ascii=False).encode("utf-8")


def make_plan(**changes: Any):  # noqa: ANN201 - genop.plans.Plan
    from genop.plans import parse_plan

    return parse_plan(plan_bytes(**changes))


def write_plan(folder: Path, name: str, **changes: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(plan_bytes(**changes))
    return path
