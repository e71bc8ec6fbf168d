"""`make image`: the images build here without Docker and run what the cluster runs in them.

Real builds and containers (podman on the project's storage, runc). The first run on a machine
is cold (debootstrap, `uv sync`), later runs reuse everything that has not changed.
"""

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack import images
from devstack.paths import ROOT
from devstack.process import ManagedProcess
from socialhub_operator import crd, gateway, render
from socialhub_operator.spec import SocialHubSpec

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # a cold build takes minutes


@pytest.fixture(scope="module")
def built() -> images.Images:
    return images.build_all(progress=print)


def podman_run(
    image: str, *command: str, options: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """A throw-away container as a pod runs it: no network, read-only root, the image's user."""
    return subprocess.run(
        images.podman(
            "run",
            "--rm",
            "--network=none",
            "--read-only",
            *images.ULIMITS,
            *options,
            image,
            *command,
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_image_is_tagged_by_content(built: images.Images) -> None:
    for ref in built.refs():
        assert re.fullmatch(r"localhost/socialhub(-[a-z]+)?:[0-9a-f]{12}", ref), ref
    assert built.services.split(":")[1] == built.operator.split(":")[1]  # one Dockerfile, one tree


def test_services_image_imports_every_service_as_uid_10001(built: images.Images) -> None:
    services = ("auth", "users", "posts", "notifications", "chat")
    code = "; ".join(f"import socialhub.{name}.app" for name in services)
    result = podman_run(
        built.services, "sh", "-c", f'id -u && command -v python && python -c "{code}"'
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["10001", "/app/.venv/bin/python"]


def test_operator_image_carries_this_tree_s_crd(built: images.Images) -> None:
    result = podman_run(built.operator, "crd")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout) == crd.definition()


def gateway_pod() -> tuple[str, list[str]]:
    """The nginx.conf and command the operator renders for the gateway of the small sample."""
    spec: dict[str, Any] = yaml.safe_load(
        (ROOT / "manifests/samples/socialhub-small.yaml").read_text()
    )["spec"]
    spec["gateway"] = {**spec.get("gateway", {}), "nginxVersion": images.GATEWAY_NGINX_VERSION}
    hub = render.Instance("hub", "ns", SocialHubSpec.model_validate(spec))
    plan = render.plan(hub, render.ClusterFacts(gate_on_migrations=False))
    config_map, deployment = (
        next(m for m in plan.apply if m["kind"] == kind and m["metadata"]["name"] == "hub-gateway")
        for kind in ("ConfigMap", "Deployment")
    )
    conf = config_map["data"][gateway.CONFIG_FILE]
    # nginx resolves upstream names when it reads the file: the cluster's are not known here.
    conf = re.sub(r"hub-[a-z]+\.ns\.svc\.cluster\.local", "127.0.0.1", conf)
    command: list[str] = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
    return conf, command


@pytest.fixture
def gateway_container(built: images.Images, tmp_path: Path) -> Iterator[str]:
    """The gateway image running the operator's command on a read-only root, as its pod does."""
    conf, command = gateway_pod()
    config = tmp_path / "config"  # world-readable, as a ConfigMap volume: nginx runs as 10001
    config.mkdir(mode=0o755)
    (config / gateway.CONFIG_FILE).write_text(conf)
    name = f"socialhub-test-gateway-{tmp_path.name}"
    process = ManagedProcess(
        name="gateway",
        run_dir=tmp_path,
        argv=images.podman(
            "run",
            "--rm",
            "--name",
            name,
            "--network=none",
            "--read-only",
            *images.ULIMITS,
            f"--tmpfs={gateway.PREFIX}",
            f"--volume={config}:{gateway.CONFIG_DIR}:ro",
            f"--entrypoint={command[0]}",
            built.gateway,
            *command[1:],
        ),
    )
    process.start()
    try:
        yield name
    finally:
        process.stop()
        subprocess.run(images.podman("rm", "--force", "--ignore", name), check=False)


def test_gateway_serves_the_operator_s_config_as_uid_10001(gateway_container: str) -> None:
    probe = (
        "import os, urllib.request; print(os.getuid(), "
        "urllib.request.urlopen('http://127.0.0.1:8080/health').read().decode())"
    )
    deadline = time.monotonic() + 60
    while True:
        result = subprocess.run(
            images.podman("exec", gateway_container, "python3.11", "-c", probe),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert result.returncode == 0, result.stderr
    uid, health = result.stdout.split(" ", 1)
    assert uid == "10001"
    assert '"status":"ok"' in health


def test_gateway_nginx_is_the_version_the_operator_is_told(built: images.Images) -> None:
    result = podman_run(built.gateway, "-v")
    assert result.returncode == 0, result.stderr
    assert f"nginx/{images.GATEWAY_NGINX_VERSION}" in result.stderr


def test_pause_image_is_catatonit_alone(built: images.Images) -> None:
    inspect = subprocess.run(
        images.podman("image", "inspect", "--format", "{{json .Config.Entrypoint}}", built.pause),
        capture_output=True,
        text=True,
        check=True,
    )
    assert yaml.safe_load(inspect.stdout) == ["/catatonit", "-P"]
    result = podman_run(built.pause, "--version", options=("--entrypoint=/catatonit",))
    assert result.returncode == 0, result.stderr
    assert "catatonit" in result.stdout


def test_an_unchanged_tree_builds_nothing() -> None:
    # Built again first: others may edit this checkout while the tests run.
    first = images.build_all(progress=lambda line: None)
    lines: list[str] = []
    started = time.monotonic()
    assert images.build_all(progress=lines.append) == first
    assert not [line for line in lines if "building" in line], lines
    assert time.monotonic() - started < 30


def test_the_tag_follows_the_copied_files_not_caches() -> None:
    names = [entry.split()[0] for entry in images.context_fingerprint()]
    assert "uv.lock" in names
    assert "services/socialhub/gateway/nginx.conf.j2" in names
    assert "scripts/devstack/images.py" in names
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]
    assert not [name for name in names if name.startswith(("tests/", ".venv/", ".state/"))]


@pytest.fixture
def containerd_socket(tmp_path: Path) -> Iterator[Path]:
    """A containerd of the test's own (no CRI), like the node's: only its image store counts."""
    socket = tmp_path / "containerd.sock"
    config = tmp_path / "config.toml"
    config.write_text(
        f'version = 2\nroot = "{tmp_path}/root"\nstate = "{tmp_path}/state"\n'
        'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
        f'[grpc]\n  address = "{socket}"\n'
    )
    process = ManagedProcess(
        name="containerd", run_dir=tmp_path, argv=["containerd", "--config", str(config)]
    )
    process.start()
    try:
        deadline = time.monotonic() + 30
        while not socket.exists():
            assert process.running(), process.tail()
            assert time.monotonic() < deadline, "containerd did not start"
            time.sleep(0.1)
        yield socket
    finally:
        process.stop()
        shutil.rmtree(tmp_path / "root", ignore_errors=True)  # some GB of layers


def test_load_imports_each_image_once(built: images.Images, containerd_socket: Path) -> None:
    def listed() -> set[str]:
        return set(
            subprocess.run(
                ["ctr", "-a", str(containerd_socket), "-n", "k8s.io", "images", "ls", "-q"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
        )

    images.load(built, containerd_socket)
    assert set(built.refs()) <= listed()
    started = time.monotonic()
    images.load(built, containerd_socket)  # all present: nothing saved, nothing imported
    assert time.monotonic() - started < 5


def test_the_dockerfile_s_defaults_are_pinned_registry_images() -> None:
    """Elsewhere `docker build --target services .` runs with no build arguments."""
    text = images.DOCKERFILE.read_text()
    defaults = dict(re.findall(r"^ARG (\w+)=(\S+)$", text, flags=re.MULTILINE))
    assert set(defaults) == {"PYTHON_IMAGE", "UV_IMAGE"}
    for image in defaults.values():
        assert re.search(r":\d+(\.\d+)+", image), f"{image} is not pinned to a version"
    bases = set(re.findall(r"^FROM \$\{(\w+)\} AS ", text, flags=re.MULTILINE))
    assert bases == set(defaults)
