#!/usr/bin/env python3
"""A scripted MCP client built on the official MCP Python SDK (`mcp`, pinned in
requirements.txt), for end-to-end tests: a test drives a real client, step by step.

    agent.py [--call-timeout S] stdio [--cwd DIR] -- COMMAND [ARGS...]
    agent.py [--call-timeout S] http URL [--header 'Name: value' ...]

`stdio` spawns COMMAND as the MCP server (the SDK's stdio client; COMMAND gets this
process's whole environment and its stderr goes to this process's stderr). `http`
connects to URL with the SDK's Streamable HTTP client, sending each --header on every
HTTP request.

After the `initialize` handshake it prints one line,
    {"ok":true,"ready":true,"server":{serverInfo},"protocol_version":"...","capabilities":{...}}
or, when the connection or the handshake fails, {"ok":false,"code":...,"message":...}
and exits 1. Then it reads steps from stdin, one JSON object a line, and prints exactly
one JSON line for each, in order, flushed:

    {"op":"list_tools"}                      {"ok":true,"tools":[names],"raw":{ListToolsResult}}
      (optional "cursor")
    {"op":"call","tool":T,"arguments":{..}}  {"ok":true,"is_error":b,"content":[texts],"raw":{..}}
      (optional "progress":true adds a progress token and "progress":[{progress,total,message}])
    {"op":"call_async", same fields}         {"ok":true,"started":N}   (does not wait)
    {"op":"await","n":N}                     the result of call_async N, as for "call", plus "n"
    {"op":"ping"}                            {"ok":true}
    {"op":"request","method":M,"params":{}}  {"ok":true,"result":{raw result}} (any method)
    {"op":"close"}                           {"ok":true,"closed":true} once the session and the
                                             transport are closed; then exits 0 (so does EOF)

A JSON-RPC error answer is {"ok":false,"code":<error.code>,"message":<error.message>}
(plus "data" when the error has some), exactly as the SDK's MCPError carries it; any
other failure of a step is {"ok":false,"code":null,"message":"<ExceptionType>: <text>"}
and the agent goes on with the next step. A call that has no answer within
--call-timeout seconds (default 300) fails with code null and a TimeoutError message (the
SDK then sends notifications/cancelled for it). README.md has the details.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import threading
from collections.abc import Awaitable
from contextlib import AsyncExitStack
from typing import Any, TypeVar

import anyio
import anyio.abc
import httpx2
import mcp_types as types
from pydantic import TypeAdapter

from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

CLIENT_INFO = types.Implementation(name="arbiter-test-agent", version="1.0.0")
_RAW = TypeAdapter(dict[str, Any])
T = TypeVar("T")


def emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def dump(model: Any) -> Any:
    return model.model_dump(by_alias=True, mode="json", exclude_unset=True)


def leaf_exceptions(exc: BaseException) -> list[BaseException]:
    """The exceptions inside (nested) exception groups: anyio task groups wrap them."""
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in leaf_exceptions(sub)]
    return [exc]


def failure(exc: BaseException) -> dict[str, Any]:
    leaves = leaf_exceptions(exc)
    mcp_errors = [e for e in leaves if isinstance(e, MCPError)]
    if mcp_errors:
        err = mcp_errors[0].error
        out: dict[str, Any] = {"ok": False, "code": err.code, "message": err.message}
        if err.data is not None:
            out["data"] = err.data
        return out
    first = leaves[0]
    return {"ok": False, "code": None, "message": f"{type(first).__name__}: {first}"}


class Agent:
    def __init__(self, session: ClientSession, call_timeout: float) -> None:
        self.session = session
        self.call_timeout = call_timeout
        self.started: dict[int, tuple[anyio.Event, dict[str, Any]]] = {}

    async def within(self, what: str, awaitable: Awaitable[T]) -> T:
        """Awaits `awaitable`, failing with a TimeoutError after --call-timeout seconds."""
        try:
            with anyio.fail_after(self.call_timeout):
                return await awaitable
        except TimeoutError:
            raise TimeoutError(f"no answer to {what} within {self.call_timeout:g} s (--call-timeout)") from None

    async def call(self, step: dict[str, Any]) -> dict[str, Any]:
        tool = step.get("tool")
        if not isinstance(tool, str):
            raise ValueError('a call needs "tool": a string')
        arguments = step.get("arguments")
        progress: list[dict[str, Any]] | None = [] if step.get("progress") else None

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            assert progress is not None
            progress.append({"progress": value, "total": total, "message": message})

        # session.send_request, not session.call_tool: call_tool sends a tools/list of its
        # own before the first call of each tool (to validate structured output), and a
        # test must see on the wire exactly the requests it asked for.
        request = types.CallToolRequest(params=types.CallToolRequestParams(name=tool, arguments=arguments))
        try:
            result = await self.within(f"tools/call {tool}", self.session.send_request(
                request,
                types.CallToolResult,
                progress_callback=on_progress if progress is not None else None,
            ))
        except Exception as exc:  # noqa: BLE001 - every failure is reported, not raised
            out = failure(exc)
        else:
            out = {
                "ok": True,
                "is_error": bool(result.is_error),
                "content": [c.text for c in result.content if isinstance(c, types.TextContent)],
                "raw": dump(result),
            }
        if progress is not None:
            out["progress"] = progress
        return out

    async def run_async(self, n: int, step: dict[str, Any]) -> None:
        done, slot = self.started[n]
        try:
            slot.update(await self.call(step))
        except BaseException as exc:
            slot.update(failure(exc))
            raise
        finally:
            slot["n"] = n
            done.set()

    async def step(self, step: dict[str, Any], tg: anyio.abc.TaskGroup) -> dict[str, Any] | None:
        op = step.get("op")
        if op == "list_tools":
            cursor = step.get("cursor")
            params = types.PaginatedRequestParams(cursor=cursor) if cursor is not None else None
            result = await self.within("tools/list", self.session.list_tools(params=params))
            return {"ok": True, "tools": [t.name for t in result.tools], "raw": dump(result)}
        if op == "call":
            return await self.call(step)
        if op == "call_async":
            n = len(self.started) + 1
            self.started[n] = (anyio.Event(), {})
            tg.start_soon(self.run_async, n, step)
            return {"ok": True, "started": n}
        if op == "await":
            n = step.get("n")
            if not isinstance(n, int) or n not in self.started:
                raise ValueError(f"no call_async numbered {n!r}")
            done, slot = self.started[n]
            await done.wait()
            return slot
        if op == "ping":
            await self.within("ping", self.session.send_ping())
            return {"ok": True}
        if op == "request":
            method = step.get("method")
            if not isinstance(method, str):
                raise ValueError('a request needs "method": a string')
            request = types.Request[dict[str, Any] | None, str](method=method, params=step.get("params"))
            result = await self.within(method, self.session.send_request(request, _RAW))
            return {"ok": True, "result": result}
        if op == "close":
            return None
        raise ValueError(f"unknown op {op!r} (known: list_tools, call, call_async, await, ping, request, close)")


class StdinLines:
    """Lines of stdin, read by a daemon thread: a read still blocked when the agent exits
    (the transport failed while it waited for the next step) must not keep it alive."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        threading.Thread(target=self._pump, name="stdin", daemon=True).start()

    def _pump(self) -> None:
        for line in iter(sys.stdin.readline, ""):
            self._put(line)
        self._put("")  # EOF

    def _put(self, line: str) -> None:
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, line)
        except RuntimeError:  # the loop is closed: the agent is exiting
            pass

    async def readline(self) -> str:
        return await self.queue.get()


