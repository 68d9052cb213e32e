"""bot/store/turns.py: the database lock's two lines, on a real event loop."""

from __future__ import annotations

import asyncio

import pytest

from bot.store.turns import MEMBER_WAITING, TwoLineLock


async def holder(lock: TwoLineLock, name: str, order: list[str], *, member: bool) -> None:
    """A task that takes the lock as a member's request would (``member``) or as the job loop would."""
    MEMBER_WAITING.set(member)
    async with lock:
        order.append(name)
        await asyncio.sleep(0)  # holds it across a turn of the loop, as a statement does


async def line_up(lock: TwoLineLock, names: list[tuple[str, bool]], order: list[str]) -> list[asyncio.Task[None]]:
    tasks = []
    for name, member in names:
        tasks.append(asyncio.create_task(holder(lock, name, order, member=member)))
        await asyncio.sleep(0)  # each reaches the lock (and waits) before the next is made
    return tasks


async def test_a_member_s_request_goes_ahead_of_the_loop_s_writes_and_each_line_keeps_its_order() -> None:
    lock, order = TwoLineLock(), []
    await lock.acquire()  # the loop holds it
    tasks = await line_up(lock, [("loop1", False), ("member1", True), ("loop2", False), ("member2", True)], order)
    lock.release()
    await asyncio.gather(*tasks)
    assert order == ["member1", "member2", "loop1", "loop2"]
    assert not lock.locked()


async def test_a_storm_of_requests_lets_one_loop_write_through_after_every_few() -> None:
    lock, order = TwoLineLock(in_a_row=2), []
    await lock.acquire()
    names = [("loop1", False), ("loop2", False)] + [(f"m{i}", True) for i in range(5)]
    tasks = await line_up(lock, names, order)
    lock.release()
    await asyncio.gather(*tasks)
    assert order == ["m0", "m1", "loop1", "m2", "m3", "loop2", "m4"]


async def test_one_holder_at_a_time_and_a_waiter_cancelled_before_or_as_it_is_handed_the_lock_passes_it_on() -> None:
    lock, order = TwoLineLock(), []
    inside = 0
    most = 0

    async def counted(name: str, member: bool) -> None:
        nonlocal inside, most
        MEMBER_WAITING.set(member)
        async with lock:
            inside += 1
            most = max(most, inside)
            order.append(name)
            await asyncio.sleep(0)
            inside -= 1

    await lock.acquire()
    waiting = asyncio.create_task(counted("cancelled-waiting", True))
    handed = asyncio.create_task(counted("cancelled-handed", True))
    last = asyncio.create_task(counted("last", False))
    await asyncio.sleep(0)
    waiting.cancel()  # cancelled while it waits in line
    await asyncio.sleep(0)
    lock.release()  # hands the lock to "cancelled-handed"...
    handed.cancel()  # ...which is cancelled before it runs: the lock must go on to "last"
    for task in (waiting, handed):
        with pytest.raises(asyncio.CancelledError):
            await task
    await asyncio.wait_for(last, timeout=1)
    assert order == ["last"] and most == 1 and not lock.locked()


async def test_a_waiter_cancelled_then_dropped_by_a_release_before_it_runs_leaves_quietly() -> None:
    """The waiter is cancelled, and before its task runs the holder lets go: the release drops the cancelled
    turn from the line. The waiter must end cancelled, not with "not in deque" (the suite met this once,
    a ValueError traceback in a bot stopped while connecting), and the lock must be free."""
    lock = TwoLineLock()
    await lock.acquire()
    waiter = asyncio.create_task(lock.acquire(first=True))
    await asyncio.sleep(0)
    waiter.cancel()
    lock.release()  # before the waiter's task runs again
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not lock.locked()
    await asyncio.wait_for(lock.acquire(), timeout=1)  # free for the next
    assert lock.locked()


async def test_a_member_s_mark_is_its_task_s_own_and_its_children_s() -> None:
    seen: dict[str, bool] = {}

    async def child() -> None:
        seen["child"] = MEMBER_WAITING.get()

    async def request() -> None:
        MEMBER_WAITING.set(True)
        await asyncio.create_task(child())
        seen["request"] = MEMBER_WAITING.get()

    await asyncio.create_task(request())
    seen["elsewhere"] = MEMBER_WAITING.get()
    assert seen == {"child": True, "request": True, "elsewhere": False}
