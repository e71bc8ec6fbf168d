"""Kopf wiring: events from SocialHubs and their children feed one work queue.

Kopf's change handlers keep per-object progress in the object itself and its daemons need
finalizers; neither is needed here. Every event (a spec change, a child edited, deleted or
progressing, one of its pods failing, a Secret its pods read changed) only queues its
SocialHub; workers run one reconciliation per SocialHub at a time (a burst of events collapses
into one), a reconciliation may ask to run again later (a failed Job's retry), and a periodic
resync catches anything missed, such as a fixed cause that sends no event.
"""

import asyncio
import contextlib
import logging
from typing import Any

import kopf
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.dynamic.exceptions import DynamicApiError

from socialhub_operator.reconcile import RETRY_SECONDS, Reconciler
from socialhub_operator.render import MANAGED_BY
from socialhub_operator.spec import API_VERSION, GROUP, KIND, PLURAL, VERSION

log = logging.getLogger(__name__)
Key = tuple[str, str]  # namespace, name
WORKERS = 2
RESYNC_SECONDS = 60.0
# Strimzi's KafkaTopics are not watched: their CRD may come and go with Strimzi, and kopf
# ends the whole operator when a watched resource's API disappears mid-watch (seen: "404 page
# not found"). The resync puts a hand-deleted KafkaTopic back within RESYNC_SECONDS.
# Secrets have their own handler below.
CHILDREN = (
    ("", "v1", "services"),
    ("", "v1", "configmaps"),
    ("apps", "v1", "deployments"),
    ("batch", "v1", "jobs"),
    ("autoscaling", "v2", "horizontalpodautoscalers"),
    ("policy", "v1", "poddisruptionbudgets"),
)


class WorkQueue:
    """A deduplicating queue: a key is queued at most once and processed by one worker."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._queued: set[Key] = set()
        self._active: set[Key] = set()
        self._again: set[Key] = set()
        self.known: set[Key] = set()

    def add(self, key: Key) -> None:
        if key in self._active:
            self._again.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    async def get(self) -> Key:
        key = await self._queue.get()
        self._queued.discard(key)
        self._active.add(key)
        return key

    def done(self, key: Key) -> None:
        self._active.discard(key)
        if key in self._again:
            self._again.discard(key)
            self.add(key)


class Runtime:
    def __init__(self) -> None:
        self.queue = WorkQueue()
        self.tasks: list[asyncio.Task[None]] = []
        self.reconciler: Reconciler | None = None
        # The Secrets each SocialHub's pods read, as its last reconciliation found them.
        self.secrets_read: dict[Key, frozenset[str]] = {}
        # One pending "reconcile again later" per SocialHub: the latest pass's wish replaces it.
        self._later: dict[Key, asyncio.TimerHandle] = {}

    async def start(self) -> None:
        try:
            k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
        except k8s_config.ConfigException:
            k8s_config.load_kube_config()  # type: ignore[no-untyped-call]
        self.reconciler = Reconciler(k8s.ApiClient())
        self.tasks = [asyncio.create_task(self._worker()) for _ in range(WORKERS)]
        self.tasks.append(asyncio.create_task(self._resync()))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            try:
                assert self.reconciler is not None
                outcome = await asyncio.to_thread(self.reconciler.reconcile, *key)
                self.secrets_read[key] = outcome.secrets_read
                if outcome.recheck_in is not None:
                    self._again_in(outcome.recheck_in, key)
            except DynamicApiError as error:
                # e.g. 403 while the namespace terminates: the API's answer says enough.
                log.warning(
                    "reconciling %s/%s failed (%s: %s); retrying in %.0fs",
                    *key,
                    error.status,
                    error.summary(),  # type: ignore[no-untyped-call]
                    RETRY_SECONDS,
                )
                self._again_in(RETRY_SECONDS, key)
            except Exception:
                log.exception("reconciling %s/%s failed; retrying in %.0fs", *key, RETRY_SECONDS)
                self._again_in(RETRY_SECONDS, key)
            finally:
                self.queue.done(key)

    def _again_in(self, seconds: float, key: Key) -> None:
        if pending := self._later.get(key):
            pending.cancel()
        self._later[key] = asyncio.get_running_loop().call_later(seconds, self.queue.add, key)

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(RESYNC_SECONDS)
            for key in list(self.queue.known):
                self.queue.add(key)


RUNTIME = Runtime()


@kopf.on.startup()
async def _startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    await RUNTIME.start()


@kopf.on.cleanup()
async def _cleanup(**_: Any) -> None:
    await RUNTIME.stop()


@kopf.on.event(GROUP, VERSION, PLURAL)
async def _socialhub_event(type: str, namespace: str | None, name: str, **_: Any) -> None:
    key = (namespace or "", name)
    if type == "DELETED":
        RUNTIME.queue.known.discard(key)
        RUNTIME.secrets_read.pop(key, None)
        return
    RUNTIME.queue.known.add(key)
    RUNTIME.queue.add(key)


async def _child_event(meta: kopf.Meta, namespace: str | None, **_: Any) -> None:
    for owner in meta.get("ownerReferences") or []:
        if owner.get("apiVersion") == API_VERSION and owner.get("kind") == KIND:
            RUNTIME.queue.add((namespace or "", owner["name"]))


for _group, _version, _plural in CHILDREN:
    kopf.on.event(_group, _version, _plural, labels={"app.kubernetes.io/managed-by": MANAGED_BY})(
        _child_event
    )


@kopf.on.event("", "v1", "pods", labels={"app.kubernetes.io/managed-by": MANAGED_BY})
async def _pod_event(labels: kopf.Labels, namespace: str | None, **_: Any) -> None:
    """A pod that fails to pull or keeps crashing changes no Deployment's status: watch them."""
    instance = labels.get("app.kubernetes.io/instance")
    if instance:
        RUNTIME.queue.add((namespace or "", instance))


@kopf.on.event("", "v1", "secrets")
async def _secret_event(meta: kopf.Meta, namespace: str | None, name: str, **_: Any) -> None:
    """The generated JWT Secret is a child; any Secret may be one a SocialHub's pods read."""
    await _child_event(meta=meta, namespace=namespace)
    for key, names in list(RUNTIME.secrets_read.items()):
        if key[0] == namespace and name in names:
            RUNTIME.queue.add(key)
