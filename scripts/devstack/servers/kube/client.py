"""Reaching the local API server: its URL, the admin kubeconfig, kubectl and readiness probes."""

import json
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from devstack import kube_build
from devstack.config import INFRA, NODE_NETWORK
from devstack.servers.kube.pki import KUBE_STATE, PKI

KUBECONFIG = KUBE_STATE / "admin.kubeconfig"


def api_url() -> str:
    return f"https://{NODE_NETWORK.node_ip}:{INFRA.kube_apiserver_port}"


def write_kubeconfig() -> Path:
    """An admin kubeconfig for kubectl, the controllers, kwok and the operator tests."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "socialhub-local",
                "cluster": {"server": api_url(), "certificate-authority": str(PKI / "ca.crt")},
            }
        ],
        "users": [
            {
                "name": "admin",
                "user": {
                    "client-certificate": str(PKI / "admin.crt"),
                    "client-key": str(PKI / "admin.key"),
                },
            }
        ],
        "contexts": [
            {"name": "socialhub-local", "context": {"cluster": "socialhub-local", "user": "admin"}}
        ],
        "current-context": "socialhub-local",
    }
    KUBECONFIG.write_text(json.dumps(config, indent=2) + "\n")
    return KUBECONFIG


def kubectl(*args: str, stdin: str | None = None) -> str:
    """Run kubectl against the local cluster; raises with its output on failure."""
    argv = [str(kube_build.binary("kubectl")), f"--kubeconfig={KUBECONFIG}", *args]
    result = subprocess.run(argv, input=stdin, text=True, capture_output=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def https_ok(url: str, *, verify: bool) -> bool:
    context = (
        ssl.create_default_context(cafile=str(PKI / "ca.crt"))
        if verify
        else ssl._create_unverified_context()
    )  # the controllers serve self-signed health ports
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def node_ready(name: str) -> bool:
    """Whether the node has registered and reports Ready."""
    try:
        status = kubectl(
            "get", "node", name, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"
        )
    except RuntimeError:
        return False
    return status.strip() == "True"
