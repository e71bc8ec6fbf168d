"""The local trust domain: one CA, the API server's serving certificate, the admin client (the
controllers and the node use the same identity: one machine, one trust domain), the
aggregator's front-proxy client and the service-account keys, under `.state/infra/kube/pki`.
"""

from devstack.config import NODE_NETWORK
from devstack.paths import INFRA_STATE, ensure_dir
from devstack.process import run

KUBE_STATE = INFRA_STATE / "kube"
PKI = KUBE_STATE / "pki"
FRONT_PROXY_CLIENT = "front-proxy-client"


def _openssl(*args: str) -> None:
    run(["openssl", *args])


def ensure_pki() -> None:
    """One CA, the API server's serving certificate, an admin client and service-account keys."""
    ensure_dir(PKI)
    if not (PKI / "ca.crt").exists():
        _openssl(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "3650",
            "-subj",
            "/CN=socialhub-local-ca",
            "-keyout",
            str(PKI / "ca.key"),
            "-out",
            str(PKI / "ca.crt"),
        )
    net = NODE_NETWORK
    sans = (
        f"subjectAltName=IP:127.0.0.1,IP:{net.node_ip},IP:{net.api_service_ip},"
        "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,"
        f"DNS:kubernetes.default.svc.{net.cluster_domain}"
    )
    _sign("apiserver", "/CN=kube-apiserver", extension=sans)
    # system:masters is the admin group; the controllers and the node use the same identity.
    _sign("admin", "/O=system:masters/CN=socialhub-admin", extension="extendedKeyUsage=clientAuth")
    # The aggregator's identity towards metrics-server (`--requestheader-allowed-names`).
    _sign(
        "front-proxy-client", f"/CN={FRONT_PROXY_CLIENT}", extension="extendedKeyUsage=clientAuth"
    )
    if not (PKI / "sa.key").exists():
        _openssl(
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            str(PKI / "sa.key"),
        )
        _openssl("pkey", "-in", str(PKI / "sa.key"), "-pubout", "-out", str(PKI / "sa.pub"))


def _sign(name: str, subject: str, *, extension: str) -> None:
    """A certificate signed by the local CA; signed again when its subject or extension change."""
    inputs = PKI / f"{name}.inputs"
    if (
        (PKI / f"{name}.crt").exists()
        and inputs.exists()
        and inputs.read_text() == f"{subject}\n{extension}\n"
    ):
        return
    key, csr = PKI / f"{name}.key", PKI / f"{name}.csr"
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        subject,
        "-keyout",
        str(key),
        "-out",
        str(csr),
    )
    extfile = PKI / f"{name}.ext"
    extfile.write_text(extension + "\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        str(csr),
        "-CA",
        str(PKI / "ca.crt"),
        "-CAkey",
        str(PKI / "ca.key"),
        "-CAcreateserial",
        "-days",
        "3650",
        "-extfile",
        str(extfile),
        "-out",
        str(PKI / f"{name}.crt"),
    )
    csr.unlink()
    extfile.unlink()
    inputs.write_text(f"{subject}\n{extension}\n")
