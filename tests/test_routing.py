"""Path patterns and the router, without sockets."""

from __future__ import annotations

import re
import uuid

import pytest

from wsroute import Converter, RouteError
from wsroute.routing import DEFAULT_CONVERTERS, PathRouter, Pattern
from wsroute.urls import BadTarget


def parse(source: str) -> Pattern:
    return Pattern.parse(source, DEFAULT_CONVERTERS)


def router_of(*sources: str) -> PathRouter[str]:
    router: PathRouter[str] = PathRouter()
    for source in sources:
        router.add(parse(source), source)
    return router


def test_static_path_matches_exactly() -> None:
    """A static pattern matches its own path and nothing longer or shorter."""
    router = router_of("/blue", "/blue/green")
    assert router.match("/blue") == ("/blue", {})
    assert router.match("/blue/green") == ("/blue/green", {})
    assert router.match("/blue/") is None
    assert router.match("/red") is None


def test_int_converter_converts_and_rejects() -> None:
    """``{x:int}`` gives an int and refuses non-digits."""
    router = router_of("/items/{item_id:int}")
    assert router.match("/items/42") == ("/items/{item_id:int}", {"item_id": 42})
    assert router.match("/items/abc") is None
    assert router.match("/items/-1") is None


def test_str_is_the_default_converter_and_takes_one_segment() -> None:
    """``{name}`` takes one non-empty segment as a str."""
    router = router_of("/rooms/{room}")
    assert router.match("/rooms/lobby") == ("/rooms/{room}", {"room": "lobby"})
    assert router.match("/rooms/a/b") is None
    assert router.match("/rooms/") is None


def test_uuid_converter_gives_uuid() -> None:
    """``{x:uuid}`` gives a UUID object."""
    value = uuid.uuid4()
    router = router_of("/u/{id:uuid}")
    assert router.match(f"/u/{value}") == ("/u/{id:uuid}", {"id": value})
    assert router.match("/u/not-a-uuid") is None


def test_path_converter_takes_the_rest_with_slashes() -> None:
    """``{x:path}`` takes the rest of the path, slashes included."""
    router = router_of("/files/{rest:path}")
    assert router.match("/files/a/b/c.txt") == ("/files/{rest:path}", {"rest": "a/b/c.txt"})
    assert router.match("/files/") is None


def test_literal_segment_wins_over_parameter() -> None:
    """``/users/me`` is chosen over ``/users/{id}`` for the path ``/users/me``."""
    router = router_of("/users/{name}", "/users/me", "/users/{name}/posts")
    assert router.match("/users/me") == ("/users/me", {})
    assert router.match("/users/ann") == ("/users/{name}", {"name": "ann"})
    assert router.match("/users/me/posts") == ("/users/{name}/posts", {"name": "me"})


def test_matching_backtracks_when_a_literal_branch_dead_ends() -> None:
    """A literal branch that fails deeper falls back to the parameter branch."""
    router = router_of("/a/b/c", "/a/{x}/d")
    assert router.match("/a/b/d") == ("/a/{x}/d", {"x": "b"})


def test_disjoint_converters_share_a_position() -> None:
    """``int`` and ``uuid`` never accept the same text, so both routes may exist."""
    value = uuid.uuid4()
    router = router_of("/x/{n:int}", "/x/{u:uuid}")
    assert router.match("/x/7") == ("/x/{n:int}", {"n": 7})
    assert router.match(f"/x/{value}") == ("/x/{u:uuid}", {"u": value})


def test_user_converter_is_used_by_patterns() -> None:
    """A registered converter's regex and conversion apply."""
    converters = {**DEFAULT_CONVERTERS, "slug": Converter("slug", r"[a-z0-9-]+", str.upper)}
    router: PathRouter[str] = PathRouter()
    router.add(Pattern.parse("/post/{s:slug}", converters), "post")
    assert router.match("/post/hello-world") == ("post", {"s": "HELLO-WORLD"})
    assert router.match("/post/Hello") is None


