"""Consent under load: 2,000 plans in one `plan submit`, 200 `genop consent` calls 10 at a time.

    .venv/bin/python bench/consent_load_bench.py [--plans N] [--consents N]

Runs tests/flows/test_consent_load.py (a served genop on a throw-away Prefect server with
PostgreSQL as its database, mail sink on loopback) and prints its figures: time to record
the consents, time until all are forwarded, retries Prefect's client made (503s and others).
Asserts nothing itself beyond what the test asserts (exactly-once, no traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--plans", type=int, default=2000)
    parser.add_argument("--consents", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        report = Path(work) / "figures.json"
        env = {**os.environ, "CONSENT_LOAD_PLANS": str(args.plans), "CONSENT_LOAD_CONSENTS": str(args.consents),
               "CONSENT_LOAD_REPORT": str(report)}
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                              "tests/flows/test_consent_load.py"], cwd=ROOT, env=env)
        if not report.exists():
            print("the load test did not finish; no figures", file=sys.stderr)
            return run.returncode or 1
        figures = json.loads(report.read_text(encoding="utf-8"))
    width = max(len(key) for key in figures)
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    return run.returncode


if __name__ == "__main__":
    sys.exit(main())
