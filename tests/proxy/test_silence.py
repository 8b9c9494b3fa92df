"""SilenceWatch: one timer per stream that interrupts a wait once the backend has been silent for a tick, and
tells its own interruption from any other cancellation."""

from __future__ import annotations

import asyncio

import pytest

from proxy.silence import SilenceWatch

TICK = 0.02


async def wait_once(watch: SilenceWatch, future: asyncio.Future) -> str:
    """One wait as the relay does it: 'data', 'tick', or the CancelledError that is not the watch's."""
    try:
        with watch:
            await future
    except asyncio.CancelledError:
        if not watch.quiet():
            raise
        return "tick"
    watch.last_data = asyncio.get_running_loop().time()
    return "data"


async def test_a_silent_wait_is_interrupted_after_a_tick_and_the_task_is_not_left_cancelled() -> None:
    watch = SilenceWatch(asyncio.get_running_loop(), TICK)
    never = asyncio.get_running_loop().create_future()
    assert await wait_once(watch, never) == "tick"
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0)  # no cancellation is still pending for this task
    watch.close()


async def test_a_long_silence_wakes_the_relay_once_per_tick_not_in_a_loop() -> None:
    loop = asyncio.get_running_loop()
    watch = SilenceWatch(loop, TICK)
    ticks, started = 0, loop.time()
    while loop.time() - started < 10 * TICK:
        assert await wait_once(watch, loop.create_future()) == "tick"  # a fresh wait, as readany makes
        ticks += 1
    # a timer re-armed at "last data + tick" would fire at once, again and again, after the first tick
    assert 3 <= ticks <= 12
    watch.close()


async def test_data_more_often_than_a_tick_never_interrupts_a_wait() -> None:
    loop = asyncio.get_running_loop()
    watch = SilenceWatch(loop, TICK)
    for _ in range(20):
        data = loop.create_future()
        loop.call_later(TICK / 4, data.set_result, b"x")
        assert await wait_once(watch, data) == "data"
    watch.close()


async def test_time_spent_between_waits_counts_as_silence_only_until_the_next_data() -> None:
    loop = asyncio.get_running_loop()
    watch = SilenceWatch(loop, TICK)
    await asyncio.sleep(2 * TICK)  # busy elsewhere (e.g. writing to a slow client), the timer fired unwaited
    assert await wait_once(watch, loop.create_future()) == "tick"  # the silence is already over a tick
    data = loop.create_future()
    loop.call_later(TICK / 4, data.set_result, b"x")
    assert await wait_once(watch, data) == "data"  # and after the next tick's wake-up, a fresh tick
    watch.close()


async def test_the_task_is_never_interrupted_outside_a_wait() -> None:
    """The timer outlives a wait that ended with data (it is only moved when it fires): firing while the relay
    is busy elsewhere (translating, writing to a slow client) must not cancel that work."""
    loop = asyncio.get_running_loop()
    watch = SilenceWatch(loop, TICK)
    data = loop.create_future()
    loop.call_later(TICK / 4, data.set_result, b"x")
    assert await wait_once(watch, data) == "data"
    await asyncio.sleep(3 * TICK)  # not waiting for the backend: no CancelledError here
    watch.close()


async def test_another_cancellation_during_a_wait_goes_on() -> None:
    loop = asyncio.get_running_loop()

    async def waiting() -> str:
        watch = SilenceWatch(loop, 10.0)
        try:
            return await wait_once(watch, loop.create_future())
        finally:
            watch.close()

    task = asyncio.ensure_future(waiting())
    await asyncio.sleep(TICK)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_another_cancellation_in_the_same_tick_as_the_watchs_own_goes_on() -> None:
    """Both cancellations requested before the task runs again (the client left just as the tick came): the
    task must end cancelled, not swallow the outside one as a tick."""
    loop = asyncio.get_running_loop()

    async def waiting() -> str:
        watch = SilenceWatch(loop, TICK)  # made in the task it watches, as the relay makes it
        own_check = watch._check

        def check_then_cancel_from_outside() -> None:
            own_check()
            if watch._fired:  # the watch's own cancellation was just requested: the outside one follows it
                task.cancel()

        watch._check = check_then_cancel_from_outside  # type: ignore[method-assign]
        try:
            return await wait_once(watch, loop.create_future())
        finally:
            watch.close()

    task = asyncio.ensure_future(waiting())
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_close_leaves_no_timer() -> None:
    loop = asyncio.get_running_loop()
    watch = SilenceWatch(loop, 10.0)
    with watch:
        await asyncio.sleep(0)
    assert watch._timer is not None
    watch.close()
    assert watch._timer is None
