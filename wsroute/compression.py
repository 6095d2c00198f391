"""permessage-deflate as wsroute negotiates it: a smaller compressor, zlib state made on first use.

websockets' own default for ``compression="deflate"`` is
``ServerPerMessageDeflateFactory(server_max_window_bits=12,
client_max_window_bits=12, compress_settings={"memLevel": 5})`` and it
allocates both zlib streams when the handshake negotiates the extension:
about 31 KiB per connection before a single message, which more than doubles
the memory of an idle connection (about 15 KiB without compression).

wsroute negotiates the extension the same way but with the settings below,
and builds each zlib stream only when the first message needs it, so an
idle connection pays nothing for compression. The settings were chosen with
``python -m benchmarks.deflate`` on a deterministic JSON chat corpus
(``benchmarks/corpus.py``); the figures are in docs/benchmarks.md, "Memory per
connection". In short, on that corpus: the same compression ratio as
websockets' default, about three quarters of its zlib memory per connection
that has exchanged messages (memLevel 3 instead of 5), none for one that has
not (about 30 KiB less).

A user who passes their own ``extensions=[ServerPerMessageDeflateFactory(...)]``
or ``compression=None`` to ``app.serve()``/``app.run()`` keeps exactly that:
:func:`serve_options` only fills in the default.
"""

from __future__ import annotations

import types
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from websockets.extensions.base import ServerExtensionFactory
from websockets.extensions.permessage_deflate import PerMessageDeflate, ServerPerMessageDeflateFactory

__all__ = [
    "CLIENT_MAX_WINDOW_BITS",
    "MEM_LEVEL",
    "SERVER_MAX_WINDOW_BITS",
    "LazyPerMessageDeflate",
    "LazyServerPerMessageDeflateFactory",
    "deflate_factory",
    "serve_options",
]

SERVER_MAX_WINDOW_BITS = 12
"""Window of wsroute's compressor, as a power of two (4 KiB, as websockets; zlib: 15).

A smaller window costs ratio at once on chat-sized JSON (11 bits: +15 %
compressed bytes on the corpus), so it stays at websockets' value."""
CLIENT_MAX_WINDOW_BITS = 12
"""Window the client may use, hence the size of wsroute's decompressor (4 KiB, as websockets).

9 bits would save 3.5 KiB per active connection but nearly double what the
client's messages compress to (0.49 instead of 0.27 of the JSON on the
corpus). Clients that do not offer ``client_max_window_bits`` keep 15."""
MEM_LEVEL = 3
"""zlib ``memLevel`` of the compressor: hash table and output buffer (websockets: 5, zlib: 8).

On small messages the ratio does not move between 2 and 8; below 3 the
compressor gets slower (more hash collisions)."""


