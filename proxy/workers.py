"""`ccbench proxy --workers N`: N processes on one port (SO_REUSEPORT), supervised by the parent.

An operator runs the proxy for days, so the parent is a supervisor, not just a fork loop: a worker that dies
(the OOM killer, a bug) is logged with its cause and replaced; a worker that keeps dying right after its start
stops the proxy instead of restarting in a storm; workers never outlive the parent (SIGKILL, SIGHUP); and a
port another process already listens on is refused, where SO_REUSEPORT would silently share it."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from proxy.config import Config
from proxy.metrics import mark_worker_dead, remove_metrics_dir, use_multiprocess_values

log = logging.getLogger("ccbench.proxy")

LISTEN_BACKLOG = 1024  # connections the kernel queues per worker socket before refusing (somaxconn caps it)
PARENT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
QUICK_DEATH = 1.0  # seconds: a worker dying this soon after its start cannot serve (bad config, a bug)
MAX_QUICK_DEATHS = 3  # in a row: then the proxy stops, rather than restarting workers in a storm
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

Serve = Callable[..., Coroutine[Any, Any, None]]


def exit_cause(status: int) -> str:
    """How a child ended, from its `os.wait` status, in the words an operator reads in the log."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = str(number)
        return f"was killed by signal {name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


def listen_socket(host: str, port: int, family: socket.AddressFamily) -> socket.socket:
    """A listening socket that other workers of this proxy can share."""
    return socket.create_server((host, port), family=family, backlog=LISTEN_BACKLOG, reuse_port=True)


def check_port_free(host: str, port: int, family: socket.AddressFamily) -> None:
    """OSError (EADDRINUSE) when another process listens on the port: binding without SO_REUSEPORT fails then,
    while binding with it would join that process and take half of its connections."""
    if port == 0:
        return
    with socket.create_server((host, port), family=family, reuse_port=False):
        pass


def die_with_parent(parent: int) -> None:
    """Ask Linux to send this worker SIGTERM when its parent dies, even by SIGKILL (which the parent cannot
    forward); elsewhere, or when the parent is already gone, do what we can."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is not None:
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(libc_name, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # died between the fork and the prctl
        os.kill(os.getpid(), signal.SIGTERM)


@dataclass
class Supervisor:
    """The parent of the workers: starts them, forwards stop signals, replaces the ones that die."""

    config: Config
    family: socket.AddressFamily
    serve: Serve
    port: int = 0
    first: socket.socket | None = None  # the parent's socket, handed to worker 0 at the start
    children: dict[int, tuple[int, float]] = field(default_factory=dict)  # pid -> (worker number, started)
    stopping: bool = False
    failed: bool = False
    quick_deaths: int = 0

    def forward(self, signum: int, frame: object) -> None:
        """Stop every worker (SIGHUP as SIGTERM: the terminal closing is a stop, not a reload)."""
        self.stopping = True
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM if signum == signal.SIGHUP else signum)

    def start(self, number: int) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            self._be_worker(number, parent)
        self.children[pid] = (number, time.monotonic())
        if self.stopping:  # a stop signal came between the fork and the line above: `forward` missed it
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def _be_worker(self, number: int, parent: int) -> None:
        """The child side: its own event loop on a socket of the shared port; never returns."""
        status = 0
        try:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the parent forwards it as SIGTERM
            die_with_parent(parent)
            use_multiprocess_values()
            if number == 0 and self.first is not None:
                sock = self.first
            else:  # a socket of its own: one left open here but never accepted on would hang clients
                if self.first is not None:
                    self.first.close()
                sock = listen_socket(self.config.host, self.port, self.family)
            sock.setblocking(False)
            asyncio.run(
                self.serve(self.config, sock=sock, show_banner=number == 0 and self.first is not None)
            )
        except BaseException:
            log.exception("worker %d failed", number)
            status = 1
        finally:
            if os.getppid() != parent:  # orphaned (the parent was SIGKILLed): nobody else will remove it
                remove_metrics_dir()
            logging.shutdown()  # os._exit skips atexit: write what the log handlers still hold
            os._exit(status)

    def reap(self, pid: int, status: int) -> None:
        """Book a worker's end; replace it unless the proxy is stopping or workers keep dying at start."""
        number, started = self.children.pop(pid)
        mark_worker_dead(pid)
        if self.stopping:
            self.failed |= os.waitstatus_to_exitcode(status) != 0
            return
        quick = time.monotonic() - started < QUICK_DEATH
        self.quick_deaths = self.quick_deaths + 1 if quick else 0
        if self.quick_deaths >= MAX_QUICK_DEATHS:
            log.error(
                "worker %d (pid %d) %s; workers died within %g s of starting %d times in a row: stopping the proxy",
                number,
                pid,
                exit_cause(status),
                QUICK_DEATH,
                self.quick_deaths,
            )
            self.failed = True
            self.forward(signal.SIGTERM, None)
            return
        log.warning("worker %d (pid %d) %s; starting a new one", number, pid, exit_cause(status))
        self.start(number)

    def run(self) -> int:
        check_port_free(self.config.host, self.config.port, self.family)
        self.first = listen_socket(self.config.host, self.config.port, self.family)
        self.port = self.first.getsockname()[1]  # the real port, also when asked for port 0
        for sig in PARENT_SIGNALS:  # before forking: a signal can never find the parent unprepared
            signal.signal(sig, self.forward)
        try:
            for number in range(self.config.workers):
                self.start(number)
        finally:
            self.first.close()
            self.first = None  # replacements listen on sockets of their own
        while self.children:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            if pid in self.children:
                self.reap(pid, status)
        return 1 if self.failed else 0


def run_workers(config: Config, family: socket.AddressFamily, serve: Serve) -> int:
    """Serve with `config.workers` supervised processes; the exit status is 0 when all stopped cleanly."""
    return Supervisor(config, family, serve).run()
