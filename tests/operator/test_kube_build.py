"""The control-plane build recipe (pure parts) and what the built API server says it is."""

import json
import ssl
import urllib.request
from pathlib import Path

import pytest

from devstack import kube_build
from devstack.servers.kube import PKI, api_url

GO_MOD = """module k8s.io/kubernetes

require (
\tgithub.com/google/cel-go v0.23.2
\tk8s.io/api v0.0.0
\tk8s.io/apimachinery v0.0.0
\tk8s.io/kube-openapi v0.0.0-20250318190949-c8a335a9a2ff
)

replace (
\tk8s.io/api => ./staging/src/k8s.io/api
)
"""


def test_staging_modules_are_the_ones_pinned_at_v0_0_0() -> None:
    assert kube_build.staging_modules(GO_MOD) == ["k8s.io/api", "k8s.io/apimachinery"]


def test_staging_modules_follow_the_kubernetes_version() -> None:
    assert kube_build.staging_version("v1.33.13") == "v0.33.13"
    with pytest.raises(ValueError, match="unexpected Kubernetes version"):
        kube_build.staging_version("v2.0.0")


def test_version_is_stamped_into_both_version_packages() -> None:
    flags = kube_build.version_ldflags("v1.33.13")
    assert "-X k8s.io/component-base/version.gitVersion=v1.33.13" in flags
    assert "-X k8s.io/client-go/pkg/version.gitMinor=33" in flags


@pytest.mark.kube
def test_the_api_server_reports_the_built_version(kubeconfig: Path) -> None:
    context = ssl.create_default_context(cafile=str(PKI / "ca.crt"))
    with urllib.request.urlopen(f"{api_url()}/version", context=context, timeout=5) as answer:
        version = json.load(answer)
    assert version["gitVersion"] == kube_build.KUBE_VERSION
    assert version["gitTreeState"] == "clean"
