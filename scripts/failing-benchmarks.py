#!/usr/bin/env python3
"""Print a Criterion filter regex matching the benchmarks an `inferbench compare --json`
file marks as FAIL (for a confirmation run of just those); nothing when none failed."""
import json
import sys

META = set("\\.+*?()|[]{}^$")
rows = json.load(open(sys.argv[1]))["rows"]
names = sorted({r["benchmark"] for r in rows if r["verdict"] == "fail"})
if names:
    escaped = ["".join("\\" + c if c in META else c for c in n) for n in names]
    print("^(" + "|".join(escaped) + ")$")
