"""The one interface every backing server implements."""

from abc import ABC, abstractmethod

from devstack.process import ManagedProcess
from devstack.waiting import wait_until


class Server(ABC):
    """A real server run on 127.0.0.1 from the project's own files.

    `install` fetches or builds what is missing into the cache (idempotent, fast when cached);
    `prepare` does first-run initialisation of the state directory; `start` is safe to repeat.
    """

    name: str
    start_timeout: float = 60.0

    def install(self) -> None:
        """Make the server's binaries available; a no-op when they already are."""

    def prepare(self) -> None:
        """Initialise on-disk state on first start; a no-op afterwards."""

    @abstractmethod
    def process(self) -> ManagedProcess: ...

    @abstractmethod
    def ready(self) -> bool: ...

    @property
    @abstractmethod
    def address(self) -> str: ...

    def start(self) -> None:
        self.install()
        self.prepare()
        proc = self.process()
        proc.start()
        wait_until(
            self.ready,
            timeout=self.start_timeout,
            what=self.name,
            on_timeout=lambda: f"last log lines ({proc.logfile}):\n{proc.tail()}",
        )

    def stop(self) -> bool:
        return self.process().stop()

    def running(self) -> bool:
        return self.process().running() and self.ready()
