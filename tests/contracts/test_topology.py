"""The topology every part wires the services from agrees with what the services read."""

import pytest

from socialhub.contracts import topology
from socialhub.contracts.topology import ALL_ENV, SERVICES, Service, Store, env_names
from socialhub_operator import render
from socialhub_operator.render import ClusterFacts
from tests.contracts.settings_fields import read_env, settings_class
from tests.operator.test_env_contract import FULL, containers
from tests.operator.test_render import instance


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_every_setting_a_service_is_given_is_one_it_reads(service: Service) -> None:
    unread = sorted(env_names(service) - set(read_env(settings_class(service.name))))
    assert not unread, f"{service.name} has no setting for {unread}"


def test_every_named_setting_is_given_to_some_service() -> None:
    given = frozenset().union(*(env_names(service) for service in SERVICES))
    assert sorted(ALL_ENV - given) == []


def test_ports_and_names_are_unique() -> None:
    assert len({s.name for s in SERVICES}) == len(SERVICES)
    assert len({s.port for s in SERVICES}) == len(SERVICES)
    routes = [s.protected_route for s in SERVICES if s.protected_route]
    assert len(set(routes)) == len(routes)


def test_only_postgresql_services_migrate() -> None:
    assert {s.name for s in SERVICES if s.migrates} == {
        s.name for s in SERVICES if s.uses(Store.POSTGRES)
    }
    assert set(render.MIGRATING) == {s.name for s in SERVICES if s.migrates}


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_the_operator_renders_only_the_settings_the_topology_gives(service: Service) -> None:
    hub = instance(**FULL)
    for container in containers(hub, service.name):
        rendered = {item["name"] for item in container["env"]}
        assert rendered <= env_names(service), sorted(rendered - env_names(service))


def test_an_unknown_service_name_is_refused() -> None:
    with pytest.raises(KeyError):
        topology.service("search")
    assert topology.service("chat").port == 5004
    assert render.plan(instance(), ClusterFacts()).bounds.keys() >= set(topology.SERVICE_NAMES)
