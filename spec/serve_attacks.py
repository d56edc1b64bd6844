#!/usr/bin/env python3
"""serve_attacks.py: attacks on a running `luasoar serve`, each beside a
well-behaved client, for spec/serve_attacks_spec.lua (and by hand).

  serve_attacks.py ATTACK --port P --token T [--pid PID] [--seconds S] [-n N]

ATTACK is one of
  upload   N connections with no token each POST a 16 MB body, as fast as
           they can (no "Expect: 100-continue": the body follows the headers)
  trickle  N half-open connections from one address that send a request line,
           then one header line every --every seconds, never ending the headers
  none     nothing: the good client alone (the baseline)

The attack comes from 127.0.0.3; meanwhile the good client, from 127.0.0.2, asks
GET /rest/container with the token every 50 ms, each on a new connection,
and times each answer.  One JSON object on stdout: the good client's
latencies (seconds) and statuses, what the attack saw, and the server's peak
RSS (VmRSS sampled every 20 ms, KiB) when --pid is given.
"""
import argparse
import json
import multiprocessing
import socket
import threading
import time

HOST = "127.0.0.1"
# The attack's sockets come from this address: their local ports then never
# clash with the ports other specs' servers listen on at 127.0.0.1.
ATTACKER = "127.0.0.3"


def attacker_socket():
    s = socket.socket()
    s.bind((ATTACKER, 0))
    return s


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def read_answer(sock, deadline):
    """The status and body of one HTTP answer (Content-Length framed), or
    (None, why) if the server closed first or the deadline passed."""
    data = b""
    sock.settimeout(max(0.01, deadline - time.monotonic()))
    try:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return None, "closed before an answer"
            data += chunk
        head, body = data.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            k, _, v = line.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v.strip())
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
        return status, body.decode("utf-8", "replace")
    except (socket.timeout, OSError) as e:
        return None, str(e)


class Good:
    """The well-behaved client: one request every 50 ms from 127.0.0.2, in a
    process of its own (the attack's threads do not delay it)."""

    def __init__(self, port, token, stop):
        self.port, self.token, self.stop = port, token, stop
        self.latencies, self.statuses, self.errors = [], [], []

    def run(self, conn):
        req = ("GET /rest/container HTTP/1.1\r\nHost: x\r\nph-auth-token: %s\r\n"
               "Connection: close\r\n\r\n" % self.token).encode()
        while not self.stop.is_set():
            t0 = time.monotonic()
            s = socket.socket()
            try:
                s.bind(("127.0.0.2", 0))
                s.settimeout(5)
                s.connect((HOST, self.port))
                s.sendall(req)
                status, body = read_answer(s, t0 + 5)
            except OSError as e:
                status, body = None, str(e)
            finally:
                s.close()
            dt = time.monotonic() - t0
            self.latencies.append(dt)
            self.statuses.append(status)
            if status != 200:
                self.errors.append(body[:200] if isinstance(body, str) else repr(body))
            self.stop.wait(max(0.0, 0.05 - dt))
        conn.send((self.latencies, self.statuses, self.errors))
        conn.close()


def upload(port, n, stop, out):
    """n unauthenticated 16 MB uploads at once; each records its status and
    how many body bytes it could send before the server stopped reading."""
    size = 16 << 20
    chunk = b"x" * (256 << 10)
    results = [None] * n

    def one(i):
        s = attacker_socket()
        sent, status, body = 0, None, ""
        try:
            s.settimeout(10)
            s.connect((HOST, port))
            s.sendall(("POST /rest/container HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: %d\r\n\r\n" % size).encode())
            s.settimeout(2)
            try:
                while sent < size and not stop.is_set():
                    sent += s.send(chunk[: min(len(chunk), size - sent)])
            except OSError:
                pass
            status, body = read_answer(s, time.monotonic() + 5)
        except OSError as e:
            body = str(e)
        finally:
            s.close()
        results[i] = {"status": status, "body": body, "sent": sent}

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    out["uploads"] = results


def trickle(port, n, every, seconds, stop, out):
    """n connections that never finish their headers; when the server closes
    one, the time it held it is recorded."""
    socks, opened, refused = [], [], 0
    t0 = time.monotonic()
    for _ in range(n):
        s = attacker_socket()
        try:
            s.settimeout(2)
            s.connect((HOST, port))
            s.sendall(b"GET /rest/container HTTP/1.1\r\nHost: x\r\n")
            s.setblocking(False)
            socks.append(s)
            opened.append(time.monotonic())
        except OSError:
            refused += 1
            s.close()
    out["connected"] = len(socks)
    closed_after = [None] * len(socks)
    line = 0
    end = t0 + seconds
    while time.monotonic() < end and not stop.is_set():
        for i, s in enumerate(socks):
            if closed_after[i] is not None:
                continue
            try:
                if s.recv(4096) == b"":
                    closed_after[i] = time.monotonic() - opened[i]
                    continue
            except BlockingIOError:
                pass
            except OSError:
                closed_after[i] = time.monotonic() - opened[i]
                continue
            try:
                s.send(b"X-Trickle-%d: y\r\n" % line)
            except OSError:
                closed_after[i] = time.monotonic() - opened[i]
        line += 1
        stop.wait(min(every, max(0.0, end - time.monotonic())))
    out["still_open"] = sum(1 for c in closed_after if c is None)
    held = sorted(c for c in closed_after if c is not None)
    out["closed"] = len(held)
    out["closed_within_1s"] = sum(1 for c in held if c < 1)
    out["held_max"] = held[-1] if held else None
    out["held_min"] = held[0] if held else None
    for s in socks:
        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("attack", choices=["upload", "trickle", "none"])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--pid", type=int)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--every", type=float, default=5)
    ap.add_argument("-n", type=int, default=40)
    a = ap.parse_args()

    stop = threading.Event()
    out = {"attack": a.attack}
    rss = {"before": rss_kib(a.pid) if a.pid else None, "peak": 0}

    def sample():
        while not stop.is_set():
            r = rss_kib(a.pid)
            if r:
                rss["peak"] = max(rss["peak"], r)
            stop.wait(0.02)

    good_stop = multiprocessing.Event()
    good = Good(a.port, a.token, good_stop)
    recv, send = multiprocessing.Pipe(duplex=False)
    proc = multiprocessing.Process(target=good.run, args=(send,), daemon=True)
    proc.start()  # before any thread of this process starts
    if a.pid:
        threading.Thread(target=sample, daemon=True).start()
    t0 = time.monotonic()
    if a.attack == "upload":
        upload(a.port, a.n, stop, out)
    elif a.attack == "trickle":
        trickle(a.port, a.n, a.every, a.seconds, stop, out)
    rest = a.seconds - (time.monotonic() - t0)
    if rest > 0:
        time.sleep(rest)
    stop.set()
    good_stop.set()
    good.latencies, good.statuses, good.errors = recv.recv() if recv.poll(15) else ([], [], ["no result"])
    proc.join(5)
    out["attack_seconds"] = time.monotonic() - t0
    lat = sorted(good.latencies)
    out["good"] = {"n": len(lat), "median": lat[len(lat) // 2] if lat else None, "max": lat[-1] if lat else None,
                   "statuses": sorted(set(str(s) for s in good.statuses)), "errors": good.errors[:5]}
    if a.pid:
        rss["after"] = rss_kib(a.pid)
        out["rss_kib"] = rss
    print(json.dumps(out))


if __name__ == "__main__":
    main()