async def connect(args: argparse.Namespace, stack: AsyncExitStack) -> tuple[ClientSession, types.InitializeResult]:
    """Opens the transport and the session on `stack` and runs the initialize handshake."""
    if args.transport == "stdio":
        params = StdioServerParameters(
            command=args.command[0], args=args.command[1:], env=dict(os.environ), cwd=args.cwd
        )
        read, write = await stack.enter_async_context(stdio_client(params))
    else:
        headers: dict[str, str] = {}
        for header in args.header:
            name, sep, value = header.partition(":")
            if not sep or not name.strip():
                raise ValueError(f"--header {header!r} is not 'Name: value'")
            headers[name.strip()] = value.strip()
        # The SDK's default HTTP timeouts (30 s, 300 s to read), except that reads outlast
        # --call-timeout: a held call streams nothing until it is answered.
        timeout = httpx2.Timeout(30.0, read=max(300.0, args.call_timeout + 30.0))
        client = await stack.enter_async_context(httpx2.AsyncClient(headers=headers, timeout=timeout))
        read, write = await stack.enter_async_context(streamable_http_client(args.url, http_client=client))
    session = await stack.enter_async_context(ClientSession(read, write, client_info=CLIENT_INFO))
    try:
        with anyio.fail_after(args.call_timeout):
            init = await session.initialize()
    except TimeoutError:
        raise TimeoutError(f"no answer to initialize within {args.call_timeout:g} s (--call-timeout)") from None
    return session, init


