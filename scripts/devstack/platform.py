"""The whole platform on one machine: backing servers, migrations, topics, services, gateway.

`up` is idempotent: what already runs is left alone, what is missing is installed and started.
`down` stops exactly what `up` started, by pid file. Data lives in STATE and survives both.
Services run supervised (devstack.supervise): one that crashes is restarted with back-off.
"""

import os
import pwd
import secrets
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

from devstack.config import INFRA, Profile
from devstack.install import apt_install
from devstack.paths import ROOT, STATE, ensure_dir
from devstack.process import ManagedProcess, run
from devstack.servers.base import Server
from devstack.servers.kafka import Kafka
from devstack.servers.mailsink import MailSink
from devstack.servers.mongo import Mongo
from devstack.servers.postgres import Postgres
from devstack.servers.redis import Redis
from devstack.waiting import http_ok, wait_until
from socialhub.contracts.topology import SERVICES, Service, Store, service
from socialhub.gateway import GatewayConfig, render

NGINX = "/usr/sbin/nginx"
SERVICE_START_TIMEOUT = 60.0


@dataclass
class Infra:
    postgres: Postgres
    redis: Redis
    kafka: Kafka
    mongo: Mongo
    mail: MailSink

    @classmethod
    def default(cls) -> "Infra":
        return cls(Postgres(), Redis(), Kafka(), Mongo(), MailSink())

    @property
    def servers(self) -> list[Server]:
        return [self.postgres, self.redis, self.kafka, self.mongo, self.mail]

    def install(self) -> None:
        for server in self.servers:
            server.install()

    def start(self) -> None:
        for server in self.servers:
            print(f"  starting {server.name} ...", flush=True)
            server.start()

    def stop(self) -> None:
        for server in reversed(self.servers):
            if server.stop():
                print(f"  stopped {server.name}")


