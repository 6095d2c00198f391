"""Message history: offsets, epochs, positions, recovery, the memory ring buffer.

A topic declared with ``app.hub.history("room:*", size=1000, ttl=300)``
keeps its last ``size`` messages, each for at most ``ttl`` seconds. Every
publication gets the next **offset** (1, 2, 3... per topic) within an
**epoch**, a string that changes whenever the history is lost (a Redis that
restarted empty, an expired topic). A client remembers the
:class:`Position` ``"offset:epoch"`` of the last message it saw and, when it
reconnects to any process, subscribes ``since`` it: the hub replays what it
missed, then live messages, with no gap and no duplicate, and answers with a
:class:`Recovery`.

Subscribers of a history topic receive every message as one JSON envelope,
built once per publication::

    {"topic": "room:1", "offset": 42, "epoch": "18c3f0a2b-5e1", "data": "hello"}

``data`` is the published text (a JSON string) or, for ``publish_json``,
the published JSON value.

This module is pure: values, the settings per glob, the envelope format, and
:class:`MemoryHistory`, the ring buffer of the memory broker. The Redis
broker keeps the same model in Redis Streams (:mod:`.redishistory`).
"""

from __future__ import annotations

import collections
import fnmatch
import os
import re
import time
from collections.abc import Callable
from typing import Any, Final

import attrs

from ..errors import ConfigurationError
from ..jsonutil import encode_json
from ..outcomes import BadMessage

__all__ = [
    "META_TTL",
    "HistoryConfig",
    "HistoryPage",
    "HistoryRules",
    "InvalidPosition",
    "MemoryHistory",
    "Position",
    "Recovery",
    "envelope",
    "envelope_head",
    "new_epoch",
]

#: Seconds a topic's offset and epoch outlive its last publication (or
#: ``ttl`` if longer): a client that missed nothing during a long silence
#: still recovers (0 missed) instead of seeing a new epoch.
META_TTL: Final = 86_400


@attrs.frozen(repr=False)
class Position:
    """Where a client stands in a topic's history: an offset within an epoch.

    ``str(position)`` is ``"42:e1"``, the form a client stores and sends
    back (e.g. ``?since=42:e1``); :meth:`parse` reads it.

    Attributes:
        offset: the offset of the last message seen (0: none yet).
        epoch: the history's epoch; a different one means history was lost.
    """

    offset: int
    epoch: str

    def __repr__(self) -> str:
        return f"Position({self.offset}, {self.epoch!r})"

    def __str__(self) -> str:
        return f"{self.offset}:{self.epoch}"

    @classmethod
    def parse(cls, text: str) -> Position | None:
        """Read ``"42:e1"`` as ``Position(42, "e1")``; ``""`` is ``None`` (no position).

        ``"0:"`` (an empty epoch) is the position the hub reports when it
        could not know one (a broker outage); it never matches a real epoch.

        Raises:
            InvalidPosition: ``text`` is not ``"<offset>:<epoch>"`` with a
                non-negative decimal offset (at most 19 digits). The text
                usually comes from a client, so the error is a
                :class:`~wsroute.Close` with 1008: raised in a handler and
                not caught, it closes that connection with 1008 and the
                reason, logged at info — never a 1011. It is also a
                ``ValueError`` for code that parses positions elsewhere.
        """
        if not text:
            return None
        offset, sep, epoch = text.partition(":")
        if not sep or not offset.isdigit() or not offset.isascii() or len(offset) > 19:
            raise InvalidPosition(f"position {text[:40]!r} is not '<offset>:<epoch>' (e.g. '42:e1')")
        return cls(int(offset), epoch)


class InvalidPosition(BadMessage, ValueError):
    """A position that is not ``"<offset>:<epoch>"``: the client's mistake, closed with 1008."""

    def __str__(self) -> str:  # what was wrong, as a ValueError's text reads
        return self.problem


