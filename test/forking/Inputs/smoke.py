"""smoke.py VERSION WORK [--ctl CTL SOCK] -- CMD...: one ftpd (native, or
CMD = mvedsua-run --control SOCK ftpd-N.so) driven by curl, lftp and
ftplib through every command, with several sessions at once; under
mvedsua-run, status while session children come and go. Prints one fact
per line."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ftpd_lib import (Control, Server, Session, children, curl, lftp,  # noqa: E402
                      make_root, md5, md5_file, payload, USER, PASSWORD)

argv = sys.argv[1:]
version, work = int(argv[0]), argv[1]
ctl = None
if argv[2] == "--ctl":
    ctl = Control(argv[3], argv[4])
cmd = argv[argv.index("--") + 1:]
root = os.path.join(work, "root")
big = make_root(root)
bob = USER + ":" + PASSWORD

server = Server(cmd, root, os.path.join(work, "ftpd.log"))
try:
    port = server.port
    master = server.proc.pid
    if ctl:
        st = ctl.status()
        master = st["leader_pid"]
        print("status: version %s, stage %s" % (os.path.basename(st["version"]), st["stage"]))
    rc, out, v = curl(port, "pub/hello.txt")
    print("anonymous RETR: exit %d, %r, greeting of version %s" % (rc, out.decode(), v))
    rc, out, _ = curl(port, "")
    print("LIST /:", rc, sorted(l.split()[-1] for l in out.decode().splitlines()))
    rc, out, _ = curl(port, "pub/", "-l")
    print("NLST /pub:", rc, out.decode().split())
    rc, out, _ = curl(port, "big.bin")
    print("RETR big.bin (EPSV): exit %d, intact %s" % (rc, md5(out) == big))
    rc, out, _ = curl(port, "big.bin", "--ftp-pasv", "--disable-epsv")
    print("RETR big.bin (PASV): exit %d, intact %s" % (rc, md5(out) == big))
    data = payload(7, 300000)
    src = os.path.join(work, "src.bin")
    with open(src, "wb") as f:
        f.write(data)
    rc, _, _ = curl(port, "pub/up.bin", "-T", src, user=bob)
    print("STOR as bob: exit %d, intact %s" % (rc, md5_file(os.path.join(root, "pub/up.bin")) == md5(data)))
    rc, _, _ = curl(port, "pub/anon.bin", "-T", src)
    print("STOR anonymous: exit %d, file exists %s" % (rc, os.path.exists(os.path.join(root, "pub/anon.bin"))))
    rc, _, _ = curl(port, "pub/hello.txt", user="bob:wrong")
    print("wrong password: exit", rc)
    rc, out = lftp(port, ["mkdir d", "cd d", "put %s -o one.bin" % src, "cls -1",
                          "get one.bin -o %s/back.bin" % work, "rm one.bin",
                          "cd ..", "rmdir d", "cls -1 /", "pwd",
                          "quote SIZE big.bin", "quote SYST", "quote NOOP",
                          "quote CDUP", "quote PWD", "quote STOU"])
    print("lftp: exit %d" % rc)
    for line in out.splitlines():
        print("  lftp:", line.replace(str(port), "PORT"))
    print("lftp round trip intact:", md5_file(os.path.join(work, "back.bin")) == md5(data))
    rc, out = lftp(port, ["cd ../..", "pwd", "cls -1"])
    print("lftp above the root: exit %d: %s" % (rc, " | ".join(out.splitlines()).replace(str(port), "PORT")))

    # Several sessions at once: each its own child of the master.
    before = children(master)
    sessions = [Session(port) for _ in range(3)]
    kids = children(master) - before
    print("3 sessions open: %d new children of the master" % len(kids))
    if ctl:
        st = ctl.status()
        print("status with sessions open: leader is the master %s, version %s, stage %s" % (
            st["leader_pid"] == master, os.path.basename(st["version"]), st["stage"]))
    s = sessions[0]
    print("greeting:", s.greeting)
    print("PWD:", s.cmd("PWD"), "| CWD:", s.cmd("CWD pub"), "| PWD:", s.cmd("PWD"),
          "| CDUP:", s.cmd("CDUP"))
    print("SIZE:", s.cmd("SIZE big.bin"), "| TYPE:", s.cmd("TYPE I"), "| FEAT:",
          s.cmd("FEAT").replace("\n", " "))
    print("MKD:", s.cmd("MKD newdir"), "| RMD:", s.cmd("RMD newdir"),
          "| DELE:", s.cmd("DELE pub/up.bin"), "| DELE again:", s.cmd("DELE pub/up.bin"))
    print("bogus:", s.cmd("FOOBAR"))
    print("outside the root:", s.cmd("SIZE ../../../etc/hostname"), "|",
          s.cmd("CWD ../../.."), s.cmd("PWD"))
    print("STOU:", sessions[1].store("STOU", data))
    print("STOU again:", sessions[1].store("STOU", data))
    if version >= 2:
        print("STOU files intact:", all(md5_file(os.path.join(root, n)) == md5(data)
                                        for n in ("stou", "stou.1")))
    print("APPE:", sessions[2].store("APPE pub/log.txt", b"one\n"),
          sessions[2].store("APPE pub/log.txt", b"two\n"))
    if version >= 3:
        with open(os.path.join(root, "pub/log.txt"), "rb") as f:
            print("APPE content:", f.read())
        rc, _, _ = curl(port, "pub/log.txt", "-T", src, "--append", user=bob)
        print("curl --append: exit %d, size %d" % (rc, os.path.getsize(os.path.join(root, "pub/log.txt"))))
        mdtm = s.cmd("MDTM big.bin")
        print("MDTM:", mdtm[:4], len(mdtm.split()[1]) == 14)
    for x in sessions:
        x.quit()
    # The master reaps them: no zombie stays behind.
    end = time.time() + 20
    while time.time() < end and children(master) & kids:
        time.sleep(0.02)
    print("sessions ended: children left %d" % len(children(master) & kids))
    if ctl:
        st = ctl.status()
        print("status after: leader is the master %s, version %s, updates %d" % (
            st["leader_pid"] == master, os.path.basename(st["version"]), len(st.get("history", []))))
    # A session still open when the server stops ends with it.
    last = Session(port)
    print("stop: exit", server.stop())
    print("session open at the stop:", last.quit())
    print("log:", " | ".join(l for l in server.text().splitlines() if l.startswith("ftpd")))
except BaseException:
    server.kill()
    raise
