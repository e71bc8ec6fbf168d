"""One reconciliation of one SocialHub: read the cluster, apply the plan, prune, report status.

Everything goes through server-side apply with one field manager (forced, so hand edits of
fields the operator owns are taken back). Children carry a controller owner reference, so the
garbage collector removes them with their SocialHub; children the plan no longer contains are
pruned here.
"""

import logging
import secrets
import threading
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from kubernetes import client as k8s
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import NotFoundError, ResourceNotFoundError
from pydantic import ValidationError

from socialhub_operator import render
from socialhub_operator.render import FIELD_MANAGER, MANAGED_BY, ClusterFacts, Instance, Manifest
from socialhub_operator.spec import API_VERSION, GATEWAY, KIND, SERVICES, SocialHubSpec
from socialhub_operator.status import Verdict, conditions, verdicts

log = logging.getLogger(__name__)
STRIMZI_TOPIC_CRD = "kafkatopics.kafka.strimzi.io"
# What the operator creates and therefore may prune (the generated Secret is never pruned).
PRUNABLE = (("v1", "ConfigMap"), ("v1", "Service"), ("batch/v1", "Job"),
            ("apps/v1", "Deployment"), ("autoscaling/v2", "HorizontalPodAutoscaler"),
            ("policy/v1", "PodDisruptionBudget"), ("kafka.strimzi.io/v1beta2", "KafkaTopic"))


