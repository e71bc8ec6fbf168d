"""`make cluster`: SocialHub on the real one-node Kubernetes of this machine, by its operator.

One command brings up what `make up` runs as processes, the way a cluster admin runs it: the
backing servers (shared with `make up`, their data kept), the control plane and the real node,
the images built here and loaded into the node, the CRD and the operator (a pod from its image,
`manifests/base` with a local overlay), the backing Secrets and one SocialHub of the small
profile. It waits for `Ready` and prints the gateway's URL on 127.0.0.1 (a NodePort).
`make cluster-down` stops the node and the control plane; data stays, as with `make down`.

Backing servers run outside the cluster on purpose: they are the ones `make up` and the tests
already run and measure, pods reach them through the node's address
(`devstack.servers.network`), and the Secrets the CRD expects hand them over exactly as a
managed database would be handed over in production.
"""

import argparse
import base64
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from devstack import images as container_images
from devstack import kube_build
from devstack.config import INFRA, NODE_NETWORK, PROFILES, Profile
from devstack.paths import ROOT, STATE, ensure_dir
from devstack.platform import Infra
from devstack.servers import containerd
from devstack.servers.kube import KUBECONFIG, SIMULATED_NAMESPACE_PREFIX, KubeCluster, kubectl
from devstack.servers.node import real_node
from socialhub.contracts.topology import SERVICES, Store

Progress = Callable[[str], None]
OPERATOR_NAMESPACE = "socialhub-system"
OPERATOR_IMAGE = "ghcr.io/socialhub/socialhub-operator"  # as named in manifests/base
SMALL_SAMPLE = ROOT / "manifests" / "samples" / "socialhub-small.yaml"
MEDIA_ROOT = STATE / "cluster-media"
MEDIA_CLAIM = "socialhub-media"
# Namespaces the in-cluster operator leaves alone: the simulated-node tests run their own.
OPERATOR_EXCLUDES = f"!{SIMULATED_NAMESPACE_PREFIX}*"


@dataclass(frozen=True)
class Target:
    """One SocialHub on the node: where it runs, the data it owns, the port it answers on."""

    profile: Profile
    namespace: str
    name: str = "socialhub"

    @property
    def node_port(self) -> int:
        return self.profile.gateway_port

    @property
    def gateway_url(self) -> str:
        return f"http://{INFRA.host}:{self.node_port}"


CLUSTER = Target(PROFILES["cluster"], namespace="socialhub")


def _print(line: str) -> None:
    print(line, flush=True)


def apply(*documents: dict[str, Any]) -> None:
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=socialhub-devstack",
        "-f",
        "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(documents)}),
    )


def start_node(built: container_images.Images, progress: Progress = _print) -> KubeCluster:
    """Control plane and node, with the images loaded before the kubelet starts any pod."""
    runtime = KubeCluster(node=[containerd.Containerd(built.pause)])
    runtime.start(progress)
    progress("  loading the images into the node ...")
    container_images.load(built, containerd.SOCKET)
    cluster = KubeCluster(node=real_node(built.pause))
    cluster.start(progress)
    return cluster


def install_operator(built: container_images.Images) -> None:
    """`manifests/base` with this machine's operator image, as a pod: what an admin applies."""
    overlay = ensure_dir(STATE / "cluster" / "operator")
    name, tag = built.operator.rsplit(":", 1)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(ROOT / "manifests" / "base", overlay)],
        "images": [{"name": OPERATOR_IMAGE, "newName": name, "newTag": tag}],
        "patches": [
            {
                "target": {"kind": "Deployment", "name": "socialhub-operator"},
                "patch": json.dumps(
                    [
                        # Built here, never pulled.
                        {
                            "op": "add",
                            "path": "/spec/template/spec/containers/0/imagePullPolicy",
                            "value": "Never",
                        },
                        {
                            "op": "add",
                            "path": "/spec/template/spec/containers/0/args/-",
                            "value": f"--namespace={OPERATOR_EXCLUDES}",
                        },
                    ]
                ),
            }
        ],
    }
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=socialhub-devstack",
        "-k",
        str(overlay),
    )
    kubectl(
        "-n",
        OPERATOR_NAMESPACE,
        "rollout",
        "status",
        "deployment/socialhub-operator",
        "--timeout=180s",
    )


def _secret(namespace: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()},
    }


def backing_secrets(target: Target, infra: Infra) -> list[dict[str, Any]]:
    """The four Secrets the CRD expects, pointing pods at the node's address."""
    node, profile = NODE_NETWORK.node_ip, target.profile
    postgres = {
        spec.name: infra.postgres.url(profile.database(spec), host=node)
        for spec in SERVICES
        if spec.uses(Store.POSTGRES)
    }
    return [
        _secret(target.namespace, "socialhub-postgres", postgres),
        _secret(
            target.namespace, "socialhub-mongo", {"url": f"mongodb://{node}:{INFRA.mongo_port}/"}
        ),
        _secret(
            target.namespace,
            "socialhub-redis",
            {"url": f"redis://{node}:{INFRA.redis_port}/{profile.redis_db}"},
        ),
        _secret(
            target.namespace,
            "socialhub-kafka",
            {"bootstrapServers": f"{node}:{INFRA.kafka_node_port}"},
        ),
    ]


def prepare_backing(target: Target, infra: Infra, progress: Progress = _print) -> None:
    """The backing servers running, the profile's databases created (the operator migrates)."""
    infra.install()
    infra.start()
    infra.postgres.reload()  # picks up the pod network's access line if it was just added
    for spec in SERVICES:
        if spec.uses(Store.POSTGRES):
            infra.postgres.create_database(target.profile.database(spec))
    progress(f"  backing servers ready for pods at {NODE_NETWORK.node_ip}")


