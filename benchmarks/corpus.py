"""A realistic, deterministic JSON chat corpus for the compression study.

What a chat server sends and receives: messages in a few rooms from a few
hundred users, with typing notices, presence changes, reactions and read
receipts mixed in, every event a small JSON object with the same keys again
and again (which is what permessage-deflate's shared window exploits). The
generator is seeded, so every run and every machine compresses exactly the
same bytes.
"""

from __future__ import annotations

import json
import random

_VOCABULARY = (
    "the a to and of is in it you that for on with this be are have not at but we can just so what "
    "do if was about all get like me my your will one there they up out time know think would how "
    "good now when see more today meeting deploy build test review release fix bug issue branch merge "
    "lunch coffee tomorrow yesterday thanks great sure yes no maybe later weekend server client "
    "latency memory websocket router plugin docs ticket customer ship green red done started"
)
WORDS = tuple(_VOCABULARY.split())
ROOMS = ("general", "random", "dev", "ops", "design", "support", "release-2026-11", "standup")
KINDS = (("message", 70), ("typing", 12), ("presence", 6), ("reaction", 7), ("read", 5))


def _text(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(max(1, int(rng.lognormvariate(2.2, 0.7))))]
    text = " ".join(words)
    if rng.random() < 0.15:
        text += f" https://example.com/t/{rng.randrange(10_000, 99_999)}"
    return text[0].upper() + text[1:] + rng.choice(".!?..")


def events(count: int = 2000, seed: int = 18) -> list[dict[str, object]]:
    """Return ``count`` chat events as dicts, the same for the same seed.

    Example:
        >>> events(3)[0]["type"] in {"message", "typing", "presence", "reaction", "read"}
        True
    """
    rng = random.Random(seed)
    kinds = [k for k, weight in KINDS for _ in range(weight)]
    ts = 1_764_000_000_000
    out: list[dict[str, object]] = []
    for seq in range(count):
        ts += rng.randrange(50, 4000)
        room = rng.choice(ROOMS)
        user = {"id": f"u{rng.randrange(300):04d}", "name": f"user{rng.randrange(300)}"}
        kind = rng.choice(kinds)
        event: dict[str, object] = {"type": kind, "room": room, "user": user, "ts": ts}
        if kind == "message":
            event.update(id=f"m{seq:07d}", text=_text(rng), mentions=[], edited=False)
            if rng.random() < 0.1:
                event["reply_to"] = f"m{max(0, seq - rng.randrange(1, 50)):07d}"
        elif kind == "typing":
            event["active"] = rng.random() < 0.8
        elif kind == "presence":
            event["status"] = rng.choice(("online", "away", "offline"))
        elif kind == "reaction":
            event.update(message=f"m{max(0, seq - rng.randrange(1, 30)):07d}", emoji=rng.choice(("+1", "tada", "eyes")))
        else:
            event["until"] = f"m{seq:07d}"
        out.append(event)
    return out


def messages(count: int = 2000, seed: int = 18) -> list[bytes]:
    """Return the corpus as UTF-8 JSON payloads (compact separators, as wsroute sends)."""
    return [json.dumps(e, separators=(",", ":")).encode() for e in events(count, seed)]
