"""One timer per stream that wakes the relay when the backend has been silent for a tick (see `SilenceWatch`)."""

from __future__ import annotations

import asyncio


class SilenceWatch:
    """Wakes the relay when the backend has been silent for a `tick` while the relay waits for it.

    What `asyncio.timeout(tick)` around every read does, with one timer per stream that is only moved when it
    fires: a model writing token by token wakes the relay for every token, and creating and cancelling a timer
    for each cost ~4.5 µs in a tight loop. When the timer fires during a wait and the silence is a full tick, the
    waiting task is cancelled the way `asyncio.timeout` cancels it, and `quiet` tells that cancellation (a tick)
    from any other."""

    def __init__(self, loop: asyncio.AbstractEventLoop, tick: float) -> None:
        self.loop, self.tick = loop, tick
        self.last_data = loop.time()  # set by the relay whenever data arrives
        self._last_tick = self.last_data  # when this watch last woke the relay
        self._task = asyncio.current_task()
        self._waiting = False
        self._fired = False
        self._timer: asyncio.TimerHandle | None = None

    def __enter__(self) -> SilenceWatch:
        """Around one wait for the backend."""
        self._waiting = True
        if self._timer is None:
            self._timer = self.loop.call_at(self._due(), self._check)
        return self

    def __exit__(self, *exc: object) -> None:
        self._waiting = False

    def _due(self) -> float:
        """A tick after the last data, or after the last wake-up while the silence goes on."""
        return max(self.last_data, self._last_tick) + self.tick

    def _check(self) -> None:
        self._timer = None
        if not self._waiting:  # the next wait arms it again
            return
        now, due = self.loop.time(), self._due()
        if now < due:  # data came since the timer was set: wait for the rest of the tick
            self._timer = self.loop.call_at(due, self._check)
        elif self._task is not None:
            self._fired, self._last_tick = True, now
            self._task.cancel()

    def quiet(self) -> bool:
        """Called on a CancelledError out of a wait: True when it is this watch's own (a silent tick), which is
        then taken back; False for any other cancellation (the client left, the proxy stops), which must go on."""
        if not self._fired:
            return False
        self._fired = False
        assert self._task is not None
        return self._task.uncancel() == 0

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