def media_volume(target: Target) -> list[dict[str, Any]]:
    """Local media on a hostPath volume: one node, so posts and the gateway share it (RWX)."""
    path = ensure_dir(MEDIA_ROOT / target.namespace)
    path.chmod(0o777)  # the pods run as uid 10001
    pv_name = f"{target.namespace}-media"
    return [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": pv_name},
            "spec": {
                "capacity": {"storage": "5Gi"},
                "accessModes": ["ReadWriteMany"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "claimRef": {"namespace": target.namespace, "name": MEDIA_CLAIM},
                "hostPath": {"path": str(path), "type": "Directory"},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": MEDIA_CLAIM, "namespace": target.namespace},
            "spec": {
                "accessModes": ["ReadWriteMany"],
                "storageClassName": "",
                "volumeName": pv_name,
                "resources": {"requests": {"storage": "5Gi"}},
            },
        },
    ]


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`overrides` laid over `base`, nested mappings merged key by key (lists replaced)."""
    out = dict(base)
    for key, value in overrides.items():
        out[key] = (
            merged(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else value
        )
    return out


def release_media_volume(target: Target) -> None:
    """A volume whose claim was deleted (with its namespace) stays Released and binds no new
    claim; it is only a name for the directory, which keeps the files: make it anew."""
    name = media_volume(target)[0]["metadata"]["name"]
    phase = kubectl("get", "pv", name, "--ignore-not-found", "-o", "jsonpath={.status.phase}")
    if phase.strip() == "Released":
        kubectl("delete", "pv", name, "--wait=true")


def socialhub(
    target: Target, built: container_images.Images, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The small-profile SocialHub with this machine's images and the profile's backing data;
    `overrides` (a partial spec) last."""
    document: dict[str, Any] = yaml.safe_load(SMALL_SAMPLE.read_text())
    document["metadata"] = {"name": target.name, "namespace": target.namespace}
    service_image, service_tag = built.services.rsplit(":", 1)
    profile = target.profile
    rate, burst = profile.gateway_rate
    profile_env = [{"name": name, "value": value} for name, value in profile.env]
    local = {
        "image": service_image,
        "version": service_tag,
        "imagePullPolicy": "Never",
        "gateway": {
            "image": built.gateway,
            "serviceType": "NodePort",
            "nodePort": target.node_port,
            "nginxVersion": container_images.GATEWAY_NGINX_VERSION,
            "rateLimitPerSecond": rate,
            "rateLimitBurst": burst,
        },
        "media": {"backend": "local", "claimName": MEDIA_CLAIM},
        # The SMTP sink of `make up` (plain SMTP, no STARTTLS).
        "mail": {"host": NODE_NETWORK.node_ip, "port": INFRA.smtp_port, "starttls": False},
        "backing": {
            "kafka": {"topicPrefix": profile.topic_prefix},
            "mongo": {"database": profile.mongo_database},
        },
        "components": {spec.name: {"env": profile_env} for spec in SERVICES} if profile_env else {},
    }
    document["spec"] = merged(merged(document["spec"], local), overrides or {})
    return document


def deploy(
    target: Target,
    built: container_images.Images,
    infra: Infra,
    overrides: dict[str, Any] | None = None,
) -> None:
    """Namespace, Secrets, media volume and the SocialHub: `kubectl apply` of one resource."""
    apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": target.namespace}})
    release_media_volume(target)
    apply(*backing_secrets(target, infra), *media_volume(target))
    apply(socialhub(target, built, overrides))


def wait_ready(target: Target, timeout: float = 600.0, progress: Progress = _print) -> None:
    """Until the SocialHub's Ready condition is True, printing its status as it changes."""
    deadline, last = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        status = json.loads(
            kubectl("-n", target.namespace, "get", "socialhub", target.name, "-o", "json")
        ).get("status", {})
        conditions = {c["type"]: c for c in status.get("conditions", [])}
        summary = "; ".join(
            f"{kind}={c['status']} {c.get('reason', '')}" for kind, c in sorted(conditions.items())
        )
        if summary != last:
            progress(f"  {summary or 'waiting for the operator'}")
            last = summary
        if conditions.get("Ready", {}).get("status") == "True":
            return
        time.sleep(2)
    raise TimeoutError(
        f"SocialHub {target.namespace}/{target.name} not Ready after "
        f"{timeout:.0f}s; last status: {last}"
    )


def up(target: Target = CLUSTER, progress: Progress = _print) -> None:
    started = time.monotonic()
    progress("images (built here, cached by content):")
    built = container_images.build_all(progress=progress)
    progress("backing servers:")
    infra = Infra.default()
    prepare_backing(target, infra, progress)
    progress("control plane and node:")
    start_node(built, progress)
    progress("operator:")
    install_operator(built)
    progress(f"SocialHub {target.namespace}/{target.name}:")
    deploy(target, built, infra)
    wait_ready(target, progress=progress)
    progress(
        f"\nSocialHub is Ready on the cluster ({time.monotonic() - started:.0f}s). "
        f"Gateway: {target.gateway_url}\n"
        f"  try:     curl {target.gateway_url}/health\n"
        f"  kubectl: {kubectl_hint()} -n {target.namespace} get socialhub,pods\n"
        "  stop:    make cluster-down"
    )


def kubectl_hint() -> str:
    return f"{kube_build.binary('kubectl')} --kubeconfig={KUBECONFIG}"


def down(progress: Progress = _print) -> None:
    """Node and control plane stop (pods with them); backing servers and all data stay."""
    KubeCluster(node=real_node()).stop(progress)


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.cluster", description=__doc__.splitlines()[0]
    )
    parser.add_argument("command", choices=("up", "down"))
    if parser.parse_args().command == "up":
        up()
    else:
        down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
