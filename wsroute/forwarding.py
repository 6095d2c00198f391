"""The client's IP address behind reverse proxies.

``X-Forwarded-For`` and ``Forwarded`` are written by whoever sends the request,
so they are believed only when the TCP peer is a proxy we trust
(``--forwarded-allow-ips``, as in uvicorn; ``127.0.0.1`` and ``::1`` by
default on the command line). Otherwise the peer address is the client
address. Entries may carry a port (``203.0.113.7:51234``,
``[2001:db8::1]:443``, as some load balancers write them); it is dropped.

An entry counts only if it is an IP address: ``unknown``, obfuscated
identifiers (``for=_hidden``, RFC 7239 §6.3) and IPv6 zone ids
(``fe80::1%eth0``, meaningless off the proxy's host and free text that must
not reach ``ws.client_ip``) are not. An IPv4-mapped IPv6 address
(``::ffff:203.0.113.7``, from a dual-stack socket or a proxy) is given in its
IPv4 form, so one client has one address whichever way it arrived.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

import attrs

__all__ = ["LOCAL_PROXIES", "TrustedProxies", "client_ip_of"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: What ``wsroute run --proxy-headers`` trusts unless told otherwise: a proxy
#: on the same machine, over IPv4 or IPv6 loopback.
LOCAL_PROXIES = "127.0.0.1,::1"


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
                networks.append(_unmapped_network(ipaddress.ip_network(item, strict=False)))
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
        # A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d.
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        if mapped is not None:
            ip = mapped
        return any(ip in network for network in self.networks)


def _unmapped_network(network: _Network) -> _Network:
    """``::ffff:10.0.0.0/104`` as ``10.0.0.0/8``: peers are compared in their IPv4 form, so an
    IPv4-mapped entry must be too, or it would never match."""
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network(f"{mapped}/{network.prefixlen - 96}")
    return network


def client_ip_of(remote_address: Any, request: Any, trusted: TrustedProxies | None) -> str | None:
    """Return the client IP for a connection.

    Each proxy appends the address it received the request from, so the
    header is read from the right: trusted proxies are skipped and the first
    address that is not one of them is the client. Entries to the left of it
    were written by the client itself and are never believed. An entry that
    is not an IP address ends the search (the peer is returned).

    Args:
        remote_address: the TCP peer, ``(host, port, ...)`` or ``None`` (Unix socket).
        request: websockets' ``Request`` (its ``headers`` are read).
        trusted: proxies whose forwarding headers are believed.
    """
    peer = _unmapped(remote_address[0]) if remote_address else None
    if trusted is None or request is None:
        return peer
    # A Unix-socket peer has no address: trust it only when everyone is trusted.
    peer_is_trusted = trusted.everyone if peer is None else peer in trusted
    if not peer_is_trusted:
        return peer
    chain = _x_forwarded_for(request.headers) or _forwarded_for(request.headers)
    if not chain:
        return peer
    if not trusted.everyone:
        for entry in reversed(chain):
            address = _ip_or_none(entry)
            if address is None:
                return peer
            if address not in trusted:
                return address
    # Every hop is trusted: the left-most entry is the client.
    return _ip_or_none(chain[0]) or peer


def _x_forwarded_for(headers: Any) -> list[str]:
    # Repeated headers count as one list, in order (RFC 9110 field lines).
    # Some load balancers append the client's port: "203.0.113.7:51234", "[2001:db8::1]:443".
    entries = (e.strip() for value in headers.get_all("X-Forwarded-For") for e in value.split(","))
    return [_strip_port(entry) for entry in entries if entry]


def _forwarded_for(headers: Any) -> list[str]:
    # RFC 7239 §6: for="[2001:db8::1]:443", for=203.0.113.7:1234, for=unknown, for="_hidden".
    found = []
    for value in headers.get_all("Forwarded"):
        for element in value.split(","):
            for pair in element.split(";"):
                key, _, node = pair.strip().partition("=")
                if key.strip().lower() == "for":
                    found.append(_strip_port(node.strip().strip('"')))
    return found


def _strip_port(node: str) -> str:
    """The address of a node: ``[v6]:port`` → ``v6``, ``v4:port`` → ``v4``; anything else unchanged.

    Only a port of one to five ASCII digits up to 65535 is stripped, so a
    malformed entry stays malformed and ends the search in
    :func:`client_ip_of` instead of being guessed at.
    """
    if node.startswith("["):
        address, bracket, port = node[1:].partition("]")
        if bracket and (port == "" or (port[:1] == ":" and _is_port(port[1:]))):
            return address
        return node
    if node.count(":") == 1:  # IPv4 with a port (a bare IPv6 address has at least two colons)
        address, _, port = node.partition(":")
        if _is_port(port):
            return address
    return node


def _is_port(text: str) -> bool:
    return _PORT.fullmatch(text) is not None and int(text) <= 65535


_PORT = re.compile(r"[0-9]{1,5}")


def _ip_or_none(text: str) -> str | None:
    """``text`` as a canonical IP address (IPv4-mapped as IPv4), or None; a zone id is no address."""
    if "%" in text:  # ipaddress accepts "fe80::1%<any text>"
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return str(mapped if mapped is not None else ip)


def _unmapped(peer: str) -> str:
    """A dual-stack socket's ``::ffff:a.b.c.d`` peer as ``a.b.c.d``; other peers unchanged."""
    if peer.startswith("::ffff:") and "." in peer:
        return _ip_or_none(peer) or peer
    return peer
