"""The app's background work: periodic tasks survive a failed run and end with the app."""

import asyncio

from fastapi import FastAPI

from socialhub.kit.app import resources


async def test_a_periodic_task_runs_again_after_a_failure_and_stops_at_shutdown() -> None:
    runs = 0
    ran_again = asyncio.Event()

    async def work() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise ConnectionError("the store is away")
        ran_again.set()

    async with resources(FastAPI()) as res:
        res.periodic("flaky", work, every_seconds=0.01)
        await asyncio.wait_for(ran_again.wait(), timeout=10)
        task = res.tasks[-1]
    assert task.cancelled()
    runs_at_shutdown = runs
    await asyncio.sleep(0.05)
    assert runs == runs_at_shutdown
