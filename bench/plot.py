#!/usr/bin/env python3
"""bench/plot.py RESULTS: PNG plots of the results in RESULTS with gnuplot.

  update-pause-N.png   the probe's max latency per 10 ms bucket through the
                       update, one line per mode (no update, in place,
                       multi-version), from update-pause-N.csv (like MVEDSUa's
                       Figure 6)
  update-pause.png     max and p99 latency in the window around the update,
                       per state size and mode (bars, log scale)
  kvd-throughput.png   requests/s of each configuration relative to native,
                       per test (bars), from kvd-throughput.json

Prints the PNGs it wrote, one a line; writes nothing and says so on stderr
when gnuplot is missing."""
import glob
import json
import os
import shutil
import subprocess
import sys

res = sys.argv[1]
if not shutil.which("gnuplot"):
    print("plot: gnuplot is not installed: plots skipped", file=sys.stderr)
    sys.exit(0)


def gnuplot(script, png):
    subprocess.run(["gnuplot"], input="set terminal pngcairo size 960,540 font 'sans,10'\n"
                   "set output '%s'\n" % png + script, text=True, check=True)
    print(os.path.basename(png))


def machine_line(m):
    return "%d cores, %s, Linux %s" % (m["cores"], m["cpu"], m["kernel"])


pause = os.path.join(res, "update-pause.json")
if os.path.exists(pause):
    doc = json.load(open(pause))
    names = {"none": "no update", "inplace": "in place", "mve": "multi-version",
             "promote": "multi-version, promote, finish"}
    colours = {"none": "#808080", "inplace": "#d62728", "mve": "#1f77b4", "promote": "#2ca02c"}
    for n, t in sorted(doc["timelines"].items(), key=lambda x: int(x[0])):
        csv = os.path.join(res, t["csv"])
        with open(csv) as f:
            header = next(l for l in f if not l.startswith("#")).strip().split(",")
        modes = header[1:]
        arrows = ""
        for m in modes:
            u = t["update_s"].get(m)
            if u is not None and m != "none":
                arrows += ("set arrow from %g, graph 0 to %g, graph 1 nohead dt 2 lc rgb '%s'\n"
                           % (u, u, colours[m]))
        plots = ", ".join("'%s' using 1:%d with lines lw 1.5 lc rgb '%s' title '%s'" % (
            csv, i + 2, colours[m], names[m]) for i, m in enumerate(modes))
        gnuplot("set datafile separator ','\nset datafile missing 'NaN'\n"
                "set title \"kvd-1 -> kvd-2 with %s keys under redis-benchmark load: probe latency "
                "(max per 10 ms)\\n%s; dashed: the update command returned\"\n"
                "set xlabel 'seconds from the update request'\nset ylabel 'latency (ms)'\n"
                "set logscale y\nset grid\nset key top right\n"
                "set arrow from 0, graph 0 to 0, graph 1 nohead lc rgb 'black'\n%s"
                "plot %s\n" % (int(n), machine_line(doc["machine"]), arrows, plots),
                os.path.join(res, "update-pause-%s.png" % n))
    dat = os.path.join(res, "update-pause-bars.dat")
    bmodes = [m for m in ("none", "inplace", "mve", "promote") if m in doc["results"][0]]
    with open(dat, "w") as f:
        f.write("# machine: %s\n" % machine_line(doc["machine"]))
        f.write("# keys, then the max and the p99 (ms) of: %s\n" % " ".join(bmodes))
        for s in doc["results"]:
            f.write("%s %s\n" % ("%dk" % (s["keys"] // 1000) if s["keys"] >= 1000 else s["keys"],
                                 " ".join(str(s[m][k] if s[m][k] is not None else "NaN")
                                          for k in ("max_ms", "p99_ms") for m in bmodes)))

    def bars(first):
        return ", ".join("'%s' using %d%s title '%s' lc rgb '%s'" % (
            dat if i == 0 else "", first + i, ":xtic(1)" if i == 0 else "", names[m], colours[m])
            for i, m in enumerate(bmodes))
    gnuplot("set style data histograms\nset style histogram clustered gap 1\n"
            "set style fill solid 0.8 border -1\nset logscale y\nset grid ytics\n"
            "set ylabel 'ms'\nset xlabel 'keys'\nset key below\n"
            "set multiplot layout 1,2 title \"Client latency in the window around the update "
            "(median of %d)\\n%s\"\n"
            "set title 'max'\nplot %s\nset title 'p99'\nplot %s\nunset multiplot\n" % (
                doc["workload"]["repetitions"], machine_line(doc["machine"]),
                bars(2), bars(2 + len(bmodes))),
            os.path.join(res, "update-pause.png"))

thr = os.path.join(res, "kvd-throughput.json")
if os.path.exists(thr):
    doc = json.load(open(thr))
    dat = os.path.join(res, "kvd-throughput-bars.dat")
    with open(dat, "w") as f:
        f.write("# machine: %s\n" % machine_line(doc["machine"]))
        f.write("# test native single_leader outdated_leader (requests/s relative to native)\n")
        for e in doc["results"]:
            name = e["test"] + ("-P%d" % e["pipeline"] if e["pipeline"] > 1 else "")
            nat = e["native"]["rps"] if e["native"] else None
            f.write("%s %s\n" % (name, " ".join(
                "%.3f" % (e[c]["rps"] / nat) if nat and e[c] else "NaN"
                for c in ("native", "single_leader", "outdated_leader"))))
    gnuplot("set title \"kvd under redis-benchmark: requests/s relative to native (median of %d)\\n%s\"\n"
            "set style data histograms\nset style histogram clustered gap 1\n"
            "set style fill solid 0.8 border -1\nset yrange [0:1.2]\nset grid ytics\n"
            "set ylabel 'throughput / native'\nset key top right\n"
            "plot '%s' using 2:xtic(1) title 'native' lc rgb '#808080', "
            "'' using 3 title 'mvedsua-run, no follower' lc rgb '#2ca02c', "
            "'' using 4 title 'leader + same-version follower' lc rgb '#1f77b4'\n" % (
                doc["workload"]["repetitions"], machine_line(doc["machine"]), dat),
            os.path.join(res, "kvd-throughput.png"))
