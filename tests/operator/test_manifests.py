"""What ships around the operator: the kustomize base, Argo CD's health check, the Dockerfile and
the Terraform module (checked by terraform's own parser; `init` needs provider downloads)."""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack import kube_build
from socialhub_operator import render
from socialhub_operator.spec import SocialHubSpec
from tests.operator.conftest import argo_health

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"


def kustomize(path: Path) -> list[dict[str, Any]]:
    kubectl = kube_build.binary("kubectl")
    built = subprocess.run(
        [str(kubectl), "kustomize", str(path)], capture_output=True, text=True, check=True
    ).stdout
    return [doc for doc in yaml.safe_load_all(built) if doc]


@pytest.mark.kube  # kustomize is kubectl's, built with the control plane
def test_operator_base_runs_one_replica_with_recreate() -> None:
    documents = {(d["kind"], d["metadata"]["name"]): d for d in kustomize(ROOT / "manifests/base")}
    assert ("CustomResourceDefinition", "socialhubs.socialhub.dev") in documents
    deployment = documents[("Deployment", "socialhub-operator")]
    assert deployment["metadata"]["namespace"] == "socialhub-system"
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/socialhub/socialhub-operator:0.1.0"
    binding = documents[("ClusterRoleBinding", "socialhub-operator")]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "socialhub-operator", "namespace": "socialhub-system"}
    ]


@pytest.mark.kube
def test_operator_rbac_is_least_privilege() -> None:
    role = next(d for d in kustomize(ROOT / "manifests/base") if d["kind"] == "ClusterRole")
    grants = {
        (group, resource): set(rule["verbs"])
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert all("*" not in verbs for verbs in grants.values())
    assert not any("*" in key for key in grants)
    assert grants[("socialhub.dev", "socialhubs")] == {"get", "list", "watch"}
    assert grants[("socialhub.dev", "socialhubs/status")] == {"get", "patch"}
    assert grants[("", "secrets")] == {"get", "list", "watch", "create"}
    assert grants[("apiextensions.k8s.io", "customresourcedefinitions")] == {"get", "list", "watch"}
    assert grants[("", "namespaces")] == {"get", "list", "watch"}  # namespace globs
    assert grants[("", "pods")] == {"get", "list", "watch"}  # failing pods are named
    # Nothing beyond what the operator writes or watches.
    assert {resource for _, resource in grants} == {
        "socialhubs",
        "socialhubs/status",
        "services",
        "configmaps",
        "secrets",
        "deployments",
        "jobs",
        "horizontalpodautoscalers",
        "poddisruptionbudgets",
        "kafkatopics",
        "customresourcedefinitions",
        "events",
        "namespaces",
        "pods",
    }


SAMPLES = sorted((ROOT / "manifests/samples").glob("*.yaml"))


@pytest.mark.parametrize("path", SAMPLES, ids=[path.name for path in SAMPLES])
def test_samples_are_valid_socialhubs(path: Path) -> None:
    document = yaml.safe_load(path.read_text())
    assert document["apiVersion"] == "socialhub.dev/v1alpha1"
    assert document["kind"] == "SocialHub"
    SocialHubSpec.model_validate(document["spec"])


def _plan(sample: str) -> render.Plan:
    document = yaml.safe_load((ROOT / "manifests/samples" / sample).read_text())
    hub = render.Instance("socialhub", "socialhub", SocialHubSpec.model_validate(document["spec"]))
    return render.plan(hub, render.ClusterFacts(gate_on_migrations=False))


def _millicores(quantity: str) -> int:
    return int(quantity[:-1]) if quantity.endswith("m") else int(float(quantity) * 1000)


def test_the_small_profile_fits_a_two_core_machine() -> None:
    """One pod of each at a tenth of the cores at most; chat and posts may still scale out."""
    plan = _plan("socialhub-small.yaml")
    assert {bounds.minimum for bounds in plan.bounds.values()} == {1}
    assert (plan.bounds["chat"].maximum, plan.bounds["posts"].maximum) == (2, 3)
    requested = [
        container["resources"]["requests"]
        for manifest in plan.apply
        if manifest["kind"] == "Deployment"
        for container in manifest["spec"]["template"]["spec"]["containers"]
    ]
    assert sum(_millicores(r["cpu"]) for r in requested) <= 200


def test_the_production_sample_keeps_its_figures() -> None:
    bounds = _plan("socialhub.yaml").bounds
    assert (bounds["auth"].minimum, bounds["auth"].maximum) == (72, 216)
    assert (bounds["chat"].minimum, bounds["chat"].maximum) == (10, 30)
    assert not any(b.capped for name, b in bounds.items() if name != "posts")
    assert bounds["posts"].capped  # at one replica: the sample names no media claim


def test_argocd_applications_point_at_this_repository_paths() -> None:
    for name, path in (
        ("operator-application.yaml", "manifests/base"),
        ("socialhub-application.yaml", "manifests/samples"),
    ):
        application = yaml.safe_load((ROOT / "manifests/argocd" / name).read_text())
        assert application["kind"] == "Application"
        assert application["spec"]["source"]["path"] == path
        assert (ROOT / path).is_dir()


def hub(generation: int, observed: int | None, **conditions: str) -> dict[str, Any]:
    status: dict[str, Any] = {
        "conditions": [
            {"type": kind, "status": value, "message": f"{kind} is {value}"}
            for kind, value in conditions.items()
        ]
    }
    if observed is not None:
        status["observedGeneration"] = observed
    return {"metadata": {"generation": generation}, "status": status}


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"metadata": {"generation": 1}}, "Progressing"),
        (hub(2, 1, Ready="True", Progressing="False", Degraded="False"), "Progressing"),
        (hub(2, 2, Ready="True", Progressing="False", Degraded="False"), "Healthy"),
        (hub(2, 2, Ready="False", Progressing="False", Degraded="True"), "Degraded"),
        (hub(3, 3, Ready="False", Progressing="True", Degraded="False"), "Progressing"),
    ],
)
def test_argocd_health_check(lua: str, tmp_path: Path, obj: dict[str, Any], expected: str) -> None:
    assert argo_health(lua, obj, tmp_path) == expected