class Platform:
    """One profile of SocialHub (dev or test) on top of the shared backing servers."""

    def __init__(self, profile: Profile, infra: Infra | None = None) -> None:
        self.profile = profile
        self.infra = infra or Infra.default()
        self.state = ensure_dir(STATE / profile.name)
        self.run_dir = self.state / "run"
        self.media_dir = self.state / "media"

    # -- configuration ---------------------------------------------------------------------

    @cached_property
    def jwt_secret(self) -> str:
        path = self.state / "jwt_secret"
        if not path.exists():
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()

    def service_env(self, spec: Service, port: int | None = None) -> dict[str, str]:
        """The environment a service instance runs with (its settings)."""
        env = {
            "SOCIALHUB_ENV": "development" if self.profile.name == "dev" else "test",
            "SERVICE_HOST": INFRA.host,
            "SERVICE_PORT": str(port or self.profile.port(spec)),
            "REDIS_URL": self.infra.redis.url(self.profile.redis_db),
            "KAFKA_BOOTSTRAP_SERVERS": self.infra.kafka.address,
            "KAFKA_TOPIC_PREFIX": self.profile.topic_prefix,
            "REDIS_CHANNEL_PREFIX": self.profile.topic_prefix,
            "JWT_SECRET": self.jwt_secret,
            "MONGO_URL": self.infra.mongo.address,
            "MONGO_DATABASE": self.profile.mongo_database,
            "SMTP_HOST": INFRA.host,
            "SMTP_PORT": str(self.infra.mail.port),
            "MEDIA_DIR": str(self.media_dir),
            "MEDIA_BASE_URL": f"http://{INFRA.host}:{self.profile.gateway_port}/media",
            "AUTH_SERVICE_URL": f"http://{INFRA.host}:{self.profile.port(service('auth'))}",
            "PYTHONUNBUFFERED": "1",
            **dict(self.profile.env),
        }
        if spec.uses(Store.POSTGRES):
            env["DATABASE_URL"] = self.infra.postgres.url(self.profile.database(spec))
        return env

    def service_process(self, spec: Service, port: int | None = None) -> ManagedProcess:
        port = port or self.profile.port(spec)
        return ManagedProcess(
            name=f"{spec.name}-{port}",
            argv=[sys.executable, "-m", spec.module, "serve"],
            run_dir=self.run_dir,
            env=self.service_env(spec, port),
            cwd=ROOT,
            supervised=True,
        )

    def gateway_config(self) -> GatewayConfig:
        return GatewayConfig(
            listen_port=self.profile.gateway_port,
            upstreams={s.name: [f"{INFRA.host}:{self.profile.port(s)}"] for s in SERVICES},
            media_root=str(ensure_dir(self.media_dir)),
            rate_limit_per_second=self.profile.gateway_rate[0],
            rate_limit_burst=self.profile.gateway_rate[1],
            prefix=str(ensure_dir(self.state / "nginx")),
            access_log=str(self.run_dir / "gateway-access.log"),
            error_log=str(self.run_dir / "gateway-error.log"),
            # nginx workers otherwise drop to `nobody`, who may not read a clone under /root
            worker_user=pwd.getpwuid(os.geteuid()).pw_name if os.geteuid() == 0 else None,
        )

    def gateway_process(self) -> ManagedProcess:
        prefix = self.state / "nginx"
        conf = prefix / "nginx.conf"
        return ManagedProcess(
            name="gateway",
            argv=[NGINX, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
            run_dir=self.run_dir,
            stop_signal=signal.SIGQUIT,  # nginx's graceful stop: finish in-flight requests
        )

    @property
    def gateway_url(self) -> str:
        return f"http://{INFRA.host}:{self.profile.gateway_port}"

    # -- lifecycle ---------------------------------------------------------------------------

    def install(self) -> None:
        self.infra.install()
        apt_install("nginx", "jq")  # jq: the README's curl examples use it

    def up(self) -> None:
        print(f"SocialHub ({self.profile.name}): installing what is missing ...", flush=True)
        self.install()
        print("backing servers:", flush=True)
        self.infra.start()
        self.prepare_data()
        print("services:", flush=True)
        self.start_services()
        self.start_gateway()

    def prepare_data(self) -> None:
        """Databases, migrations and Kafka topics; all idempotent.

        The migrations and the topic check run side by side (each is a Python start-up of a few
        seconds), so a `make up` that only has one process to bring back is done in seconds.
        """
        commands = []
        for spec in SERVICES:
            if spec.uses(Store.POSTGRES):
                self.infra.postgres.create_database(self.profile.database(spec))
            if spec.migrates:
                commands.append(
                    ([sys.executable, "-m", spec.module, "migrate"], self.service_env(spec))
                )
        commands.append(
            ([sys.executable, "-m", "socialhub.kit.events.topics"], self.service_env(SERVICES[0]))
        )
        with ThreadPoolExecutor(max_workers=len(commands)) as pool:
            done = [pool.submit(run, argv, env=env, cwd=ROOT) for argv, env in commands]
        for future in done:
            future.result()  # raises the first failure, with its output

    def start_services(self) -> None:
        processes = {spec: self.service_process(spec) for spec in SERVICES}
        for proc in processes.values():
            proc.start()
        for spec, proc in processes.items():
            wait_healthy(proc, f"http://{INFRA.host}:{self.profile.port(spec)}")
            print(f"  {spec.name:<14} http://{INFRA.host}:{self.profile.port(spec)}", flush=True)

    def start_gateway(self) -> None:
        config = self.gateway_config()
        conf = ensure_dir(self.state / "nginx") / "nginx.conf"
        rendered = render(config)
        proc = self.gateway_process()
        changed = not conf.exists() or conf.read_text() != rendered
        conf.write_text(rendered)
        run([NGINX, "-t", "-q", "-p", str(conf.parent), "-c", str(conf)])
        if changed and proc.running():
            proc.stop()
        proc.start()
        wait_until(
            lambda: http_ok(f"{self.gateway_url}/health"),
            timeout=15,
            what="gateway",
            on_timeout=lambda: proc.tail(),
        )

    def down(self, *, infra: bool = True) -> None:
        for proc in [self.gateway_process(), *self.service_processes()]:
            if proc.stop():
                print(f"  stopped {proc.name}")
        if infra:
            self.infra.stop()

    def service_processes(self) -> list[ManagedProcess]:
        """Every service process this profile started, including extra instances."""
        known = {p.name: p for p in (self.service_process(s) for s in SERVICES)}
        for pidfile in sorted(self.run_dir.glob("*.pid")):
            name = pidfile.stem
            if name not in known and name != "gateway":
                known[name] = ManagedProcess(name=name, argv=[], run_dir=self.run_dir)
        return list(known.values())

    def status(self) -> list[dict[str, str]]:
        """One row per process; supervised ones say how often they were restarted and why."""
        rows = [
            {
                "name": s.name,
                "state": "running" if s.running() else "stopped",
                "restarts": "",
                "last_exit": "",
                "address": s.address,
                "log": str(s.process().logfile),
            }
            for s in self.infra.servers
        ]
        for proc in [*self.service_processes(), self.gateway_process()]:
            supervision = proc.supervision()
            state = "running" if proc.running() else "stopped"
            if supervision and supervision.state == "waiting":
                state = "restarting"  # exited; the supervisor starts it again after its back-off
            last_exit = ""
            if supervision and supervision.last_exit:
                last_exit = f"{supervision.last_exit} at {supervision.last_exit_at}"
            rows.append(
                {
                    "name": proc.name,
                    "state": state,
                    "restarts": str(supervision.restarts) if supervision else "",
                    "last_exit": last_exit,
                    "address": self._address_of(proc.name),
                    "log": str(proc.logfile),
                }
            )
        return rows

    def _address_of(self, name: str) -> str:
        if name == "gateway":
            return self.gateway_url
        port = name.rsplit("-", 1)[-1]
        return f"http://{INFRA.host}:{port}" if port.isdigit() else ""


def wait_healthy(proc: ManagedProcess, base_url: str) -> None:
    wait_until(
        lambda: http_ok(f"{base_url}/health"),
        timeout=SERVICE_START_TIMEOUT,
        what=proc.name,
        on_timeout=lambda: f"{proc.logfile}:\n{proc.tail()}",
    )
