"""Path patterns, converters and the router that matches request paths.

A pattern is a path whose segments are either literal text or one parameter
``{name}`` / ``{name:converter}``::

    /blue
    /items/{item_id:int}
    /files/{rest:path}          # ``path`` takes the rest, slashes included

Patterns are parsed when a route is registered, so a typo fails at once with
the pattern in the message. Matching never scans a list of regular
expressions: static paths are one dict lookup, parameterised paths walk a tree
of segments (static children by dict, then parameters), so the cost depends on
the depth of the path, not on the number of routes. Matching is pure (no I/O)
and is tested without sockets.

Patterns are written decoded (``/café/{name}``) and requests are matched
decoded: the raw path is split on ``/``, then each segment is percent-decoded
as UTF-8 (:mod:`wsroute.urls`), so ``/caf%C3%A9/a%20b`` matches with
``name == "a b"`` and ``%2F`` stays inside its segment. Literals and decoded
segments are compared in Unicode normalisation form C, whichever form the
pattern's source file or the client used. A path without ``%`` is its own
decoded form, so static paths stay one dict lookup on the raw path.

A route may accept its path with or without one trailing slash (the default in
:class:`~wsroute.App`) or be strict; an exact match always wins, and
:meth:`PathRouter.near_miss` names the strict route a request missed by a slash.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Generic, TypeVar

import attrs

from .errors import RouteError, URLPathError
from .urls import BadTarget, decode_segments, encode_segment

__all__ = ["Converter", "DEFAULT_CONVERTERS", "Pattern", "PathRouter"]

T = TypeVar("T")


@attrs.frozen
class Converter:
    """Turns one path segment into a Python value.

    Args:
        name: what patterns call it: ``{x:name}``.
        regex: the text a segment must match entirely.
        convert: builds the value from the text; raising ``ValueError`` rejects
            the segment (the request then gets 404).
        disjoint_from: names of converters that never accept the same text,
            so two routes that differ only there do not conflict.
        check: an optional faster test, equivalent to matching ``regex``
            (the built-in ``str`` converter uses ``bool``). A C function such
            as a compiled regex's ``fullmatch`` beats a Python one.
        format: the reverse of ``convert`` for ``app.url_path_for``: the
            segment text for a value (default ``str``); the text must match
            ``regex``.

    Example::

        app.add_converter(Converter("slug", r"[a-z0-9-]+"))
        app.add_converter(Converter("even", r"[0-9]*[02468]", int, frozenset({"uuid"})))
    """

    name: str
    regex: str
    convert: Callable[[str], Any] = str
    disjoint_from: frozenset[str] = frozenset()
    check: Callable[[str], Any] | None = attrs.field(default=None, repr=False, eq=False)
    format: Callable[[Any], str] = attrs.field(default=str, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        try:
            compiled = re.compile(self.regex)
        except re.error as exc:
            raise RouteError(f"converter {self.name!r}: bad regex {self.regex!r} ({exc})") from None
        if self.check is None:
            object.__setattr__(self, "check", compiled.fullmatch)


_UUID_RE = r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}"

DEFAULT_CONVERTERS: dict[str, Converter] = {
    # Any non-empty decoded segment, "/" included when the client sent "%2F".
    "str": Converter("str", r".+", check=bool),
    "int": Converter("int", r"[0-9]+", int, disjoint_from=frozenset({"uuid"})),
    "uuid": Converter("uuid", _UUID_RE, uuid.UUID, disjoint_from=frozenset({"int"})),
    "path": Converter("path", r".+"),
}

_PARAM_RE = re.compile(r"^\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<conv>[A-Za-z_][A-Za-z0-9_]*))?\}$")


@attrs.frozen
class Segment:
    """One parsed segment: literal text, or a named parameter with a converter."""

    text: str
    param: str | None = None
    converter: Converter | None = None

    def overlaps(self, other: Segment) -> bool:
        """Whether some segment text could be accepted by both."""
        if self.converter is None or other.converter is None:
            return self.converter is None and other.converter is None and self.text == other.text
        a, b = self.converter, other.converter
        return b.name not in a.disjoint_from and a.name not in b.disjoint_from


@attrs.frozen
class Pattern:
    """A parsed route pattern.

    Raises:
        RouteError: when the pattern is malformed or names an unknown converter.
    """

    source: str
    segments: tuple[Segment, ...]

    @property
    def is_static(self) -> bool:
        return all(segment.converter is None for segment in self.segments)

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(s.param for s in self.segments if s.param is not None)

    @classmethod
    def parse(cls, source: str, converters: dict[str, Converter]) -> Pattern:
        if not isinstance(source, str) or not source.startswith("/"):
            raise RouteError(f"route {source!r}: a path pattern must be a str starting with '/'")
        segments = tuple(_parse_segment(source, text, converters) for text in source[1:].split("/"))
        names = [s.param for s in segments if s.param is not None]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise RouteError(f"route {source!r}: parameter {duplicates[0]!r} appears twice; give each a unique name")
        for segment in segments[:-1]:
            if segment.converter is not None and segment.converter.name == "path":
                raise RouteError(
                    f"route {source!r}: '{{{segment.param}:path}}' takes the rest of the path, "
                    "so it must be the last segment"
                )
        return cls(source, segments)

    def build(self, params: dict[str, Any], name: str) -> str:
        """The raw path for ``params``: converters applied in reverse, segments percent-encoded.

        ``Pattern.parse("/rooms/{room}/{n:int}").build({"room": "a b", "n": 3}, "Room")``
        is ``"/rooms/a%20b/3"``; a ``{rest:path}`` value keeps its slashes.

        Raises:
            URLPathError: a parameter missing or unknown, a value whose text
                the converter would not accept (``-1`` for ``int``), or a path
                the server refuses with 400 (a ``..`` segment, a control
                character: :mod:`wsroute.urls`).
        """
        names = self.param_names
        missing = [n for n in names if n not in params]
        unknown = sorted(set(params) - set(names))
        if missing or unknown:
            shown = ", ".join(map(repr, missing or unknown))
            problem = f"missing {shown}" if missing else f"unknown {shown}"
            raise URLPathError(
                f"url_path_for({name!r}): route {self.source!r} takes "
                f"{', '.join(map(repr, names)) or 'no parameters'}; {problem}"
            )
        parts = []
        for segment in self.segments:
            converter = segment.converter
            if converter is None or segment.param is None:
                parts.append(encode_segment(segment.text))
                continue
            value = params[segment.param]
            text = converter.format(value)
            if not isinstance(text, str) or not text or not converter.check(text):  # type: ignore[misc]
                raise URLPathError(
                    f"url_path_for({name!r}): {segment.param}={value!r} gives {text!r}, which the "
                    f"{converter.name!r} converter of route {self.source!r} does not accept"
                )
            if converter.name == "path":
                parts.append("/".join(encode_segment(piece) for piece in text.split("/")))
            else:
                parts.append(encode_segment(text))
        path = "/" + "/".join(parts)
        try:
            decode_segments(path)  # what the server will do with it: refuse what it would answer 400
        except BadTarget as exc:
            raise URLPathError(
                f"url_path_for({name!r}): the path {path!r} would be refused by the server (400): {exc}"
            ) from None
        return path

    def overlaps(self, other: Pattern) -> bool:
        """Whether one request path could match both patterns with equal priority.

        A literal segment always wins over a parameter (``/users/me`` before
        ``/users/{id}``), so only parameter-against-parameter and
        literal-against-literal positions are compared.
        """
        if len(self.segments) != len(other.segments):
            return False
        return all(a.overlaps(b) for a, b in zip(self.segments, other.segments, strict=True))


_ESCAPE_RE = re.compile(r"%[0-9A-Fa-f]{2}")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _parse_segment(source: str, text: str, converters: dict[str, Converter]) -> Segment:
    if "{" not in text and "}" not in text:
        escape = _ESCAPE_RE.search(text)
        if escape is not None:
            raise RouteError(
                f"route {source!r}: segment {text!r} contains the percent-escape {escape[0]!r}; requests are "
                "matched decoded, so write the decoded text (e.g. ' ' for '%20'); a literal '%' is requested as '%25'"
            )
        if text in (".", "..") or _CONTROL_RE.search(text) is not None:
            raise RouteError(
                f"route {source!r}: segment {text!r} can never match, because requests with dot segments or "
                "control characters are refused with 400; remove it from the pattern"
            )
        # Requests are matched in Unicode normalisation form C, so literals are stored in it too.
        return Segment(unicodedata.normalize("NFC", text))
    found = _PARAM_RE.match(text)
    if found is None:
        raise RouteError(
            f"route {source!r}: malformed segment {text!r}; a parameter is a whole segment "
            "written {name} or {name:converter}"
        )
    conv_name = found["conv"] or "str"
    converter = converters.get(conv_name)
    if converter is None:
        known = ", ".join(sorted(converters))
        raise RouteError(f"route {source!r}: unknown converter {conv_name!r} (known: {known})")
    return Segment(text, found["name"], converter)


class _Node(Generic[T]):
    """One level of the segment tree.

    Parameter children are shared by every pattern that has the same
    converter at this position (``/a/{x}/b`` and ``/a/{y}/c`` share the
    ``{str}`` child), so each node offers at most one branch per converter
    and matching never scans routes. Parameter names live with the target,
    in a terminal ``(target, names, pattern source)``.
    """

    __slots__ = ("params", "rest", "static", "terminal")

    def __init__(self) -> None:
        self.static: dict[str, _Node[T]] = {}
        self.params: list[tuple[Callable[[str], Any], Callable[[str], Any], _Node[T], str]] = []
        self.rest: list[tuple[Callable[[str], Any], Callable[[str], Any], tuple[T, tuple[str, ...], str]]] = []
        self.terminal: tuple[T, tuple[str, ...], str] | None = None

    def param_child(self, converter: Converter) -> _Node[T]:
        for _, _, child, name in self.params:
            if name == converter.name:
                return child
        child = _Node[T]()
        self.params.append((converter.check, converter.convert, child, converter.name))  # type: ignore[arg-type]
        return child


class PathRouter(Generic[T]):
    """Maps request paths to targets (wsroute stores a route group per path).

    ``add()`` rejects a pattern that conflicts with one already added;
    ``match()`` returns ``(target, params)`` or ``None``.

    Example::

        router = PathRouter()
        router.add(Pattern.parse("/items/{id:int}", DEFAULT_CONVERTERS), "items")
        router.match("/items/3")   # ("items", {"id": 3})
        router.match("/items/3/")  # None: strict is the PathRouter's default
    """

    def __init__(self) -> None:
        self._static: dict[str, T] = {}  # raw-path fast path: static sources without "%"
        self._static_terminals: dict[str, tuple[T, tuple[str, ...], str]] = {}
        self._root: _Node[T] = _Node()
        self._patterns: list[Pattern] = []
        self._targets: dict[str, T] = {}
        self._strict: set[str] = set()

    def __len__(self) -> int:
        return len(self._patterns)

    def __iter__(self) -> Iterator[tuple[Pattern, T]]:
        for pattern in self._patterns:
            yield pattern, self._targets[pattern.source]

    def get(self, source: str) -> T | None:
        """The target registered under exactly this pattern text, if any."""
        return self._targets.get(source)

    def add(self, pattern: Pattern, target: T, *, strict_slash: bool = True) -> None:
        """Add ``pattern``; ``strict_slash=False`` also matches it with one ``/`` more or less at the end.

        Raises:
            RouteError: ``pattern`` would match the same requests as one already added.
        """
        for existing in self._patterns:
            if existing.overlaps(pattern):
                raise RouteError(
                    f"route {pattern.source!r} conflicts with route {existing.source!r}: "
                    "both would match the same requests; change one of the patterns"
                )
        self._patterns.append(pattern)
        self._targets[pattern.source] = target
        if strict_slash:
            self._strict.add(pattern.source)
        terminal = (target, pattern.param_names, pattern.source)
        if pattern.is_static:
            decoded = "/" + "/".join(segment.text for segment in pattern.segments)  # NFC, as requests are
            if decoded == pattern.source and decoded.isascii() and "%" not in decoded and "#" not in decoded:
                self._static[pattern.source] = target  # what a client sends verbatim
            self._static_terminals[decoded] = terminal
            return
        node = self._root
        for segment in pattern.segments:
            converter = segment.converter
            if converter is None:
                node = node.static.setdefault(segment.text, _Node())
            elif converter.name == "path":
                node.rest.append((converter.check, converter.convert, terminal))  # type: ignore[arg-type]
                return
            else:
                node = node.param_child(converter)
        node.terminal = terminal

    def match(self, path: str) -> tuple[T, dict[str, Any]] | None:
        """Find the target for ``path`` (raw, without its query string).

        An exact match wins; otherwise a pattern added with
        ``strict_slash=False`` matches with one trailing ``/`` more or less.

        Raises:
            BadTarget: a malformed escape, a segment that is not UTF-8 once
                decoded, a dot segment, a control character or a ``#``
                (:mod:`wsroute.urls`); the request deserves 400.
        """
        target = self._static.get(path)
        if target is not None:
            return target, {}
        found = self._lookup(path, static_done=True)
        if found is None:
            if len(self._strict) == len(self._patterns):  # no pattern accepts the other slash
                return None
            found = self._other_form(path)
            if found is None or found[0][2] in self._strict:
                return None
        (target, names, _), values = found
        if len(names) == 1:  # the common case, without dict(zip()) overhead
            return target, {names[0]: values[0]}
        return target, dict(zip(names, values, strict=True))

    def near_miss(self, path: str) -> str | None:
        """The strict pattern that ``path`` misses only by one trailing slash, if any.

        For the 404 answer's text; call it only after :meth:`match` found nothing.
        """
        found = self._other_form(path)
        if found is None or found[0][2] not in self._strict:
            return None
        return found[0][2]

    def _other_form(self, path: str) -> tuple[tuple[T, tuple[str, ...], str], list[Any]] | None:
        """The exact match of ``path`` with one trailing slash toggled, when it differs from ``path`` by it.

        A pattern that itself ends with ``/`` never matches a request by dropping
        one of its slashes (``/rooms/{name}/`` answers ``/rooms/x``, not ``/rooms/x//``).
        """
        if path.endswith("/"):
            stripped = path[:-1]
            if stripped in ("", "/"):
                return None
            found = self._lookup(stripped)
            return None if found is None or found[0][2].endswith("/") else found
        return self._lookup(path + "/")

    def _lookup(
        self, path: str, *, static_done: bool = False
    ) -> tuple[tuple[T, tuple[str, ...], str], list[Any]] | None:
        """Exact match of a raw path: the terminal and the converted values.

        ``static_done``: the caller already looked ``path`` up in ``_static``.
        """
        if not path.startswith("/"):
            return None
        parts = decode_segments(path)
        if "%" in path:
            # A decoded "/" (from %2F) belongs to its segment: such a path is never a static one.
            decoded = None if any("/" in part for part in parts) else "/" + "/".join(parts)
        else:
            decoded = None if static_done else path
        if decoded is not None:
            terminal = self._static_terminals.get(decoded)
            if terminal is not None:
                return terminal, []
        values: list[Any] = []
        found = _walk(self._root, parts, 0, values)
        return None if found is None else (found, values)


def _walk(
    node: _Node[T], parts: list[str], index: int, values: list[Any]
) -> tuple[T, tuple[str, ...], str] | None:
    """Depth-first search: literal children first, then parameters, then ``path``.

    Converted values are pushed on ``values`` on the way down and popped when
    a branch fails, so a failed branch costs no dict.
    """
    if index == len(parts):
        return node.terminal
    part = parts[index]
    child = node.static.get(part)
    if child is not None:
        found = _walk(child, parts, index + 1, values)
        if found is not None:
            return found
    for check, convert, child, _ in node.params:
        if not check(part):
            continue
        try:
            values.append(convert(part))
        except ValueError:
            continue
        found = _walk(child, parts, index + 1, values)
        if found is not None:
            return found
        values.pop()
    if node.rest:
        rest = "/".join(parts[index:])
        for check, convert, terminal in node.rest:
            if not check(rest):
                continue
            try:
                values.append(convert(rest))
            except ValueError:
                continue
            return terminal
    return None
