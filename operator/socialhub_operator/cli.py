"""`socialhub`: run the operator, or render a SocialHub's children as plain YAML.

socialhub run [--namespace NS ...]     watch SocialHubs (all namespaces by default)
socialhub render -f sample.yaml         print the children for a GitOps repo or a review
socialhub crd                           print the CustomResourceDefinition
"""

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import yaml

from socialhub_operator import crd, render
from socialhub_operator.spec import API_VERSION, KIND, SocialHubSpec


def _documents(path: str) -> list[dict[str, Any]]:
    text = sys.stdin.read() if path == "-" else Path(path).read_text()
    return [doc for doc in yaml.safe_load_all(text) if doc]


def render_yaml(documents: list[dict[str, Any]], *, strimzi: bool) -> str:
    """Every child of every SocialHub in `documents`, without migration gating or owners.

    The operator also generates a JWT Secret when `spec.jwtSecret` is unset; a secret value
    has no place in a repository, so it is not rendered: set `spec.jwtSecret` for GitOps.
    """
    out: list[dict[str, Any]] = []
    for document in documents:
        if document.get("apiVersion") != API_VERSION or document.get("kind") != KIND:
            continue
        metadata = document.get("metadata", {})
        instance = render.Instance(
            name=metadata["name"],
            namespace=metadata.get("namespace", "default"),
            spec=SocialHubSpec.model_validate(document.get("spec", {})),
        )
        facts = render.ClusterFacts(gate_on_migrations=False, strimzi=strimzi)
        out += render.plan(instance, facts).apply
    return yaml.safe_dump_all(out, sort_keys=False)


def _run(namespaces: list[str], liveness: str | None) -> None:
    import kopf

    import socialhub_operator.handlers  # noqa: F401 - registers the handlers

    kopf.configure(verbose=False)
    # One "Handler succeeded" line per watch event drowns what matters; warnings still show.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    kopf.run(
        standalone=True,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=liveness,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="socialhub", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the operator")
    run.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); all when omitted",
    )
    run.add_argument(
        "--liveness", default=None, help="serve a liveness probe, e.g. http://0.0.0.0:8080/healthz"
    )
    show = commands.add_parser("render", help="print a SocialHub's children as YAML")
    show.add_argument("-f", "--filename", required=True, help="SocialHub manifest, - for stdin")
    show.add_argument(
        "--strimzi", action="store_true", help="render Strimzi KafkaTopics instead of the topic Job"
    )
    commands.add_parser("crd", help="print the CustomResourceDefinition")
    args = parser.parse_args(argv)
    if args.command == "run":
        _run(args.namespace, args.liveness)
    elif args.command == "render":
        sys.stdout.write(render_yaml(_documents(args.filename), strimzi=args.strimzi))
    else:
        sys.stdout.write(yaml.safe_dump(crd.definition(), sort_keys=False))


if __name__ == "__main__":
    main()
