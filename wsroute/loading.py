"""Import ``"module:attr"`` and get an App, with messages that say what is wrong.

As in uvicorn, the CLI names an app by an import string, so that workers and
the reloader can import it again in a fresh process. Each way it can go
wrong has its own exact message (the tests check them word for word)::

    Import string "app" must be in format "<module>:<attribute>", e.g. "main:app".
    Could not import module "nosuch" (searched from ...; pass --app-dir to look elsewhere).
    Importing module "broken" failed: ModuleNotFoundError: No module named 'x' (at broken.py:3).
    Attribute "apps" not found in module "main".
    "main:handler" is a function, not a wsroute.App; ...

:class:`AppSpec` is what a worker process receives: the import string and
the command-line settings that are applied to the app after import
(``--broker``, ``--proxy-headers``).
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import Any

import attrs

from .app import App
from .errors import LoadError, WsrouteError
from .forwarding import LOCAL_PROXIES, TrustedProxies

__all__ = ["AppSpec", "configure_app", "import_from_string", "load_app"]




def import_from_string(import_str: str) -> Any:
    """Import ``"package.module:attr.sub"`` and return the object.

    Raises:
        LoadError: with one of the messages in the module docstring.
    """
    module_str, sep, attrs_str = import_str.partition(":")
    if not sep or not module_str or not attrs_str:
        raise LoadError(
            f'Import string "{import_str}" must be in format "<module>:<attribute>", e.g. "main:app".'
        )
    try:
        module = importlib.import_module(module_str)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_str == exc.name or module_str.startswith(exc.name + ".")):
            raise LoadError(
                f'Could not import module "{module_str}" '
                f"(searched from {os.getcwd()}; pass --app-dir to look elsewhere)."
            ) from None
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


def load_app(import_str: str, *, factory: bool = False, app_dir: str | None = ".") -> App:
    """Import the App named by ``import_str`` (or call it, with ``factory=True``).

    Args:
        app_dir: a directory put first on ``sys.path`` (``"."``: the current one).

    Raises:
        LoadError: the import string does not lead to an App.
        ConfigurationError: the module or factory raised one while building the app.
    """
    if app_dir is not None:
        path = os.path.abspath(app_dir)
        if path not in sys.path:
            sys.path.insert(0, path)
    target = import_from_string(import_str)
    if factory:
        if isinstance(target, App):
            raise LoadError(f'"{import_str}" is a wsroute.App, not a factory; drop --factory.')
        if not callable(target):
            raise LoadError(
                f'"{import_str}" is {_what(target)}, not a factory; '
                "--factory needs a function that returns a wsroute.App."
            )
        app = target()
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
) -> None:
    """Apply command-line settings to an app before it starts.

    Args:
        broker: a broker URL (``redis://...``, ``memory://``) replacing the
            app's; the hub keeps its other options (slow-consumer policy,
            queue sizes), only its broker changes.
        proxy_headers: believe ``X-Forwarded-For``/``Forwarded`` from
            ``forwarded_allow_ips``; when false they are never believed.

    Raises:
        ValueError: a malformed ``forwarded_allow_ips`` entry.
    """
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
        )
        return app


def _import_failed(module_str: str, exc: BaseException) -> str:
    where = ""
    frames = traceback.extract_tb(exc.__traceback__)
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" (at {exc.filename}:{exc.lineno})"
    elif frames:
        user = [f for f in frames if "importlib" not in f.filename] or frames
        where = f" (at {user[-1].filename}:{user[-1].lineno})"
    return f'Importing module "{module_str}" failed: {type(exc).__name__}: {exc}{where}.'


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