def test_converter_value_error_rejects_the_segment() -> None:
    """A converter whose conversion raises ValueError makes the path unmatched."""

    def small(text: str) -> int:
        if int(text) > 10:
            raise ValueError(text)
        return int(text)

    converters = {**DEFAULT_CONVERTERS, "small": Converter("small", r"[0-9]+", small)}
    router: PathRouter[str] = PathRouter()
    router.add(Pattern.parse("/n/{n:small}", converters), "n")
    assert router.match("/n/3") == ("n", {"n": 3})
    assert router.match("/n/30") is None


def test_unknown_converter_names_pattern_and_known_ones() -> None:
    """An unknown converter fails at registration with the pattern and the choices."""
    with pytest.raises(RouteError) as info:
        parse("/items/{id:integer}")
    assert str(info.value) == (
        "route '/items/{id:integer}': unknown converter 'integer' (known: int, path, str, uuid)"
    )


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("items", "must be a str starting with '/'"),
        ("/items/{id", "malformed segment '{id'"),
        ("/items/x{id}", "malformed segment 'x{id}'"),
        ("/items/{1id}", "malformed segment '{1id}'"),
        ("/a/{x}/{x}", "parameter 'x' appears twice"),
        ("/a/{rest:path}/b", "must be the last segment"),
    ],
)
def test_malformed_patterns_fail_with_the_pattern_named(source: str, fragment: str) -> None:
    """Each malformed pattern raises RouteError naming the pattern and the problem."""
    with pytest.raises(RouteError) as info:
        parse(source)
    assert fragment in str(info.value)
    assert repr(source) in str(info.value)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("/a", "/a"),
        ("/items/{id}", "/items/{name}"),
        ("/items/{id:int}", "/items/{name}"),
        ("/x/{a}/y", "/x/{b:int}/y"),
    ],
)
def test_patterns_matching_the_same_requests_conflict(first: str, second: str) -> None:
    """Two patterns that would match the same requests are refused, both named."""
    router = router_of(first)
    with pytest.raises(RouteError) as info:
        router.add(parse(second), second)
    assert f"route {second!r} conflicts with route {first!r}" in str(info.value)


def test_many_parameterised_routes_match_through_the_tree() -> None:
    """A thousand parameterised routes each match their own paths."""
    sources = [f"/api/v{i}/items/{{item_id:int}}/{{field}}" for i in range(1000)]
    router = router_of(*sources)
    assert len(router) == 1000
    assert router.match("/api/v999/items/5/name") == (sources[999], {"item_id": 5, "field": "name"})
    assert router.match("/api/v1000/items/5/name") is None


def test_routes_sharing_a_parameter_position_share_one_branch() -> None:
    """``/a/{x}/b`` and ``/a/{y}/c`` share the ``{str}`` branch, each keeping its own parameter name."""
    router = router_of("/a/{x}/b", "/a/{y}/c", "/a/{n:int}/d")
    assert router.match("/a/1/b") == ("/a/{x}/b", {"x": "1"})
    assert router.match("/a/1/c") == ("/a/{y}/c", {"y": "1"})
    assert router.match("/a/1/d") == ("/a/{n:int}/d", {"n": 1})
    assert len(router._root.static["a"].params) == 2  # one branch per converter, not per route


def test_many_routes_under_one_parameter_do_not_scan() -> None:
    """Hundreds of routes below ``/t/{tenant}/`` are one branch with a dict of literals."""
    router = router_of(*[f"/t/{{tenant}}/svc{i}/{{id:int}}" for i in range(500)])
    assert len(router._root.static["t"].params) == 1
    assert router.match("/t/acme/svc499/12") == ("/t/{tenant}/svc499/{id:int}", {"tenant": "acme", "id": 12})


def test_segments_are_split_before_they_are_decoded() -> None:
    """Parameters arrive decoded, and ``%2F`` stays in its segment instead of making a new one."""
    router = router_of("/rooms/{name}", "/rooms/{name}/log", "/files/{rest:path}")
    assert router.match("/rooms/hello%20world") == ("/rooms/{name}", {"name": "hello world"})
    assert router.match("/rooms/a%2Fb") == ("/rooms/{name}", {"name": "a/b"})
    assert router.match("/rooms/a%2Fb/log") == ("/rooms/{name}/log", {"name": "a/b"})
    assert router.match("/files/a%2Fb/c") == ("/files/{rest:path}", {"rest": "a/b/c"})


