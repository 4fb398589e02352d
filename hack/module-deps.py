#!/usr/bin/env python3
"""Prints which top-level modules of src/ each one uses (code, not doc comments), and exits 1
when two of them use each other, directly or through others: dependencies run one way."""
import pathlib
import re
import sys

src = pathlib.Path(__file__).resolve().parent.parent / "src"
uses = re.compile(r"\bcrate::([a-z_]+)")
deps: dict[str, set[str]] = {}
for path in src.rglob("*.rs"):
    rel = path.relative_to(src)
    top = rel.parts[0].removesuffix(".rs")
    if top in ("lib", "main"):
        continue
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("//"):
            continue
        for used in uses.findall(line):
            if used != top:
                deps.setdefault(top, set()).add(used)
        deps.setdefault(top, set())

for top in sorted(deps):
    print(f"{top} -> {', '.join(sorted(deps[top])) or '(nothing)'}")


def cycle_from(start: str) -> list[str] | None:
    stack = [(start, [start])]
    while stack:
        node, path = stack.pop()
        for nxt in deps.get(node, ()):
            if nxt == start:
                return path + [start]
            if nxt not in path:
                stack.append((nxt, path + [nxt]))
    return None


cycles = {tuple(c) for top in deps if (c := cycle_from(top))}
for c in sorted(cycles):
    print("cycle: " + " -> ".join(c), file=sys.stderr)
sys.exit(1 if cycles else 0)
