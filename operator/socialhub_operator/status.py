"""Status from the children's state: observedGeneration and Ready/Progressing/Degraded.

Pure, like rendering: the operator lists the Deployments and Jobs, this decides what they mean.
Degraded wins over Progressing (a failed migration or a stalled rollout needs a human); Ready
means every component runs the desired template and is available.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from socialhub_operator.render import Plan

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Verdict:
    type: str
    status: bool
    reason: str
    message: str


def _condition(obj: Manifest, kind: str) -> Manifest | None:
    for condition in obj.get("status", {}).get("conditions", []) or []:
        if condition.get("type") == kind:
            return dict(condition)
    return None


def _true(obj: Manifest, kind: str) -> bool:
    condition = _condition(obj, kind)
    return condition is not None and condition.get("status") == "True"


def job_failure(job: Manifest) -> str | None:
    condition = _condition(job, "Failed")
    if condition and condition.get("status") == "True":
        return f"{condition.get('reason', 'Failed')}: {condition.get('message', '')}".strip(": ")
    return None


def rollout_pending(deployment: Manifest, expected_hash: str | None) -> str | None:
    """Why a Deployment is not yet fully rolled out and available, or None."""
    meta, spec, status = deployment["metadata"], deployment.get("spec", {}), \
        deployment.get("status", {})
    template_hash = spec.get("template", {}).get("metadata", {}).get("annotations", {}) \
        .get("socialhub.dev/config-hash")
    if expected_hash is not None and template_hash != expected_hash:
        return "template not yet applied"
    if status.get("observedGeneration", 0) < meta.get("generation", 0):
        return "controller has not observed the new template"
    replicas = spec.get("replicas", 1)
    if status.get("updatedReplicas", 0) < replicas:
        return f"{status.get('updatedReplicas', 0)}/{replicas} replicas updated"
    if status.get("replicas", 0) > status.get("updatedReplicas", 0):
        return "old replicas terminating"
    if status.get("availableReplicas", 0) < replicas or not _true(deployment, "Available"):
        return f"{status.get('availableReplicas', 0)}/{replicas} replicas available"
    return None


def stalled(deployment: Manifest) -> bool:
    condition = _condition(deployment, "Progressing")
    return bool(condition and condition.get("status") == "False"
                and condition.get("reason") == "ProgressDeadlineExceeded")


def verdicts(plan: Plan, deployments: Mapping[str, Manifest], jobs: Mapping[str, Manifest],
             expected_hashes: Mapping[str, str | None]) -> list[Verdict]:
    """Ready, Progressing and Degraded, in that order, from the plan and the live children."""
    degraded: list[str] = []
    progressing: list[str] = []
    degraded_reason = progressing_reason = ""
    for service, job_name in plan.migration_jobs.items():
        job = jobs.get(job_name)
        failure = job_failure(job) if job else None
        if failure:
            degraded.append(f"{service} migration {job_name} failed ({failure})")
            degraded_reason = degraded_reason or "MigrationFailed"
        elif job is None or not _true(job, "Complete"):
            progressing.append(f"{service} migration {job_name} running")
            progressing_reason = progressing_reason or "MigrationRunning"
    if plan.topic_job:
        job = jobs.get(plan.topic_job)
        failure = job_failure(job) if job else None
        if failure:
            degraded.append(f"topic job {plan.topic_job} failed ({failure})")
            degraded_reason = degraded_reason or "TopicsFailed"
    for name, expected in expected_hashes.items():
        deployment = deployments.get(name)
        if deployment is None:
            progressing.append(f"{name} not created yet")
            progressing_reason = progressing_reason or "RollingOut"
            continue
        if stalled(deployment):
            degraded.append(f"{name} rollout exceeded its progress deadline")
            degraded_reason = degraded_reason or "RolloutStalled"
        pending = rollout_pending(deployment, expected)
        if pending:
            progressing.append(f"{name}: {pending}")
            progressing_reason = progressing_reason or "RollingOut"

    is_degraded = bool(degraded)
    is_progressing = bool(progressing) and not is_degraded
    ready = not degraded and not progressing
    return [
        Verdict("Ready", ready, "AllComponentsReady" if ready else
                (degraded_reason or progressing_reason),
                "every component runs the desired version" if ready else
                "; ".join(degraded or progressing)),
        Verdict("Progressing", is_progressing, progressing_reason if is_progressing else
                ("Degraded" if is_degraded else "Complete"),
                "; ".join(progressing) if is_progressing else ""),
        Verdict("Degraded", is_degraded, degraded_reason or "AsExpected", "; ".join(degraded)),
    ]


def conditions(found: list[Verdict], previous: list[Manifest], generation: int,
               now: datetime | None = None) -> list[Manifest]:
    """Kubernetes conditions; lastTransitionTime moves only when a status flips."""
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    before = {c.get("type"): c for c in previous}
    out = []
    for verdict in found:
        status = "True" if verdict.status else "False"
        old = before.get(verdict.type)
        changed = old is None or old.get("status") != status
        out.append({"type": verdict.type, "status": status, "reason": verdict.reason,
                    "message": verdict.message[:1024], "observedGeneration": generation,
                    "lastTransitionTime": stamp if changed or old is None
                    else old.get("lastTransitionTime", stamp)})
    return out
