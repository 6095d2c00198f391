"""Per-connection dependencies: values computed once for each connection, after the middleware.

``app.provide(db=pool)`` binds a value once, at start-up. Some values belong
to one connection — the user loaded from a token, a database session, a
transaction — and need cleanup when it ends. Declare their *factories* with
``app.provide_per_connection``::

    async def current_user(conn, db):          # the connection and other dependencies, by name
        user = await db.user_for(conn.ctx.token)
        if user is None:
            raise wsroute.Deny(403, "unknown user")   # HTTP 403, the handler never runs
        return user

    async def session(db):                       # a generator: cleanup after the handler ends
        async with db.session() as s:
            yield s

    app.provide(db=Database())
    app.provide_per_connection(user=current_user, session=session)

    @app.route("/inbox")
    async def inbox(ws, user, session): ...

Why a separate method rather than a marker inside ``app.provide``: a
function given to ``app.provide`` stays a *value* (handlers may be given a
callable to call), so a per-connection factory must be told apart
explicitly, and a method of its own makes the lifetime visible where the
dependency is declared — as FastAPI's ``Depends`` and svcs' factories do —
while ``app.provide`` keeps meaning "this exact object".

Rules:

* A factory is a function: sync, ``async def``, a generator or an async
  generator (whose code after ``yield`` is its cleanup). Its parameters are
  resolved by name: ``conn`` (or ``ws``) is the connection, then another
  per-connection dependency, a path parameter of the route, a value from
  ``app.provide`` or the lifespan, or the parameter's default.
* Factories run once per connection, only for routes whose handler (or one
  of its dependencies) asks for them, in dependency order, after the
  middleware chain and before the upgrade: ``raise wsroute.Deny(...)`` there
  answers that HTTP status. On a path routed by first message the route is
  known only after the upgrade, so they run then, and ``Deny`` closes the
  connection with 1008 and its reason.
* Generator cleanups run in reverse order after the handler ends, whether it
  returned, raised (a function handler's exception is thrown in at the
  ``yield``, as ``contextlib.contextmanager`` does; a Handler class reports
  its own failures first) or was stopped by shutdown; and at once if a later
  factory or the handshake fails.
* Start-up checks the graph: every parameter resolves and there is no cycle
  (``a -> b -> a``), each error naming the dependency and the fix. Resolving
  per connection does no reflection: every step is planned at start-up.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .callbacks import describe
from .errors import DependencyError

if TYPE_CHECKING:
    from .connection import Connection
    from .routes import Route

__all__ = ["CONNECTION_NAMES", "Factory", "Plan", "check_graph", "plan_for"]

#: Parameter names that receive the connection itself.
CONNECTION_NAMES = frozenset({"conn", "ws"})

# Where a factory's argument comes from.
_CONN, _SCOPED, _PATH, _FIXED = range(4)


@attrs.frozen
class Factory:
    """A per-connection dependency as declared: its name, function and parameters."""

    name: str
    func: Callable[..., Any]
    kind: str  # "sync" | "async" | "gen" | "asyncgen"
    params: tuple[inspect.Parameter, ...]

    @classmethod
    def of(cls, name: str, func: Any) -> Factory:
        """Check ``func`` and read its signature once.

        Raises:
            DependencyError: not callable, an unreadable signature, or
                parameters that cannot be passed by name.
        """
        where = f"app.provide_per_connection({name}=...)"
        if not callable(func):
            raise DependencyError(f"{where}: {func!r} is not callable; give a function (sync, async or a generator)")
        try:
            signature = inspect.signature(func)
        except (TypeError, ValueError) as exc:
            raise DependencyError(f"{where}: cannot read the signature of {describe(func)}: {exc}") from None
        params = tuple(
            p for p in signature.parameters.values() if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )
        for param in params:
            if param.kind is param.POSITIONAL_ONLY:
                raise DependencyError(
                    f"{where}: parameter {param.name!r} of {describe(func)} is positional-only; "
                    "dependencies are passed by name"
                )
        target = inspect.unwrap(func)
        if inspect.isasyncgenfunction(target):
            kind = "asyncgen"
        elif inspect.isgeneratorfunction(target):
            kind = "gen"
        elif inspect.iscoroutinefunction(target):
            kind = "async"
        else:
            kind = "sync"
        return cls(name, func, kind, params)


@attrs.frozen
class Step:
    """One factory call in a route's plan, its arguments' sources decided at start-up."""

    name: str
    call: Callable[..., Any]
    kind: str
    args: tuple[tuple[str, int, Any], ...]  # (parameter, source, fixed value or key)


@attrs.frozen
class Plan:
    """The factories one route needs, in the order they run.

    Attributes:
        steps: every factory the handler needs, dependencies first.
        wanted: the names the handler itself receives.
    """

    steps: tuple[Step, ...]
    wanted: tuple[str, ...]

    async def resolve(self, conn: Connection) -> tuple[dict[str, Any], contextlib.AsyncExitStack | None]:
        """Run the factories for ``conn``.

        Returns:
            The values the handler receives, by name, and the exit stack
            holding generator cleanups (``None`` when there are none).

        Raises:
            Whatever a factory raises (``wsroute.Deny`` included), after the
            cleanups of the generators that already yielded have run.
        """
        values: dict[str, Any] = {}
        stack: contextlib.AsyncExitStack | None = None
        try:
            for step in self.steps:
                kwargs = {name: _argument(conn, values, source, key) for name, source, key in step.args}
                if step.kind == "sync":
                    values[step.name] = step.call(**kwargs)
                elif step.kind == "async":
                    values[step.name] = await step.call(**kwargs)
                else:
                    if stack is None:
                        stack = contextlib.AsyncExitStack()
                    if step.kind == "gen":
                        values[step.name] = stack.enter_context(step.call(**kwargs))
                    else:
                        values[step.name] = await stack.enter_async_context(step.call(**kwargs))
        except BaseException:
            if stack is not None:
                await stack.aclose()
            raise
        return {name: values[name] for name in self.wanted}, stack


def _argument(conn: Connection, values: dict[str, Any], source: int, key: Any) -> Any:
    if source == _CONN:
        return conn
    if source == _SCOPED:
        return values[key]
    if source == _PATH:
        return conn.params[key]
    return key


def check_graph(factories: Mapping[str, Factory], provided: Mapping[str, Any], path_names: Iterable[str]) -> None:
    """Refuse cycles, and parameters that nothing could ever provide.

    ``path_names``: every path parameter of every route (a factory that takes
    ``room`` is checked per route by :func:`plan_for`).

    Raises:
        DependencyError: naming the cycle, or the dependency and parameter.
    """
    for name in sorted(set(factories) & set(provided)):
        raise DependencyError(
            f"dependency {name!r} is given both by app.provide() (or the lifespan) and by "
            "app.provide_per_connection(); keep one"
        )
    known = CONNECTION_NAMES | set(factories) | set(provided) | set(path_names)
    for factory in factories.values():
        for param in factory.params:
            if param.name not in known and param.default is inspect.Parameter.empty:
                raise _unresolved(factory, param.name, None)
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " -> ".join([*trail[trail.index(name) :], name])
            raise DependencyError(
                f"per-connection dependencies form a cycle: {cycle}; one of them must not ask for the next"
            )
        state[name] = 1
        for param in factories[name].params:
            if param.name in factories and param.name not in CONNECTION_NAMES:
                visit(param.name, [*trail, name])
        state[name] = 2

    for name in factories:
        visit(name, [])


def plan_for(
    route: Route, wanted: Iterable[str], factories: Mapping[str, Factory], provided: Mapping[str, Any]
) -> Plan:
    """Order the factories ``route`` needs (after :func:`check_graph`) and fix each argument's source.

    Raises:
        DependencyError: a factory parameter that is a path parameter of
            other routes but not of this one, and has no default.
    """
    path_names = set(route.pattern.param_names)
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        for param in factories[name].params:
            if param.name in factories and param.name not in CONNECTION_NAMES:
                visit(param.name)
        order.append(name)

    wanted = tuple(wanted)
    for name in wanted:
        visit(name)
    steps = []
    for name in order:
        factory = factories[name]
        args: list[tuple[str, int, Any]] = []
        for param in factory.params:
            source = _source(factory, param, route, path_names, factories, provided)
            if source is not None:
                args.append((param.name, *source))
        steps.append(Step(name, _callable(factory), factory.kind, tuple(args)))
    return Plan(tuple(steps), wanted)


def _source(
    factory: Factory,
    param: inspect.Parameter,
    route: Route,
    path_names: set[str],
    factories: Mapping[str, Factory],
    provided: Mapping[str, Any],
) -> tuple[int, Any] | None:
    name = param.name
    if name in CONNECTION_NAMES:
        return _CONN, None
    if name in factories:
        return _SCOPED, name
    if name in path_names:
        return _PATH, name
    if name in provided:
        return _FIXED, provided[name]
    if param.default is not inspect.Parameter.empty:
        return None
    raise _unresolved(factory, name, route)


def _callable(factory: Factory) -> Callable[..., Any]:
    if factory.kind == "gen":
        return contextlib.contextmanager(factory.func)
    if factory.kind == "asyncgen":
        return contextlib.asynccontextmanager(factory.func)
    return factory.func


def _unresolved(factory: Factory, name: str, route: Route | None) -> DependencyError:
    where = f" of route {route.label!r}" if route is not None else ""
    return DependencyError(
        f"per-connection dependency {factory.name!r} ({describe(factory.func)}): parameter {name!r} is not "
        f"'conn'/'ws', another per-connection dependency, a path parameter{where}, a value from "
        f"app.provide() or the lifespan, and has no default; provide {name!r} or give it a default"
    )
