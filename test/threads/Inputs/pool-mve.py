"""pool-mve.py SCENARIO RUN CTL DIR PORT: a multi-version update of the
threaded pool server (pool.c: main and two workers, all in epoll_wait(-1))
under mvedsua-run (RUN), driven with mvedsua-ctl (CTL); clients connected to
both workers before the fork. Prints one fact per line.
  promote   DIR/mv1.so -> DIR/mv2.so (the same answers to "hit"): the follower
            relaunches both workers and replays three lanes while the clients
            keep being served; promote: every lane switches at once (the old
            version follows), finish ends the old version, the same
            connections are served by the new one
  wake      promote, after the wake signal was sent to each of the leader's
            worker threads while the follower follows
  diverge   DIR/mv1.so -> DIR/mvbad.so, whose worker 2 answers wrong: the
            follower's thread 2 diverges, named in the report (while new
            clients connect, whose descriptors the leader sends to the
            ending follower); v1 serves on
  spawn     DIR/mp1.so -> DIR/mp2.so: a worker starts a helper thread while
            the follower follows; its lane is announced and opened in the
            follower, where the same worker starts the same thread; then two
            more, each in the slot the one before left free
  slice     promote, printing the time slices of each process's threads
            (/proc/PID/task/TID/sched): short while they follow, the
            kernel's default while they lead
  order     DIR/ms1.so -> DIR/ms2.so, whose workers count the hits of both
            in one shared counter, the clients taking turns on the two
            workers: each follower thread replays a call only after the
            calls the leader's threads made before it (the other worker's
            count is then there), so the same version never diverges; from
            the start, or with MVEDSUA_MVE_ORDER_LANES=0 (update --retry 1)
            once the first, unordered, follower diverged: the retry replays
            in the leader's order
  stall     DIR/mt1.so -> DIR/mt2.so: after a "stall" line the follower's
            worker 2 waits on a condition nothing signals, where the leader's
            answered; promote fails within seconds naming that thread (its
            records are left), and the leader serves on; then a rollback
  locked    DIR/ml1.so -> DIR/ml2.so (pool.c -DHOLD_LOCK): a fifth client
            connects (main then takes a lock, in the new version after a
            long computation) and worker 1 takes that lock on "hold"; in the
            follower, worker 1 takes it first and main's thread waits for it
            before its next call. promote: worker 1, at its switch record,
            makes the process lead; "release" lets main go on, leading too
  shared    DIR/mv1.so -> DIR/mvrebuild.so, which deletes the listening
            socket from main's inherited epoll instance while it updates:
            the update fails, naming the call, and v1 still accepts
"""
import os
import socket
import sys
import threading
import time

from poolclient import ask, hits, stage, start  # noqa: E402

scenario, run, ctl, d, port = sys.argv[1:6]
first = {"order": "ms1.so", "spawn": "mp1.so", "stall": "mt1.so",
         "locked": "ml1.so"}.get(scenario, "mv1.so")
port = int(port)
server, control = start(run, ctl, d, first, port)

