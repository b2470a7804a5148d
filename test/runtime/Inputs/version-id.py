"""Recomputes a version id from `mvedsua-run --list-state --json` output by
the algorithm docs/runtime.md documents, independently of the runtime, and
prints "ok ID" or "mismatch: runtime ID, documented ID"."""
import json
import sys

KINDS = ["global", "static", "local_static", "local"]
dump = json.load(sys.stdin)
entries = [e for m in dump["modules"] for e in m["entries"]
           if e["kind"] in KINDS and "const" not in e["flags"]]
def type_hash(e):
    return int(e["type"]["hash"], 16) if e["type"] else 0
entries.sort(key=lambda e: (KINDS.index(e["kind"]), e["key"].encode(), type_hash(e)))
h = 0xcbf29ce484222325
for e in entries:
    for b in e["key"].encode() + b"\0" + type_hash(e).to_bytes(8, "little"):
        h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
ours = "%016x" % h
print("ok " + ours if ours == dump["version"] else
      "mismatch: runtime %s, documented %s" % (dump["version"], ours))
