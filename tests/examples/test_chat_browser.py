"""examples/chat in a real browser: two headless Chromium pages use the page the app serves.

The server is the README's command in its own process (its whole log is
checked for ERROR lines); Chromium is driven through the DevTools protocol
with tests/interop's driver (Debian's ``chromium``, nothing downloaded). Each
step acts on the page's own form and waits, bounded, for what the page shows.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from exampletest import Server, command_with, error_lines, free_port, readme_commands
from hubtest import RedisProcess
from test_browser import DevTools, chromium
from timing import timeout

COMMANDS = readme_commands("chat")
WAIT = timeout(10)  # seconds any one thing may take to appear on a page

MEMBERS = "[...document.querySelectorAll('#members li')].map(li => li.textContent)"
LOG = "[...document.querySelectorAll('#log li')].map(li => li.textContent)"


class Page:
    """One browser tab, attached through a flat DevTools session."""

    def __init__(self, devtools: DevTools, session: str) -> None:
        self.devtools = devtools
        self.session = session

    @classmethod
    async def open(cls, devtools: DevTools, url: str) -> Page:
        """A new tab showing ``url``, loaded."""
        target = await devtools.send("Target.createTarget", url="about:blank")
        attached = await devtools.send("Target.attachToTarget", targetId=target["targetId"], flatten=True)
        page = cls(devtools, attached["sessionId"])
        await devtools.send("Runtime.enable", page.session)
        await devtools.send("Page.enable", page.session)
        navigated = await devtools.send("Page.navigate", page.session, url=url)
        assert "errorText" not in navigated, navigated
        await page.wait("document.readyState === 'complete' && document.getElementById('join') !== null")
        return page

    async def eval(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited)."""
        answer = await self.devtools.send(
            "Runtime.evaluate",
            self.session,
            timeout=WAIT + 5,
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
        )
        assert "exceptionDetails" not in answer, answer["exceptionDetails"]
        return answer["result"].get("value")

    async def wait(self, condition: str) -> Any:
        """Poll ``condition`` in the page every 50 ms until truthy; fail after WAIT seconds, saying which."""
        failure = json.dumps(f"waited {WAIT} s for {condition}")
        return await self.eval(
            f"""new Promise((resolve, reject) => {{
                const start = Date.now();
                (function poll() {{
                    const value = ({condition});
                    if (value) resolve(value);
                    else if (Date.now() - start > {WAIT * 1000}) reject(new Error({failure}));
                    else setTimeout(poll, 50);
                }})();
            }})"""
        )

    async def join(self, user: str, room: str) -> None:
        """Fill in the join form and submit it, as a user would."""
        await self.eval(
            f"document.getElementById('user').value = {json.dumps(user)};"
            f"document.getElementById('room').value = {json.dumps(room)};"
            "document.getElementById('join').click()"
        )
        await self.wait("!document.getElementById('send').disabled")

    async def say(self, text: str) -> None:
        """Type a message and press Send."""
        await self.eval(
            f"document.getElementById('text').value = {json.dumps(text)}; document.getElementById('send').click()"
        )

    async def members_are(self, *users: str) -> None:
        """Wait until the member list shows exactly ``users``."""
        await self.wait(f"JSON.stringify({MEMBERS}) === {json.dumps(json.dumps(list(users), separators=(',', ':')))}")

    async def shows(self, line: str) -> None:
        """Wait until the message log has ``line``."""
        await self.wait(f"{LOG}.includes({json.dumps(line)})")

    async def log(self) -> list[str]:
        return list(await self.eval(LOG))


def page_exceptions(devtools: DevTools) -> list[str]:
    """Uncaught JavaScript exceptions of every page so far."""
    return [
        event["params"]["exceptionDetails"].get("text", "")
        for event in devtools.events
        if event.get("method") == "Runtime.exceptionThrown"
    ]


async def test_two_browser_pages_chat_in_a_room() -> None:
    """Two Chromium pages join a room via the served page, see each other's messages, notices and members;
    the server logs no ERROR line from start to stop."""
    port = free_port()
    with Server(command_with(COMMANDS, "wsroute run", {"8765": port}), port) as server:
        async with chromium() as devtools:
            ann = await Page.open(devtools, f"http://127.0.0.1:{port}/")
            await ann.join("ann", "lobby")
            await ann.members_are("ann")

            bob = await Page.open(devtools, f"http://127.0.0.1:{port}/")
            await bob.join("bob", "lobby")
            await bob.members_are("ann", "bob")
            await ann.members_are("ann", "bob")
            await ann.shows("bob joined")

            await ann.say("hi bob")
            await bob.shows("ann: hi bob")
            await ann.shows("ann: hi bob")
            await bob.say("hello ann")
            await ann.shows("bob: hello ann")
            await ann.say("/w bob psst")
            await bob.shows("ann (whisper): psst")

            await bob.eval("document.getElementById('leave').click()")
            await bob.wait("document.getElementById('status').textContent === 'left'")
            await bob.members_are()
            await ann.shows("bob left")
            await ann.members_are("ann")

            ann_log = await ann.log()
            expected = ["bob joined", "ann: hi bob", "bob: hello ann", "bob left"]
            assert [line for line in ann_log if line in expected] == expected
            assert "bob (whisper): psst" not in ann_log and "ann (whisper): psst" not in ann_log
            assert page_exceptions(devtools) == []
        assert await asyncio.to_thread(server.stop) == 0
        log = server.log()
    assert error_lines(log) == [], log


async def test_page_shows_what_was_said_while_its_server_restarted(redis_process: RedisProcess) -> None:
    """Two servers share the rooms through Redis; ann's server restarts while bob talks on the other one: ann's
    page reconnects by itself with its last position and shows each line said meanwhile, once, in order."""
    port_a, port_b = free_port(), free_port()
    broker = f" --broker {redis_process.url}"
    command_a = command_with(COMMANDS, "wsroute run", {"8765": port_a}) + broker
    command_b = command_with(COMMANDS, "wsroute run", {"8765": port_b}) + broker
    with Server(command_b, port_b):
        a = Server(command_a, port_a)
        try:
            async with chromium() as devtools:
                ann = await Page.open(devtools, f"http://127.0.0.1:{port_a}/")
                await ann.join("ann", "lobby")
                bob = await Page.open(devtools, f"http://127.0.0.1:{port_b}/")
                await bob.join("bob", "lobby")
                await bob.say("before")
                await ann.shows("bob: before")

                assert await asyncio.to_thread(a.stop) == 0  # SIGTERM: ann's page is closed with 1001
                a.__exit__()
                await ann.wait("document.getElementById('status').textContent.includes('reconnecting')")
                await bob.say("during 1")
                await bob.say("during 2")
                await bob.shows("bob: during 2")
                a = await asyncio.to_thread(Server, command_a, port_a)  # the same server, restarted

                await ann.shows("bob: during 2")
                await ann.shows("2 message(s) while you were away")
                await ann.wait("!document.getElementById('send').disabled")
                await bob.say("after")
                await ann.shows("bob: after")
                said = [line for line in await ann.log() if line.startswith("bob: ")]
                assert said == ["bob: before", "bob: during 1", "bob: during 2", "bob: after"]
                assert page_exceptions(devtools) == []
        finally:
            a.stop()
            log = "" if a._log.closed else a.log()  # the restarted server's whole log
            a.__exit__()
    assert error_lines(log) == [], log
