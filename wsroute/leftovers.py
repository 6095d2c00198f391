"""Work that outlives a stop: tasks and threads left behind, found and named.

A handler awaiting ``asyncio.to_thread(time.sleep, 3600)`` is cancelled at
the drain timeout, but its thread keeps sleeping, and Python waits for it
twice on the way out: ``asyncio.run()`` joins the default executor's
threads, and the interpreter joins every non-daemon thread at exit
(``threading._shutdown``, and ``concurrent.futures`` registers a join of its
workers with ``threading._register_atexit``). Neither wait has a bound, so
the process would say "stopped" and never exit.

The process runner (:mod:`wsroute.server`) installs a
:class:`TrackedExecutor` as the loop's default executor, which remembers
which call each thread runs and which route's task asked for it. After the
server stopped, :func:`wind_down` cancels the tasks still pending, shuts the
executor down without waiting and gives threads a grace period; whatever
still runs is returned, described, so the runner can log it and exit the
process with ``os._exit()``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import sys
import threading
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

import attrs

from .callbacks import describe

__all__ = ["Leftovers", "TrackedExecutor", "describe_thread", "wind_down"]

T = TypeVar("T")


class TrackedExecutor(ThreadPoolExecutor):
    """asyncio's default executor (same size and thread names), remembering what each thread runs.

    ``calls`` maps a thread's ident to ``"time.sleep for route /slow"`` while
    the thread runs a call submitted from a route's task.
    """

    def __init__(self) -> None:
        super().__init__(thread_name_prefix="asyncio")
        self.calls: dict[int, str] = {}

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        label = f"{_describe_call(fn)}{_for_task()}"
        return super().submit(self._call, label, fn, *args, **kwargs)

    def _call(self, label: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        ident = threading.get_ident()
        self.calls[ident] = label
        try:
            return fn(*args, **kwargs)
        finally:
            self.calls.pop(ident, None)


@attrs.frozen
class Leftovers:
    """What still ran when :func:`wind_down` gave up waiting.

    Attributes:
        tasks: names of tasks that ignored their cancellation.
        threads: descriptions of non-daemon threads still alive (they would
            keep the interpreter from exiting).
    """

    tasks: list[str]
    threads: list[str]


async def wind_down(
    executor: TrackedExecutor, threads_before: Collection[threading.Thread], timeout: float
) -> Leftovers:
    """Cancel pending tasks, stop the executor without waiting, give threads ``timeout`` seconds.

    Runs as the last coroutine on the loop, after the server stopped.

    Args:
        executor: the loop's default executor.
        threads_before: threads that existed before serving started; they are
            the caller's business and never reported.
        timeout: seconds, shared by the tasks and the threads.

    Returns:
        The tasks and threads still running at the deadline.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current]
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending, timeout=timeout)
    stuck_tasks = sorted(task.get_name() for task in pending if not task.done())
    closing = asyncio.ensure_future(loop.shutdown_asyncgens())
    await asyncio.wait({closing}, timeout=max(0.0, deadline - loop.time()))
    executor.shutdown(wait=False, cancel_futures=True)
    before = set(threads_before)
    while (alive := _new_threads(before)) and loop.time() < deadline:
        await asyncio.sleep(0.01)
    return Leftovers(stuck_tasks, [describe_thread(thread, executor) for thread in alive])


def describe_thread(thread: threading.Thread, executor: TrackedExecutor | None = None) -> str:
    """``"asyncio_0 (time.sleep for route /slow)"``, or the thread's name and current line."""
    ident = thread.ident
    if executor is not None and ident is not None and ident in executor.calls:
        return f"{thread.name} ({executor.calls[ident]})"
    frame = sys._current_frames().get(ident) if ident is not None else None
    if frame is None:
        return thread.name
    return f"{thread.name} (at {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}())"


def _new_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t not in before and not t.daemon and t.is_alive()]


def _describe_call(fn: Any) -> str:
    """The function behind ``asyncio.to_thread``'s ``partial(context.run, func, ...)`` and friends."""
    while isinstance(fn, functools.partial):
        in_context = isinstance(getattr(fn.func, "__self__", None), contextvars.Context) and fn.args
        fn = fn.args[0] if in_context else fn.func
    return describe(fn)


def _for_task() -> str:
    try:
        task = asyncio.current_task()
    except RuntimeError:  # submitted from outside the loop's thread
        return ""
    if task is None:
        return ""
    name = task.get_name()
    return f" for route {name.removeprefix('wsroute ')}" if name.startswith("wsroute ") else f" for task {name!r}"
