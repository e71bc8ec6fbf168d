"""The environment the operator renders is the one the services read.

Each service reads its settings class (pydantic-settings, no prefix, unknown variables ignored),
so a renamed setting would leave the operator's variable silently unread and the pod on a
default that only fits one machine. Here every rendered name must be a field, every field
without a default must be rendered, and the rendered values must parse.
"""

from typing import Any

import pytest

from socialhub.kit.settings import KafkaSettings
from socialhub_operator import render
from socialhub_operator.render import ClusterFacts, Instance
from socialhub_operator.spec import SERVICES
from tests.contracts.settings_fields import read_env, settings_class
from tests.operator.test_render import by_kind, instance

# Every optional part of the spec switched on: all the variables the operator can render.
FULL: dict[str, Any] = {
    "mail": {"host": "smtp.example.com", "secretName": "smtp"},
    "media": {"claimName": "media"},
    "ai": {"geminiSecretName": "gemini"},
    "gateway": {"publicUrl": "https://hub.example.com"},
}
VARIANTS: dict[str, dict[str, Any]] = {
    "full": FULL,
    "cloudinary": FULL | {"media": {"backend": "cloudinary", "cloudinarySecretName": "c"}},
    "test-environment": {"environment": "test"},
    "defaults": {},
}


def containers(hub: Instance, service: str) -> list[dict[str, Any]]:
    """The service's Deployment container and, for PostgreSQL services, its migration's."""
    plan = render.plan(hub, ClusterFacts(gate_on_migrations=False))
    names = [
        hub.child(service),
        *([plan.migration_jobs[service]] if service in plan.migration_jobs else []),
    ]
    children = by_kind(plan.apply, "Deployment") | by_kind(plan.apply, "Job")
    return [children[name]["spec"]["template"]["spec"]["containers"][0] for name in names]


def value(item: dict[str, Any]) -> str:
    """The value, or a stand-in for a Secret's that any setting accepts (a strong JWT too)."""
    if "value" in item:
        return str(item["value"])
    ref = item["valueFrom"]["secretKeyRef"]
    return f"secret-{ref['name']}-{ref['key']}-{'x' * 32}"


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("service", SERVICES)
def test_rendered_env_is_what_the_service_reads(
    service: str, variant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cls = settings_class(service)
    fields = read_env(cls)
    hub = instance(**VARIANTS[variant])
    for container in containers(hub, service):
        env = {item["name"]: value(item) for item in container["env"]}
        unread = sorted(set(env) - set(fields))
        assert not unread, f"{service} has no setting for {unread}"
        required = {name for name, field in fields.items() if cls.model_fields[field].is_required()}
        assert required <= set(env), f"{service} needs {sorted(required - set(env))}"
        for name in fields:
            monkeypatch.delenv(name, raising=False)
        for name, text in env.items():
            monkeypatch.setenv(name, text)
        cls()  # the values parse and pass the service's own checks


@pytest.mark.parametrize("service", SERVICES)
def test_no_default_that_only_fits_one_machine_is_left(service: str) -> None:
    """Defaults naming this machine (databases on 127.0.0.1, localhost URLs) are all set."""
    cls = settings_class(service)
    local = {
        name
        for name, field in read_env(cls).items()
        if "127.0.0.1" in str(cls.model_fields[field].default)
    }
    assert local, "the check looks for local defaults"
    hub = instance(**FULL)
    for container in containers(hub, service):
        assert local <= {item["name"] for item in container["env"]}, container["name"]


def test_the_topic_job_renders_only_kafka_settings() -> None:
    plan = render.plan(instance(), ClusterFacts())
    assert plan.topic_job
    job = by_kind(plan.apply, "Job")[plan.topic_job]
    names = {item["name"] for item in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert names <= set(read_env(KafkaSettings))
    assert "KAFKA_BOOTSTRAP_SERVERS" in names
