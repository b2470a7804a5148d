#!/usr/bin/env python3
"""load.py PORT [options]: clients of kvs.so that check every reply against
v1's behaviour, one of them asking for the multi-version update part-way.

  --clients N       concurrent connections (default 4)
  --rounds N        rounds per client: set, get, and the optional commands
  --sleep MS        pause between rounds (the follower runs meanwhile)
  --update-at R,..  client 0 sends "update" at each round R
  --rollback-at R   client 0 sends "rollback" at round R -> "rollback: requested"
  --cycle N,K       client 0 sends "update" at each round R with R % N == 0 and
                    "rollback" when R % N == K (successive updates)
  --ping-from R     also "ping" -> "pong" from round R on (once client 0 is there)
  --del-from R      also "del" of a missing key -> "missing" from round R on
  --drop            client 0 ends with "drop" (dup2 over its socket), not "quit"
  --status          ask "mvstatus" once the clients are done; print the reply
  --no-shutdown     leave the server running

Any wrong reply, error or dropped connection is printed and makes the exit
status 1; else "load: N replies, all correct". Loopback only, bounded."""
import json
import argparse, socket, sys, threading, time

ap = argparse.ArgumentParser()
ap.add_argument("port", type=int)
ap.add_argument("--clients", type=int, default=4)
ap.add_argument("--rounds", type=int, default=200)
ap.add_argument("--sleep", type=float, default=2.0)
ap.add_argument("--update-at", default="")
ap.add_argument("--rollback-at", type=int, default=-1)
ap.add_argument("--cycle", default="")
ap.add_argument("--ping-from", type=int, default=-1)
ap.add_argument("--del-from", type=int, default=-1)
ap.add_argument("--drop", action="store_true")
ap.add_argument("--reap-from", type=int, default=-1)
ap.add_argument("--parent-at", type=int, default=-1)
ap.add_argument("--status-file", default="")
ap.add_argument("--status", action="store_true")
ap.add_argument("--no-shutdown", action="store_true")
args = ap.parse_args()


def connect():
    deadline = time.time() + 20
    while True:
        try:
            return socket.create_connection(("127.0.0.1", args.port), timeout=20)
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.02)


errors, replies = [], [0]
round0 = [0]  # the round client 0 is at (--ping-from counts on it)
lock = threading.Lock()


def ppid(pid):
    with open("/proc/%d/stat" % pid) as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def follower_parent():
    # The follower's parent, from the last status line naming a follower.
    lines = [json.loads(l) for l in open(args.status_file) if l.strip()]
    last = [l for l in lines if l["follower_pid"]][-1]
    leader, follower = last["leader_pid"], last["follower_pid"]
    try:
        fp, lp = ppid(follower), ppid(leader)
    except OSError as e:
        print("load: follower parent: %s" % e)
        return
    with open("/proc/%d/comm" % fp) as f:
        comm = f.read().strip()
    print("load: follower's parent: %s, the leader's parent: %s (%s)" %
          ("the leader" if fp == leader else "pid %d" % fp,
           "the same" if lp == fp else "pid %d" % lp, comm))


def client(c):
    try:
        s = connect()
        f = s.makefile("rb")

        def ask(line, want):
            s.sendall(line.encode() + b"\n")
            got = f.readline().decode()
            with lock:
                replies[0] += 1
            if got != want + "\n":
                with lock:
                    errors.append("client %d: %r -> %r, want %r" % (c, line, got, want))

        for r in range(args.rounds):
            if c == 0:
                round0[0] = r
            ask("set k%d_%d v%d" % (c, r % 50, r), "ok")
            ask("get k%d_%d" % (c, r % 50), "value v%d" % r)
            # From the round given, counted on client 0 (which asks for the
            # update and checks the follower): a faster client must not ping
            # before client 0 got there, whatever the machine's load.
            if 0 <= args.ping_from <= min(r, round0[0]):
                ask("ping", "pong")
            if 0 <= args.del_from <= r:
                ask("del nokey%d" % c, "missing")
            if c == 0 and 0 <= args.reap_from <= r:
                ask("reap", "reaped 1 status 7")
            if c == 0 and r == args.parent_at:
                follower_parent()
            if c == 0 and str(r) in args.update_at.split(","):
                ask("update", "update: requested")
            if c == 0 and r == args.rollback_at:
                ask("rollback", "rollback: requested")
            if c == 0 and args.cycle:
                n, k = (int(x) for x in args.cycle.split(","))
                if r % n == 0:
                    # The follower just rolled back may not be reaped yet on
                    # a loaded machine (its end is seen at update points):
                    # a refusal for that reason is asked again.
                    for _ in range(100):
                        s.sendall(b"update\n")
                        got = f.readline().decode()
                        if got != "update: Device or resource busy\n":
                            break
                        time.sleep(0.02)
                    with lock:
                        replies[0] += 1
                    if got != "update: requested\n":
                        with lock:
                            errors.append("client %d: 'update' -> %r" % (c, got))
                elif r % n == k:
                    ask("rollback", "rollback: requested")
            time.sleep(args.sleep / 1000.0)
        # The server closes first: the client must see the end at once.
        if c == 0 and args.drop:
            ask("drop", "dropping")
        else:
            ask("quit", "bye")
        if f.readline() != b"":
            with lock:
                errors.append("client %d: data after bye" % c)
        s.close()
    except Exception as e:  # a dropped connection, a timeout
        with lock:
            errors.append("client %d: %s" % (c, e))


threads = [threading.Thread(target=client, args=(c,)) for c in range(args.clients)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for e in errors[:10]:
    print("load: " + e)
if not errors:
    print("load: %d replies, all correct" % replies[0])
if args.status:
    s = connect()
    s.sendall(b"mvstatus\n")
    print("load: " + s.makefile("rb").readline().decode().strip())
    s.close()
if not args.no_shutdown:
    s = connect()
    s.sendall(b"shutdown\n")
    s.close()
sys.exit(1 if errors else 0)