@attrs.frozen
class Recovery:
    """What ``subscribe(topic, since=...)`` did.

    Attributes:
        recovered: True when every message after ``since`` was replayed
            (possibly none). False when ``since`` was None, its epoch is
            not the topic's, or some message after it is gone (more than
            ``size`` published since, or expired): then nothing old was
            replayed and the application must resync the client.
        missed: how many messages were replayed.
        position: the position of the last message replayed, or the topic's
            current position when nothing was; live messages follow it.
    """

    recovered: bool
    missed: int
    position: Position


def _positive(kind: type | tuple[type, ...], what: str) -> Callable[[Any, attrs.Attribute[Any], Any], None]:
    """An attrs validator: ``value`` is a ``kind`` above 0 (not a bool), else ConfigurationError."""

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        right_type = isinstance(value, kind) and not isinstance(value, bool)
        if not right_type or value <= 0:
            raise ConfigurationError(
                f"hub.history(): {attribute.name} must be a positive {what} "
                f"(got {value!r} that is a <{type(value).__name__}>)"
            )

    return check


@attrs.frozen
class HistoryConfig:
    """How much history a topic keeps: the last ``size`` messages, each for ``ttl`` seconds."""

    size: int = attrs.field(validator=_positive(int, "<int>"))
    ttl: float = attrs.field(validator=_positive((int, float), "number of seconds"))
    #: Seconds the offset and epoch outlive the last publication: :data:`META_TTL` or ``ttl`` if longer.
    meta_ttl: int = attrs.field(init=False, repr=False, eq=False)

    @meta_ttl.default
    def _meta_ttl(self) -> int:
        return max(META_TTL, int(self.ttl) + 1)


@attrs.frozen
class HistoryPage:
    """One bounded read of a topic's history, as a broker returns it.

    Attributes:
        position: the topic's current position (its newest offset and epoch).
        entries: ``(offset, envelope)`` pairs, oldest first, each envelope
            the exact bytes subscribers received.
    """

    position: Position
    entries: list[tuple[int, bytes]]


class HistoryRules:
    """Which topics keep history: globs with their settings, matched once per topic.

    A later :meth:`add` wins over an earlier one for topics both match;
    adding the same glob again replaces its settings. Matches are cached
    (the cache is cleared when it reaches 10,000 topics).
    """

    __slots__ = ("_cache", "_rules")

    def __init__(self) -> None:
        self._rules: list[tuple[str, re.Pattern[str], HistoryConfig]] = []
        self._cache: dict[str, HistoryConfig | None] = {}

    def __bool__(self) -> bool:
        return bool(self._rules)

    def add(self, pattern: str, config: HistoryConfig) -> None:
        """Keep history for topics matching ``pattern`` (``fnmatch`` syntax, case-sensitive).

        Raises:
            ConfigurationError: ``pattern`` is not a non-empty str.
        """
        if not isinstance(pattern, str) or not pattern:
            raise ConfigurationError(
                f"hub.history(): the topic glob must be a non-empty <str> such as 'room:*' (got {pattern!r})"
            )
        self._rules = [rule for rule in self._rules if rule[0] != pattern]
        self._rules.append((pattern, re.compile(fnmatch.translate(pattern)), config))
        self._cache.clear()

    def match(self, topic: str) -> HistoryConfig | None:
        """The settings of ``topic``, or None when it keeps no history."""
        try:
            return self._cache[topic]
        except KeyError:
            pass
        found = None
        for _, regex, config in reversed(self._rules):
            if regex.match(topic):
                found = config
                break
        if len(self._cache) >= 10_000:
            self._cache.clear()
        self._cache[topic] = found
        return found

    def describe(self) -> list[tuple[str, HistoryConfig]]:
        """``(glob, settings)`` in the order they were added."""
        return [(pattern, config) for pattern, _, config in self._rules]


def new_epoch() -> str:
    """A fresh epoch: 8 random hex digits (never equal to a lost one in practice)."""
    return os.urandom(4).hex()


def envelope_head(topic: str) -> bytes:
    """The envelope up to its offset value: ``{"topic":"room:1","offset":``."""
    return b'{"topic":' + encode_json(topic).encode() + b',"offset":'


