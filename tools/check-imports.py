#!/usr/bin/env python3
"""Checks that every `import` of a package module in Sources/ and Tests/ is declared as a
dependency of its target in Package.swift (SwiftPM builds undeclared in-package imports when the
module happens to be built first; this keeps the graph honest). Exit status 1 on a finding."""
import pathlib, re, sys

root = pathlib.Path(__file__).resolve().parent.parent
package = (root / "Package.swift").read_text()
targets = {}
for m in re.finditer(r'\.(?:target|testTarget|executableTarget|systemLibrary)\(\s*name:\s*"(\w+)"(.*?)\)\s*,\s*(?=\n\s*(?://|\.|\]))', package, re.S):
    name, rest = m.group(1), m.group(2)
    deps = set(re.findall(r'"(\w+)"', rest.split("path:")[0])) if "dependencies" in rest else set()
    path = re.search(r'path:\s*"([^"]+)"', rest)
    targets[name] = (deps, path.group(1) if path else None)
modules = set(targets)
problems = []
for name, (deps, path) in targets.items():
    folder = root / (path or (("Tests/" if name.endswith("Tests") else "Sources/") + name))
    for file in folder.rglob("*.swift"):
        for imp in re.findall(r'^\s*(?:@testable\s+|@_exported\s+)?import\s+(\w+)', file.read_text(), re.M):
            if imp in modules and imp != name and imp not in deps:
                problems.append(f"{file.relative_to(root)}: imports {imp}, not a dependency of {name}")
for p in problems:
    print(p)
print(f"{len(targets)} targets checked, {len(problems)} undeclared imports")
sys.exit(1 if problems else 0)
