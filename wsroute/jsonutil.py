"""JSON encoding shared by connections, handlers and the hub.

One compact encoder, built once: ``json.dumps()`` with non-default
arguments builds a new ``JSONEncoder`` on every call, and ``send_json`` /
``publish_json`` run per message.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

__all__ = ["encode_json"]

#: ``obj`` as compact JSON text (``separators=(",", ":")``); raises
#: ``TypeError`` for objects JSON cannot represent.
encode_json: Callable[[Any], str] = json.JSONEncoder(separators=(",", ":")).encode
