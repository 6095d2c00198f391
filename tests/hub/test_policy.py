"""The slow-consumer policy names have one source: ``wsroute.hub.policy``."""

from __future__ import annotations

import pytest

from wsroute.hub.policy import POLICIES, SlowConsumer, parse_policy


def test_policies_lists_every_policy_name_once() -> None:
    """POLICIES is the tuple of the SlowConsumer values, in declaration order."""
    assert POLICIES == ("disconnect", "drop_oldest", "keep_latest")
    assert tuple(parse_policy(name) for name in POLICIES) == tuple(SlowConsumer)


def test_unknown_policy_error_lists_the_known_names() -> None:
    """parse_policy names the option, the bad value and every known policy."""
    with pytest.raises(ValueError, match=r"^slow_consumer must be one of 'disconnect', 'drop_oldest', 'keep_latest' "
                                         r"\(got 'fast' that is a <str>\)$"):
        parse_policy("fast")
