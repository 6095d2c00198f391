"""The client's IP address behind reverse proxies.

``X-Forwarded-For`` and ``Forwarded`` are written by whoever sends the request,
so they are believed only when the TCP peer is a proxy we trust
(``--forwarded-allow-ips``, as in uvicorn). Otherwise the peer address is the
client address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

import attrs

__all__ = ["TrustedProxies", "client_ip_of"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@attrs.frozen
class TrustedProxies:
    """A set of proxy addresses or networks; ``"*"`` trusts every peer.

    Example::

        TrustedProxies.parse("127.0.0.1, 10.0.0.0/8")
    """

    networks: tuple[_Network, ...] = ()
    everyone: bool = False

    @classmethod
    def parse(cls, value: str | Iterable[str] | None) -> TrustedProxies:
        if value is None:
            return cls()
        items = [v.strip() for v in (value.split(",") if isinstance(value, str) else value)]
        items = [v for v in items if v]
        if "*" in items:
            return cls(everyone=True)
        networks = []
        for item in items:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(
                    f"forwarded_allow_ips: {item!r} is not an IP address or network "
                    "(expected e.g. '127.0.0.1', '10.0.0.0/8' or '*')"
                ) from None
        return cls(tuple(networks))

    def __contains__(self, address: object) -> bool:
        if self.everyone:
            return True
        try:
            ip = ipaddress.ip_address(str(address))
        except ValueError:
            return False
        return any(ip in network for network in self.networks)


def client_ip_of(remote_address: Any, request: Any, trusted: TrustedProxies | None) -> str | None:
    """Return the client IP for a connection.

    Args:
        remote_address: the TCP peer, ``(host, port, ...)`` or ``None`` (Unix socket).
        request: websockets' ``Request`` (its ``headers`` are read).
        trusted: proxies whose forwarding headers are believed.
    """
    peer = remote_address[0] if remote_address else None
    if trusted is None or request is None:
        return peer
    # A Unix-socket peer has no address: trust it only when everyone is trusted.
    peer_is_trusted = trusted.everyone if peer is None else peer in trusted
    if not peer_is_trusted:
        return peer
    forwarded = _from_x_forwarded_for(request.headers.get("X-Forwarded-For"))
    if forwarded is None:
        forwarded = _from_forwarded(request.headers.get("Forwarded"))
    return forwarded or peer


def _from_x_forwarded_for(value: str | None) -> str | None:
    if not value:
        return None
    # The left-most entry is the original client; proxies append to the right.
    return value.split(",")[0].strip() or None


def _from_forwarded(value: str | None) -> str | None:
    if not value:
        return None
    for pair in value.split(",")[0].split(";"):
        key, _, found = pair.strip().partition("=")
        if key.lower() == "for":
            found = found.strip('"')
            if found.startswith("["):
                return found[1:].partition("]")[0]
            return found.rsplit(":", 1)[0] if found.count(":") == 1 else found
    return None
