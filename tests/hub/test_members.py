"""The topic -> members map shared by the memory broker and the Redis presence store."""

from __future__ import annotations

from wsroute.hub.members import set_member


def test_adding_creates_the_set_and_removing_the_last_member_drops_it() -> None:
    """A first member creates the topic's set; removing its last member removes the topic."""
    groups: dict[str, set[str]] = {}
    set_member(groups, "room", "alice", True)
    set_member(groups, "room", "bob", True)
    assert groups == {"room": {"alice", "bob"}}
    set_member(groups, "room", "alice", False)
    assert groups == {"room": {"bob"}}
    set_member(groups, "room", "bob", False)
    assert groups == {}


def test_removing_an_absent_member_or_topic_changes_nothing() -> None:
    """Removing a member that is not there, or from an unknown topic, leaves the map as it was."""
    groups: dict[str, set[str]] = {"room": {"alice"}}
    set_member(groups, "room", "zoe", False)
    set_member(groups, "hall", "alice", False)
    assert groups == {"room": {"alice"}}