def envelope(head: bytes, offset: int, epoch: str, data: bytes) -> bytes:
    """The JSON envelope subscribers receive; ``data`` is already JSON.

    The Redis broker's Lua script builds the same bytes (see
    :mod:`.redishistory`), so live and replayed messages are identical.
    """
    return b"".join((head, str(offset).encode(), b',"epoch":"', epoch.encode(), b'","data":', data, b"}"))


class _Topic:
    """The ring buffer of one topic: ``(offset, published_at, envelope)``, at most ``size``."""

    __slots__ = ("entries", "epoch", "head", "last", "middle", "offset")

    def __init__(self, topic: str, now: float, size: int) -> None:
        self.head = envelope_head(topic)
        self.epoch = new_epoch()
        self.middle = b',"epoch":"' + self.epoch.encode() + b'","data":'
        self.offset = 0
        self.last = now
        self.entries: collections.deque[tuple[int, float, bytes]] = collections.deque(maxlen=size)


class MemoryHistory:
    """The history of every topic of one process: a ring buffer per topic.

    Each topic keeps at most ``size`` envelopes (the deque's ``maxlen``
    drops the oldest) and forgets envelopes older than ``ttl`` when it is written
    or read. A topic unused for ``meta_ttl`` seconds is forgotten entirely
    (a sweep every 1,024 publications), so its next publication starts a
    new epoch.

    Args:
        clock: seconds, monotonic (``time.monotonic``; tests may pass another).
    """

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self._clock: Callable[[], float] = time.monotonic if clock is None else clock
        self._topics: dict[str, _Topic] = {}
        self._publishes = 0

    def __len__(self) -> int:
        return len(self._topics)

    def _get(self, topic: str, config: HistoryConfig, now: float) -> _Topic:
        state = self._topics.get(topic)
        if state is not None and now - state.last > config.meta_ttl:
            state = None  # expired: a new epoch
        if state is None:
            state = self._topics[topic] = _Topic(topic, now, config.size)
        entries = state.entries
        while entries and now - entries[0][1] > config.ttl:
            entries.popleft()
        return state

    def append(self, topic: str, data: bytes, config: HistoryConfig) -> tuple[int, str, bytes]:
        """Give ``data`` the next offset and keep its envelope.

        Returns:
            ``(offset, epoch, envelope)``.
        """
        now = self._clock()
        state = self._get(topic, config, now)
        state.offset = offset = state.offset + 1
        state.last = now
        frame = b"".join((state.head, str(offset).encode(), state.middle, data, b"}"))  # = envelope()
        state.entries.append((offset, now, frame))  # the deque's maxlen drops the oldest
        self._publishes += 1
        if not self._publishes & 1023:
            self._sweep(now, config)
        return offset, state.epoch, frame

    def read(self, topic: str, since: int | None, limit: int, config: HistoryConfig) -> HistoryPage:
        """Envelopes after offset ``since`` (oldest first), or the newest ``limit`` when None.

        Reading a topic that has no state creates it (offset 0, a new
        epoch), so that a client that subscribed before anything was
        published can recover what came next.
        """
        state = self._get(topic, config, self._clock())
        entries = state.entries
        position = Position(state.offset, state.epoch)
        if limit <= 0 or not entries:
            return HistoryPage(position, [])
        if since is None:
            chosen = list(entries)[-limit:]
        else:
            first = entries[0][0]
            start = max(0, since + 1 - first)
            chosen = [entries[i] for i in range(start, min(len(entries), start + limit))]
        return HistoryPage(position, [(offset, frame) for offset, _, frame in chosen])

    def _sweep(self, now: float, config: HistoryConfig) -> None:
        """Forget topics idle for longer than their meta TTL (the longest, to be safe)."""
        longest = max(config.meta_ttl, META_TTL)
        for topic in [t for t, s in self._topics.items() if now - s.last > longest]:
            del self._topics[topic]

    def clear(self) -> None:
        """Forget everything (the broker stopped)."""
        self._topics.clear()