try:
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    print("before:", hits(clients))
    target = {"diverge": "mvbad.so", "shared": "mvrebuild.so",
              "order": "ms2.so", "spawn": "mp2.so", "stall": "mt2.so",
              "locked": "ml2.so"}.get(scenario, "mv2.so")
    unordered = scenario == "order" and os.environ.get("MVEDSUA_MVE_ORDER_LANES") == "0"
    out = control.ask("update", *(["--timeout", "5s"] if scenario == "locked" else []),
                      *(["--retry", "1"] if unordered else []), os.path.join(d, target))
    if scenario != "shared":
        print("update:", out.split(" multi-version")[0])
    if scenario == "slice":
        def slices(pid):
            """The distinct se.slice values (ns) of the process's threads."""
            seen = set()
            for tid in os.listdir("/proc/%d/task" % pid):
                with open("/proc/%d/task/%s/sched" % (pid, tid)) as f:
                    seen.update(int(l.split(":")[1]) for l in f if l.startswith("se.slice"))
            return sorted(seen)

        def kind(pid):
            if not pid:
                return "none"
            seen = slices(pid)
            return ("short" if seen == [100000] else
                    "default" if 100000 not in seen else "mixed %s" % seen)

        def show(when):
            st = control.status()
            print("%s: leader %s, follower %s" % (when, kind(st["leader_pid"]),
                                                  kind(st.get("follower_pid"))))
        print("following:", hits(clients))
        show("following")
        print("promote:", control.ask("promote").split(" (pid")[0])
        print("promoted:", hits(clients))
        show("promoted")
        print("finish:", control.ask("finish").split(" (pid")[0])
        show("finished")
    elif scenario in ("promote", "wake"):
        print("following:", hits(clients))
        if scenario == "wake":
            # The supervisor's wake signal delivered to the leader's worker
            # threads (the kernel picks any thread for a process-directed
            # signal): passing it on to main must record nothing in their
            # lanes, or promote waits for the follower to consume it.
            import ctypes
            libc = ctypes.CDLL(None, use_errno=True)
            pid = control.status()["leader_pid"]
            for tid in [t for t in os.listdir("/proc/%d/task" % pid) if int(t) != pid]:
                libc.syscall(234, pid, int(tid), 40)  # tgkill, SIGRTMIN + 6
            time.sleep(0.2)
            print("woken:", hits(clients))
        print("status:", stage(control.status()))
        print("promote:", control.ask("promote").split(" (pid")[0])
        print("finish:", control.ask("finish").split(" (pid")[0])
        print("after:", hits(clients))
        print("version:", ask(clients[1], b"ver\n"))
        print("handles:", ask(clients[0], b"self\n"), "|", ask(clients[1], b"self\n"))
        with socket.create_connection(("127.0.0.1", port)) as late:
            print("new client:", ask(late))
        print("status:", stage(control.status()))
    elif scenario == "spawn":
        print("spawn:", ask(clients[0], b"spawn\n"))
        # In the slot the first helper left free: a lane of its own.
        print("spawn again:", ask(clients[1], b"spawn\n"))
        print("spawn a third:", ask(clients[0], b"spawn\n"))
        # Both workers at once: the follower's workers may start theirs in
        # another order than the leader's; each lane is made in the leader's.
        answers = []
        for _ in range(5):
            both = [threading.Thread(target=lambda c=c: answers.append(ask(c, b"spawn\n")))
                    for c in clients[:2]]
            for t in both:
                t.start()
            for t in both:
                t.join()
        print("spawn on both workers at once, 5 times:", sorted(set(answers)), len(answers))
        print("following:", hits(clients))
        time.sleep(0.3)
        print("status:", stage(control.status()))
        print("promote:", control.ask("promote").split(" (pid")[0])
        print("finish:", control.ask("finish").split(" (pid")[0])
        print("after:", hits(clients))
        print("spawn after:", ask(clients[1], b"spawn\n"))
    elif scenario == "order":
        for _ in range(25):
            last = hits(clients)
        print("following, 100 turns later:", last)
        if unordered:
            # Replayed unordered, the follower's counts came out in another
            # order: it diverged, and the retry (--retry 1) replayed every
            # call in the leader's order.
            st = control.wait_for(lambda s: s["stage"] == "outdated-leader" and
                                  "divergence" in s["last_update"]["reason"], 30)
            print("retried:", [l for l in st["last_update"]["reason"].splitlines()
                               if "divergence" in l][0])
            print("retried:", st["last_update"]["reason"].splitlines()[-1])
            for _ in range(25):
                last = hits(clients)
            print("following the ordered retry, 100 turns later:", last)
        # Worker 1's 16 MiB reply blocks it in its write until the client
        # reads, 0.6 s later, while worker 2 answers a hit: the follower's
        # worker 2 replays its read only after worker 1's write, whose record
        # the leader appends once the write returned. Waiting for it is not
        # a wait of the follower's own, and does not time out.
        clients[0].sendall(b"big\n")
        time.sleep(0.1)
        print("while worker 1 writes:", ask(clients[1]))
        time.sleep(0.5)
        got = 0
        while got < (16 << 20):
            got += len(clients[0].recv(1 << 20))
        print("big reply: %d bytes; then: %s" % (got, hits(clients)))
        st = control.wait_for(lambda s: (s.get("log") or {}).get("backlog_records") == 0, 10)
        print("order timeouts:", (st.get("log") or {}).get("order_timeouts"))
        print("status:", stage(control.status()))
        print("promote:", control.ask("promote").split(" (pid")[0])
        print("finish:", control.ask("finish").split(" (pid")[0])
        print("after:", hits(clients))
    elif scenario == "locked":
        clients.append(socket.create_connection(("127.0.0.1", port)))
        time.sleep(0.5)  # main has taken and left the lock in the leader
        print("hold:", ask(clients[0], b"hold\n"))
        print("following:", hits(clients))
        print("status:", stage(control.status()))
        # The new version's stage is reported at main's next update point:
        # promote returns once "release" let main go on.
        promoted = {}
        promoting = threading.Thread(target=lambda: promoted.update(
            out=control.ask("promote")))
        promoting.start()
        time.sleep(0.5)
        print("release:", ask(clients[0], b"release\n"))
        promoting.join()
        print("promote:", promoted["out"].split(" (pid")[0])
        print("after:", hits(clients))
        with socket.create_connection(("127.0.0.1", port)) as late:
            print("new client:", ask(late))
        print("finish:", control.ask("finish").split(" (pid")[0])
        print("status:", stage(control.status()))
    elif scenario == "stall":
        print("stall:", ask(clients[1], b"stall\n"))
        print("following:", hits(clients))
        t0 = time.monotonic()
        print("promote:", control.ask("promote").split(" (pid")[0])
        print("promote failed within 10 s:", time.monotonic() - t0 < 10)
        print("status:", stage(control.status()))
        print("after:", hits(clients))
        print("rollback:", control.ask("rollback").split(" (pid")[0])
    elif scenario == "shared":
        print("update:", out.splitlines()[0])
        st = control.wait_for(lambda s: s["last_update"]["outcome"] != "in-progress")
        print("status:", stage(st))
        print("after:", hits(clients))
        with socket.create_connection(("127.0.0.1", port)) as late:
            late.settimeout(5)
            try:
                print("new client:", ask(late))
            except socket.timeout:
                print("new client: no answer (the leader's epoll instance lost the listening socket)")
    else:
        print("following:", hits(clients))
        # New clients while the follower ends: each accepted connection's
        # descriptor is sent to the follower, whose end resets the socket;
        # the report must still be the divergence, not the hand-over.
        for _ in range(30):
            socket.create_connection(("127.0.0.1", port)).close()
        st = control.wait_for(lambda s: s["last_update"]["outcome"] != "in-progress")
        print("status:", stage(st))
        reason = st["last_update"]["reason"]
        print("reason:", [l for l in reason.splitlines() if "divergence" in l][0])
        print("after:", hits(clients))
finally:
    server.kill()
    server.wait()
