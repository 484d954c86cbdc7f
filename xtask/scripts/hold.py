#!/usr/bin/env python3
"""Hold COUNT idle TCP, TLS, WS or WSS connections to a server and report the server's
memory growth per connection. Standard library only (asyncio), used by `cargo xtask bench`
for WebSocket holds and for TCP holds above conn_hold.py's 20,000.

    python3 hold.py ws 127.0.0.1 8072 2000 --server-pid 1234 --hold-seconds 5
    python3 hold.py tcp 127.0.0.1 5060 50000 --server-pid 1234   # 3 source IPs: 127.0.0.1..3

What it is not: a load generator. Each connection sends nothing after its opening
(TLS handshake; for ws/wss the HTTP upgrade with `Sec-WebSocket-Protocol: sip`, RFC 7118).

Memory is sampled like ../shared/peers/conn_hold.py: sum of VmRSS and of Pss over every
--server-pid and its descendants, before opening and --settle seconds after the last open.
More than ~25,000 connections to one address need several source addresses (the ephemeral
port range): connections are spread over 127.0.0.1, 127.0.0.2, ... (20,000 each), bound
with IP_BIND_ADDRESS_NO_PORT so the port is picked per 4-tuple.

Bounded: COUNT <= 60,000, --hold-seconds <= 600, every open has --connect-timeout.
The last line is one JSON object. Exit 0 when every connection opened and stayed open.
"""
import argparse
import asyncio
import base64
import json
import os
import resource
import socket
import ssl
import sys
import time

MAX_COUNT = 60000
MAX_HOLD = 600
PER_SOURCE = 20000
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


def children_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rfind(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree(pids):
    kids, out, todo = children_map(), [], list(pids)
    while todo:
        p = todo.pop()
        if p not in out:
            out.append(p)
            todo.extend(kids.get(p, []))
    return out


def kb_field(path, field):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def mem(pids):
    ps = tree(pids)
    return {
        "procs": len(ps),
        "rss_kb": sum(kb_field(f"/proc/{p}/status", "VmRSS") for p in ps),
        "pss_kb": sum(kb_field(f"/proc/{p}/smaps_rollup", "Pss") for p in ps),
    }


async def open_one(proto, host, port, src, ctx, timeout):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        sock.bind((src, 0))
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.sock_connect(sock, (host, port)), timeout)
    except BaseException:
        sock.close()
        raise
    secure = proto in ("tls", "wss")
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(sock=sock, ssl=ctx if secure else None,
                                server_hostname=host if secure else None),
        timeout)
    if proto in ("ws", "wss"):
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n").encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        if not head.startswith(b"HTTP/1.1 101"):
            writer.close()
            raise ConnectionError("upgrade refused: " + head.split(b"\r\n")[0].decode(errors="replace"))
    return reader, writer


async def main_async(a):
    ctx = None
    if a.proto in ("tls", "wss"):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    nsrc = max(1, -(-a.count // PER_SOURCE))
    sources = [f"127.0.0.{i + 1}" for i in range(nsrc)]
    res = {"proto": a.proto, "host": a.host, "port": a.port, "count": a.count, "sources": nsrc}
    pids = a.server_pid
    if pids:
        res["before"] = mem(pids)
    held, errors = [], {}
    sem = asyncio.Semaphore(a.concurrency)
    t0 = time.monotonic()

    async def one(i):
        if a.rate > 0:
            delay = t0 + i / a.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        async with sem:
            try:
                held.append(await open_one(a.proto, a.host, a.port, sources[i % nsrc], ctx,
                                           a.connect_timeout))
            except (OSError, asyncio.TimeoutError, ConnectionError, asyncio.IncompleteReadError,
                    asyncio.LimitOverrunError) as e:
                k = type(e).__name__
                errors[k] = errors.get(k, 0) + 1

    await asyncio.gather(*(one(i) for i in range(a.count)))
    res["opened"] = len(held)
    res["open_errors"] = errors
    res["open_wall_s"] = round(time.monotonic() - t0, 3)
    print(f"opened {len(held)}/{a.count} {a.proto} in {res['open_wall_s']} s, errors {errors}",
          flush=True)
    t_up = time.monotonic()
    if pids and held:
        await asyncio.sleep(a.settle)
        after = mem(pids)
        res["after_open"] = after
        n = len(held)
        res["per_conn_rss_kb"] = round((after["rss_kb"] - res["before"]["rss_kb"]) / n, 2)
        res["per_conn_pss_kb"] = round((after["pss_kb"] - res["before"]["pss_kb"]) / n, 2)
        print(f"server RSS {res['before']['rss_kb']} -> {after['rss_kb']} kB "
              f"({res['per_conn_rss_kb']} kB/conn)", flush=True)
    rest = a.hold_seconds - (time.monotonic() - t_up)
    if rest > 0:
        await asyncio.sleep(rest)
    res["still_open"] = sum(1 for r, w in held if not r.at_eof() and not w.is_closing())
    res["held_s"] = round(time.monotonic() - t_up, 1)
    tc = time.monotonic()
    for i, (_, w) in enumerate(held):
        if a.rate > 0 and i % 100 == 0:  # paced closes: a FIN burst floods a 1-reader Kamailio
            delay = tc + i / a.rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        w.close()
    await asyncio.sleep(0.2)
    print(json.dumps(res), flush=True)
    return 0 if res["opened"] == a.count and res["still_open"] == a.count else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("proto", choices=["tcp", "tls", "ws", "wss"])
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("count", type=int)
    ap.add_argument("--server-pid", type=int, action="append", default=[])
    ap.add_argument("--hold-seconds", type=float, default=5.0)
    ap.add_argument("--settle", type=float, default=2.0)
    ap.add_argument("--rate", type=float, default=2000, help="opens (and closes) per second; 0 = no limit")
    ap.add_argument("--concurrency", type=int, default=64, help="opens in progress at once")
    ap.add_argument("--connect-timeout", type=float, default=10.0)
    a = ap.parse_args()
    if not 1 <= a.count <= MAX_COUNT:
        ap.error(f"count must be 1..{MAX_COUNT}")
    if not 0 <= a.hold_seconds <= MAX_HOLD:
        ap.error(f"--hold-seconds must be 0..{MAX_HOLD}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = a.count + 256
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            sys.exit(f"RLIMIT_NOFILE hard limit {hard} < {need}; lower COUNT or raise ulimit -n")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    return asyncio.run(main_async(a))


if __name__ == "__main__":
    sys.exit(main())