def test_dockerfile_pins_its_bases_and_both_images_drop_root() -> None:
    text = (ROOT / "Dockerfile").read_text()
    # Base images are build arguments (`make image` passes local ones): check their defaults.
    args = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, flags=re.MULTILINE))
    stages = [
        (re.sub(r"\$\{(\w+)\}", lambda match: args[match[1]], base), name)
        for base, name in re.findall(r"^FROM (\S+) AS (\S+)$", text, flags=re.MULTILINE)
    ]
    assert len(stages) == len(re.findall(r"^FROM ", text, flags=re.MULTILINE))
    names = {name for _, name in stages}
    for base, _ in stages:
        if base not in names:  # an image from a registry, not an earlier stage
            assert re.search(r":\d+(\.\d+)+", base), f"{base} is not pinned to a version"
    images = {name: base for base, name in stages if name in {"services", "operator"}}
    assert images == {"services": "runtime", "operator": "runtime"}
    runtime = text.split(" AS runtime", 1)[1].split("\nFROM ", 1)[0]
    # The group is also the media volume's fsGroup.
    gid = render.SERVICES_GID
    assert re.search(rf"^USER {gid}:{gid}$", runtime, flags=re.MULTILINE)
    assert "uv sync --frozen --no-dev" in text


def terraform(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("terraform")
    assert binary, "terraform is needed to check the module (it is on the project's machines)"
    return subprocess.run(
        [binary, *args], cwd=TERRAFORM, capture_output=True, text=True, check=False
    )


def test_terraform_is_formatted() -> None:
    result = terraform("fmt", "-check", "-recursive", "-diff")
    assert result.returncode == 0, result.stdout + result.stderr


def blocks(kind: str) -> set[str]:
    """`resource "a" "b"` / `variable "a"` headers of the module, as terraform fmt writes them."""
    text = "\n".join(path.read_text() for path in sorted(TERRAFORM.glob("*.tf")))
    return {
        " ".join(label for label in labels if label)
        for labels in re.findall(rf'^{kind} "([^"]+)"(?: "([^"]+)")? {{', text, flags=re.MULTILINE)
    }


def test_terraform_provisions_the_cluster_stores_and_platform() -> None:
    resources = blocks("resource")
    for expected in (
        "aws_eks_cluster this",
        "aws_eks_node_group default",
        "aws_db_instance postgres",
        "aws_elasticache_replication_group redis",
        "aws_msk_cluster kafka",
        "aws_docdb_cluster mongo",
        "kustomization_resource operator_p0",
        "kustomization_resource socialhub",
        "kustomization_resource backing_secret",
    ):
        assert expected in resources
    platform = (TERRAFORM / "platform.tf").read_text()
    sample = yaml.safe_load((ROOT / "manifests/samples/socialhub.yaml").read_text())
    for store, backing in sample["spec"]["backing"].items():
        assert f'secretName = "{backing["secretName"]}"' in platform, store
    assert 'apiVersion = "socialhub.dev/v1alpha1"' in platform
    assert "../manifests/base" in platform


def test_terraform_variables_are_documented_and_typed() -> None:
    text = (TERRAFORM / "variables.tf").read_text()
    for block in re.split(r'^variable "', text, flags=re.MULTILINE)[1:]:
        name = block.split('"', 1)[0]
        assert "description = " in block, name
        assert "type        = " in block or "type = " in block, name


def test_terraform_readme_says_init_needs_provider_downloads() -> None:
    readme = (TERRAFORM / "README.md").read_text()
    assert "terraform init" in readme
    assert "provider" in readme
