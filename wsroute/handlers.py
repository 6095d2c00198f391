"""Handler classes: one instance per connection, the framework owns the loop.

The websockets FAQ's most common questions — "why does the server close the
connection after one message?", "why does it close prematurely?" — come from
hand-written receive loops. A :class:`Handler` has no loop to get wrong::

    @app.route("/rooms/{room}")
    class Room(wsroute.Handler):
        async def on_connect(self):
            await self.subscribe(f"room:{self.params['room']}")

        @wsroute.on("say")                 # JSON messages {"type": "say", ...}, as a dict
        async def say(self, data):
            await self.app.hub.publish_json(f"room:{self.params['room']}", data)

        @wsroute.on(Move)                  # a @wsroute.message class: validated, then a Move
        async def move(self, msg: Move):
            await self.send_json(Moved(x=msg.x, y=msg.y))   # {"type": "moved", ...}

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
from .dispatch import UndecodableMessage, decode_json, decode_typed
from .errors import HandlerError
from .jsonutil import encode_json
from .messages import InvalidMessage, MessageCodec, error_reply, message_name

if TYPE_CHECKING:
    from websockets.http11 import Request

    from .app import App
    from .connection import Connection
    from .hub.history import Position, Recovery

__all__ = ["Handler", "check_handler_class", "on"]

logger = logging.getLogger("wsroute.handlers")

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

_ON_ATTR = "__wsroute_on__"

#: Group messages (``subscribe(topic, dispatch=True)``) that may wait for their ``@on`` method.
GROUP_QUEUE = 1024

#: The session's failure report: ``await on_error(exc, "handler")``.
OnError = Callable[[Exception, str], Coroutine[Any, Any, None]]


def on(message_type: str | type) -> Callable[[F], F]:
    """Mark a ``Handler`` method as the receiver of JSON messages of one type.

    Args:
        message_type: a wire name (``"move"``): the method receives the
            decoded message, a dict; or a :func:`wsroute.message` class
            (``Move``): the message is decoded and validated into an instance
            first. An invalid one never reaches the method: the client gets an
            error reply (or a 1008 close, see ``on_invalid_message``).

    Messages without a matching method go to :meth:`Handler.on_message`.

    Raises:
        TypeError: an empty name, a class that is not a message class, or a
            method that is not ``async def``.
    """
    if isinstance(message_type, type):
        if message_name(message_type) is None:
            raise TypeError(
                f"@wsroute.on({describe(message_type)}): not a message class; decorate it with "
                "@wsroute.message('name'), or pass the type name as a str to receive dicts"
            )
        shown = describe(message_type)
    elif not isinstance(message_type, str) or not message_type:
        raise TypeError(
            f"@wsroute.on() needs a non-empty message type str or a @wsroute.message class (got {message_type!r})"
        )
    else:
        shown = repr(message_type)

    def mark(method: F) -> F:
        is_async = inspect.iscoroutinefunction(method)
        if not is_async:
            raise TypeError(f"@wsroute.on({shown}): {method.__qualname__} must be 'async def'")
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
    overrides an ``@on`` method with a plain ``def`` of the same name. Two
    ``@on`` entries taking one wire name, and a ``sends`` that is not a tuple
    of message classes, are refused here too.

    Raises:
        HandlerError: naming the route and the method (with the ``async def``
            to write), the two ``@on`` entries, or the bad ``sends``.
    """
    for name, params in _AWAITED.items():
        method = getattr(cls, name, None)
        if not is_async_callable(method):
            raise _not_async(path, cls, name, method, f"async def {name}{params}: ...", "wsroute awaits it")
    if cls._wsroute_conflicts:
        raise HandlerError(f"route {path!r}: {cls._wsroute_conflicts[0]}")
    sends = cls.sends
    if not isinstance(sends, tuple) or not all(message_name(item) is not None for item in sends):
        raise HandlerError(
            f"route {path!r}: {describe(cls)}.sends is {sends!r}; expected a tuple of @wsroute.message classes "
            "such as 'sends = (Moved,)'"
        )
    for kind, method in cls._wsroute_dispatch.items():
        if not is_async_callable(method):
            name = getattr(method, "__name__", repr(method))
            why = f"it receives messages of type {kind!r} and wsroute awaits it"
            raise _not_async(path, cls, name, method, f"async def {name}(self, data): ...", why)