class LazyPerMessageDeflate(PerMessageDeflate):
    """websockets' ``PerMessageDeflate`` whose zlib streams are made on first use.

    ``PerMessageDeflate.__init__`` calls ``zlib.compressobj`` and
    ``zlib.decompressobj`` at once; this subclass sets the same parameters
    but leaves ``encoder`` and ``decoder`` unset until ``encode`` or
    ``decode`` first reads them (see :meth:`__getattr__`). Everything else —
    negotiation, context takeover, ``max_size`` checks — is websockets' code.
    """

    def __init__(
        self,
        remote_no_context_takeover: bool,
        local_no_context_takeover: bool,
        remote_max_window_bits: int,
        local_max_window_bits: int,
        compress_settings: dict[Any, Any] | None = None,
    ) -> None:
        self.remote_no_context_takeover = remote_no_context_takeover
        self.local_no_context_takeover = local_no_context_takeover
        self.remote_max_window_bits = remote_max_window_bits
        self.local_max_window_bits = local_max_window_bits
        self.compress_settings = {} if compress_settings is None else compress_settings
        self.decode_cont_data = False

    @classmethod
    def from_extension(cls, extension: PerMessageDeflate) -> LazyPerMessageDeflate:
        """The lazy twin of an extension websockets negotiated (same parameters)."""
        return cls(
            extension.remote_no_context_takeover,
            extension.local_no_context_takeover,
            extension.remote_max_window_bits,
            extension.local_max_window_bits,
            extension.compress_settings,
        )

    def __getattr__(self, name: str) -> Any:
        """Make ``decoder`` or ``encoder`` the first time it is read.

        Python calls this only for attributes the instance does not have, so
        after the first message of each direction it is never called again.

        Raises:
            AttributeError: for any other missing attribute.
        """
        if name == "decoder":
            decoder = zlib.decompressobj(wbits=-self.remote_max_window_bits)
            self.decoder = decoder
            return decoder
        if name == "encoder":
            encoder = zlib.compressobj(wbits=-self.local_max_window_bits, **self.compress_settings)
            self.encoder = encoder
            return encoder
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def _negotiation_building(extension_class: type[PerMessageDeflate]) -> Callable[..., Any] | None:
    """websockets' own ``ServerPerMessageDeflateFactory.process_request_params``, building ``extension_class``.

    The same code object, run with its module's globals except that the name
    ``PerMessageDeflate`` it instantiates is ``extension_class``: negotiation
    stays websockets' code, and no zlib stream is made for the handshake (a
    ``PerMessageDeflate`` allocates and clears both at once, about ten times
    the cost of the lazy one). None when websockets' method is not such a
    plain function; then the extension is built and replaced instead.
    """
    original = ServerPerMessageDeflateFactory.process_request_params
    code = getattr(original, "__code__", None)
    if code is None or code.co_freevars or "PerMessageDeflate" not in code.co_names:
        return None
    namespace = {**original.__globals__, "PerMessageDeflate": extension_class}
    function = types.FunctionType(code, namespace, original.__name__, original.__defaults__)
    function.__kwdefaults__ = original.__kwdefaults__
    return function


class LazyServerPerMessageDeflateFactory(ServerPerMessageDeflateFactory):
    """websockets' server-side negotiation, returning :class:`LazyPerMessageDeflate`."""

    def process_request_params(self, params: Any, accepted_extensions: Any) -> tuple[Any, PerMessageDeflate]:
        """Negotiate exactly as websockets does, building the lazy extension.

        Raises:
            NegotiationError: as websockets' factory does, for offers it refuses.
        """
        if _NEGOTIATE is not None:
            return _NEGOTIATE(self, params, accepted_extensions)  # type: ignore[no-any-return]
        response, extension = super().process_request_params(params, accepted_extensions)
        # websockets' extension has just built its zlib streams; it is dropped
        # here, before any message, so they are freed at once.
        return response, LazyPerMessageDeflate.from_extension(extension)


_NEGOTIATE = _negotiation_building(LazyPerMessageDeflate)


def deflate_factory(
    server_max_window_bits: int = SERVER_MAX_WINDOW_BITS,
    client_max_window_bits: int = CLIENT_MAX_WINDOW_BITS,
    mem_level: int = MEM_LEVEL,
) -> LazyServerPerMessageDeflateFactory:
    """Return the extension factory wsroute negotiates permessage-deflate with.

    Args:
        server_max_window_bits: 9-15, the compressor's window (2**bits bytes).
        client_max_window_bits: 9-15, the largest window the client may use.
        mem_level: 1-9, zlib's ``memLevel`` for the compressor.

    Raises:
        ValueError: a value outside those ranges (from websockets or here).
    """
    if not 1 <= mem_level <= 9:
        raise ValueError(f"mem_level must be 1-9 (got {mem_level!r})")
    return LazyServerPerMessageDeflateFactory(
        server_max_window_bits=server_max_window_bits,
        client_max_window_bits=client_max_window_bits,
        compress_settings={"memLevel": mem_level},
    )


def serve_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Return websockets ``serve()`` options with wsroute's deflate default filled in.

    Only when compression is on (``compression`` absent or ``"deflate"``, as
    in websockets) and ``extensions`` holds no permessage-deflate factory of
    the user's: then wsroute's factory is appended, and websockets, seeing
    one, does not add its own.
    """
    kwargs = dict(options)
    if kwargs.get("compression", "deflate") != "deflate":
        return kwargs
    extensions: list[ServerExtensionFactory] = list(kwargs.get("extensions") or ())
    if any(factory.name == ServerPerMessageDeflateFactory.name for factory in extensions):
        return kwargs
    kwargs["extensions"] = [*extensions, deflate_factory()]
    return kwargs
