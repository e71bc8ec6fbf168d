"""Status decisions on hand-made children: what is Degraded, why, and when a Job is retried.

The operator's tests (test_operator.py) check the same on a real API server and kwok.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from socialhub_operator import render
from socialhub_operator.render import ClusterFacts, Instance
from socialhub_operator.spec import SocialHubSpec
from socialhub_operator.status import (
    JOB_RETRY_SECONDS,
    RETRY_ANNOTATION,
    Verdict,
    capped,
    conditions,
    failed,
    retry_in,
    verdicts,
    warnings,
)

SAMPLE = Path(__file__).resolve().parents[2] / "manifests" / "samples" / "socialhub.yaml"
NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
State = tuple[render.Plan, dict[str, Any], dict[str, Any], dict[str, str | None]]


def instance(**spec_overrides: Any) -> Instance:
    spec = yaml.safe_load(SAMPLE.read_text())["spec"]
    spec["media"]["claimName"] = "media"  # posts may scale: nothing capped
    return Instance("hub", "ns", SocialHubSpec.model_validate(spec | spec_overrides))


def rolled_out(hub: Instance) -> State:
    """The plan after every Job succeeded, its Deployments available on the desired template."""
    first = render.plan(hub, ClusterFacts())
    plan = render.plan(hub, ClusterFacts(succeeded_jobs=frozenset(first.migration_jobs.values())))
    expected: dict[str, str | None] = {
        m["metadata"]["name"]: m["spec"]["template"]["metadata"]["annotations"][
            render.HASH_ANNOTATION
        ]
        for m in plan.apply
        if m["kind"] == "Deployment"
    }
    deployments = {
        name: {
            "metadata": {"name": name, "generation": 1},
            "spec": {
                "replicas": 1,
                "template": {"metadata": {"annotations": {render.HASH_ANNOTATION: config_hash}}},
            },
            "status": {
                "observedGeneration": 1,
                "replicas": 1,
                "updatedReplicas": 1,
                "availableReplicas": 1,
                "conditions": [{"type": "Available", "status": "True"}],
            },
        }
        for name, config_hash in expected.items()
    }
    assert plan.topic_job
    jobs = {name: job("Complete") for name in [*plan.migration_jobs.values(), plan.topic_job]}
    return plan, deployments, jobs, expected


def job(condition: str | None, *, at: datetime = NOW, retrying: str | None = None) -> Any:
    conditions = (
        []
        if condition is None
        else [
            {
                "type": condition,
                "status": "True",
                "lastTransitionTime": at.isoformat(),
                "reason": "BackoffLimitExceeded" if condition == "Failed" else "",
                "message": "Job has reached the specified backoff limit"
                if condition == "Failed"
                else "",
            }
        ]
    )
    annotations = {RETRY_ANNOTATION: retrying} if retrying else {}
    return {"metadata": {"annotations": annotations}, "status": {"conditions": conditions}}


def pod(name: str, waiting: str, *, init: bool = False, **container: Any) -> dict[str, Any]:
    status = {"name": "c", "state": {"waiting": {"reason": waiting, "message": "why"}}, **container}
    key = "initContainerStatuses" if init else "containerStatuses"
    return {"metadata": {"name": name}, "status": {key: [status]}}


def by_type(found: list[Verdict]) -> dict[str, Verdict]:
    return {verdict.type: verdict for verdict in found}


def test_everything_rolled_out_is_ready() -> None:
    found = by_type(verdicts(*rolled_out(instance())))
    assert (found["Ready"].status, found["Ready"].reason) == (True, "AllComponentsReady")
    assert not found["Degraded"].status
    assert not found["Progressing"].status


def test_a_deployment_held_for_its_migration_is_still_rolling_out() -> None:
    # The Job completed after the plan was made: the next pass applies the Deployment.
    _, deployments, jobs, expected = rolled_out(instance())
    held = render.plan(instance(), ClusterFacts())
    found = by_type(verdicts(held, deployments, jobs, expected))
    assert (found["Progressing"].status, found["Progressing"].reason) == (True, "RollingOut")
    assert "hub-auth: waits for its migration" in found["Progressing"].message
    assert not found["Ready"].status


def test_pods_that_cannot_start_are_named() -> None:
    crashed: dict[str, Any] = {"lastState": {"terminated": {"exitCode": 3, "reason": "Error"}}}
    pods = [
        pod("hub-gateway-1", "ErrImagePull"),
        pod("hub-auth-1", "CrashLoopBackOff", **crashed),
        pod("hub-users-1", "ContainerCreating"),
        pod("hub-posts-1", "ImagePullBackOff", init=True),
        pod("hub-chat-1", "CreateContainerConfigError"),
    ]
    pods.append(
        pod("hub-chat-0", "CrashLoopBackOff")
        | {"metadata": {"name": "hub-chat-0", "deletionTimestamp": NOW.isoformat()}}
    )
    found = by_type(verdicts(*rolled_out(instance()), pods=pods))
    assert (found["Degraded"].status, found["Degraded"].reason) == (True, "PodsFailing")
    assert found["Degraded"].message == "; ".join(
        [
            "pod hub-gateway-1: ErrImagePull (why)",
            # the back-off message counts up: the last exit stays put, and so does the status
            "pod hub-auth-1: CrashLoopBackOff (last exit code 3, Error)",
            "pod hub-posts-1: ImagePullBackOff (why)",
            "pod hub-chat-1: CreateContainerConfigError (why)",
        ]
    )  # starting and terminating pods are nobody's problem yet
    assert not found["Ready"].status
    assert found["Ready"].message == found["Degraded"].message


def test_a_missing_secret_comes_first() -> None:
    found = by_type(
        verdicts(
            *rolled_out(instance()),
            pods=[pod("hub-auth-1", "ErrImagePull")],
            missing_secrets=["socialhub-redis"],
        )
    )
    assert found["Degraded"].reason == "SecretMissing"
    assert found["Degraded"].message.startswith(
        "Secret socialhub-redis not found (the pods read it); pod hub-auth-1"
    )


def test_a_failed_job_stays_degraded_while_it_is_retried() -> None:
    plan, deployments, jobs, expected = rolled_out(instance())
    name = plan.migration_jobs["users"]
    jobs[name] = job("Failed")
    failed_verdicts = by_type(verdicts(plan, deployments, jobs, expected))
    assert failed_verdicts["Degraded"].reason == "MigrationFailed"
    assert failed_verdicts["Degraded"].message == (
        f"users migration {name} failed (BackoffLimitExceeded: Job has reached the specified "
        f"backoff limit); retried every {JOB_RETRY_SECONDS}s"
    )

    # The Job created again carries the failure until it ends: the same message, no new Event.
    jobs[name] = job(
        None, retrying="BackoffLimitExceeded: Job has reached the specified backoff limit"
    )
    retrying = by_type(verdicts(plan, deployments, jobs, expected))
    assert retrying["Degraded"] == failed_verdicts["Degraded"]
    jobs[name] = job("Complete", retrying="BackoffLimitExceeded")
    assert by_type(verdicts(plan, deployments, jobs, expected))["Ready"].status


def test_a_failed_topic_job_is_degraded() -> None:
    plan, deployments, jobs, expected = rolled_out(instance())
    assert plan.topic_job
    jobs[plan.topic_job] = job("Failed")
    found = by_type(verdicts(plan, deployments, jobs, expected))
    assert found["Degraded"].reason == "TopicsFailed"
    assert plan.topic_job in found["Degraded"].message


def test_a_failed_job_falls_due_for_retry_after_the_interval() -> None:
    assert retry_in(job("Failed"), NOW) == JOB_RETRY_SECONDS
    assert retry_in(job("Failed", at=NOW - timedelta(seconds=JOB_RETRY_SECONDS)), NOW) == 0
    assert retry_in(job("Complete"), NOW) is None
    assert retry_in(job(None), NOW) is None


def test_a_refused_child_is_degraded_with_the_api_servers_words() -> None:
    found = by_type(failed("ApplyFailed", 'Deployment hub-users: "lots" is invalid'))
    assert (found["Degraded"].status, found["Degraded"].reason) == (True, "ApplyFailed")
    assert found["Ready"].message == 'Deployment hub-users: "lots" is invalid'
    assert not found["Progressing"].status


def test_capped_replicas_are_named_with_their_limit() -> None:
    assert capped(render.plan(instance(), ClusterFacts())) == Verdict(
        "ReplicasCapped", False, "WithinLimit", ""
    )
    verdict = capped(render.plan(instance(maxReplicasPerComponent=20), ClusterFacts()))
    assert (verdict.status, verdict.reason) == (True, "TargetsAboveLimit")
    # The sample sizes auth at 72-216, users at 12-36 and chat at 10-30 replicas; posts and
    # notifications stay below 20.
    assert "(auth at most 20, users at most 20, chat at most 20)" in verdict.message


def test_a_warning_is_written_once_per_failure() -> None:
    def written(previous: list[Any], found: list[Verdict]) -> list[Any]:
        return conditions(found, previous, 1, now=NOW)

    ready = written([], verdicts(*rolled_out(instance())))
    assert warnings([], ready) == []
    broken = written(ready, failed("ApplyFailed", "refused"))
    assert [(c["type"], c["reason"]) for c in warnings(ready, broken)] == [
        ("Degraded", "ApplyFailed")
    ]
    assert warnings(broken, written(broken, failed("ApplyFailed", "refused"))) == []
    other = written(broken, failed("ApplyFailed", "refused otherwise"))
    assert [c["message"] for c in warnings(broken, other)] == ["refused otherwise"]
    capped_now = written([], [Verdict("ReplicasCapped", True, "TargetsAboveLimit", "x")])
    assert [c["type"] for c in warnings([], capped_now)] == ["ReplicasCapped"]