def test_literal_segments_match_their_decoded_form() -> None:
    """Static and tree literals, ASCII or not, match percent-encoded requests; an encoded slash never does."""
    router = router_of("/café", "/café/{x}", "/a/b", "/100%")
    assert router.match("/caf%C3%A9") == ("/café", {})
    assert router.match("/caf%c3%a9/1") == ("/café/{x}", {"x": "1"})
    assert router.match("/a%2Fb") is None
    assert router.match("/%61/b") == ("/a/b", {})
    assert router.match("/100%25") == ("/100%", {})


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/x/%FF", "path segment '%FF' is not UTF-8 once percent-decoded"),
        ("/x/%E2%82", "path segment '%E2%82' is not UTF-8 once percent-decoded"),
        ("/100%", "malformed percent-escape '%' in the path"),
        ("/x/%g0", "malformed percent-escape '%g0' in the path"),
    ],
)
def test_undecodable_segment_raises_bad_target(path: str, message: str) -> None:
    """A malformed escape or bytes that are not UTF-8 raise BadTarget, which the handshake answers 400."""
    router = router_of("/x/{y}", "/100%")
    with pytest.raises(BadTarget) as caught:
        router.match(path)
    assert str(caught.value).startswith(message)


def test_pattern_with_a_percent_escape_is_refused() -> None:
    """A pattern literal holding ``%20`` is refused: patterns are written decoded."""
    with pytest.raises(RouteError) as caught:
        parse("/hello%20world")
    assert str(caught.value).startswith(
        "route '/hello%20world': segment 'hello%20world' contains the percent-escape '%20'"
    )


def test_optional_trailing_slash_matches_one_slash_either_way() -> None:
    """``strict_slash=False`` matches one trailing slash more or less; exact patterns win; strict is the default."""
    router: PathRouter[str] = PathRouter()
    router.add(parse("/chat"), "chat", strict_slash=False)
    router.add(parse("/rooms/{name}/"), "room", strict_slash=False)
    router.add(parse("/both"), "both", strict_slash=False)
    router.add(parse("/both/"), "both/", strict_slash=False)
    router.add(parse("/strict"), "strict")
    assert router.match("/chat/") == ("chat", {})
    assert router.match("/rooms/x") == ("room", {"name": "x"})
    assert router.match("/both/") == ("both/", {})
    assert router.match("/chat//") is None
    assert router.match("/rooms/x//") is None
    assert router.match("/strict/") is None
    assert router.near_miss("/strict/") == "/strict"
    assert router.near_miss("/chat//") is None



@pytest.mark.parametrize("path", ["/a/../b", "/a/./b", "/..", "/a/b\x00", "/tab\there"])
def test_patterns_that_no_request_can_reach_are_refused(path: str) -> None:
    """A literal dot segment or control character can never match (such requests get 400), so parsing refuses it."""
    with pytest.raises(RouteError, match="can never match, because requests with dot segments or control"):
        Pattern.parse(path, DEFAULT_CONVERTERS)


def test_literals_are_compared_composed() -> None:
    """``/café`` written composed or decomposed is one pattern: adding both conflicts, and either answers both forms."""
    router: PathRouter[str] = PathRouter()
    router.add(Pattern.parse("/cafe\u0301/{x}", DEFAULT_CONVERTERS), "decomposed")
    with pytest.raises(RouteError, match=re.escape("conflicts with route '/cafe\u0301/{x}'")):
        router.add(Pattern.parse("/caf\u00e9/{x}", DEFAULT_CONVERTERS), "composed")
    assert router.match("/caf%C3%A9/the%CC%81") == ("decomposed", {"x": "th\u00e9"})
    assert router.match("/cafe%CC%81/t") == ("decomposed", {"x": "t"})
