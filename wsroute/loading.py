"""Import ``"module:attr"`` and get an App, with messages that say what is wrong.

As in uvicorn, the CLI names an app by an import string, so that workers and
the reloader can import it again in a fresh process. Each way it can go
wrong has its own exact message (the tests check them word for word)::

    Import string "app" must be in format "<module>:<attribute>", e.g. "main:app".
    App directory "/srv/nope" does not exist; check --app-dir.
    Could not import module "nosuch" (searched from /srv/app; pass --app-dir to look elsewhere).
    Import string "main.py:app" names a file, not a module; use "main:app".
    Importing module "broken" failed: ModuleNotFoundError: No module named 'x' (at broken.py:3).
    Attribute "apps" not found in module "main".
    "main:handler" is a function, not a wsroute.App; ...
    The factory "main:make" raised RuntimeError: no config (at main.py:7).

A :class:`LoadError` raised because the user's own code failed (importing
the module, calling the factory) keeps that exception as ``__cause__``, so
``wsroute run --debug`` can print its traceback.

:class:`AppSpec` is what a worker process receives: the import string and
the command-line settings that are applied to the app after import
(``--broker``, ``--proxy-headers``).
"""

from __future__ import annotations

import importlib
import os
import posixpath
import sys
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .app import App
from .errors import LoadError, WsrouteError
from .forwarding import LOCAL_PROXIES, TrustedProxies

__all__ = ["AppSpec", "check_directory", "configure_app", "import_from_string", "load_app"]




def import_from_string(import_str: str, searched: str | None = None) -> Any:
    """Import ``"package.module:attr.sub"`` and return the object.

    Args:
        searched: the directory named when the module is not found
            (default: the current directory).

    Raises:
        LoadError: with one of the messages in the module docstring.
    """
    module_str, sep, attrs_str = import_str.partition(":")
    if not sep or not module_str or not attrs_str:
        raise LoadError(
            f'Import string "{import_str}" must be in format "<module>:<attribute>", e.g. "main:app".'
        )
    where = searched or os.getcwd()
    if (module_str.endswith(".py") or "/" in module_str) and os.path.isfile(os.path.join(where, module_str)):
        raise LoadError(_not_found(import_str, module_str, attrs_str, where))  # before importing "main" of "main.py"
    try:
        module = importlib.import_module(module_str)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_str == exc.name or module_str.startswith(exc.name + ".")):
            raise LoadError(_not_found(import_str, module_str, attrs_str, where)) from None
        raise LoadError(_import_failed(module_str, exc)) from exc
    except WsrouteError:
        raise  # a ConfigurationError from App(...) says what is wrong already
    except Exception as exc:
        raise LoadError(_import_failed(module_str, exc)) from exc
    instance: Any = module
    try:
        for name in attrs_str.split("."):
            instance = getattr(instance, name)
    except AttributeError:
        raise LoadError(f'Attribute "{attrs_str}" not found in module "{module_str}".') from None
    return instance


def check_directory(path: str, what: str = "App directory", option: str = "--app-dir") -> str:
    """The absolute path of ``path``, which must be an existing directory.

    Raises:
        LoadError: ``App directory "/srv/nope" does not exist; check --app-dir.``
            (or ``is not a directory``).
    """
    absolute = os.path.abspath(path)
    if not os.path.isdir(absolute):
        problem = "is not a directory" if os.path.exists(absolute) else "does not exist"
        raise LoadError(f'{what} "{absolute}" {problem}; check {option}.')
    return absolute


def load_app(import_str: str, *, factory: bool = False, app_dir: str | None = ".") -> App:
    """Import the App named by ``import_str`` (or call it, with ``factory=True``).

    Args:
        app_dir: a directory put first on ``sys.path`` (``"."``: the current one).

    Raises:
        LoadError: the import string does not lead to an App.
        ConfigurationError: the module or factory raised one while building the app.
    """
    searched = None
    if app_dir is not None:
        searched = check_directory(app_dir)
        if searched not in sys.path:
            sys.path.insert(0, searched)
    target = import_from_string(import_str, searched)
    if factory:
        if isinstance(target, App):
            raise LoadError(f'"{import_str}" is a wsroute.App, not a factory; drop --factory.')
        if not callable(target):
            raise LoadError(
                f'"{import_str}" is {_what(target)}, not a factory; '
                "--factory needs a function that returns a wsroute.App."
            )
        try:
            app = target()
        except WsrouteError:
            raise  # a ConfigurationError from App(...) says what is wrong already
        except Exception as exc:
            raise LoadError(
                f'The factory "{import_str}" raised {type(exc).__name__}: {exc}{_where(exc, skip=__file__)}.'
            ) from exc
        if not isinstance(app, App):
            raise LoadError(f'The factory "{import_str}" returned {_what(app)}, not a wsroute.App.')
        return app
    if not isinstance(target, App):
        hint = (
            "; pass --factory if it is a function that returns one"
            if callable(target) and not isinstance(target, type)
            else ""
        )
        raise LoadError(f'"{import_str}" is {_what(target)}, not a wsroute.App{hint}.')
    return target


