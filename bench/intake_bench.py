"""Intake throughput: plans per second through the intake service and through one flow run.

    .venv/bin/python bench/intake_bench.py [--plans N] [--no-flow] [--no-postgres]

Prints figures; asserts nothing (speed is measured here, never in tests).
National volume for scale: 100,000 plans a year ≈ 400 per working day.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.postgres import throwaway_database
from tests.factories import plan_dict  # noqa: E402

AS_OF = date(2026, 11, 3)
GROUPS = ["hip_fracture", "stroke", "knee_replacement", "geriatric", "back_not_operated", None]


def write_plans(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        group = GROUPS[n % len(GROUPS)]
        changes = {"plan_id": f"GOP-BENCH-{n:07d}", "diagnosis_group": group}
        if group is None:
            changes["diagnoses"] = [{"system": "ICD-10", "code": "DI639"}]
        if n % 50 == 0:
            changes["rehab_need"] = ""
        (folder / f"plan-{n:07d}.json").write_text(json.dumps(plan_dict(**changes)), encoding="utf-8")


def bench_service(label: str, url: str, plans: int, work: Path) -> None:
    from genop.inbox import stage_copy
    from genop.runtime import build_runtime
    from genop.settings import Settings

    runtime = build_runtime(Settings(home=work / label, database_url=url))
    source = work / f"src-{label}"
    write_plans(source, plans)
    batch = stage_copy(source, runtime.settings.folders)
    started = time.perf_counter()
    outcomes = runtime.intake.take_in(sorted(batch.iterdir()), AS_OF)
    elapsed = time.perf_counter() - started
    batch2 = stage_copy(source, runtime.settings.folders)
    started2 = time.perf_counter()
    runtime.intake.take_in(sorted(batch2.iterdir()), AS_OF)
    elapsed2 = time.perf_counter() - started2
    print(f"service/{label:<10} {len(outcomes):>6} plans  new: {elapsed:6.2f} s "
          f"({len(outcomes) / elapsed:7.0f} plans/s)   re-sent unchanged: {elapsed2:6.2f} s "
          f"({plans / elapsed2:7.0f} plans/s)")


def bench_flow(plans: int, work: Path) -> None:
    from prefect.testing.utilities import prefect_test_harness

    os.environ["GENOP_HOME"] = str(work / "flow")
    from flows.intake import plan_intake
    from genop.inbox import stage_copy
    from genop.runtime import current_runtime

    source = work / "src-flow"
    write_plans(source, plans)
    batch = stage_copy(source, current_runtime().settings.folders)  # as `genop plan submit` does
    with prefect_test_harness(server_startup_timeout=120):
        started = time.perf_counter()
        result = plan_intake(path=str(batch), as_of=AS_OF)
        elapsed = time.perf_counter() - started
    print(f"flow/sqlite      {result['files']:>6} plans  one flow run: {elapsed:6.2f} s "
          f"({result['files'] / elapsed:7.0f} plans/s)  vs ~{plans * 1.1:,.0f} s as a run per plan")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plans", type=int, default=2000)
    parser.add_argument("--no-flow", action="store_true")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    with tempfile.TemporaryDirectory(prefix="genop-bench-") as tmp:
        work = Path(tmp)
        os.environ["PREFECT_HOME"] = str(work / "prefect")
        bench_service("sqlite", f"sqlite:///{work / 'bench.sqlite'}", args.plans, work)
        if not args.no_postgres:
            with throwaway_database() as url:
                if url:
                    bench_service("postgresql", url, args.plans, work)
        if not args.no_flow:
            bench_flow(args.plans, work)


if __name__ == "__main__":
    main()
