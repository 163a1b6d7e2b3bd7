#!/usr/bin/env python3
"""Sign in K of the N demo accounts `pupmatch seed N` made, spread evenly over them, and write
their tokens in populate.py's format, for load runs on large seeded databases.

    python benches/load/sign_in_demo.py BASE_URL N K [--out tokens.json] [--concurrency 8]

Demo accounts are demo<i>@pupmatch.example (1 <= i <= N) with the published demo password.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

import httpx

PASSWORD = "demo-password"
LOGIN = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken user { id } } }"


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base_url")
    ap.add_argument("n", type=int)
    ap.add_argument("k", type=int)
    ap.add_argument("--out", default="tokens.json")
    ap.add_argument("--concurrency", type=int, default=8)
    args = ap.parse_args()
    k = min(args.k, args.n)
    numbers = sorted({1 + (i * args.n) // k for i in range(k)})
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in numbers:
        queue.put_nowait(n)
    users: list[dict] = []
    failures: list[str] = []
    t0 = time.time()
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=args.base_url.rstrip("/"), timeout=60.0, limits=limits) as client:

        async def worker() -> None:
            while not queue.empty():
                n = queue.get_nowait()
                email = f"demo{n}@pupmatch.example"
                r = await client.post("/graphql", json={"query": LOGIN, "variables": {"e": email, "p": PASSWORD}})
                body = r.json()
                if r.status_code != 200 or body.get("errors"):
                    failures.append(f"{email}: HTTP {r.status_code} {json.dumps(body)[:200]}")
                    continue
                login = body["data"]["login"]
                users.append({"id": login["user"]["id"], "email": email, "token": login["accessToken"]})

        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    with open(args.out, "w") as f:
        json.dump(users, f)
    print(f"signed in {len(users)} demo accounts in {time.time() - t0:.1f}s, failures={len(failures)} -> {args.out}")
    for e in failures[:5]:
        print("  error:", e, file=sys.stderr)
    return 0 if users and not failures else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
