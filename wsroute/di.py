"""Dependency binding, done once when the app starts serving.

The websockets FAQ answers "how do I pass arguments to the handler?" with
``functools.partial``. wsroute does the same for you: each handler parameter
is resolved by name — a path parameter (passed per connection), a value given
to ``app.route(path, name=value)``, or one given to ``app.provide(name=value)``
— and every non-path value is bound once with ``functools.partial``. Nothing
is looked up per connection.

A parameter that nothing provides and that has no default is an error at
start-up naming the route and the parameter, never a ``TypeError`` on the
first connection. So is a ``Handler`` class that declares a dependency as a
class annotation (``db: Database``) that its constructor does not take —
usually a missing ``@attrs.define``, or decorators in the wrong order — when
``app.provide`` or ``app.route`` gives a value for it: without the check,
``self.db`` would be an ``AttributeError`` at the first connection.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

import attrs

from .callbacks import describe
from .errors import DependencyError, HandlerError
from .handlers import Handler
from .routes import Route

__all__ = ["Binding", "bind"]


@attrs.frozen
class Binding:
    """A handler with its dependencies bound.

    Attributes:
        call: the handler (or class) wrapped in ``functools.partial``.
        path_args: names of the path parameters to pass as keyword arguments
            on each connection; ``None`` means all of them (``**kwargs``).
        scoped: names of per-connection dependencies the handler takes
            (:mod:`wsroute.perconnection`), passed on each connection.
        is_class: the handler is a :class:`~wsroute.Handler` class (one
            instance per connection), not a function.
    """

    call: Callable[..., Any]
    path_args: tuple[str, ...] | None
    scoped: tuple[str, ...] = ()
    is_class: bool = False


def bind(route: Route, provided: Mapping[str, Any], per_connection: Collection[str] = ()) -> Binding:
    """Resolve the parameters of ``route.handler`` and bind what is known now.

    A parameter is, in this order: a path parameter, a value given to
    ``app.route(path, name=value)``, a per-connection dependency (left for
    each connection), a value from ``app.provide`` or the lifespan, or its
    default.

    Raises:
        DependencyError: a parameter has no source, or a bound name is unused.
    """
    handler = route.handler
    parameters = list(_signature(route).parameters.values())
    if not route.is_class:
        parameters = _without_connection_parameter(route, parameters)
    path_names = set(route.pattern.param_names)
    bound: dict[str, Any] = {}
    path_args: list[str] = []
    scoped: list[str] = []
    takes_any_keyword = False
    for parameter in parameters:
        name = parameter.name
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            takes_any_keyword = True
        elif parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        elif name in path_names:
            path_args.append(name)
        elif name in route.bound:
            bound[name] = route.bound[name]
        elif name in per_connection:
            scoped.append(name)
        elif name in provided:
            bound[name] = provided[name]
        elif parameter.default is inspect.Parameter.empty:
            raise _missing(route, name)
    if route.is_class and not takes_any_keyword:
        _check_declared_fields(route, {p.name for p in parameters}, provided)
    unused = sorted(set(route.bound) - set(bound))
    if unused and not takes_any_keyword:
        raise DependencyError(
            f"route {route.label!r}: app.route(..., {unused[0]}=...) is bound but "
            f"{describe(handler)} has no parameter {unused[0]!r}"
        )
    if takes_any_keyword:
        bound.update(route.bound)
    call = functools.partial(handler, **bound) if bound else handler
    return Binding(call, None if takes_any_keyword else tuple(path_args), tuple(scoped), route.is_class)


def _signature(route: Route) -> inspect.Signature:
    try:
        return inspect.signature(route.handler)
    except (TypeError, ValueError) as exc:  # pragma: no cover - builtins only
        raise HandlerError(
            f"route {route.label!r}: cannot read the signature of {describe(route.handler)}: {exc}"
        ) from None


def _without_connection_parameter(route: Route, parameters: list[inspect.Parameter]) -> list[inspect.Parameter]:
    """A function handler's first parameter receives the connection."""
    if parameters and parameters[0].kind in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        return parameters[1:]
    if parameters and parameters[0].kind is inspect.Parameter.VAR_POSITIONAL:
        return parameters
    raise HandlerError(
        f"route {route.label!r}: {describe(route.handler)} must take the connection as its first "
        "positional parameter: 'async def handler(ws, ...)'"
    )


def _check_declared_fields(route: Route, accepted: set[str], provided: Mapping[str, Any]) -> None:
    """Refuse a dependency declared as an annotation that the constructor ignores.

    Raises:
        DependencyError: naming the field, the cause (not an attrs class, or
            ``@attrs.define`` applied after ``@app.route``) and the fix.
    """
    cls = route.handler
    for name, annotation in _declared_fields(cls):
        if name in accepted or (name not in route.bound and name not in provided):
            continue
        source = f"app.route({route.path!r}, {name}=...)" if name in route.bound else f"app.provide({name}=...)"
        declared = f"{name}: {annotation if isinstance(annotation, str) else describe(annotation)}"
        if _replaced_by_attrs_class(cls):
            cause = (
                f"@attrs.define was applied after @app.route registered the plain class (decorators run bottom-up); "
                f"put @app.route({route.path!r}) above @attrs.define"
            )
        elif attrs.has(cls):
            cause = f"{name!r} is not an __init__ argument of the attrs class; remove init=False or give it a default"
        else:
            cause = (
                f"{cls.__name__} is not an attrs class; put @attrs.define directly above 'class {cls.__name__}', "
                f"below @app.route(...) (decorators run bottom-up), or accept {name!r} in __init__"
            )
        raise DependencyError(
            f"route {route.label!r}: {describe(cls)} declares '{declared}' and {source} gives a value, but its "
            f"constructor does not take {name!r}, so self.{name} would be missing at the first connection: {cause}"
        )


def _declared_fields(cls: type) -> Iterator[tuple[str, Any]]:
    """Instance annotations of ``cls`` and its Handler bases (``ClassVar`` excluded)."""
    for klass in cls.__mro__:
        if klass is Handler or not issubclass(klass, Handler):
            continue
        for name, annotation in vars(klass).get("__annotations__", {}).items():
            text = annotation if isinstance(annotation, str) else repr(annotation)
            if not text.startswith(("ClassVar", "typing.ClassVar", "t.ClassVar", "typing_extensions.ClassVar")):
                yield name, annotation


def _replaced_by_attrs_class(cls: type) -> bool:
    """Whether the module now binds the class's name to an attrs version of it."""
    module = sys.modules.get(cls.__module__)
    current = getattr(module, cls.__qualname__, None) if "." not in cls.__qualname__ else None
    return current is not None and current is not cls and attrs.has(current) and not attrs.has(cls)


def _missing(route: Route, name: str) -> DependencyError:
    return DependencyError(
        f"route {route.label!r}: parameter {name!r} of {describe(route.handler)} is not a path parameter, "
        f"not provided and has no default; add app.provide({name}=...), "
        f"pass app.route({route.path!r}, {name}=...), or give it a default"
    )
