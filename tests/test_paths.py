"""Routing by path against a real server: 404 before the upgrade, params, query."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

import pytest

import wsroute
from wsroute.testing import serve_app


def make_app() -> wsroute.App:
    app = wsroute.App(load_entrypoints=False)

    @app.route("/blue")
    async def blue(ws):
        async for message in ws:
            await ws.send(message)

    @app.route("/items/{item_id:int}")
    async def item(ws, item_id):
        await ws.send_json({"item_id": item_id, "type": type(item_id).__name__, "params": ws.params["item_id"]})

    @app.route("/users/{user:uuid}/files/{rest:path}")
    async def files(ws, user, rest):
        await ws.send_json({"user": str(user), "rest": rest})

    @app.route("/query")
    async def query(ws):
        await ws.send_json({"path": ws.path, "query": ws.query})

    @app.route("/task")
    async def task(ws):
        current = asyncio.current_task()
        await ws.send(current.get_name() if current else "")

    return app


async def test_static_route_echoes() -> None:
    """A static route accepts the upgrade and runs its handler."""
    async with serve_app(make_app()) as server, server.connect("/blue") as ws:
        await ws.send("hello")
        assert await ws.recv() == "hello"


async def test_unknown_path_gets_404_before_upgrade() -> None:
    """A path with no route is refused with HTTP 404 and never upgraded."""
    async with serve_app(make_app()) as server:
        assert await server.rejection("/red") == 404
        answer = await server.http_get("/red")
        assert answer.status == 404


async def test_converted_params_reach_the_handler() -> None:
    """``{item_id:int}`` arrives as an int, as a keyword and in ``ws.params``."""
    async with serve_app(make_app()) as server, server.connect("/items/42") as ws:
        assert await ws.recv() == '{"item_id":42,"type":"int","params":42}'


async def test_converter_rejection_gets_404() -> None:
    """A value the converter rejects (``/items/abc``) gets 404 and no handler runs."""
    async with serve_app(make_app()) as server:
        assert await server.rejection("/items/abc") == 404


async def test_uuid_and_path_converters() -> None:
    """uuid and path converters give a UUID and the rest of the path."""
    user = uuid.uuid4()
    async with serve_app(make_app()) as server, server.connect(f"/users/{user}/files/a/b.txt") as ws:
        assert await ws.recv() == f'{{"user":"{user}","rest":"a/b.txt"}}'


async def test_query_string_is_ignored_for_matching_and_parsed() -> None:
    """The query string does not affect matching and is available parsed."""
    async with serve_app(make_app()) as server, server.connect("/query?a=1&a=2&b=") as ws:
        assert await ws.recv() == '{"path":"/query","query":{"a":["1","2"],"b":[""]}}'
    async with serve_app(make_app()) as server:
        assert await server.rejection("/nope?x=/query") == 404


async def test_connection_task_is_named_after_its_route() -> None:
    """The task running a connection carries the route pattern in its name."""
    async with serve_app(make_app()) as server, server.connect("/task") as ws:
        assert await ws.recv() == "wsroute /task"


async def test_handler_return_closes_with_1000() -> None:
    """A function handler that returns closes the connection normally."""
    async with serve_app(make_app()) as server, server.connect("/items/1") as ws:
        await ws.recv()
        await ws.wait_closed()
        assert ws.close_code == 1000


def decoding_app() -> wsroute.App:
    app = wsroute.App(load_entrypoints=False)

    @app.route("/rooms/{name}")
    async def room(ws, name):
        await ws.send_json({"name": name, "path": ws.path, "decoded_path": ws.decoded_path})

    @app.route("/café/{dish}")
    async def cafe(ws, dish):
        await ws.send_json({"dish": dish})

    @app.route("/items/{item_id:int}")
    async def item(ws, item_id):
        await ws.send_json({"item_id": item_id})

    @app.route("/files/{rest:path}")
    async def files(ws, rest):
        await ws.send_json({"rest": rest})

    @app.route("/blue")
    async def blue(ws):
        await ws.send_json({"query": ws.query})

    return app


async def test_percent_encoded_parameter_reaches_the_handler_decoded() -> None:
    """``/rooms/hello%20world`` gives ``name == "hello world"``; ``ws.path`` is raw, ``ws.decoded_path`` decoded."""
    async with serve_app(decoding_app()) as server, server.connect("/rooms/hello%20world") as ws:
        assert json.loads(await ws.recv()) == {
            "name": "hello world",
            "path": "/rooms/hello%20world",
            "decoded_path": "/rooms/hello world",
        }


async def test_non_ascii_literal_segment_is_reachable() -> None:
    """A route whose literal is not ASCII matches its UTF-8 percent-encoded form, as an IRI or a URI."""
    async with serve_app(decoding_app()) as server:
        async with server.connect("/caf%C3%A9/cr%C3%AApe") as ws:
            assert json.loads(await ws.recv()) == {"dish": "crêpe"}
        async with server.connect("/café/thé") as ws:  # websockets' client encodes the IRI itself
            assert json.loads(await ws.recv()) == {"dish": "thé"}


async def test_encoded_slash_stays_inside_its_segment() -> None:
    """``%2F`` is part of the ``str`` parameter's value; a real ``/`` makes another segment (404)."""
    async with serve_app(decoding_app()) as server:
        async with server.connect("/rooms/a%2Fb") as ws:
            assert json.loads(await ws.recv()) == {"name": "a/b", "path": "/rooms/a%2Fb", "decoded_path": "/rooms/a/b"}
        assert await server.rejection("/rooms/a/b") == 404


