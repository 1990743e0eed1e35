"""Giving many consents through `genop consent`, N at a time — shared by the load test
(tests/flows/test_consent_load.py) and its benchmark (bench/consent_load_bench.py).

Each of N worker processes imports genop once and runs `genop consent` through Click's
runner for its share of the cases, one after the other; so N invocations run at once,
each with its own captured output (a traceback would show there).

    python bench/consent_load.py --by NAME --date YYYY-MM-DD --wait S GEN-… GEN-…   (one worker)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Invocation:
    case_number: str
    exit_code: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def printed_traceback(self) -> bool:
        return "Traceback" in self.stdout or "Traceback" in self.stderr


def give_consents(case_numbers: list[str], *, concurrency: int = 10, by: str, decided_on: str,
                  wait_seconds: float = 120) -> list[Invocation]:
    """`genop consent NUMBER --given` for every case, ``concurrency`` at a time, in list order."""
    shares = [case_numbers[i::concurrency] for i in range(concurrency)]
    workers = [subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--by", by, "--date", decided_on,
         "--wait", str(wait_seconds), *share],
        cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for share in shares if share]
    results: list[Invocation] = []
    retries = {"status_503": 0, "other_status": 0, "exceptions": 0}
    for worker in workers:
        out, err = worker.communicate()
        if worker.returncode != 0:
            raise RuntimeError(f"consent worker exited {worker.returncode}: {err[-2000:]}")
        for line in out.splitlines():
            if line.startswith('{"retries"'):
                for key, value in json.loads(line)["retries"].items():
                    retries[key] += value
            elif line.startswith("{"):
                results.append(Invocation(**json.loads(line)))
    RETRIES_SEEN.clear()
    RETRIES_SEEN.update(retries)
    return results


RETRIES_SEEN: dict[str, int] = {}
"""Retries Prefect's client made in the workers during the last give_consents (503s and others)."""


class _RetryCounter:
    """Counts the retries Prefect's client logs (at debug level) instead of failing."""

    def __init__(self) -> None:
        import logging

        self.counts = {"status_503": 0, "other_status": 0, "exceptions": 0}
        counter = self

        class Handler(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                text = record.getMessage()
                if "retryable status code 503" in text:
                    counter.counts["status_503"] += 1
                elif "retryable status code" in text:
                    counter.counts["other_status"] += 1
                elif "retryable exception" in text:
                    counter.counts["exceptions"] += 1

        client_logger = logging.getLogger("prefect.client")
        client_logger.setLevel(logging.DEBUG)
        client_logger.addHandler(Handler(logging.DEBUG))


def _worker(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--by", required=True)
    parser.add_argument("--date", required=True)
    parser.add_argument("--wait", required=True)
    parser.add_argument("cases", nargs="+")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from click.testing import CliRunner

    from genop_cli.main import cli

    import prefect  # noqa: F401 - Prefect configures its logging on import; count after that

    retries = _RetryCounter()
    for number in args.cases:
        started = time.monotonic()
        result = CliRunner().invoke(cli, ["consent", number, "--given", "--by", args.by, "--date",
                                          args.date, "--wait", args.wait, "--json"])
        stderr = result.stderr
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            import traceback

            stderr += "".join(traceback.format_exception(result.exception))
        print(json.dumps({"case_number": number, "exit_code": result.exit_code, "stdout": result.stdout,
                          "stderr": stderr, "seconds": time.monotonic() - started}), flush=True)
    print(json.dumps({"retries": retries.counts}), flush=True)


if __name__ == "__main__":
    _worker(sys.argv[1:])
