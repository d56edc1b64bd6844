"""bench.py: the peer engine's side of bench/compare (see peer.py for what
the peer mirrors and leaves out).

  python3 bench/peer/bench.py --serve   one request a line on stdin:
      "chain N RUNS"  one engine, RUNS runs of N chained acts, one after another
      "empty RUNS"    one engine, RUNS runs of an empty playbook started at once
    each answered by one line on stdout: "<CPU seconds>\t<check>"
  python3 bench/peer/bench.py [N]       a table like bench/dispatch_bench.lua's

Run from the repository's root (the fixture is spec/fixtures/).  Times are
CPU seconds of the process (time.process_time), as os.clock() on luasoar's
side; the same playbooks, container, apps and assets files, and the same
checks of the reports as bench/bench_util.lua."""
import os
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the repository
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peer  # noqa: E402

APPS, ASSETS = "spec/fixtures/apps", "spec/fixtures/assets.json"
CONTAINER = {"id": 1, "artifacts": [{"id": 1, "cef": {"sourceAddress": "8.8.8.8"}}]}

CHAIN = '''\
left = %d


def on_start(container):
    phantom.set_action_limit(left + 1)
    next_one()


def next_one():
    phantom.act("geolocate ip", parameters=[{"ip": "8.8.8.8"}], assets=["maxmind"], callback=cb)


def cb(action=None, success=None, container=None, results=None, handle=None, filtered_artifacts=None,
       filtered_results=None, custom_function=None, loop_state_json=None, **kwargs):
    global left
    if results[0]["action_results"][0]["summary"]["country"] != "United States":
        raise ValueError("bad result")
    left -= 1
    if left > 0:
        next_one()


def on_finish(container, summary):
    phantom.debug("callbacks: " + str(%d - left))
'''

EMPTY = '''\
def on_start(container):
    pass


def on_finish(container, summary):
    pass
'''

_files = {}


def playbook(key, text):
    path = _files.get(key)
    if path is None:
        fd, path = tempfile.mkstemp(prefix="peer_", suffix=".py")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        _files[key] = path
    return path


def run_chain(n, runs):
    path = playbook(("chain", n), CHAIN % (n, n))
    eng = peer.Engine(APPS, ASSETS)
    r = None
    for _ in range(runs):
        r = eng.run(path, CONTAINER)
        assert r["status"] == "success", r["error"]
    eng.close()
    res = r["summary"]["result"]
    last = res[-1]["app_runs"][0] if res else None
    return "%s; last: %s %s; actions: %d" % (
        r["log"][-1]["message"] if r["log"] else "-", last and last["message"],
        last and last["parameter"]["ip"], len(res))


def run_empty(runs):
    path = playbook("empty", EMPTY)
    eng = peer.Engine(APPS, ASSETS)
    for _ in range(runs):
        eng.start(path, CONTAINER)
    n = 0
    for r in eng.wait():
        assert r["status"] == "success", r["error"]
        n += 1
    eng.close()
    return "runs: %d ok" % n


def timed(words):
    if words[0] == "chain":
        fn, args = run_chain, (int(words[1]), int(words[2]))
    elif words[0] == "empty":
        fn, args = run_empty, (int(words[1]),)
    else:
        raise ValueError("unknown case %r" % words[0])
    t0 = time.process_time()
    check = fn(*args)
    return time.process_time() - t0, check


def serve():
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            t, check = timed(words)
            sys.stdout.write("%.9f\t%s\n" % (t, check))
        except Exception as e:  # the driver must not wait for ever
            sys.stdout.write("error\t%s: %s\n" % (type(e).__name__, str(e).replace("\n", " ")))
        sys.stdout.flush()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    print("%-42s %10s %12s %12s" % ("case", "ops", "median s", "µs/op"))
    for name, ops, words in (("act -> python app -> callback", n, ["chain", str(n), "1"]),
                             ("whole run, no action", 2000, ["empty", "2000"])):
        times = sorted(timed(words)[0] for _ in range(5))
        m = times[2]
        print("%-42s %10d %12.4f %12.2f" % (name, ops, m, m / ops * 1e6))


if __name__ == "__main__":
    try:
        if len(sys.argv) > 1 and sys.argv[1] == "--serve":
            serve()
        else:
            main()
    finally:
        for p in _files.values():
            os.remove(p)