async def test_path_converter_gets_the_decoded_segments_joined() -> None:
    """``{rest:path}`` receives the decoded segments joined with ``/``, so ``%2F`` and ``/`` read alike."""
    async with serve_app(decoding_app()) as server, server.connect("/files/a%2Fb/c%20d.txt") as ws:
        assert json.loads(await ws.recv()) == {"rest": "a/b/c d.txt"}


async def test_converters_see_decoded_text_and_static_paths_match_decoded() -> None:
    """``/items/%34%32`` gives the int 42, and ``/bl%75e`` reaches the static route ``/blue``."""
    async with serve_app(decoding_app()) as server:
        async with server.connect("/items/%34%32") as ws:
            assert json.loads(await ws.recv()) == {"item_id": 42}
        async with server.connect("/bl%75e") as ws:
            assert json.loads(await ws.recv()) == {"query": {}}


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("/rooms/%FF", "path segment '%FF' is not UTF-8 once percent-decoded"),
        ("/rooms/caf%C3", "path segment 'caf%C3' is not UTF-8 once percent-decoded"),
        ("/rooms/%zz", "malformed percent-escape '%zz' in the path"),
        ("/blue?q=%FF", "the query string is not UTF-8 once percent-decoded"),
        ("/blue?q=%4", "malformed percent-escape '%4' in the query string"),
    ],
)
async def test_undecodable_target_gets_400_before_the_upgrade(target: str, reason: str, caplog) -> None:
    """A path segment or query that is not UTF-8 once decoded (or a malformed escape) gets 400 with the reason."""
    caplog.set_level(logging.DEBUG)
    async with serve_app(decoding_app()) as server:
        assert await server.rejection(target) == 400
        answer = await server.handshake(target)
        assert answer.status == 400
        assert answer.text.startswith(f"Bad Request: {reason}")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


async def test_query_is_decoded_as_utf8_with_plus_as_space() -> None:
    """``ws.query`` decodes escapes as UTF-8 and ``+`` as a space (form encoding); the path keeps ``+``."""
    async with serve_app(decoding_app()) as server:
        async with server.connect("/blue?name=caf%C3%A9&x=a+b&x=%2B") as ws:
            assert json.loads(await ws.recv()) == {"query": {"name": ["café"], "x": ["a b", "+"]}}
        async with server.connect("/rooms/a+b") as ws:
            assert json.loads(await ws.recv())["name"] == "a+b"


def slash_app(**options) -> wsroute.App:
    app = wsroute.App(load_entrypoints=False, **options)

    @app.route("/chat")
    async def chat(ws):
        await ws.send_json({"route": "/chat", "path": ws.path, "query": ws.query})

    @app.route("/rooms/{name}/")
    async def room(ws, name):
        await ws.send_json({"route": "/rooms/{name}/", "name": name})

    @app.route("/both")
    async def both(ws):
        await ws.send("/both")

    @app.route("/both/")
    async def both_slash(ws):
        await ws.send("/both/")

    @app.route("/strict", trailing_slash="strict")
    async def strict(ws):
        await ws.send("/strict")

    @app.route("/optional", trailing_slash="optional")
    async def optional(ws):
        await ws.send("/optional")

    return app


