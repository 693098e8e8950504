#!/usr/bin/env python3
"""The MCP gateway's added latency per allowed `tools/call`, against calling the same MCP
server directly, side by side in one run. Run it with the Python of scripts/install-mcp
(the official MCP Python SDK); scripts/bench-mcp starts everything and runs it.

    overhead.py [--calls N] [--warmup W] [--ping-calls N] [--pause-ms P] [--metrics URL]
                --direct TARGET --gateway TARGET

TARGET is a Streamable HTTP endpoint (`http://127.0.0.1:N/mcp`) or `stdio:COMMAND ARGS...`
(a shell-quoted command the SDK's stdio client launches as the server, e.g. the gateway
with the server after `--`).

It opens one session to each target (the `initialize` handshake), warms both up with W
calls each (default 200; the gateway's first call also makes it list the tools), then
makes N rounds (default 2000) of one `tools/call echo` direct then one through the
gateway, strictly one request at a time, and times each with time.perf_counter_ns around
the SDK's `session.send_request` (the same method, message and client code on both
sides; not `call_tool`, which may add a `tools/list`). Every answer is checked (`Echo:
<message>`, no error): a failed or hung call (--timeout) stops the run with exit 1.

Then it does the same with --ping-calls rounds of `ping` (default 2000), which the gateway
relays without asking Arbiter: the cost of the extra hop alone. --pause-ms P leaves P ms
idle before every measured call (default 0: back to back).

It prints p50, p90, p99, max and the mean of each side, the difference of the p50s and of
the p99s (the added latency), and the percentiles of the per-round differences (gateway
minus the direct call just before it), as text and then as one JSON line (microseconds).
With --metrics (Arbiter's Prometheus endpoint) it also reports, from the counters' change
over the measured `echo` rounds, Arbiter's mean time per decision (evaluation) and per
audit commit, and how many decisions Arbiter made during the `ping` rounds (none
expected).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import shlex
import sys
import time
from contextlib import AsyncExitStack
from typing import Any, TextIO

import anyio
import httpx2
import mcp_types as types

from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

CLIENT_INFO = types.Implementation(name="arbiter-bench-mcp", version="1.0.0")


def percentile(sorted_values: list[float], p: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def summary(values_ns: list[int]) -> dict[str, float]:
    us = sorted(v / 1000.0 for v in values_ns)
    return {
        "p50": round(percentile(us, 50), 1),
        "p90": round(percentile(us, 90), 1),
        "p99": round(percentile(us, 99), 1),
        "max": round(us[-1], 1),
        "mean": round(sum(us) / len(us), 1),
    }


class Target:
    """One MCP session, direct or through the gateway."""

    def __init__(self, name: str, spec: str, timeout: float, errlog: TextIO) -> None:
        self.name = name
        self.spec = spec
        self.timeout = timeout
        self.errlog = errlog
        self.session: ClientSession | None = None

    async def open(self, stack: AsyncExitStack) -> types.InitializeResult:
        if self.spec.startswith("stdio:"):
            argv = shlex.split(self.spec[len("stdio:"):])
            if not argv:
                raise ValueError(f"{self.name}: `stdio:` needs a command")
            params = StdioServerParameters(command=argv[0], args=argv[1:], env=dict(os.environ))
            read, write = await stack.enter_async_context(stdio_client(params, errlog=self.errlog))
        elif self.spec.startswith("http://") or self.spec.startswith("https://"):
            timeout = httpx2.Timeout(30.0, read=max(60.0, self.timeout + 30.0))
            client = await stack.enter_async_context(httpx2.AsyncClient(timeout=timeout))
            read, write = await stack.enter_async_context(streamable_http_client(self.spec, http_client=client))
        else:
            raise ValueError(f"{self.name}: {self.spec!r} is neither an http:// URL nor stdio:COMMAND")
        self.session = await stack.enter_async_context(ClientSession(read, write, client_info=CLIENT_INFO))
        with anyio.fail_after(self.timeout):
            return await self.session.initialize()

    async def echo(self, message: str) -> int:
        """One `tools/call echo`, checked; returns its duration in ns."""
        assert self.session is not None
        request = types.CallToolRequest(
            params=types.CallToolRequestParams(name="echo", arguments={"message": message})
        )
        try:
            with anyio.fail_after(self.timeout):
                start = time.perf_counter_ns()
                result = await self.session.send_request(request, types.CallToolResult)
                elapsed = time.perf_counter_ns() - start
        except TimeoutError:
            raise RuntimeError(f"{self.name}: no answer to tools/call echo within {self.timeout:g} s") from None
        except Exception as exc:  # the SDK's MCPError, transport errors
            raise RuntimeError(f"{self.name}: tools/call echo failed: {type(exc).__name__}: {exc}") from exc
        texts = [c.text for c in result.content if isinstance(c, types.TextContent)]
        if result.is_error or texts != [f"Echo: {message}"]:
            raise RuntimeError(f"{self.name}: unexpected answer to tools/call echo: is_error={result.is_error} content={texts}")
        return elapsed

    async def ping(self) -> int:
        """One `ping` (which the gateway relays without a decision); returns its duration in ns."""
        assert self.session is not None
        try:
            with anyio.fail_after(self.timeout):
                start = time.perf_counter_ns()
                await self.session.send_ping()
                return time.perf_counter_ns() - start
        except TimeoutError:
            raise RuntimeError(f"{self.name}: no answer to ping within {self.timeout:g} s") from None
        except Exception as exc:
            raise RuntimeError(f"{self.name}: ping failed: {type(exc).__name__}: {exc}") from exc


async def interleaved(n: int, pause: float, direct: Any, gateway: Any) -> tuple[list[int], list[int], int]:
    """n rounds of one direct then one gateway call (each after `pause` seconds idle);
    their durations, and the wall time of all rounds, in ns."""
    d_ns: list[int] = []
    g_ns: list[int] = []
    gc.collect()
    gc.disable()
    wall = time.perf_counter_ns()
    try:
        for _ in range(n):
            if pause:
                await anyio.sleep(pause)
            d_ns.append(await direct())
            if pause:
                await anyio.sleep(pause)
            g_ns.append(await gateway())
    finally:
        gc.enable()
    return d_ns, g_ns, time.perf_counter_ns() - wall


def compare(d_ns: list[int], g_ns: list[int]) -> dict[str, Any]:
    d, g = summary(d_ns), summary(g_ns)
    return {
        "direct": d,
        "gateway": g,
        "added": {"p50": round(g["p50"] - d["p50"], 1), "p99": round(g["p99"] - d["p99"], 1),
                  "mean": round(g["mean"] - d["mean"], 1)},
        "paired_difference": summary([gv - dv for dv, gv in zip(d_ns, g_ns)]),
    }


async def scrape(url: str) -> dict[str, float]:
    """The `_sum` and `_count` of Arbiter's latency histograms, summed over labels."""
    wanted = ("arbiter_decision_seconds", "arbiter_audit_write_seconds", "arbiter_audit_records")
    out: dict[str, float] = {}
    async with httpx2.AsyncClient(timeout=10.0) as client:
        text = (await client.get(url)).text
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        if name.startswith(wanted) and name.endswith(("_sum", "_count", "_total")):
            try:
                out[name] = out.get(name, 0.0) + float(value)
            except ValueError:
                pass
    return out


