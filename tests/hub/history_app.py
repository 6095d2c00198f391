"""The app the history tests run, in-process and as ``wsroute run`` processes.

Topics ``h:<name>`` keep history (``HISTORY_TEST_SIZE`` messages, default
100, for ``HISTORY_TEST_TTL`` seconds, default 300). Routes:

* ``/sub/{name}?since=42:e1``: subscribes to ``h:<name>`` since the
  position; replayed envelopes arrive first, then one
  ``{"recovery": {...}}`` summary, then live envelopes. A malformed
  position is closed with 1008.
* ``/pub/{name}``: every text message is published to ``h:<name>`` (JSON
  text is published with ``publish_json``) and answered ``ok``, or
  ``unavailable`` while the broker is down.
"""

from __future__ import annotations

import json
import os
from typing import Any

from websockets.frames import CloseCode

import wsroute

app = wsroute.App()
app.hub.history("h:*", size=int(os.environ.get("HISTORY_TEST_SIZE", "100")),
                ttl=float(os.environ.get("HISTORY_TEST_TTL", "300")))


@app.route("/sub/{name}")
class Sub(wsroute.Handler):
    """A subscriber that reports its Recovery."""

    async def on_connect(self) -> None:
        try:
            since = wsroute.Position.parse(self.ws.query.get("since", [""])[0])
        except ValueError as exc:
            await self.close(CloseCode.POLICY_VIOLATION, str(exc))
            return
        result = await self.subscribe(f"h:{self.params['name']}", since=since)
        assert result is not None
        summary = {"recovered": result.recovered, "missed": result.missed, "position": str(result.position)}
        await self.send_json({"recovery": summary})


@app.route("/pub/{name}")
async def pub(ws: Any, name: str) -> None:
    """Publish every message received; answer ``ok`` or ``unavailable``."""
    async for message in ws:
        try:
            if isinstance(message, str) and message.startswith("{"):
                await app.hub.publish_json(f"h:{name}", json.loads(message))
            else:
                await app.hub.publish(f"h:{name}", message)
        except wsroute.BrokerUnavailable:
            await ws.send("unavailable")
        else:
            await ws.send("ok")
