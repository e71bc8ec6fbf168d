"""Status from the children's state: observedGeneration and Ready/Progressing/Degraded.

Pure, like rendering: the operator lists the Deployments, Jobs and pods, this decides what they
mean. Degraded wins over Progressing (a missing Secret, a pod that cannot start, a failed
migration or a stalled rollout need a human); Ready means every component runs the desired
template and is available. ReplicasCapped says which autoscalers stop short of the targets.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from socialhub_operator.render import Plan

Manifest = dict[str, Any]
# A failed Job is deleted and created again this long after it failed: its cause (an
# unreachable database, a wrong Secret) may be fixed without anyone touching the Job.
JOB_RETRY_SECONDS = 60
# On a Job created again after a failure: that failure, so the SocialHub stays Degraded with
# the same message while the retry runs.
RETRY_ANNOTATION = "socialhub.dev/retrying-after"
# Conditions whose turning True (or changing message while True) deserves a Warning Event.
WARNING_CONDITIONS = ("Degraded", "ReplicasCapped")


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
    """Why the Job failed; for a retry still running, why the Job before it failed."""
    condition = _condition(job, "Failed")
    if condition and condition.get("status") == "True":
        return f"{condition.get('reason', 'Failed')}: {condition.get('message', '')}".strip(": ")
    if _true(job, "Complete"):
        return None
    retrying: str | None = ((job.get("metadata") or {}).get("annotations") or {}).get(
        RETRY_ANNOTATION
    )
    return retrying


def retry_in(job: Manifest, now: datetime) -> float | None:
    """Seconds until a failed Job is due to be created again (0 or less: now); None if it has
    not failed."""
    condition = _condition(job, "Failed")
    if not condition or condition.get("status") != "True":
        return None
    failed_at = datetime.fromisoformat(condition.get("lastTransitionTime") or now.isoformat())
    return (failed_at + timedelta(seconds=JOB_RETRY_SECONDS) - now).total_seconds()


def rollout_pending(deployment: Manifest, expected_hash: str | None) -> str | None:
    """Why a Deployment is not yet fully rolled out and available, or None."""
    meta, spec, status = (
        deployment["metadata"],
        deployment.get("spec", {}),
        deployment.get("status", {}),
    )
    template_hash = (
        spec.get("template", {})
        .get("metadata", {})
        .get("annotations", {})
        .get("socialhub.dev/config-hash")
    )
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
    return bool(
        condition
        and condition.get("status") == "False"
        and condition.get("reason") == "ProgressDeadlineExceeded"
    )


# Why a container waits when waiting alone will not help: a person has to act (fix the image,
# the Secret, the configuration or the backing server the process dies on).
FAILING_REASONS = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CrashLoopBackOff",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


def pod_failures(pods: Iterable[Manifest]) -> list[str]:
    """`<pod>: <reason> (<message>)` for each container of `pods` stuck in a failing state."""
    found = []
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        status = pod.get("status") or {}
        for container in [
            *(status.get("initContainerStatuses") or []),
            *(status.get("containerStatuses") or []),
        ]:
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in FAILING_REASONS:
                detail = _failure_detail(container, waiting)
                found.append(
                    f"pod {pod['metadata']['name']}: {waiting['reason']}"
                    + (f" ({detail})" if detail else "")
                )
    return found


def _failure_detail(container: Manifest, waiting: Manifest) -> str:
    """The kubelet's word on why; for a crash loop how the last run ended, because its
    waiting message counts the back-off up and would make every status write a new one."""
    if waiting["reason"] == "CrashLoopBackOff":
        ended = (container.get("lastState") or {}).get("terminated") or {}
        if "exitCode" not in ended:
            return ""
        return f"last exit code {ended['exitCode']}" + (
            f", {ended['reason']}" if ended.get("reason") else ""
        )
    message: str = (waiting.get("message") or "").strip()
    return message[:200]


def verdicts(
    plan: Plan,
    deployments: Mapping[str, Manifest],
    jobs: Mapping[str, Manifest],
    expected_hashes: Mapping[str, str | None],
    *,
    pods: Iterable[Manifest] = (),
    missing_secrets: Iterable[str] = (),
) -> list[Verdict]:
    """Ready, Progressing and Degraded, in that order, from the plan and the live children."""
    degraded: list[str] = []
    progressing: list[str] = []
    degraded_reason = progressing_reason = ""
    for secret in sorted(missing_secrets):
        degraded.append(f"Secret {secret} not found (the pods read it)")
        degraded_reason = degraded_reason or "SecretMissing"
    for stuck in pod_failures(pods):
        degraded.append(stuck)
        degraded_reason = degraded_reason or "PodsFailing"
    for service, job_name in plan.migration_jobs.items():
        job = jobs.get(job_name)
        failure = job_failure(job) if job else None
        if failure:
            degraded.append(
                f"{service} migration {job_name} failed ({failure}); "
                f"retried every {JOB_RETRY_SECONDS}s"
            )
            degraded_reason = degraded_reason or "MigrationFailed"
        elif job is None or not _true(job, "Complete"):
            progressing.append(f"{service} migration {job_name} running")
            progressing_reason = progressing_reason or "MigrationRunning"
    if plan.topic_job:
        job = jobs.get(plan.topic_job)
        failure = job_failure(job) if job else None
        if failure:
            degraded.append(
                f"topic job {plan.topic_job} failed ({failure}); retried every {JOB_RETRY_SECONDS}s"
            )
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
        # Held for its migration: still to roll out, even when that Job has completed since
        # the plan was made (the next pass applies it).
        pending = (
            "waits for its migration"
            if ("Deployment", name) in plan.held
            else rollout_pending(deployment, expected)
        )
        if pending:
            progressing.append(f"{name}: {pending}")
            progressing_reason = progressing_reason or "RollingOut"

    is_degraded = bool(degraded)
    is_progressing = bool(progressing) and not is_degraded
    ready = not degraded and not progressing
    return [
        Verdict(
            "Ready",
            ready,
            "AllComponentsReady" if ready else (degraded_reason or progressing_reason),
            "every component runs the desired version"
            if ready
            else "; ".join(degraded or progressing),
        ),
        Verdict(
            "Progressing",
            is_progressing,
            progressing_reason if is_progressing else ("Degraded" if is_degraded else "Complete"),
            "; ".join(progressing) if is_progressing else "",
        ),
        Verdict("Degraded", is_degraded, degraded_reason or "AsExpected", "; ".join(degraded)),
    ]


def failed(reason: str, message: str) -> list[Verdict]:
    """What to report when the SocialHub cannot even be applied: nothing else is known."""
    return [
        Verdict("Ready", False, reason, message),
        Verdict("Progressing", False, reason, ""),
        Verdict("Degraded", True, reason, message),
    ]


def capped(plan: Plan) -> Verdict:
    """ReplicasCapped: the components whose autoscalers stop below what the spec asks."""
    names = [component for component, bounds in plan.bounds.items() if bounds.capped]
    if not names:
        return Verdict("ReplicasCapped", False, "WithinLimit", "")
    limits = ", ".join(f"{name} at most {plan.bounds[name].maximum}" for name in names)
    return Verdict(
        "ReplicasCapped",
        True,
        "TargetsAboveLimit",
        f"the capacity targets or overrides ask for more replicas than allowed "
        f"({limits}): see spec.maxReplicasPerComponent, and spec.media for posts",
    )


def warnings(previous: Iterable[Manifest], current: Iterable[Manifest]) -> list[Manifest]:
    """The WARNING_CONDITIONS that turned True or, True, changed their message: each is worth
    one Warning Event (a failure that stays the same is not reported again)."""
    before = {c.get("type"): c for c in previous}
    return [
        c
        for c in current
        if c["type"] in WARNING_CONDITIONS
        and c["status"] == "True"
        and (before.get(c["type"], {}).get("status"), before.get(c["type"], {}).get("message"))
        != ("True", c["message"])
    ]


def conditions(
    found: list[Verdict], previous: list[Manifest], generation: int, now: datetime | None = None
) -> list[Manifest]:
    """Kubernetes conditions; lastTransitionTime moves only when a status flips."""
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    before = {c.get("type"): c for c in previous}
    out = []
    for verdict in found:
        status = "True" if verdict.status else "False"
        old = before.get(verdict.type)
        changed = old is None or old.get("status") != status
        out.append(
            {
                "type": verdict.type,
                "status": status,
                "reason": verdict.reason,
                "message": verdict.message[:1024],
                "observedGeneration": generation,
                "lastTransitionTime": stamp
                if changed or old is None
                else old.get("lastTransitionTime", stamp),
            }
        )
    return out
