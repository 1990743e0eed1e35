"""The local mail sink for ``make run`` and the tests: an SMTP server that keeps every mail.

It behaves like the receiving municipalities are required to: it deduplicates on
Message-ID, so a mail that genop sends again after a crash (same Message-ID, see
``genop.mail.smtp``) is acknowledged and dropped. Each mail is stored once, byte for byte
as received, as ``<YYYYmmddTHHMMSS>-<sha256(Message-ID)[:16]>.eml`` (time in UTC). The
hash in the file name is the duplicate check, so it survives a restart of the sink.
One sink process per folder: the lock only guards sessions inside one process.

Usage: ``python -m genop.mail.sink --folder var/mail --host 127.0.0.1 --port 8025``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import signal
import ssl
import threading
from email.parser import BytesHeaderParser
from pathlib import Path
from types import FrameType
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from genop.clock import now_utc
from genop.files import private_dir, use_private_umask, write_atomically

_SERVER_NAME = "genop-mailsink"


class MailSink:
    """aiosmtpd handler that stores each distinct Message-ID once."""

    def __init__(self, folder: Path) -> None:
        self.folder = private_dir(Path(folder))
        self._lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content
        if content is None:
            raw = envelope.content
            content = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else (raw or b"")
        message_id = _message_id(content)
        if message_id is None:
            return "550 5.6.0 Message-ID required"
        key = hashlib.sha256(message_id.encode("utf-8", "surrogateescape")).hexdigest()[:16]
        with self._lock:
            if any(self.folder.glob(f"*-{key}.eml")):
                return f"250 OK duplicate of <{message_id}> ignored"
            name = f"{now_utc():%Y%m%dT%H%M%S}-{key}.eml"
            write_atomically(self.folder / name, content)
        return f"250 OK stored as {name}"

    def stored(self) -> list[Path]:
        """The stored mails, oldest first."""
        return sorted(self.folder.glob("*.eml"))


class SinkController(Controller):
    """aiosmtpd's threaded Controller, able to listen on port 0.

    aiosmtpd 1.4.6 binds port 0 fine but then checks readiness by connecting to port 0
    itself and fails; here ``self.port`` is set to the chosen port right after binding,
    so after ``start()`` ``controller.port`` is the real port.
    """

    def _create_server(self) -> Any:
        return self._bind()

    async def _bind(self) -> asyncio.AbstractServer:
        server = cast(asyncio.Server, await super()._create_server())  # aiosmtpd binds with loop.create_server
        self.port = server.sockets[0].getsockname()[1]
        return server


def start_sink(
    folder: Path,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    tls_context: ssl.SSLContext | None = None,
    require_starttls: bool = False,
    implicit_tls: bool = False,
) -> SinkController:
    """Start a sink on a background thread; stop it with ``controller.stop()``.

    ``port=0`` picks a free port: read it from ``controller.port`` (and the address from
    ``controller.hostname``). ``tls_context`` (a server context with certificate and
    key) offers STARTTLS, or with ``implicit_tls=True`` makes the listener speak TLS
    from the first byte (SMTPS). The handler is ``controller.handler`` (a MailSink).
    """
    if (require_starttls or implicit_tls) and tls_context is None:
        raise ValueError("require_starttls and implicit_tls need a tls_context")
    smtp_options: dict[str, Any] = {"server_hostname": _SERVER_NAME}
    if implicit_tls:
        smtp_options["ssl_context"] = tls_context
    elif tls_context is not None:
        smtp_options.update(tls_context=tls_context, require_starttls=require_starttls)
    controller = SinkController(MailSink(folder), hostname=host, port=port, **smtp_options)
    controller.start()
    return controller


def run_sink(folder: Path, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM (``make run`` starts this as a child process)."""
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        controller = start_sink(folder, host, port)
        try:
            print(f"mail sink listening on {controller.hostname}:{controller.port}, "
                  f"storing in {folder}", flush=True)
            while not stop.wait(0.5):
                pass
        finally:
            controller.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _message_id(content: bytes) -> str | None:
    header = BytesHeaderParser().parsebytes(content).get("Message-ID")
    if header is None:
        return None
    bare = " ".join(str(header).split()).removeprefix("<").removesuffix(">").strip()
    return bare or None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m genop.mail.sink",
                                     description="The local mail sink (stores every mail as an .eml file).")
    parser.add_argument("--folder", type=Path, required=True, help="where the .eml files go")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    args = parser.parse_args(argv)
    use_private_umask()
    run_sink(args.folder, args.host, args.port)


if __name__ == "__main__":
    main()