def configure_app(
    app: App,
    *,
    broker: str | None = None,
    proxy_headers: bool = False,
    forwarded_allow_ips: str | None = LOCAL_PROXIES,
    limits: Mapping[str, Any] | None = None,
    redact: Sequence[str] = (),
) -> None:
    """Apply command-line settings to an app before it starts.

    Args:
        broker: a broker URL (``redis://...``, ``memory://``) replacing the
            app's; the hub keeps its other options (slow-consumer policy,
            queue sizes), only its broker changes.
        proxy_headers: believe ``X-Forwarded-For``/``Forwarded`` from
            ``forwarded_allow_ips``; when false they are never believed.
        limits: app-wide limits replacing the app's (``max_connections``...).
        redact: more header/query-parameter names to redact from the logs.

    Raises:
        ValueError: a malformed ``forwarded_allow_ips`` entry.
        ConfigurationError: a limit with a wrong value.
    """
    if limits:
        app.set_limits(**limits)
    if redact:
        app.redact = (*app.redact, *redact)
    if broker is not None:
        app.hub.use_broker(broker)
    app.forwarded_allow_ips = TrustedProxies.parse(forwarded_allow_ips if proxy_headers else None)


@attrs.frozen
class AppSpec:
    """An app to import and the settings to apply to it (sent to worker processes)."""

    import_string: str
    factory: bool = False
    app_dir: str | None = "."
    broker: str | None = None
    proxy_headers: bool = False
    forwarded_allow_ips: str | None = LOCAL_PROXIES
    limits: tuple[tuple[str, Any], ...] = ()
    redact: tuple[str, ...] = ()

    def load(self) -> App:
        """Import (or build) the app and apply the settings.

        Raises:
            LoadError, ConfigurationError: see :func:`load_app`.
        """
        app = load_app(self.import_string, factory=self.factory, app_dir=self.app_dir)
        configure_app(
            app,
            broker=self.broker,
            proxy_headers=self.proxy_headers,
            forwarded_allow_ips=self.forwarded_allow_ips,
            limits=dict(self.limits),
            redact=self.redact,
        )
        return app


def _not_found(import_str: str, module_str: str, attrs_str: str, searched: str) -> str:
    """The module is not there: say where we looked, or how to spell a file name as a module."""
    if module_str.endswith(".py") or "/" in module_str:
        parts = posixpath.normpath(module_str.removesuffix(".py").lstrip("./")).split("/")
        dotted = f'"{".".join(parts)}:{attrs_str}"'
        if len(parts) > 1:
            folder = os.path.join(searched, *parts[:-1])
            shown = os.path.relpath(folder) if folder.startswith(os.getcwd() + os.sep) else folder
            other = f'"{parts[-1]}:{attrs_str}" with --app-dir {shown}'
            dotted = f"{dotted} (or {other})"
        return f'Import string "{import_str}" names a file, not a module; use {dotted}.'
    return f'Could not import module "{module_str}" (searched from {searched}; pass --app-dir to look elsewhere).'


def _import_failed(module_str: str, exc: BaseException) -> str:
    return f'Importing module "{module_str}" failed: {type(exc).__name__}: {exc}{_where(exc)}.'


def _where(exc: BaseException, skip: str = "importlib") -> str:
    """`` (at file:line)``: the innermost frame of the user's code in ``exc``'s traceback."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f" (at {exc.filename}:{exc.lineno})"
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return ""
    user = [f for f in frames if skip not in f.filename] or frames
    return f" (at {user[-1].filename}:{user[-1].lineno})"


def _what(obj: Any) -> str:
    """``a function``, ``the class Foo``, ``a <str> ('x')``: what the user pointed at."""
    if isinstance(obj, type):
        return f"the class {obj.__qualname__}"
    if callable(obj) and hasattr(obj, "__name__") and type(obj).__name__ in ("function", "builtin_function_or_method"):
        return "a function"
    if type(obj).__name__ == "module":
        return "a module"
    text = repr(obj)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"a <{type(obj).__name__}> ({text})"
