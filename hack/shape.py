#!/usr/bin/env python3
"""Checks the shape rules of src/ and emulator/src/: at most four .rs files directly in src/,
no file longer than 600 lines before its test module, no non-test function over 60 lines.
Prints each breach and exits 1 if there is one."""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
breaches = []
top = sorted(p.name for p in (root / "src").glob("*.rs"))
if len(top) > 4:
    breaches.append(f"src/ holds {len(top)} .rs files directly: {', '.join(top)}")
# Modules declared under `#[cfg(test)]` are test code, whatever their file.
test_modules = set()
for path in [*root.glob("src/**/*.rs"), *root.glob("emulator/src/**/*.rs")]:
    text = path.read_text()
    for name in re.findall(r"#\[cfg\(test\)\]\s*(?:pub(?:\([a-z]+\))? )?mod (\w+);", text):
        test_modules.add(path.parent / f"{name}.rs")
        test_modules.add(path.parent / name / "mod.rs")
fn_start = re.compile(r"^(\s*)(pub(\([a-z]+\))? )?(async )?fn \w+")
for path in sorted([*root.glob("src/**/*.rs"), *root.glob("emulator/src/**/*.rs")]):
    rel = path.relative_to(root)
    lines = path.read_text().splitlines()
    # Everything from `#[cfg(test)]` at the top level on is test code.
    end = next((i for i, l in enumerate(lines) if l.startswith("#[cfg(test)]")), len(lines))
    if path in test_modules or rel.name == "tests.rs" or rel.parts[-2:-1] == ("tests",):
        continue
    if end > 600:
        breaches.append(f"{rel}: {end} lines before its tests (at most 600)")
    i = 0
    while i < end:
        m = fn_start.match(lines[i])
        if m and not lines[i].rstrip().endswith(";"):
            indent = m.group(1)
            j = i
            while j < end and not (lines[j].startswith(indent + "}") and len(lines[j].rstrip()) == len(indent) + 1):
                j += 1
            if j - i + 1 > 60:
                breaches.append(f"{rel}:{i + 1}: function of {j - i + 1} lines (at most 60)")
            i = j
        i += 1
for b in breaches:
    print(b)
sys.exit(1 if breaches else 0)
