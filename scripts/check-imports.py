#!/usr/bin/env python3
"""Fails when the modules of src/ import each other in a cycle, a top-level module imports one
in a layer above its own, or a file of src/ is longer than MAX_LINES (split it by topic: a
store or service may be several files, each an `impl` of the same type).

Each file of src/ is a module. A file depends on another when it names one of its items by a
`crate::…`, `super::…` or `self::…` path (in a `use` line or inline). A module may use its own
submodules freely (that is how a module is built from parts); every other dependency must go
one way, so the modules can be read, and changed, from the bottom up.

    scripts/check-imports.py          # exit 1 and print each cycle or back edge found
    scripts/check-imports.py --graph  # also print every dependency

The top-level modules sit in layers, lowest first (`LAYERS`): a module may import those of its
own layer and below. An edge that had to run upwards would be listed in `BACK_EDGES` (none
is); the check fails on any other back edge, and on a listed one that no longer exists.
"""

import re
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

# Lowest first. Within a layer, modules may import each other (without cycles between files).
LAYERS = [
    ["config"],
    ["error"],
    ["infra"],
    ["ids", "text", "frames", "events"],
    ["identity"],
    ["resolvers"],
    ["hub"],
    ["notifications"],
    ["profiles"],
    ["discovery"],
    ["playgrounds"],
    ["auth"],
    ["chat"],
    ["moderation", "export"],
    ["app"],
    ["graphql"],
    ["http", "jobs", "seed"],
    ["server"],
    ["lib", "main"],
]

# Edges that still run upwards, to be removed (none are left; the check refuses new ones).
BACK_EDGES: set = set()

# The longest a file of src/ may be.
MAX_LINES = 600

# What the crate root re-exports, by the module that defines it.
REEXPORTS = {"Config": "config", "AppState": "app", "Application": "server"}


def module_of(path: Path) -> tuple:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return tuple(parts)


def strip_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    # String literals cannot name modules (SQL, messages).
    return re.sub(r'"(?:\\.|[^"\\])*"', '""', text)


def use_trees(text: str):
    """Every path a `use` item names, expanded from its braces."""
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        yield from expand(m.group(1).replace("\n", " ").replace(" ", ""))


def expand(tree: str):
    brace = tree.find("{")
    if brace < 0:
        yield re.sub(r"as\w+$", "", tree)
        return
    prefix, inner = tree[:brace], tree[brace + 1 : tree.rfind("}")]
    depth, start = 0, 0
    for i, ch in enumerate(inner + ","):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            part = inner[start:i]
            start = i + 1
            if part:
                yield from expand(prefix + part)


def main() -> int:
    files = {module_of(p): p for p in SRC.rglob("*.rs")}
    modules = set(files)
    deps = {m: set() for m in modules}
    for mod, path in files.items():
        text = strip_comments(path.read_text())
        is_dir_module = path.name in ("mod.rs", "lib.rs", "main.rs")
        # `super` of a file `a/b.rs` is `a`; of `a/b/mod.rs` it is `a` too.
        here = mod if is_dir_module else mod
        paths = list(use_trees(text))
        paths += re.findall(r"\b((?:crate|super|self)(?:::\w+)+)", text)
        for p in paths:
            segs = p.split("::")
            if segs[0] == "crate":
                base, rest = (), segs[1:]
            elif segs[0] in ("super", "self"):
                base = here
                while segs and segs[0] in ("super", "self"):
                    if segs[0] == "super":
                        base = base[:-1]
                    segs = segs[1:]
                rest = segs
            else:
                continue
            if base == () and rest and rest[0] in REEXPORTS:
                rest = [REEXPORTS[rest[0]]] + rest[1:]
            # The longest prefix that is a module file is what the path depends on.
            target = None
            for n in range(len(rest), -1, -1):
                cand = base + tuple(rest[:n])
                if cand in modules:
                    target = cand
                    break
            if target is None or target == mod:
                continue
            if target[: len(mod)] == mod:
                continue  # a module's own submodule
            deps[mod].add(target)

    # Strongly connected components (Tarjan), each of more than one module is a cycle.
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(deps[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(modules):
        if v not in index:
            visit(v)

    name = lambda m: "crate" + "".join("::" + s for s in m)
    if "--graph" in sys.argv:
        for m in sorted(modules):
            for d in sorted(deps[m]):
                print(f"{name(m)} -> {name(d)}")
    cycles = [sorted(c) for c in comps if len(c) > 1]
    for c in cycles:
        print(f"cycle of {len(c)} modules:")
        members = set(c)
        for m in c:
            inside = sorted(d for d in deps[m] if d in members)
            print(f"  {name(m)} -> {', '.join(name(d) for d in inside)}")
    back = layer_violations(files, deps)
    listed = set(BACK_EDGES)
    unlisted = sorted(e for e in back if e not in listed)
    gone = sorted(listed - set(back))
    for edge in unlisted:
        print(f"{edge[0]} imports {edge[1]}, a layer above it: " + "; ".join(back[edge][:3]))
    for edge in gone:
        print(f"{edge[0]} -> {edge[1]} no longer exists: take it off BACK_EDGES")
    long = sorted(
        (n, p.relative_to(SRC.parent))
        for p in SRC.rglob("*.rs")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    )
    for n, path in long:
        print(f"{path} has {n} lines, more than {MAX_LINES}: split it by topic")
    if cycles or unlisted or gone or long:
        if cycles:
            print(f"{len(cycles)} import cycle(s) in src/")
        return 1
    print(
        f"no import cycles among {len(modules)} modules; top-level modules import only their "
        f"own layer and below ({len(listed)} listed back edges left); no file over {MAX_LINES} lines"
    )
    return 0


def layer_violations(files, deps):
    """Top-level edges that run upwards: {(from, to): [file-level edges behind it]}."""
    layer = {m: i for i, names in enumerate(LAYERS) for m in names}
    top = lambda m: m[0] if m else "lib"
    back = {}
    for mod, targets in deps.items():
        for target in targets:
            a, b = top(mod), top(target)
            if a == b or b == "lib":
                continue
            if a not in layer or b not in layer:
                back.setdefault((a, b), []).append("not in LAYERS")
            elif layer[b] > layer[a]:
                name = lambda m: "::".join(m) or "crate"
                back.setdefault((a, b), []).append(f"{name(mod)} -> {name(target)}")
    return back


if __name__ == "__main__":
    sys.exit(main())
