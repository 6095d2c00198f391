"""Handler classes: one instance per connection, the framework owns the loop.

The websockets FAQ's most common questions — "why does the server close the
connection after one message?", "why does it close prematurely?" — come from
hand-written receive loops. A :class:`Handler` has no loop to get wrong::

    @app.route("/rooms/{room}")
    class Room(wsroute.Handler):
        async def on_connect(self):
            await self.subscribe(f"room:{self.params['room']}")

        @wsroute.on("say")                 # JSON messages {"type": "say", ...}
        async def say(self, data):
            await self.app.hub.publish_json(f"room:{self.params['room']}", data)

        async def on_message(self, message):   # everything else
            ...

Dependencies are constructor arguments: declare them as attrs fields (or
``__init__`` parameters) and wsroute binds them once with
``functools.partial``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.protocol import State

from .callbacks import describe, is_async_callable
from .dispatch import decode_typed
from .errors import HandlerError
from .jsonutil import encode_json

if TYPE_CHECKING:
    from websockets.http11 import Request

    from .app import App
    from .connection import Connection

__all__ = ["Handler", "check_handler_class", "on"]

logger = logging.getLogger("wsroute.handlers")

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

_ON_ATTR = "__wsroute_on__"

#: The session's failure report: ``await on_error(exc, "handler")``.
OnError = Callable[[Exception, str], Coroutine[Any, Any, None]]


def on(message_type: str) -> Callable[[F], F]:
    """Mark a ``Handler`` method as the receiver of JSON messages of one type.

    The method is called with the decoded message (a dict). Messages without a
    matching method go to :meth:`Handler.on_message`.
    """
    if not isinstance(message_type, str) or not message_type:
        raise TypeError(f"@wsroute.on() needs a non-empty message type str (got {message_type!r})")

    def mark(method: F) -> F:
        is_async = inspect.iscoroutinefunction(method)
        if not is_async:
            raise TypeError(f"@wsroute.on({message_type!r}): {method.__qualname__} must be 'async def'")
        setattr(method, _ON_ATTR, message_type)
        return method

    return mark


#: The methods the framework awaits, with the parameters they receive.
_AWAITED = {
    "on_connect": "(self)",
    "on_message": "(self, message)",
    "on_disconnect": "(self, code, reason)",
    "on_presence": "(self, topic, event, user_id)",
}


def check_handler_class(path: str, cls: type[Handler]) -> None:
    """Refuse a Handler subclass whose awaited methods are not ``async def``.

    wsroute awaits ``on_connect``, ``on_message``, ``on_disconnect``,
    ``on_presence`` and every ``@wsroute.on`` method. A plain ``def`` there
    would only fail at the first connection (``TypeError: object NoneType
    can't be used in 'await' expression``, closed with 1011), so it is an
    error when the route is registered. This also catches a subclass that
    overrides an ``@on`` method with a plain ``def`` of the same name.

    Raises:
        HandlerError: naming the route, the method and the ``async def`` to write.
    """
    for name, params in _AWAITED.items():
        method = getattr(cls, name, None)
        if not is_async_callable(method):
            raise _not_async(path, cls, name, method, f"async def {name}{params}: ...", "wsroute awaits it")
    for kind, method in cls._wsroute_dispatch.items():
        if not is_async_callable(method):
            name = getattr(method, "__name__", repr(method))
            why = f"it receives messages of type {kind!r} and wsroute awaits it"
            raise _not_async(path, cls, name, method, f"async def {name}(self, data): ...", why)


def _not_async(path: str, cls: type, name: str, method: Any, fix: str, why: str) -> HandlerError:
    what = "a plain 'def'" if callable(method) else f"{method!r}, not a method"
    return HandlerError(
        f"route {path!r}: {describe(cls)}.{name} is {what}, but {why}; define it as '{fix}' "
        "(run blocking work with 'await asyncio.to_thread(...)')"
    )


class Handler:
    """Base class for per-connection handler objects.

    Override any of :meth:`on_connect`, :meth:`on_message`,
    :meth:`on_disconnect`, and add ``@wsroute.on("type")`` methods.

    Attributes available from ``on_connect`` on:
        ws: the :class:`~wsroute.connection.Connection` (websockets'
            ``ServerConnection``).
        app: the :class:`~wsroute.App`.
        params: converted path parameters.
        request: the opening handshake request (headers, path).
        ctx: what middleware stored in ``conn.ctx``.
        first_message: the decoded first message on message-routed paths.
    """

    #: ``{"type": function}``, built once per subclass.
    _wsroute_dispatch: ClassVar[dict[str, Callable[[Any, Any], Awaitable[Any]]]] = {}

    ws: Connection
    app: App

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The functions are looked up by the name they had, so a subclass that
        # overrides an @on method without re-decorating it still wins.
        names: dict[str, str] = {}
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                kind = getattr(value, _ON_ATTR, None)
                if kind is not None:
                    names[kind] = name
        cls._wsroute_dispatch = {kind: getattr(cls, name) for kind, name in names.items()}

    # -- what subclasses override ------------------------------------------

    async def on_connect(self) -> None:
        """Called once the connection is open, before any message."""

    async def on_message(self, message: str | bytes) -> None:
        """Called with every message no ``@on`` method took. Default: ignore it."""
        logger.debug("%s: unhandled message ignored", type(self).__qualname__)

    async def on_disconnect(self, code: int, reason: str) -> None:
        """Called once when the connection is closed, whatever closed it."""

    # -- what subclasses call ----------------------------------------------

    @property
    def params(self) -> dict[str, Any]:
        return self.ws.params

    @property
    def ctx(self) -> Any:
        return self.ws.ctx

    @property
    def request(self) -> Request | None:
        return self.ws.request

    @property
    def first_message(self) -> Any:
        return self.ws.first_message

    @property
    def client_ip(self) -> str | None:
        return self.ws.client_ip

    async def send(self, message: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message."""
        await self.ws.send(message)

    async def send_json(self, obj: Any) -> None:
        """Send ``obj`` as JSON text."""
        await self.ws.send(encode_json(obj))

    async def close(self, code: int = CloseCode.NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection; ``on_disconnect`` follows.

        ``reason`` is cut at a character boundary to the 123 bytes of UTF-8 a
        close frame can carry (``"..."`` marks the cut), so the client gets
        ``code`` whatever the reason's length.
        """
        await self.ws.close(code, reason)

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Run ``coro`` in the background for the life of this connection.

        The task is cancelled when the connection closes, so it cannot outlive
        the client (the FAQ's "handler exits prematurely" without the leak).
        An exception in it is a handler failure: logged once with the route
        and the task's name, and the connection is closed with the code the
        ``wsroute_handle_exception`` hook chooses (1011 by default), before
        ``on_disconnect`` runs.

        Args:
            coro: the coroutine to run, e.g. ``self.ticker()``.
            name: the task's name in logs and task dumps; default
                ``"<connection task>:<coroutine name>"``, e.g.
                ``"wsroute /rooms/{room}:Room.ticker"``.
        """
        if name is None:
            current = asyncio.current_task()
            owner = current.get_name() if current is not None else type(self).__qualname__
            name = f"{owner}:{getattr(coro, '__qualname__', 'spawned')}"
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks().add(task)
        task.add_done_callback(self._task_done)
        return task

    async def subscribe(self, topic: str, *, presence: bool = False) -> None:
        """Receive what is published to ``topic`` until unsubscribed or closed.

        With ``presence=True``, :meth:`on_presence` is called when users join
        or leave the topic.
        """
        callback = self.on_presence if presence else None
        await self.app.hub.subscribe(self.ws, topic, on_presence=callback)

    async def unsubscribe(self, topic: str) -> None:
        """Stop receiving ``topic``."""
        await self.app.hub.unsubscribe(self.ws, topic)

    async def on_presence(self, topic: str, event: str, user_id: str) -> None:
        """Called with ``event`` "join" or "leave" for topics subscribed with presence."""

    # -- the lifecycle the framework runs ----------------------------------

    def _tasks(self) -> set[asyncio.Task[Any]]:
        tasks: set[asyncio.Task[Any]] | None = self.__dict__.get("_wsroute_tasks")
        if tasks is None:
            tasks = self.__dict__["_wsroute_tasks"] = set()
        return tasks

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        """A spawned task ended: report its exception like a handler's."""
        self._tasks().discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if not isinstance(exc, Exception):
            return
        if isinstance(exc, ConnectionClosed) and self.ws.protocol.state is not State.OPEN:
            return  # this client left: not a failure
        on_error: OnError | None = self.__dict__.get("_wsroute_on_error")
        if on_error is None:  # pragma: no cover - spawn() before the session ran the handler
            logger.error("background task %r of %s failed", task.get_name(), type(self).__qualname__, exc_info=exc)
            return
        report = asyncio.get_running_loop().create_task(on_error(exc, f"background task {task.get_name()!r}"))
        reports: set[asyncio.Task[None]] = self.__dict__.setdefault("_wsroute_reports", set())
        reports.add(report)  # kept until done, and awaited before on_disconnect
        report.add_done_callback(reports.discard)

    async def _run(self, message_key: str, on_error: OnError) -> None:
        """Connect, dispatch every message, always disconnect.

        ``on_error(exc, source)`` (the session's) logs an exception once with
        the route and ``source`` ("handler", or the background task's name)
        and closes the connection with the chosen code *before*
        ``on_disconnect`` runs, so ``on_disconnect`` reports exactly what the
        client received.
        """
        ws = self.ws
        self.__dict__["_wsroute_on_error"] = on_error
        try:
            await self.on_connect()
            dispatch = self._wsroute_dispatch
            if dispatch:
                while True:
                    message = await ws.recv()
                    typed = decode_typed(message, message_key)
                    method = dispatch.get(typed[0]) if typed is not None else None
                    if method is None:
                        await self.on_message(message)
                    else:
                        await method(self, typed[1])  # type: ignore[index]
            else:
                while True:
                    await self.on_message(await ws.recv())
        except ConnectionClosed as exc:
            if ws.protocol.state is State.OPEN:  # another socket closed, not this client
                await on_error(exc, "handler")
        except Exception as exc:
            await on_error(exc, "handler")
        finally:
            await self._stop_tasks()
            await self._disconnect()

    async def _stop_tasks(self) -> None:
        """Cancel spawned tasks, let their ``finally`` blocks run, finish failure reports."""
        tasks = list(self.__dict__.get("_wsroute_tasks", ()))
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        reports = list(self.__dict__.get("_wsroute_reports", ()))
        if reports:
            await asyncio.gather(*reports, return_exceptions=True)

    async def _disconnect(self) -> None:
        ws = self.ws
        if ws.close_code is None:
            # Cancelled (server shutdown past the drain timeout) with the
            # connection open: websockets closes it with 1011 next.
            code, reason = int(CloseCode.INTERNAL_ERROR), ""
        else:
            code, reason = ws.close_code, ws.close_reason or ""
        await self.on_disconnect(code, reason)