class Reconciler:
    def __init__(self, api: k8s.ApiClient) -> None:
        self.dynamic = DynamicClient(api)  # type: ignore[no-untyped-call]
        # The discovery cache is shared by the worker threads and not safe to refresh in one
        # while another reads it.
        self._discovery = threading.Lock()

    def _resource(self, api_version: str, kind: str) -> Any:
        with self._discovery:
            try:
                return self.dynamic.resources.get(api_version=api_version, kind=kind)
            except ResourceNotFoundError:
                # Discovery is cached: a CRD installed since (Strimzi's) needs a fresh look.
                self.dynamic.resources.invalidate_cache()
                return self.dynamic.resources.get(api_version=api_version, kind=kind)

    def apply(self, manifest: Manifest) -> None:
        resource = self._resource(manifest["apiVersion"], manifest["kind"])
        self.dynamic.server_side_apply(  # type: ignore[no-untyped-call]
            resource, body=manifest,
            namespace=manifest["metadata"].get("namespace"),
            field_manager=FIELD_MANAGER, force_conflicts=True)

    def _list(self, api_version: str, kind: str, namespace: str,
              instance: str) -> list[Manifest]:
        resource = self._resource(api_version, kind)
        selector = (f"app.kubernetes.io/instance={instance},"
                    f"app.kubernetes.io/managed-by={MANAGED_BY}")
        found = resource.get(namespace=namespace, label_selector=selector)
        return [item.to_dict() for item in found.items]

    def strimzi_installed(self) -> bool:
        crds = self._resource("apiextensions.k8s.io/v1", "CustomResourceDefinition")
        try:
            crds.get(name=STRIMZI_TOPIC_CRD)
        except NotFoundError:
            return False
        return True

    def ensure_jwt_secret(self, instance: Instance, owner: Manifest) -> None:
        """Create the signing key once (a deleted one is generated again, rolling its pods)."""
        secrets_api = self._resource("v1", "Secret")
        try:
            secrets_api.get(name=instance.jwt_secret_name, namespace=instance.namespace)
        except NotFoundError:
            generated = secrets.token_urlsafe(48)
            secret = render.owned(render.jwt_secret(instance, generated), owner)
            secrets_api.create(body=secret, namespace=instance.namespace)
            log.info("generated JWT secret %s/%s", instance.namespace, instance.jwt_secret_name)

    def secret_digests(self, namespace: str, names: Iterable[str]) -> dict[str, str]:
        """A digest of each Secret's data; a missing Secret is left out (it counts as empty)."""
        secrets_api = self._resource("v1", "Secret")
        digests: dict[str, str] = {}
        for name in sorted(names):
            try:
                data = secrets_api.get(name=name, namespace=namespace).to_dict().get("data")
            except NotFoundError:
                continue
            digests[name] = render.digest(data or {})
        return digests

    def reconcile(self, namespace: str, name: str) -> frozenset[str]:
        """Returns the names of the Secrets the SocialHub's pods read (none when it is gone)."""
        api = self._resource(API_VERSION, KIND)
        try:
            body = api.get(name=name, namespace=namespace).to_dict()
        except NotFoundError:
            return frozenset()
        if body["metadata"].get("deletionTimestamp"):
            return frozenset()
        try:
            spec = SocialHubSpec.model_validate(body.get("spec", {}))
        except ValidationError as error:
            self._report(body, [Verdict("Ready", False, "InvalidSpec", str(error)),
                                Verdict("Progressing", False, "InvalidSpec", ""),
                                Verdict("Degraded", True, "InvalidSpec", str(error))], {}, None)
            return frozenset()
        instance = Instance(name=name, namespace=namespace, spec=spec)
        owner = render.owner_reference(name, body["metadata"]["uid"])
        if not spec.jwt_secret:
            self.ensure_jwt_secret(instance, owner)
        jobs = {job["metadata"]["name"]: job
                for job in self._list("batch/v1", "Job", namespace, name)}
        succeeded = frozenset(job_name for job_name, job in jobs.items()
                              if any(c.get("type") == "Complete" and c.get("status") == "True"
                                     for c in (job.get("status") or {}).get("conditions") or []))
        strimzi = self.strimzi_installed()
        facts = ClusterFacts(succeeded_jobs=succeeded, strimzi=strimzi)
        # Which Secrets the pods read does not depend on their contents: render once to learn
        # them, then again with their digests in the config hashes.
        read = frozenset(render.secrets_read(render.plan(instance, facts).apply))
        plan = render.plan(instance, replace(
            facts, secret_digests=self.secret_digests(namespace, read)))
        for manifest in plan.apply:
            self.apply(render.owned(manifest, owner))
        self._prune(instance, body["metadata"]["uid"], plan, strimzi=strimzi)

        deployments = {d["metadata"]["name"]: d
                       for d in self._list("apps/v1", "Deployment", namespace, name)}
        jobs = {job["metadata"]["name"]: job
                for job in self._list("batch/v1", "Job", namespace, name)}
        expected: dict[str, str | None] = {
            m["metadata"]["name"]: m["spec"]["template"]["metadata"]["annotations"][
                render.HASH_ANNOTATION]
            for m in plan.apply if m["kind"] == "Deployment"}
        expected |= {held_name: None for _, held_name in plan.held}
        found = verdicts(plan, deployments, jobs, expected)
        self._report(body, found, _components(instance, plan, deployments), spec.version)
        return read

    def _prune(self, instance: Instance, uid: str, plan: render.Plan, *, strimzi: bool) -> None:
        wanted = {(m["kind"], m["metadata"]["name"]) for m in plan.apply} | set(plan.held)
        for api_version, kind in PRUNABLE:
            if kind == "KafkaTopic" and not strimzi:
                continue  # without the CRD there are none (and no API to ask)
            for item in self._list(api_version, kind, instance.namespace, instance.name):
                owners = item["metadata"].get("ownerReferences") or []
                ours = any(ref.get("uid") == uid for ref in owners)
                if ours and (kind, item["metadata"]["name"]) not in wanted:
                    log.info("pruning %s %s/%s", kind, instance.namespace,
                             item["metadata"]["name"])
                    self._resource(api_version, kind).delete(
                        name=item["metadata"]["name"], namespace=instance.namespace,
                        body={"propagationPolicy": "Background"})

    def _report(self, body: Manifest, found: Iterable[Verdict], components: dict[str, Any],
                version: str | None) -> None:
        status = body.get("status") or {}
        generation = body["metadata"].get("generation", 0)
        new_conditions = conditions(list(found), status.get("conditions") or [], generation)
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in new_conditions)
        desired = {
            "observedGeneration": generation,
            "conditions": new_conditions,
            "components": components,
            "version": version if ready else status.get("version", ""),
        }
        if all(status.get(key) == value for key, value in desired.items()):
            return
        api = self._resource(API_VERSION, KIND)
        api.status.patch(name=body["metadata"]["name"], namespace=body["metadata"]["namespace"],
                         body={"status": desired},
                         content_type="application/merge-patch+json")


def _components(instance: Instance, plan: render.Plan,
                deployments: dict[str, Manifest]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for component in (*SERVICES, GATEWAY):
        deployment = deployments.get(instance.child(component), {})
        status = deployment.get("status") or {}
        containers = deployment.get("spec", {}).get("template", {}).get("spec", {}) \
            .get("containers", [{}])
        out[component] = {
            "replicas": status.get("replicas", 0),
            "readyReplicas": status.get("readyReplicas", 0),
            "minReplicas": plan.bounds[component].minimum,
            "maxReplicas": plan.bounds[component].maximum,
            "image": containers[0].get("image", ""),
        }
    return out
