"""Start-up and shutdown code of the user's app: ``on_startup``, ``on_shutdown``, ``lifespan``.

Two styles, as in Starlette, and both may be used together::

    @app.on_startup
    async def open_pool(app):
        app.state.pool = await create_pool()

    @app.on_shutdown
    async def close_pool(app):
        await app.state.pool.close()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        async with create_pool() as pool:
            yield {"pool": pool}          # injected into handlers by parameter name

    app = wsroute.App(lifespan=lifespan)

Order (``App.startup``): plugins are configured, the hub starts, plugins'
``wsroute_startup`` run, then the ``on_startup`` functions in registration
order, then the lifespan context is entered; the values it yields become
dependencies, and only then are handlers bound, so a handler may ask for
``pool``. Shutdown runs in exactly the reverse order, after the server stopped
accepting and the connections are closed: the lifespan context exits, the
``on_shutdown`` functions run (last registered first), plugins'
``wsroute_shutdown``, then the hub stops.

A failure anywhere in start-up stops the server with that error, after
running the shutdown of each step that had already started — and only of
those (an ``on_shutdown`` function runs only if start-up got past the
``on_startup`` functions).
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .callbacks import describe
from .errors import ConfigurationError

if TYPE_CHECKING:
    from .app import App

__all__ = ["Lifespan", "LifespanFactory"]

LifespanFactory = Callable[["App"], contextlib.AbstractAsyncContextManager[Mapping[str, Any] | None]]
Callback = Callable[["App"], Awaitable[None] | None]


def check_callback(func: Any, where: str) -> None:
    """Refuse what cannot be called as ``func(app)``.

    Raises:
        ConfigurationError: not callable, or its signature cannot take one argument.
    """
    if not callable(func):
        raise ConfigurationError(f"{where}: {func!r} is not callable; expected a function taking the app")
    try:
        inspect.signature(func).bind(None)
    except TypeError:
        raise ConfigurationError(
            f"{where}: {describe(func)} cannot be called with one argument (the app); define it as 'def f(app)'"
        ) from None
    except ValueError:  # no signature (a builtin): let the call decide
        pass


def check_factory(factory: Any) -> None:
    """Refuse a ``lifespan=`` that is not a factory of async context managers.

    Raises:
        ConfigurationError: naming the value and the expected form.
    """
    if factory is None:
        return
    check_callback(factory, "App(lifespan=...)")
    if inspect.isasyncgenfunction(factory):
        raise ConfigurationError(
            f"App(lifespan={describe(factory)}): an async generator function; decorate it with "
            "@contextlib.asynccontextmanager so that it returns an async context manager"
        )


@attrs.define
class Lifespan:
    """The app's own start-up and shutdown steps.

    Attributes:
        factory: ``lifespan(app)`` returning an async context manager, or ``None``.
        startup: ``on_startup`` functions, in registration order.
        shutdown: ``on_shutdown`` functions, in registration order (run reversed).
    """

    factory: LifespanFactory | None = None
    startup: list[Callback] = attrs.field(factory=list)
    shutdown: list[Callback] = attrs.field(factory=list)

    def __attrs_post_init__(self) -> None:
        check_factory(self.factory)

    @contextlib.asynccontextmanager
    async def run(self, app: App) -> AsyncIterator[dict[str, Any]]:
        """Run start-up, yield the dependencies the lifespan provides, run shutdown on exit.

        Raises:
            ConfigurationError: the lifespan yielded something that is not a
                mapping of str names (or ``None``).
        """
        async with contextlib.AsyncExitStack() as stack:
            for func in self.startup:
                await _call(func, app)
            stack.push_async_callback(self._run_shutdown, app)
            provided: dict[str, Any] = {}
            if self.factory is not None:
                value = await stack.enter_async_context(self.factory(app))
                provided = _provided(value, self.factory)
            yield provided

    async def _run_shutdown(self, app: App) -> None:
        errors: list[BaseException] = []
        for func in reversed(self.shutdown):
            try:
                await _call(func, app)
            except Exception as exc:  # every shutdown function runs; the first error is raised
                errors.append(exc)
        if errors:
            raise errors[0]


async def _call(func: Callback, app: App) -> None:
    result = func(app)
    if inspect.isawaitable(result):
        await result


def _provided(value: Any, factory: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise ConfigurationError(
            f"App(lifespan={describe(factory)}) yielded {type(value).__name__} {value!r:.80}; "
            "yield a mapping of dependency names to values (or nothing)"
        )
    return dict(value)