def _shown(kind: str | type) -> str:
    return repr(kind) if isinstance(kind, str) else describe(kind)


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
    #: ``{"type": message class}`` for the typed ``@on`` entries.
    _wsroute_typed: ClassVar[dict[str, type]] = {}
    #: What makes the dispatch table ambiguous, reported when the route is registered.
    _wsroute_conflicts: ClassVar[tuple[str, ...]] = ()

    #: Message classes this handler sends, for the AsyncAPI document (optional).
    sends: ClassVar[tuple[type, ...]] = ()

    ws: Connection
    app: App

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # The functions are looked up by the name they had, so a subclass that
        # overrides an @on method without re-decorating it still wins.
        marked: list[tuple[str, str | type]] = []
        for klass in reversed(cls.__mro__):
            for name, value in vars(klass).items():
                kind = getattr(value, _ON_ATTR, None)
                if kind is not None:
                    marked.append((name, kind))
        latest = dict(marked)  # a re-decorated method keeps only its last @on
        by_kind = {kind: name for name, kind in marked if latest[name] == kind}
        dispatch: dict[str, Callable[[Any, Any], Awaitable[Any]]] = {}
        typed: dict[str, type] = {}
        owners: dict[str, str | type] = {}
        conflicts: list[str] = []
        for kind, name in by_kind.items():
            wire = kind if isinstance(kind, str) else message_name(kind)
            assert wire is not None  # on() accepts message classes only
            other = owners.get(wire)
            if other is not None:
                conflicts.append(
                    f"{describe(cls)}: @wsroute.on({_shown(other)}) and @wsroute.on({_shown(kind)}) both receive "
                    f"messages of type {wire!r}; keep one method per type"
                )
            owners[wire] = kind
            dispatch[wire] = getattr(cls, name)
            if not isinstance(kind, str):
                typed[wire] = kind
        cls._wsroute_dispatch = dispatch
        cls._wsroute_typed = typed
        cls._wsroute_conflicts = tuple(conflicts)

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
        """Send ``obj`` as compact JSON text.

        An instance of a :func:`wsroute.message` class gains its type field
        under the app's ``message_key``: ``Moved(by="ann", x=1, y=2)`` is sent
        as ``{"type":"moved","by":"ann","x":1,"y":2}``.
        """
        await self.ws.send(encode_json(obj, self.app.message_key))

    async def recv_json(self) -> Any:
        """Receive the next message decoded as JSON (``ws.recv_json()``); for ``on_connect``.

        Raises:
            wsroute.BadMessage: binary or not JSON; uncaught, it closes the
                connection with 1003/1008 and the reason.
        """
        return await self.ws.recv_json()

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

    async def subscribe(
        self, topic: str, *, presence: bool = False, dispatch: bool = False, since: Position | None = None
    ) -> Recovery | None:
        """Receive what is published to ``topic`` until unsubscribed or closed.

        With ``presence=True``, :meth:`on_presence` is called when users join
        or leave the topic.

        With ``dispatch=True`` (Channels' ``group_send``), messages published
        on ``topic`` are not forwarded to the client: each JSON object with a
        type (``hub.publish_json(topic, {"type": "chat.message", ...})``, or
        an instance of a :func:`wsroute.message` class) calls this handler's
        ``@on`` method for that type, which decides what to send; a typed
        ``@on(Class)`` method receives the message validated into its class
        (one that does not fit is logged and ignored). They run one at a time, in publication order, in a
        background task of this connection (:meth:`spawn`), so an exception
        there is a handler failure and ``raise wsroute.Close(...)`` closes.
        A message that is binary, not a JSON object with a type, or of a type
        no ``@on`` method takes is logged (WARNING) and ignored. At most
        :data:`GROUP_QUEUE` messages wait; past that new ones are dropped
        with a warning (a handler that slow would otherwise grow memory).

        On a topic with history (``app.hub.history()``), ``since`` is the
        client's last :class:`~wsroute.Position`: what it missed is sent
        first, then live messages, and the :class:`~wsroute.Recovery` says
        what happened (docs/history.md)::

            since = wsroute.Position.parse(self.ws.query.get("since", [""])[0])
            result = await self.subscribe("room:1", since=since)
            if not result.recovered:
                ...  # send the client a fresh state

        Returns:
            A :class:`~wsroute.Recovery` on a history topic, else None.

        Raises:
            SubscriptionLimit: the connection already has ``max_subscriptions``
                topics (default 1000); unsubscribe from one first.
        """
        callback = self.on_presence if presence else None
        on_message = self._group_inbox() if dispatch else None
        return await self.app.hub.subscribe(self.ws, topic, on_presence=callback, on_message=on_message,
                                            since=since)

    async def unsubscribe(self, topic: str) -> None:
        """Stop receiving ``topic``."""
        await self.app.hub.unsubscribe(self.ws, topic)

    async def on_presence(self, topic: str, event: str, user_id: str) -> None:
        """Called with ``event`` "join" or "leave" for topics subscribed with presence."""

    # -- the lifecycle the framework runs ----------------------------------

    def _group_inbox(self) -> Callable[[bool, bytes], None]:
        """The hub callback for dispatched topics: queue, and start the loop that dispatches (once)."""
        existing: Callable[[bool, bytes], None] | None = self.__dict__.get("_wsroute_group")
        if existing is not None:
            return existing
        inbox: asyncio.Queue[bytes] = asyncio.Queue(GROUP_QUEUE)
        label = type(self).__qualname__

        def put(text: bool, payload: bytes) -> None:
            if not text:
                logger.warning("%s: binary message on a dispatched topic ignored (expected JSON)", label)
                return
            try:
                inbox.put_nowait(payload)
            except asyncio.QueueFull:
                logger.warning("%s: %d group messages waiting; this one is dropped", label, GROUP_QUEUE)

        self.__dict__["_wsroute_group"] = put
        self.spawn(self._group_events(inbox), name=f"{label}:group events")
        return put

    async def _group_events(self, inbox: asyncio.Queue[bytes]) -> None:
        """Call the ``@on`` method of each group message, in order, until the connection ends."""
        key = self.app.message_key
        label = type(self).__qualname__
        while True:
            payload = await inbox.get()
            typed = decode_typed(payload.decode("utf-8", "replace"), key)
            if typed is None:
                logger.warning("%s: group message is not a JSON object with a %r field; ignored", label, key)
                continue
            kind, data = typed
            method = self._wsroute_dispatch.get(kind)
            if method is None:
                logger.warning("%s: no @on(%r) method for this group message; ignored", label, kind)
                continue
            codec: MessageCodec | None = self.__dict__.get("_wsroute_codec")
            if codec is not None and kind in self._wsroute_typed:
                try:
                    data = codec.decode(kind, payload.decode("utf-8", "replace"))
                except InvalidMessage as exc:
                    logger.warning("%s: group message of type %r does not fit its class: %s; ignored", label, kind, exc)
                    continue
            await method(self, data)

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

    async def _run(
        self, message_key: str, on_error: OnError, codec: MessageCodec | None = None, close_invalid: bool = False
    ) -> None:
        """Connect, dispatch every message, always disconnect.

        ``on_error(exc, source)`` (the session's) logs an exception once with
        the route and ``source`` ("handler", or the background task's name)
        and closes the connection with the chosen code *before*
        ``on_disconnect`` runs, so ``on_disconnect`` reports exactly what the
        client received. ``codec`` (built once per route) decodes the typed
        ``@on`` entries; ``close_invalid`` says what an invalid one gets.

        Message spans (``wsroute.otel``) come from the connection's ``recv()``;
        ``app.message_tracer``, when set, is told the type of each message
        dispatched to an ``@on`` method (one ``is not None`` test otherwise).
        """
        ws = self.ws
        self.__dict__["_wsroute_on_error"] = on_error
        self.__dict__["_wsroute_codec"] = codec  # for group events (subscribe(dispatch=True))
        try:
            await self.on_connect()
            dispatch = self._wsroute_dispatch
            tracer = self.app.message_tracer
            if codec is not None and self._wsroute_typed:
                await self._dispatch_typed(codec, close_invalid, tracer)
            elif dispatch:
                while True:
                    message = await ws.recv()
                    typed = decode_typed(message, message_key)
                    method = dispatch.get(typed[0]) if typed is not None else None
                    if method is None:
                        await self.on_message(message)
                    else:
                        if tracer is not None:
                            tracer(ws, typed[0])  # type: ignore[index]
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

    async def _dispatch_typed(
        self, codec: MessageCodec, close_invalid: bool, tracer: Callable[[Connection, str], None] | None
    ) -> None:
        """The receive loop of a class with typed ``@on`` entries (returns when it closed the connection).

        The type field is read once (a msgspec pass that skips the rest), then
        a typed entry decodes and validates the text into its class in one
        more pass; an untyped entry gets the dict, as without typed entries.
        """
        ws = self.ws
        dispatch = self._wsroute_dispatch
        typed = self._wsroute_typed
        while True:
            message = await ws.recv()
            kind = codec.kind(message) if type(message) is str else None
            method = dispatch.get(kind) if kind is not None else None
            if method is None:
                await self.on_message(message)
                continue
            if tracer is not None:
                tracer(ws, kind)  # type: ignore[arg-type]
            if kind in typed:
                try:
                    value = codec.decode(kind, message)
                except InvalidMessage as exc:
                    if close_invalid:
                        await ws.close(CloseCode.POLICY_VIOLATION, str(exc))
                        return
                    await ws.send(error_reply(exc, codec.key))
                    continue
                await method(self, value)
            else:
                try:
                    data = decode_json(message)
                except UndecodableMessage:  # pragma: no cover - codec.kind() refused the same text
                    await self.on_message(message)
                    continue
                await method(self, data)

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
