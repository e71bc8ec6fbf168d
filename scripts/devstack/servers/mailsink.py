"""The development SMTP sink (devstack.mailsink) as a managed server."""

import sys
from email import message_from_bytes
from email.message import Message
from pathlib import Path

from devstack.config import INFRA
from devstack.paths import INFRA_STATE, ensure_dir
from devstack.process import ManagedProcess
from devstack.servers.base import Server
from devstack.waiting import port_open


class MailSink(Server):
    name = "mailsink"

    def __init__(self, port: int = INFRA.smtp_port) -> None:
        self.port = port
        self.directory = INFRA_STATE / "mail"

    @property
    def address(self) -> str:
        return f"smtp://{INFRA.host}:{self.port}"

    def prepare(self) -> None:
        ensure_dir(self.directory)

    def process(self) -> ManagedProcess:
        return ManagedProcess(
            name=self.name,
            argv=[
                sys.executable,
                "-m",
                "devstack.mailsink",
                "--host",
                INFRA.host,
                "--port",
                str(self.port),
                "--dir",
                str(self.directory),
            ],
            run_dir=INFRA_STATE / "run",
        )

    def ready(self) -> bool:
        return port_open(self.port)

    def messages(self) -> list[Message]:
        """Every delivered message, oldest first."""
        return [
            message_from_bytes(path.read_bytes())
            for path in sorted(self.directory.glob("*.eml"), key=_delivery_order)
        ]


def _delivery_order(path: Path) -> int:
    return int(path.name.split("-", 1)[0])
