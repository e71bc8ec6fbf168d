"""The operator's work queue: bursts of events collapse, one SocialHub is never reconciled twice
at once, and an event during a reconciliation is not lost."""

import asyncio

from socialhub_operator.handlers import WorkQueue

KEY = ("ns", "hub")


async def test_queued_key_is_not_queued_twice() -> None:
    queue = WorkQueue()
    for _ in range(5):
        queue.add(KEY)
    queue.add(("ns", "other"))
    assert await queue.get() == KEY
    assert await queue.get() == ("ns", "other")
    queue.done(KEY)
    queue.done(("ns", "other"))
    with_timeout = asyncio.wait_for(queue.get(), timeout=0.05)
    try:
        await with_timeout
    except TimeoutError:
        pass
    else:
        raise AssertionError("a burst of events was reconciled more than once")


async def test_event_during_reconciliation_requeues_after_it() -> None:
    queue = WorkQueue()
    queue.add(KEY)
    assert await queue.get() == KEY
    queue.add(KEY)  # arrives while a worker holds KEY: must not be handed to a second worker
    try:
        await asyncio.wait_for(queue.get(), timeout=0.05)
    except TimeoutError:
        pass
    else:
        raise AssertionError("the same SocialHub went to two workers at once")
    queue.done(KEY)
    assert await asyncio.wait_for(queue.get(), timeout=1) == KEY