async def test_trailing_slash_is_optional_by_default() -> None:
    """By default ``/chat`` answers ``/chat/?token=x`` and ``/rooms/{name}/`` answers ``/rooms/x``."""
    async with serve_app(slash_app()) as server:
        async with server.connect("/chat/?token=x") as ws:
            assert json.loads(await ws.recv()) == {"route": "/chat", "path": "/chat/", "query": {"token": ["x"]}}
        async with server.connect("/rooms/x") as ws:
            assert json.loads(await ws.recv()) == {"route": "/rooms/{name}/", "name": "x"}
        async with server.connect("/rooms/x/") as ws:
            assert json.loads(await ws.recv()) == {"route": "/rooms/{name}/", "name": "x"}


async def test_exact_match_wins_and_only_one_slash_is_forgiven() -> None:
    """With ``/both`` and ``/both/`` registered each gets its own requests; ``/chat//`` is 404."""
    async with serve_app(slash_app()) as server:
        for path in ("/both", "/both/"):
            async with server.connect(path) as ws:
                assert await ws.recv() == path
        assert await server.rejection("/chat//") == 404
        assert await server.rejection("/rooms/x//") == 404


async def test_strict_route_refuses_the_other_form_and_names_itself() -> None:
    """A strict route answers 404 to ``/strict/`` with a text naming ``/strict``; other 404s stay plain."""
    async with serve_app(slash_app()) as server:
        async with server.connect("/strict") as ws:
            assert await ws.recv() == "/strict"
        assert await server.rejection("/strict/") == 404
        answer = await server.handshake("/strict/?token=x")
        assert (answer.status, answer.text) == (
            404,
            "Not Found: route '/strict' matches this path without its trailing slash, "
            "and that route is strict about trailing slashes (trailing_slash='strict').\n",
        )
        assert (await server.handshake("/nothing")).text == "Not Found\n"


async def test_strict_app_with_an_optional_route() -> None:
    """``App(trailing_slash="strict")`` makes every route strict unless the route says ``"optional"``."""
    async with serve_app(slash_app(trailing_slash="strict")) as server:
        answer = await server.handshake("/rooms/x")
        assert answer.status == 404
        assert "route '/rooms/{name}/' matches this path with its trailing slash" in answer.text
        async with server.connect("/optional/") as ws:
            assert await ws.recv() == "/optional"


def test_trailing_slash_values_are_checked_at_registration() -> None:
    """A misspelt trailing_slash fails at App() or at the route, naming the value and the choices."""
    with pytest.raises(wsroute.ConfigurationError, match="App\\(trailing_slash='loose'\\): expected one of"):
        wsroute.App(load_entrypoints=False, trailing_slash="loose")
    app = wsroute.App(load_entrypoints=False)

    async def handler(ws):
        pass

    with pytest.raises(wsroute.RouteError, match="route '/x': trailing_slash=True; expected one of 'optional'"):
        app.add_route("/x", handler, trailing_slash=True)
    app.add_route("/play", handler, message="join")
    with pytest.raises(wsroute.RouteError, match="route '/play\\[watch\\]': trailing_slash='strict' differs"):
        app.add_route("/play", handler, message="watch", trailing_slash="strict")


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        ("/files/../etc/passwd", "the path contains a dot segment ('.' or '..')"),
        ("/./blue", "the path contains a dot segment ('.' or '..')"),
        ("/files/%2e%2e/%2E%2E/etc", "path segment '%2e%2e' contains a dot segment ('.' or '..') once percent-decoded"),
        ("/files/..%2F..%2Fetc", "path segment '..%2F..%2Fetc' contains a dot segment ('.' or '..') once percent-decoded"),  # noqa: E501
        ("/rooms/a%2F.", "path segment 'a%2F.' contains a dot segment ('.' or '..') once percent-decoded"),
        ("/rooms/%00", "path segment '%00' contains the control character '\\x00' once percent-decoded"),
        ("/rooms/a%0Ab", "path segment 'a%0Ab' contains the control character '\\n' once percent-decoded"),
        ("/rooms/%7F", "path segment '%7F' contains the control character '\\x7f' once percent-decoded"),
        ("/rooms/\x7f", "the path contains the control character '\\x7f'"),
        ("/rooms/x#frag", "the path contains a '#' (a request target has no fragment)"),
        ("/blue?a=1#frag", "the query string contains a '#' (a request target has no fragment)"),
        ("/rooms/%C0%AF", "path segment '%C0%AF' is not UTF-8 once percent-decoded"),  # overlong '/'
        ("/rooms/%ED%A0%80", "path segment '%ED%A0%80' is not UTF-8 once percent-decoded"),  # a surrogate
    ],
)
async def test_dot_segments_and_control_characters_get_400(target: str, reason: str, caplog) -> None:
    """Dot segments (raw, encoded or behind %2F), control characters, '#' and overlong UTF-8 get 400, not a handler."""
    caplog.set_level(logging.DEBUG, logger="wsroute")
    async with serve_app(decoding_app()) as server:
        answer = await server.handshake(target)
        assert (answer.status, answer.text) == (400, f"Bad Request: {reason}.\n")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


