"""devstack's configuration files (`devstack/data/`): each loads and renders to what its tool
reads. No server: the files are only rendered here."""

import tomllib

import pytest
import yaml

from devstack import datafiles, kube_build
from devstack.servers import containerd, kafka, mongo, node
from devstack.servers.kube import kwok


def test_the_fail_stages_select_the_fail_annotation_for_jobs_and_other_pods() -> None:
    stages = list(yaml.safe_load_all(kwok.fail_stages()))
    assert [stage["metadata"]["name"] for stage in stages] == [
        "socialhub-job-pod-fail",
        "socialhub-pod-crashloop",
    ]
    for stage in stages:
        [annotation, *_] = stage["spec"]["selector"]["matchExpressions"]
        assert annotation["key"] == f'.metadata.annotations["{kwok.FAIL_ANNOTATION}"]'
        assert "{{ $now := Now }}" in stage["spec"]["next"]["statusTemplate"]


def test_containerd_config_is_toml_with_the_pause_image_and_our_paths() -> None:
    config = tomllib.loads(containerd.containerd_config("localhost/socialhub-pause:ab12"))
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["sandbox_image"] == "localhost/socialhub-pause:ab12"
    assert config["grpc"]["address"] == str(containerd.SOCKET)
    assert cri["cni"]["conf_dir"] == str(containerd.ROOT / "net.d")


def test_the_corefile_uses_only_the_plugins_coredns_is_built_with() -> None:
    corefile = node.CoreDns().corefile()
    assert "${" not in corefile
    plugins = {
        line.split()[0]
        for line in corefile.splitlines()
        if line.startswith("    ") and not line.startswith("     ") and line.strip() != "}"
    }
    assert plugins == set(kube_build.COREDNS_PLUGINS)


def test_plain_files_load_and_templates_refuse_missing_or_extra_values() -> None:
    assert "rootLogger.level = INFO" in datafiles.text("kafka/log4j2.properties")
    assert datafiles.render("images/gateway.Containerfile", base="b:1").startswith("FROM b:1\n")
    with pytest.raises(KeyError):
        datafiles.render("images/gateway.Containerfile")
    with pytest.raises(KeyError):
        datafiles.render("images/gateway.Containerfile", base="b:1", extra="x")


def test_files_other_tools_read_are_on_disk() -> None:
    """Maven reads the pom and git applies the patches by path; their contents key the caches."""
    assert kafka.POM.is_file()
    assert kafka.kafka_version().count(".") == 2
    assert [patch.suffix for patch in mongo.PATCHES] == [".patch", ".patch"]