async def main(args: argparse.Namespace) -> int:
    stdin = StdinLines()
    closed_by_step = False
    try:
        async with AsyncExitStack() as stack:
            session, init = await connect(args, stack)
            emit({
                "ok": True,
                "ready": True,
                "server": dump(init.server_info),
                "protocol_version": init.protocol_version,
                "capabilities": dump(init.capabilities),
            })
            agent = Agent(session, args.call_timeout)
            async with anyio.create_task_group() as tg:
                while True:
                    line = await stdin.readline()
                    if not line:  # EOF: close as for {"op":"close"}, with nobody to tell
                        break
                    if not line.strip():
                        continue
                    try:
                        step = json.loads(line)
                        if not isinstance(step, dict):
                            raise ValueError("a step is a JSON object")
                        out = await agent.step(step, tg)
                    except Exception as exc:  # noqa: BLE001 - report it and go on
                        out = failure(exc)
                    if out is None:  # close
                        closed_by_step = True
                        break
                    emit(out)
                tg.cancel_scope.cancel()  # calls still running are abandoned (and cancelled)
    except Exception as exc:  # noqa: BLE001
        # The connection or the handshake failed, or the transport failed later (the SDK's
        # HTTP transport ends the whole session when a POST cannot be sent, for one).
        emit(failure(exc))
        return 1
    # The session and the transport are closed here (the stdio server has exited, or the
    # HTTP session was ended with DELETE).
    if closed_by_step:
        emit({"ok": True, "closed": True})
    return 0


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="agent.py", description="A scripted MCP client (official MCP Python SDK); steps on stdin."
    )
    parser.add_argument("--call-timeout", type=float, default=300.0, metavar="SECONDS",
                        help="how long any request may wait for its answer (default 300)")
    sub = parser.add_subparsers(dest="transport", required=True)
    # --call-timeout is accepted after the transport too (`http URL --call-timeout 5`).
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--call-timeout", type=float, default=argparse.SUPPRESS, metavar="SECONDS",
                        help="as above")
    stdio = sub.add_parser("stdio", parents=[common],
                           help="spawn COMMAND as the MCP server: stdio -- COMMAND [ARGS...]")
    stdio.add_argument("--cwd", default=None, help="working directory of COMMAND")
    http = sub.add_parser("http", parents=[common], help="connect to a Streamable HTTP endpoint")
    http.add_argument("url")
    http.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                      help="an HTTP header sent with every request (repeatable)")

    # `stdio -- COMMAND ARGS...`: everything after the first `--` is the command, verbatim.
    command: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, command = argv[:at], argv[at + 1:]
    args = parser.parse_args(argv)
    if args.transport == "stdio":
        if not command:
            parser.error("stdio needs the server's command after `--`: stdio -- COMMAND [ARGS...]")
        args.command = command
    elif command:
        parser.error("`--` COMMAND is for stdio only")
    if args.call_timeout <= 0:
        parser.error("--call-timeout must be positive")
    return args


if __name__ == "__main__":
    sys.exit(anyio.run(main, parse_args(sys.argv[1:])))
