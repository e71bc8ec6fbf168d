"""Build a real Kubernetes control plane from the Go module proxy into the cache.

No registry we can reach ships `kube-apiserver`, so we compile it: a throw-away wrapper module
requires `k8s.io/kubernetes` and replaces every staging module it pins at v0.0.0 with the
published `k8s.io/<name>@v0.<minor>.<patch>` (`go install ...@version` refuses modules with
replace directives); the control plane, kubectl and the node's kubelet and kube-proxy are built
from it in one `go build`. kine (the etcd API on SQLite), kwok (a fake kubelet, so simulated
pods "run"), metrics-server and CoreDNS come from their own modules, because their newer
dependencies would otherwise upgrade the apiserver's. CoreDNS is built from a small main package
with only the plugins a cluster DNS needs (all of them pull in every cloud provider's SDK).
Binaries land in `$SOCIALHUB_CACHE/kube/<version>/bin/`, the Go caches
in `$SOCIALHUB_CACHE/go/`, so fresh clones reuse them. `python -m devstack.kube_build` builds
what is missing (a no-op once built) and records the seconds each step took in
`build-seconds.json` next to the binaries.
"""

import argparse
import json
import os
import re
import shutil
import time
from pathlib import Path

from devstack.golang import go_env, run_go
from devstack.paths import CACHE, ensure_dir

KUBE_VERSION = os.environ.get("SOCIALHUB_KUBE_VERSION", "v1.33.13")
KINE_VERSION = os.environ.get("SOCIALHUB_KINE_VERSION", "v0.17.5")
KWOK_VERSION = os.environ.get("SOCIALHUB_KWOK_VERSION", "v0.8.0")
METRICS_SERVER_VERSION = os.environ.get("SOCIALHUB_METRICS_SERVER_VERSION", "v0.8.0")
COREDNS_VERSION = os.environ.get("SOCIALHUB_COREDNS_VERSION", "v1.12.4")
# The scheduler places pods on kwok's fake node (simulated pods) or on the real node, whose
# kubelet and kube-proxy come from the same module; kubectl comes along at the same version
# (machines may have none, or another version).
KUBE_COMMANDS = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
    "kubelet",
    "kube-proxy",
)
TOOLS = ("kine", "kwok", "metrics-server", "coredns")
# The Corefile (`devstack/data/coredns/Corefile`) uses exactly these plugins.
COREDNS_PLUGINS = ("bind", "errors", "health", "ready", "kubernetes", "cache", "loadbalance")


def kube_dir(version: str = KUBE_VERSION) -> Path:
    return CACHE / "kube" / version


def binary(name: str, version: str = KUBE_VERSION) -> Path:
    return kube_dir(version) / "bin" / name


def built(version: str = KUBE_VERSION) -> bool:
    return all(binary(name, version).exists() for name in (*KUBE_COMMANDS, *TOOLS))


def staging_modules(kubernetes_go_mod: str) -> list[str]:
    """The k8s.io modules that k8s.io/kubernetes requires at the placeholder version v0.0.0."""
    return sorted(
        set(
            re.findall(r"^\s*(k8s\.io/[\w.-]+) v0\.0\.0\s*$", kubernetes_go_mod, flags=re.MULTILINE)
        )
    )


def staging_version(kube_version: str) -> str:
    """Kubernetes v1.33.13 publishes its staging modules as v0.33.13."""
    major, minor, patch = kube_version.lstrip("v").split(".")
    if major != "1":
        raise ValueError(f"unexpected Kubernetes version {kube_version}")
    return f"v0.{minor}.{patch}"


def version_ldflags(kube_version: str) -> str:
    """What `hack/lib/version.sh` stamps, so `/version` and skew checks see a real version."""
    _, minor, _ = kube_version.lstrip("v").split(".")
    values = {
        "gitVersion": kube_version,
        "gitMajor": "1",
        "gitMinor": minor,
        "gitTreeState": "clean",
        "buildDate": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    flags = [
        f"-X k8s.io/{package}/version.{key}={value}"
        for package in ("component-base", "client-go/pkg")
        for key, value in values.items()
    ]
    return " ".join(["-s", "-w", *flags])


def build_kube(version: str = KUBE_VERSION) -> None:
    out = ensure_dir(kube_dir(version) / "bin")
    if all((out / name).exists() for name in KUBE_COMMANDS):
        return
    env = go_env(goflags="-mod=mod", cgo=False)  # the wrapper module's go.sum starts empty
    wrapper = kube_dir(version) / "wrapper"
    shutil.rmtree(wrapper, ignore_errors=True)
    ensure_dir(wrapper)
    (wrapper / "go.mod").write_text("module socialhub.local/kubebuild\n\ngo 1.24.0\n")
    download = json.loads(
        run_go(["mod", "download", "-json", f"k8s.io/kubernetes@{version}"], cwd=wrapper, env=env)
    )
    pinned = staging_modules(Path(download["GoMod"]).read_text())
    staged = staging_version(version)
    edits = [f"-replace={module}={module}@{staged}" for module in pinned]
    run_go(["mod", "edit", f"-require=k8s.io/kubernetes@{version}", *edits], cwd=wrapper, env=env)
    packages = [f"k8s.io/kubernetes/cmd/{name}" for name in KUBE_COMMANDS]
    run_go(["get", *[f"{package}@{version}" for package in packages]], cwd=wrapper, env=env)
    staging = ensure_dir(kube_dir(version) / "bin.partial")
    run_go(
        [
            "build",
            "-trimpath",
            "-ldflags",
            version_ldflags(version),
            "-o",
            f"{staging}/",
            *packages,
        ],
        cwd=wrapper,
        env=env,
    )
    for name in KUBE_COMMANDS:
        (staging / name).replace(out / name)
    staging.rmdir()


def install_tool(
    name: str, module_path: str, version: str, *, cgo: bool, kube_version: str = KUBE_VERSION
) -> None:
    """`go install` a module without replace directives into the cache's bin directory."""
    target = binary(name, kube_version)
    if target.exists():
        return
    staging = ensure_dir(kube_dir(kube_version) / f"{name}.partial")
    env = {**go_env(goflags="", cgo=cgo), "GOBIN": str(staging)}
    run_go(
        ["install", "-trimpath", "-ldflags", "-s -w", f"{module_path}@{version}"],
        cwd=ensure_dir(kube_dir(kube_version)),
        env=env,
    )
    (staging / name).replace(target)
    staging.rmdir()


def build_kine(version: str = KUBE_VERSION) -> None:
    # cgo selects kine's mattn/go-sqlite3 driver, the one k3s ships.
    install_tool("kine", "github.com/k3s-io/kine", KINE_VERSION, cgo=True, kube_version=version)


KWOK_STAGES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat/node-heartbeat.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
)