def server_side(before: dict[str, float], after: dict[str, float]) -> dict[str, Any]:
    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    out: dict[str, Any] = {}
    decisions = delta("arbiter_decision_seconds_count")
    if decisions > 0:
        out["decisions"] = int(decisions)
        out["decision_mean_us"] = round(delta("arbiter_decision_seconds_sum") / decisions * 1e6, 1)
    commits = delta("arbiter_audit_write_seconds_count")
    if commits > 0:
        out["audit_commits"] = int(commits)
        out["audit_commit_mean_us"] = round(delta("arbiter_audit_write_seconds_sum") / commits * 1e6, 1)
    records = delta("arbiter_audit_records_total")
    if records > 0:
        out["audit_records"] = int(records)
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    errlog: TextIO = open(args.stdio_log, "a") if args.stdio_log else sys.stderr
    direct = Target("direct", args.direct, args.timeout, errlog)
    gateway = Target("gateway", args.gateway, args.timeout, errlog)
    async with AsyncExitStack() as stack:
        for t in (direct, gateway):
            init = await t.open(stack)
            print(f"{t.name}: {t.spec} -> {init.server_info.name} {init.server_info.version}", file=sys.stderr)
        message = args.message
        pause = args.pause_ms / 1000.0
        for _ in range(args.warmup):
            await direct.echo(message)
            await gateway.echo(message)
        before = await scrape(args.metrics) if args.metrics else None
        d_ns, g_ns, wall = await interleaved(
            args.calls, pause, lambda: direct.echo(message), lambda: gateway.echo(message)
        )
        after = await scrape(args.metrics) if args.metrics else None
        ping: dict[str, Any] | None = None
        if args.ping_calls:
            for _ in range(min(args.warmup, 50)):
                await direct.ping()
                await gateway.ping()
            pd, pg, pwall = await interleaved(args.ping_calls, pause, direct.ping, gateway.ping)
            ping = {"calls": args.ping_calls, **compare(pd, pg), "wall_s": round(pwall / 1e9, 2)}
            if args.metrics:
                decided = server_side(after or {}, await scrape(args.metrics)).get("decisions", 0)
                ping["decisions"] = decided
    if args.stdio_log:
        errlog.close()
    result: dict[str, Any] = {
        "bench": "mcp-gateway-overhead",
        "transport": "stdio" if args.gateway.startswith("stdio:") else "http",
        "tool": "echo",
        "calls": args.calls,
        "warmup": args.warmup,
        "unit": "us",
        **compare(d_ns, g_ns),
        "pause_ms": args.pause_ms,
        "wall_s": round(wall / 1e9, 2),
    }
    if ping is not None:
        result["ping"] = ping
    if before is not None and after is not None:
        result["server"] = server_side(before, after)
    return result


