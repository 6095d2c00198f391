"""Guess the number: one path, two routes chosen by the first message.

Run it (from the repository root, after ``scripts/setup``)::

    .venv/bin/wsroute run examples.first_message.app:app --port 8765

Every connection to ``/game`` starts with a JSON message whose ``"type"``
picks the handler:

* ``{"type": "start", "max": 100}`` starts a game: the server picks a number
  from 1 to ``max``; send ``{"type": "guess", "number": 50}`` and get
  ``{"type": "hint", "hint": "higher"}`` or ``"lower"``, until
  ``{"type": "won", "tries": 7}`` and the server closes with 1000;
* ``{"type": "stats"}`` answers ``{"type": "stats", "played": 3, "won": 2}``
  (counted in this process) and closes.

Anything else as first message is closed by the router with 1008 and a
reason (``unknown message type 'dance' (expected: start, stats)``); no
handler runs.
"""

from __future__ import annotations

import random
from typing import Any

import wsroute

MAX_TOP = 1_000_000

app = wsroute.App(first_message_timeout=10)
stats_counter = {"played": 0, "won": 0}


@app.route("/game", message="start")
class Game(wsroute.Handler):
    """One game per connection; the secret lives in the handler instance."""

    async def on_connect(self) -> None:
        top = self.first_message.get("max", 100)
        if type(top) is not int or not 1 <= top <= MAX_TOP:
            await self.close(1008, f"'max' must be an integer from 1 to {MAX_TOP}")
            return
        self.secret = random.randint(1, top)
        self.tries = 0
        stats_counter["played"] += 1
        await self.send_json({"type": "started", "max": top})

    @wsroute.on("guess")
    async def guess(self, data: dict[str, Any]) -> None:
        number = data.get("number")
        if type(number) is not int:
            await self.send_json({"type": "error", "message": "'number' must be an integer"})
            return
        self.tries += 1
        if number == self.secret:
            stats_counter["won"] += 1
            await self.send_json({"type": "won", "tries": self.tries})
            await self.close(1000, "you won")
        else:
            await self.send_json({"type": "hint", "hint": "higher" if number < self.secret else "lower"})

    async def on_message(self, message: str | bytes) -> None:
        await self.send_json({"type": "error", "message": 'send {"type": "guess", "number": N}'})


@app.route("/game", message="stats")
async def stats(ws: wsroute.Connection) -> None:
    """Answer once with the counters of this process."""
    await ws.send_json({"type": "stats", **stats_counter})