def build_kwok(version: str = KUBE_VERSION) -> None:
    install_tool("kwok", "sigs.k8s.io/kwok/cmd/kwok", KWOK_VERSION, cgo=False, kube_version=version)
    stages = kube_dir(version) / "kwok-stages"
    if stages.exists():
        return
    # kwok needs its stages (what a "kubelet" does to nodes and pods) in its configuration; the
    # module ships the upstream ones as YAML next to its source.
    source = json.loads(
        run_go(
            ["mod", "download", "-json", f"sigs.k8s.io/kwok@{KWOK_VERSION}"],
            cwd=kube_dir(version),
            env=go_env(goflags="", cgo=False),
        )
    )["Dir"]
    partial = ensure_dir(kube_dir(version) / "kwok-stages.partial")
    for relative in KWOK_STAGES:
        shutil.copyfile(
            Path(source) / "kustomize" / "stage" / relative, partial / Path(relative).name
        )
    partial.rename(stages)


def build_metrics_server(version: str = KUBE_VERSION) -> None:
    install_tool(
        "metrics-server",
        "sigs.k8s.io/metrics-server/cmd/metrics-server",
        METRICS_SERVER_VERSION,
        cgo=False,
        kube_version=version,
    )


def coredns_main(plugins: tuple[str, ...] = COREDNS_PLUGINS) -> str:
    """CoreDNS's own `main`, importing only `plugins` (the full set is about 60)."""
    imports = "\n".join(f'\t_ "github.com/coredns/coredns/plugin/{name}"' for name in plugins)
    return (
        'package main\n\nimport (\n\t"github.com/coredns/coredns/coremain"\n'
        f"{imports}\n)\n\nfunc main() {{ coremain.Run() }}\n"
    )


def build_coredns(version: str = KUBE_VERSION) -> None:
    target = binary("coredns", version)
    if target.exists():
        return
    env = go_env(goflags="-mod=mod", cgo=False)
    wrapper = kube_dir(version) / "coredns-wrapper"
    shutil.rmtree(wrapper, ignore_errors=True)
    ensure_dir(wrapper)
    (wrapper / "go.mod").write_text("module socialhub.local/coredns\n\ngo 1.24.0\n")
    (wrapper / "main.go").write_text(coredns_main())
    run_go(["get", f"github.com/coredns/coredns@{COREDNS_VERSION}"], cwd=wrapper, env=env)
    run_go(["mod", "tidy"], cwd=wrapper, env=env)
    partial = kube_dir(version) / "coredns.partial"
    run_go(
        ["build", "-trimpath", "-ldflags", "-s -w", "-o", str(partial), "."], cwd=wrapper, env=env
    )
    partial.replace(target)


def build(version: str = KUBE_VERSION) -> dict[str, Path]:
    """Build whatever is missing; returns the binaries by name. Idempotent."""
    ensure_dir(kube_dir(version) / "bin")
    timings = _load_timings(version)
    steps = (
        ("kine", build_kine),
        ("kwok", build_kwok),
        ("metrics-server", build_metrics_server),
        ("coredns", build_coredns),
        ("kube", build_kube),
    )
    for name, step in steps:
        started = time.monotonic()
        names = KUBE_COMMANDS if name == "kube" else (name,)
        was_built = all(binary(each, version).exists() for each in names)
        step(version)
        if not was_built:
            timings[name] = round(time.monotonic() - started, 1)
            print(f"built {name} in {timings[name]:.0f}s", flush=True)
    _timings_file(version).write_text(json.dumps(timings, indent=2) + "\n")
    return {name: binary(name, version) for name in (*KUBE_COMMANDS, *TOOLS)}


def _timings_file(version: str) -> Path:
    return kube_dir(version) / "build-seconds.json"


def _load_timings(version: str) -> dict[str, float]:
    try:
        loaded: dict[str, float] = json.loads(_timings_file(version).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default=KUBE_VERSION, help="Kubernetes version to build")
    args = parser.parse_args()
    for name, path in build(args.version).items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