def report(r: dict[str, Any]) -> None:
    print(f"MCP gateway overhead, {r['transport']}, tools/call echo, {r['calls']} interleaved rounds "
          f"after {r['warmup']} warm-up calls each ({r['wall_s']} s), microseconds:")
    print(f"  {'':<26}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}{'mean':>9}")
    for label, key in (("direct", "direct"), ("via gateway", "gateway"),
                       ("per-round difference", "paired_difference")):
        s = r[key]
        print(f"  {label:<26}{s['p50']:>9.1f}{s['p90']:>9.1f}{s['p99']:>9.1f}{s['max']:>9.1f}{s['mean']:>9.1f}")
    a = r["added"]
    print(f"  added (difference of p50s / p99s / means): {a['p50']:.1f} / {a['p99']:.1f} / {a['mean']:.1f}")
    s = r.get("server")
    if s:
        parts = []
        if "decisions" in s:
            parts.append(f"{s['decisions']} decisions, {s['decision_mean_us']} us each on average (evaluation)")
        if "audit_commits" in s:
            parts.append(f"{s.get('audit_records', '?')} audit records in {s['audit_commits']} commits, "
                         f"{s['audit_commit_mean_us']} us per commit")
        print("  Arbiter, over the measured rounds: " + "; ".join(parts))
    pg = r.get("ping")
    if pg:
        print(f"  ping (relayed without a decision), {pg['calls']} interleaved rounds ({pg['wall_s']} s):")
        for label, key in (("direct", "direct"), ("via gateway", "gateway"),
                           ("per-round difference", "paired_difference")):
            s = pg[key]
            print(f"  {label:<26}{s['p50']:>9.1f}{s['p90']:>9.1f}{s['p99']:>9.1f}{s['max']:>9.1f}{s['mean']:>9.1f}")
        a = pg["added"]
        print(f"  added (difference of p50s / p99s / means): {a['p50']:.1f} / {a['p99']:.1f} / {a['mean']:.1f}"
              + (f"; decisions made meanwhile: {pg['decisions']}" if "decisions" in pg else ""))
    print(json.dumps(r, separators=(",", ":")), flush=True)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--direct", required=True, help="the MCP server itself: http://... or stdio:COMMAND")
    p.add_argument("--gateway", required=True, help="the same server through the gateway: http://... or stdio:COMMAND")
    p.add_argument("--calls", type=int, default=2000, help="measured rounds (one call each side)")
    p.add_argument("--warmup", type=int, default=200, help="warm-up calls on each side")
    p.add_argument("--ping-calls", type=int, default=2000,
                   help="then as many rounds of `ping`, which the gateway relays without a decision: the cost of the hop alone (0: none)")
    p.add_argument("--pause-ms", type=float, default=0.0,
                   help="idle time before each measured call, not timed (default 0: back to back)")
    p.add_argument("--message", default="bench", help="the echo tool's message")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds a call may take before the run fails")
    p.add_argument("--metrics", help="Arbiter's Prometheus endpoint, e.g. http://127.0.0.1:9464/metrics")
    p.add_argument("--stdio-log", help="append the stderr of stdio servers (and of the gateway) to this file")
    args = p.parse_args()
    if args.calls < 1 or args.warmup < 0 or args.pause_ms < 0 or args.ping_calls < 0:
        p.error("--calls must be at least 1; --warmup, --ping-calls and --pause-ms at least 0")
    try:
        result = anyio.run(run, args)
    except BaseException as exc:  # noqa: BLE001 - anyio wraps failures in exception groups
        leaves = [exc]
        while any(isinstance(e, BaseExceptionGroup) for e in leaves):
            leaves = [s for e in leaves for s in (e.exceptions if isinstance(e, BaseExceptionGroup) else [e])]
        for e in leaves:
            print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    report(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
