"""One reconciliation of one SocialHub: read the cluster, apply the plan, prune, report status.

Everything goes through server-side apply with one field manager (forced, so hand edits of
fields the operator owns are taken back). Children carry a controller owner reference, so the
garbage collector removes them with their SocialHub; children the plan no longer contains are
pruned here.
"""

import contextlib
import logging
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from kubernetes import client as k8s
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError, NotFoundError, ResourceNotFoundError
from pydantic import ValidationError
from urllib3.exceptions import HTTPError

from socialhub_operator import render
from socialhub_operator.render import FIELD_MANAGER, MANAGED_BY, ClusterFacts, Instance, Manifest
from socialhub_operator.spec import API_VERSION, GATEWAY, KIND, SERVICES, SocialHubSpec
from socialhub_operator.status import (
    RETRY_ANNOTATION,
    Verdict,
    capped,
    conditions,
    failed,
    job_failure,
    retry_in,
    verdicts,
    warnings,
)

log = logging.getLogger(__name__)
# The API server refusing a child as invalid: only a changed spec helps, retrying does not.
REFUSED = (400, 422)
# After any other failure (the API server away, a conflict), reconcile again this soon.
RETRY_SECONDS = 5.0
STRIMZI_TOPIC_CRD = "kafkatopics.kafka.strimzi.io"
# What the operator creates and therefore may prune (the generated Secret is never pruned).
PRUNABLE = (
    ("v1", "ConfigMap"),
    ("v1", "Service"),
    ("batch/v1", "Job"),
    ("apps/v1", "Deployment"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("policy/v1", "PodDisruptionBudget"),
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"),
)


@dataclass(frozen=True)
class Outcome:
    """What the work queue keeps from one reconciliation."""

    # The Secrets the SocialHub's pods read: an event of one of them queues the SocialHub.
    secrets_read: frozenset[str] = frozenset()
    # Reconcile again this many seconds from now (a failed Job falls due for its retry, or an
    # apply failed for a reason other than the spec), if set.
    recheck_in: float | None = None


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
            resource,
            body=manifest,
            namespace=manifest["metadata"].get("namespace"),
            field_manager=FIELD_MANAGER,
            force_conflicts=True,
        )

    def _list(self, api_version: str, kind: str, namespace: str, instance: str) -> list[Manifest]:
        resource = self._resource(api_version, kind)
        selector = (
            f"app.kubernetes.io/instance={instance},app.kubernetes.io/managed-by={MANAGED_BY}"
        )
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

    def reconcile(self, namespace: str, name: str) -> Outcome:
        """One pass; any failure is reported in the status and as a Warning Event."""
        api = self._resource(API_VERSION, KIND)
        try:
            body = api.get(name=name, namespace=namespace).to_dict()
        except NotFoundError:
            return Outcome()
        if body["metadata"].get("deletionTimestamp"):
            return Outcome()
        try:
            return self._reconcile(body)
        except Exception as error:
            # Reported if the API server still answers; the work queue retries either way.
            cause = (
                _api_error(error)
                if isinstance(error, DynamicApiError)
                else f"{type(error).__name__}: {error}"
            )
            with contextlib.suppress(DynamicApiError, HTTPError):
                self._report(body, failed("ReconcileFailed", cause))
            raise

    def _reconcile(self, body: Manifest) -> Outcome:
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        try:
            spec = SocialHubSpec.model_validate(body.get("spec", {}))
        except ValidationError as error:
            self._report(body, failed("InvalidSpec", str(error)))
            return Outcome()
        instance = Instance(name=name, namespace=namespace, spec=spec)
        owner = render.owner_reference(name, body["metadata"]["uid"])
        if not spec.jwt_secret:
            self.ensure_jwt_secret(instance, owner)
        jobs = {
            job["metadata"]["name"]: job for job in self._list("batch/v1", "Job", namespace, name)
        }
        succeeded = frozenset(
            job_name
            for job_name, job in jobs.items()
            if any(
                c.get("type") == "Complete" and c.get("status") == "True"
                for c in (job.get("status") or {}).get("conditions") or []
            )
        )
        strimzi = self.strimzi_installed()
        facts = ClusterFacts(succeeded_jobs=succeeded, strimzi=strimzi)
        # Which Secrets the pods read does not depend on their contents: render once to learn
        # them, then again with their digests in the config hashes.
        read = frozenset(render.secrets_read(render.plan(instance, facts).apply))
        digests = self.secret_digests(namespace, read)
        plan = render.plan(instance, replace(facts, secret_digests=digests))
        retried = self._delete_jobs_due_for_retry(namespace, plan, jobs)
        failures, transient = self._apply(plan, owner, jobs, retried)
        if failures:
            self._report(body, [*failed("ApplyFailed", "; ".join(failures)), capped(plan)])
            return Outcome(read, RETRY_SECONDS if transient else None)
        self._prune(instance, body["metadata"]["uid"], plan, strimzi=strimzi)

        deployments = {
            d["metadata"]["name"]: d for d in self._list("apps/v1", "Deployment", namespace, name)
        }
        jobs = {
            job["metadata"]["name"]: job for job in self._list("batch/v1", "Job", namespace, name)
        }
        expected: dict[str, str | None] = {
            m["metadata"]["name"]: m["spec"]["template"]["metadata"]["annotations"][
                render.HASH_ANNOTATION
            ]
            for m in plan.apply
            if m["kind"] == "Deployment"
        }
        expected |= {held_name: None for _, held_name in plan.held}
        # Pods carry the children's labels too: theirs is the first word on a failing image,
        # Secret key or crash.
        pods = self._list("v1", "Pod", namespace, name)
        found = verdicts(
            plan, deployments, jobs, expected, pods=pods, missing_secrets=read - set(digests)
        )
        self._report(body, [*found, capped(plan)], _components(instance, plan, deployments))
        now = datetime.now(UTC)
        due = [
            seconds
            for job_name in _plan_jobs(plan)
            if job_name in jobs and (seconds := retry_in(jobs[job_name], now)) is not None
        ]
        return Outcome(read, max(min(due), 1.0) if due else None)

    def _delete_jobs_due_for_retry(
        self, namespace: str, plan: render.Plan, jobs: dict[str, Manifest]
    ) -> dict[str, str]:
        """Deletes the plan's Jobs that failed long enough ago (and drops them from `jobs`),
        so they are created again; returns why each had failed."""
        now = datetime.now(UTC)
        retried: dict[str, str] = {}
        for job_name in _plan_jobs(plan):
            job = jobs.get(job_name)
            if job is None or (seconds := retry_in(job, now)) is None or seconds > 0:
                continue
            retried[job_name] = job_failure(job) or "Failed"
            log.info("retrying failed Job %s/%s (%s)", namespace, job_name, retried[job_name])
            with contextlib.suppress(NotFoundError):
                self._resource("batch/v1", "Job").delete(
                    name=job_name, namespace=namespace, body={"propagationPolicy": "Background"}
                )
            del jobs[job_name]
        return retried

    def _apply(
        self,
        plan: render.Plan,
        owner: Manifest,
        jobs: Mapping[str, Manifest],
        retried: Mapping[str, str],
    ) -> tuple[list[str], bool]:
        """Applies every child the API server accepts; returns why the others failed and
        whether any failure may pass by itself (anything but a child refused as invalid)."""
        failures: list[str] = []
        transient = False
        for manifest in plan.apply:
            kind, child = manifest["kind"], manifest["metadata"]["name"]
            if kind == "Job" and child in jobs:
                continue  # a Job's template is immutable and its name a digest of its pod spec
            if child in retried:
                manifest = {
                    **manifest,
                    "metadata": {
                        **manifest["metadata"],
                        "annotations": {
                            **manifest["metadata"].get("annotations", {}),
                            RETRY_ANNOTATION: retried[child],
                        },
                    },
                }
            try:
                self.apply(render.owned(manifest, owner))
            except DynamicApiError as error:
                failures.append(f"{kind} {child}: {_api_error(error)}")
                transient = transient or error.status not in REFUSED
        return failures, transient

    def _prune(self, instance: Instance, uid: str, plan: render.Plan, *, strimzi: bool) -> None:
        wanted = {(m["kind"], m["metadata"]["name"]) for m in plan.apply} | set(plan.held)
        for api_version, kind in PRUNABLE:
            if kind == "KafkaTopic" and not strimzi:
                continue  # without the CRD there are none (and no API to ask)
            for item in self._list(api_version, kind, instance.namespace, instance.name):
                owners = item["metadata"].get("ownerReferences") or []
                ours = any(ref.get("uid") == uid for ref in owners)
                if ours and (kind, item["metadata"]["name"]) not in wanted:
                    log.info("pruning %s %s/%s", kind, instance.namespace, item["metadata"]["name"])
                    self._resource(api_version, kind).delete(
                        name=item["metadata"]["name"],
                        namespace=instance.namespace,
                        body={"propagationPolicy": "Background"},
                    )

    def _report(
        self, body: Manifest, found: Iterable[Verdict], components: dict[str, Any] | None = None
    ) -> None:
        """Writes the status (components as before when None) when it changed, and a Warning
        Event for each failure that is new."""
        status = body.get("status") or {}
        generation = body["metadata"].get("generation", 0)
        previous = status.get("conditions") or []
        new_conditions = conditions(list(found), previous, generation)
        ready = any(c["type"] == "Ready" and c["status"] == "True" for c in new_conditions)
        desired = {
            "observedGeneration": generation,
            "conditions": new_conditions,
            "components": status.get("components", {}) if components is None else components,
            "version": body["spec"]["version"] if ready else status.get("version", ""),
        }
        if all(status.get(key) == value for key, value in desired.items()):
            return
        api = self._resource(API_VERSION, KIND)
        api.status.patch(
            name=body["metadata"]["name"],
            namespace=body["metadata"]["namespace"],
            body={"status": desired},
            content_type="application/merge-patch+json",
        )
        for condition in warnings(previous, new_conditions):
            self._warn(body, condition["reason"], condition["message"])

    def _warn(self, body: Manifest, reason: str, message: str) -> None:
        """A Warning Event on the SocialHub, for `kubectl describe` and event tooling; the
        status is the record, so an Event the API server refuses is only logged."""
        meta = body["metadata"]
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            self._resource("v1", "Event").create(
                namespace=meta["namespace"],
                body={
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {
                        "generateName": f"{meta['name']}.",
                        "namespace": meta["namespace"],
                    },
                    "involvedObject": {
                        "apiVersion": API_VERSION,
                        "kind": KIND,
                        "name": meta["name"],
                        "namespace": meta["namespace"],
                        "uid": meta["uid"],
                    },
                    "type": "Warning",
                    "reason": reason,
                    "message": message[:1024],
                    "source": {"component": FIELD_MANAGER},
                    "firstTimestamp": now,
                    "lastTimestamp": now,
                    "count": 1,
                },
            )
        except DynamicApiError as error:
            log.warning(
                "no Event for %s/%s (%s)", meta["namespace"], meta["name"], _api_error(error)
            )


def _api_error(error: DynamicApiError) -> str:
    """The API server's own words (they name the object and say invalid, forbidden, ...)."""
    summary: str = error.summary()  # type: ignore[no-untyped-call]
    return summary


def _plan_jobs(plan: render.Plan) -> list[str]:
    """The run-once Jobs of the plan: migrations and the topic Job."""
    return [*plan.migration_jobs.values(), *([plan.topic_job] if plan.topic_job else [])]


def _components(
    instance: Instance, plan: render.Plan, deployments: dict[str, Manifest]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for component in (*SERVICES, GATEWAY):
        deployment = deployments.get(instance.child(component), {})
        status = deployment.get("status") or {}
        containers = (
            deployment.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [{}])
        )
        out[component] = {
            "replicas": status.get("replicas", 0),
            "readyReplicas": status.get("readyReplicas", 0),
            "minReplicas": plan.bounds[component].minimum,
            "maxReplicas": plan.bounds[component].maximum,
            "image": containers[0].get("image", ""),
        }
    return out