async def test_names_with_dots_and_double_encoding_are_values() -> None:
    """``...``, ``.hidden``, ``%2541`` are plain values: only whole dot segments are refused; decoding runs once."""
    async with serve_app(decoding_app()) as server:
        for target, name in (("/rooms/...", "..."), ("/rooms/.hidden", ".hidden"), ("/rooms/%2541", "%41")):
            async with server.connect(target) as ws:
                assert json.loads(await ws.recv())["name"] == name
        async with server.connect("/files/a.b/..c/%2e.d") as ws:
            assert json.loads(await ws.recv()) == {"rest": "a.b/..c/..d"}


async def test_unicode_forms_name_the_same_route_and_value() -> None:
    """A decomposed é (``e%CC%81``) reaches ``/café`` and reaches the handler composed (NFC), as lowercase hex does."""
    async with serve_app(decoding_app()) as server:
        for target in ("/cafe%CC%81/the%CC%81", "/caf%c3%a9/th%c3%a9", "/caf%C3%A9/th%C3%A9/"):
            async with server.connect(target) as ws:
                assert json.loads(await ws.recv()) == {"dish": "th\u00e9"}


async def test_decomposed_pattern_literal_matches_a_composed_request() -> None:
    """A pattern written in NFD (as some editors save it) still answers the composed form browsers send."""
    app = wsroute.App(load_entrypoints=False)

    @app.route("/cafe\u0301")
    async def cafe(ws):
        await ws.send("cafe")

    async with serve_app(app) as server, server.connect("/caf%C3%A9") as ws:
        assert await ws.recv() == "cafe"


async def test_trailing_slash_with_root_query_path_and_first_message_routes() -> None:
    """The optional slash works with a query, on message-routed paths and ``{rest:path}``; ``//`` is not ``/``."""
    app = wsroute.App(load_entrypoints=False)

    @app.route("/")
    async def root(ws):
        await ws.send_json({"route": "/", "path": ws.path, "query": ws.query})

    @app.route("/play", message="join")
    async def join(ws):
        await ws.send_json({"route": "/play[join]", "path": ws.path, "query": ws.query})

    @app.route("/files/{rest:path}")
    async def files(ws, rest):
        await ws.send_json({"rest": rest})

    async with serve_app(app) as server:
        async with server.connect("/?a=1;b=2") as ws:  # only '&' separates fields
            assert json.loads(await ws.recv()) == {"route": "/", "path": "/", "query": {"a": ["1;b=2"]}}
        async with server.connect("/play/?room=r%C3%A9") as ws:
            await ws.send(json.dumps({"type": "join"}))
            assert json.loads(await ws.recv()) == {"route": "/play[join]", "path": "/play/", "query": {"room": ["ré"]}}
        async with server.connect("/files/a%2Fb/") as ws:  # an exact match: the slash belongs to the value
            assert json.loads(await ws.recv()) == {"rest": "a/b/"}
        assert (await server.handshake("//")).status == 404
        assert (await server.handshake("/files/")).status == 404
        assert (await server.handshake("/play%2F")).status == 404  # an encoded slash is not a trailing slash
