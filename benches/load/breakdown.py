#!/usr/bin/env python3
"""Where the server's CPU went during one load scenario, by part of the stack.

    perf report -i NAME.perf --stdio --no-children --sort sym 2>/dev/null | benches/load/breakdown.py

Reads perf's flat profile (samples of the server process only; scripts/bench-load.sh with
PROFILE=1 records one per scenario) and sums the samples of each symbol into the part of the
request it belongs to, by the crate that defines it (the leftmost known crate in the symbol).
"""
import re
import sys

# (part, crates or symbol prefixes), in the order they are tried.
PARTS = [
    ("HTTP (hyper, axum, tower)", ["hyper", "hyper_util", "h2", "http", "httparse", "axum", "axum_core", "tower", "tower_http", "tower_layer"]),
    ("GraphQL parse/validate/execute", ["async_graphql", "async_graphql_parser", "async_graphql_value", "async_graphql_axum", "pest", "indexmap", "stacker"]),
    ("SQL client (sqlx)", ["sqlx_core", "sqlx_postgres", "sqlx_sqlite", "sqlx", "libsqlite3_sys", "sqlite3"]),
    ("Redis client", ["redis", "combine"]),
    ("JSON (serde_json)", ["serde_json", "serde", "ryu", "itoa", "zmij"]),
    ("URLs (media links, parsing)", ["url", "percent_encoding", "form_urlencoded", "idna"]),
    ("auth: JWT, HMAC, hashing", ["jsonwebtoken", "hmac", "sha2", "ring", "base64", "simple_asn1"]),
    ("cache (moka)", ["moka", "quanta", "crossbeam_epoch", "crossbeam_channel", "crossbeam_utils"]),
    ("rate limiting (governor)", ["governor", "dashmap"]),
    ("metrics", ["metrics", "metrics_exporter_prometheus", "metrics_util"]),
    ("tracing", ["tracing", "tracing_core", "tracing_subscriber"]),
    ("async runtime (tokio)", ["tokio", "futures_util", "futures_core", "futures_channel", "futures"]),
    ("allocator", ["mimalloc", "mi_", "_mi_", "libmimalloc_sys"]),
    ("application (pupmatch)", ["pupmatch"]),
    ("standard library", ["core", "alloc", "std", "hashbrown"]),
]
KNOWN = {c: part for part, crates in PARTS for c in crates}
LINE = re.compile(r"^\s*([\d.]+)%\s+\[([.k])\]\s+(.*)$")
CRATE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)::")


def part_of(kind: str, sym: str) -> str:
    if kind == "k":
        return "kernel (sockets, scheduling)"
    if sym.startswith(("mi_", "_mi_")):
        return "allocator"
    if sym.startswith(("__memcpy", "__memmove", "__memset", "__memcmp", "memcpy", "memmove", "memset")):
        return "memcpy/memset"
    # Generic code of the standard library is charged to the crate it was instantiated for
    # (`core::ptr::drop_in_place<async_graphql::…>` is GraphQL's).
    found = [KNOWN[m.group(1)] for m in CRATE.finditer(sym) if m.group(1) in KNOWN]
    for part in found:
        if part != "standard library":
            return part
    if found:
        return found[0]
    if sym.startswith("0x") or not sym:
        return "unresolved"
    return "other (libc, unknown)"


def main() -> None:
    totals: dict[str, float] = {}
    for line in sys.stdin:
        m = LINE.match(line)
        if not m:
            continue
        pct, kind, sym = float(m.group(1)), m.group(2), m.group(3).strip()
        part = part_of(kind, sym)
        totals[part] = totals.get(part, 0.0) + pct
    for part, pct in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"{pct:6.1f} %  {part}")


if __name__ == "__main__":
    main()
