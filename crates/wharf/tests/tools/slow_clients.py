#!/usr/bin/env python3
"""Slow clients for the connection-limit tests: open many TLS connections that each send
part of a request's headers and then nothing, the way a slow-headers attack does, and
report what the server did with them.

usage: slow_clients.py PORT CA_FILE --from ADDR:COUNT [--from ADDR:COUNT ...] [--watch SECONDS]

Each --from opens COUNT connections bound to the local source address ADDR (any
127.x.y.z works on Linux loopback), so one run can play one greedy address or many.
Prints two JSON lines on stdout:
  {"opened": {ADDR: n}, "refused": {ADDR: n}}   once every connection was tried
      (refused = closed by the server during or right after the handshake)
  {"still_open": n, "closed_after": [seconds, ...]}   when all are closed or --watch ends
"""
import argparse, json, resource, select, socket, ssl, sys, time


def main():
    # Hundreds of sockets: use the whole open-files allowance.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("ca")
    p.add_argument("--from", dest="sources", action="append", required=True)
    p.add_argument("--watch", type=float, default=60.0)
    a = p.parse_args()
    ctx = ssl.create_default_context(cafile=a.ca)
    ctx.set_alpn_protocols(["http/1.1"])
    held = []  # (socket, opened_at)
    opened, refused = {}, {}
    for spec in a.sources:
        addr, count = spec.rsplit(":", 1)
        opened[addr], refused[addr] = 0, 0
        for _ in range(int(count)):
            raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            raw.bind((addr, 0))
            raw.settimeout(10)
            try:
                raw.connect(("127.0.0.1", a.port))
                tls = ctx.wrap_socket(raw, server_hostname="localhost")
                tls.sendall(b"GET /v2/ HTTP/1.1\r\nHost: localhost\r\nUser-Agent: slow")
                # A refused connection is closed at once; give the server a moment.
                probe = select.poll()
                probe.register(tls, select.POLLIN)
                if probe.poll(20):
                    tls.setblocking(False)
                    try:
                        if not tls.recv(1):
                            raise ConnectionError("closed")
                    except ssl.SSLWantReadError:
                        pass  # only TLS session tickets: still open
                    tls.setblocking(True)
            except (OSError, ssl.SSLError, ConnectionError):
                refused[addr] += 1
                raw.close()
                continue
            opened[addr] += 1
            held.append((tls, time.monotonic()))
    print(json.dumps({"opened": opened, "refused": refused}), flush=True)

    # poll(), not select(): descriptors here go past select's 1024.
    closed_after = []
    by_fd = {s.fileno(): (s, t) for s, t in held}
    watch = select.poll()
    for fd in by_fd:
        watch.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    deadline = time.monotonic() + a.watch
    while by_fd and time.monotonic() < deadline:
        for fd, _ in watch.poll(500):
            s, start = by_fd[fd]
            try:
                gone = not s.recv(4096)
            except ssl.SSLWantReadError:
                gone = False
            except (OSError, ssl.SSLError):
                gone = True
            if gone:
                closed_after.append(round(time.monotonic() - start, 1))
                watch.unregister(fd)
                del by_fd[fd]
                s.close()
    print(json.dumps({"still_open": len(by_fd), "closed_after": closed_after}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
