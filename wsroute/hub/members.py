"""Who is in which topic: a map of sets that never keeps an empty one.

The memory broker's presence and the local truth of the Redis presence
store (:mod:`.presence`) are the same structure: topic -> user ids. A topic
whose last user left is removed rather than kept as an empty set, so the
map stays as small as the topics in use and "nobody here" has one spelling
(the topic is absent), whatever churn came before.
"""

from __future__ import annotations

__all__ = ["set_member"]


def set_member(groups: dict[str, set[str]], key: str, member: str, present: bool) -> None:
    """Add ``member`` to ``groups[key]`` (``present``) or remove it, dropping an emptied set.

    Removing a member that is not there, or from a key that is absent,
    changes nothing.
    """
    members = groups.get(key)
    if present:
        if members is None:
            members = groups[key] = set()
        members.add(member)
    elif members is not None:
        members.discard(member)
        if not members:
            del groups[key]
