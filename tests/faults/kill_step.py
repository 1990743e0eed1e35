"""Run one step of genop in this process and kill it (SIGKILL) at a chosen point.

    python -m tests.faults.kill_step forward|refusal|transport|forward-flow POINT CASE_NUMBER

The step runs as genop runs it (the tasks' functions, or the whole flow against the
Prefect server in PREFECT_API_URL for ``forward-flow``), against the store, mail server
and folders in the GENOP_* environment. At POINT, the function named in KILL_POINTS is
replaced by ``os.kill(os.getpid(), SIGKILL)``: nothing after it runs, nothing is cleaned
up — what a power cut or ``kill -9`` leaves.

    claimed   the outbox row is claimed, nothing sent yet
    accepted  the receiver took the message, the row is not marked sent
    sent      the row is marked sent, the case does not say so yet
"""

from __future__ import annotations

import importlib
import os
import signal
import sys

KILL_POINTS = {
    "forward": {"claimed": "genop.mail.outbox:send_message", "accepted": "genop.mail.outbox:_mark_sent",
                "sent": "tasks.forwarding:mark_forwarded"},
    "refusal": {"claimed": "genop.mail.outbox:write_atomically", "accepted": "genop.mail.outbox:_mark_sent",
                "sent": "tasks.forwarding:letter_sent"},
}
KILL_POINTS["forward-flow"] = KILL_POINTS["forward"]
KILL_POINTS["transport"] = {"claimed": "genop.mail.outbox:send_message", "accepted": "genop.mail.outbox:_mark_sent"}


def _die(*_args: object, **_kwargs: object) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main(step: str, point: str, case_number: str) -> None:
    module, _, name = KILL_POINTS[step][point].partition(":")
    setattr(importlib.import_module(module), name, _die)
    if step == "forward-flow":
        from flows.forward import case_forward

        case_forward(case_number)
        return
    from prefect.logging import disable_run_logger

    from tasks.forwarding import prepare_order_task, record_forwarded, send_mail, write_refusal_letter
    from tasks.training import plan_transport_task

    with disable_run_logger():
        if step == "forward":
            outbox_id = prepare_order_task.fn(case_number)
            send_mail.fn(outbox_id)
            record_forwarded.fn(case_number, outbox_id)
        elif step == "transport":  # what case-offer does once the first session is recorded
            for outbox_id in plan_transport_task.fn(case_number):
                send_mail.fn(outbox_id)
        else:
            write_refusal_letter.fn(case_number)


if __name__ == "__main__":
    main(*sys.argv[1:4])
    sys.exit(3)  # the kill point was not reached: the caller's test fails on this exit code
