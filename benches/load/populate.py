#!/usr/bin/env python3
"""Create N PupMatch users through the public API only, against any server speaking the contract.

    python benches/load/populate.py BASE_URL N [--out tokens.json] [--concurrency 24] [--seed 1]

Per user: register -> createProfile -> 2 photo uploads (POST /v1/photos, small generated JPEGs)
-> setPrompts (2 prompts from promptQuestions; skipped if the server lacks it) -> updateLocation
(3 cities, dense core + suburbs) -> updatePreferences (maxDistance 50 km).
Writes [{"id", "email", "token"}, ...] to --out. Not resumable: every run makes fresh emails.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import math
import random
import sys
import time
import uuid

import httpx

CITIES = [  # name, lat, lon, share of users
    ("berlin", 52.5200, 13.4050, 0.5),
    ("hamburg", 53.5511, 9.9937, 0.3),
    ("munich", 48.1371, 11.5754, 0.2),
]
NAMES = ["Rex", "Luna", "Bella", "Max", "Charlie", "Milo", "Daisy", "Rocky", "Coco", "Bailey", "Nala", "Toby"]
BREEDS = ["Labrador", "Beagle", "Poodle", "Dachshund", "Border Collie", "Pug", "Husky", None]
SIZES = ["SMALL", "MEDIUM", "LARGE", None]
LEVELS = ["LOW", "MEDIUM", "HIGH"]

REGISTER = "mutation($i: RegisterInput!) { register(input: $i) { accessToken user { id } } }"
CREATE_PROFILE = "mutation($i: ProfileInput!) { createProfile(input: $i) { id } }"
SET_PROMPTS = "mutation($p: [PromptInput!]!) { setPrompts(prompts: $p) { id } }"
QUESTIONS = "{ promptQuestions }"
LOCATION = "mutation($la: Float!, $lo: Float!) { updateLocation(latitude: $la, longitude: $lo) }"
PREFS = "mutation($i: PreferencesInput!) { updatePreferences(input: $i) { maxDistance } }"


def make_jpegs(n: int, rng: random.Random) -> list[bytes]:
    from PIL import Image  # only the load client needs Pillow

    out = []
    for _ in range(n):
        c1 = tuple(rng.randrange(256) for _ in range(3))
        c2 = tuple(rng.randrange(256) for _ in range(3))
        im = Image.new("RGB", (160, 160), c1)
        im.paste(Image.new("RGB", (80, 80), c2), (rng.randrange(80), rng.randrange(80)))
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=80)
        out.append(buf.getvalue())
    return out


def place(rng: random.Random) -> tuple[float, float]:
    r = rng.random()
    for _, lat, lon, share in CITIES:
        if r < share:
            break
        r -= share
    # 65 % in the dense core (sigma 4 km), 35 % in the suburbs (sigma 12 km)
    sigma_km = 4.0 if rng.random() < 0.65 else 12.0
    dn, de = rng.gauss(0, sigma_km), rng.gauss(0, sigma_km)
    return lat + dn / 111.32, lon + de / (111.32 * math.cos(math.radians(lat)))


class Failure(Exception):
    pass


async def gql(client: httpx.AsyncClient, query: str, variables: dict, token: str | None = None) -> dict:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    r = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    if r.status_code != 200:
        raise Failure(f"HTTP {r.status_code}: {r.text[:200]}")
    body = r.json()
    if body.get("errors"):
        raise Failure(json.dumps(body["errors"])[:300])
    return body["data"]


async def make_user(client, i, run, rng, jpegs, questions, stats) -> dict:  # noqa: ANN001
    email = f"load-{run}-{i}@example.com"
    d = await gql(client, REGISTER, {"i": {"email": email, "password": f"pw-{run}-{i}-secret"}})
    token, uid = d["register"]["accessToken"], d["register"]["user"]["id"]
    age = rng.randint(1, 15)
    await gql(
        client,
        CREATE_PROFILE,
        {
            "i": {
                "name": rng.choice(NAMES),
                "age": age,
                "bio": f"Dog #{i}: loves walks, squeaky toys and long naps in the sun.",
                "breed": rng.choice(BREEDS),
                "size": rng.choice(SIZES),
                "activityLevel": rng.choice(LEVELS),
            }
        },
        token,
    )
    for k in range(2):
        img = jpegs[(i * 2 + k) % len(jpegs)]
        r = await client.post(
            "/v1/photos", files={"file": (f"dog{k}.jpg", img, "image/jpeg")}, headers={"authorization": f"Bearer {token}"}
        )
        if r.status_code != 201:
            raise Failure(f"photo upload HTTP {r.status_code}: {r.text[:200]}")
    if questions:
        qs = rng.sample(questions, k=min(2, len(questions)))
        try:
            await gql(client, SET_PROMPTS, {"p": [{"question": q, "answer": f"Answer {i} to that one."} for q in qs]}, token)
        except Failure:
            stats["prompt_failures"] += 1
    lat, lon = place(rng)
    await gql(client, LOCATION, {"la": lat, "lo": lon}, token)
    await gql(
        client,
        PREFS,
        {
            "i": {
                "maxDistance": 50.0,
                "distanceUnit": "KILOMETERS",
                "minAge": rng.randint(0, 2),
                "maxAge": rng.randint(10, 20),
                "activityLevel": rng.choice(LEVELS),
            }
        },
        token,
    )
    return {"id": uid, "email": email, "token": token}


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base_url")
    ap.add_argument("n", type=int)
    ap.add_argument("--out", default="tokens.json")
    ap.add_argument("--concurrency", type=int, default=24)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    run = uuid.uuid4().hex[:8]
    jpegs = make_jpegs(16, rng)
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
    users: list[dict] = []
    stats = {"failures": 0, "prompt_failures": 0}
    errors: list[str] = []
    t0 = time.time()
    async with httpx.AsyncClient(base_url=args.base_url.rstrip("/"), timeout=60.0, limits=limits) as client:
        try:
            questions = (await gql(client, QUESTIONS, {}))["promptQuestions"]
        except Exception:  # noqa: BLE001
            questions = []
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(args.n):
            queue.put_nowait(i)

        async def worker(w: int) -> None:
            wrng = random.Random(args.seed * 1000 + w)
            while True:
                try:
                    i = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                try:
                    users.append(await make_user(client, i, run, wrng, jpegs, questions, stats))
                except Exception as e:  # noqa: BLE001
                    stats["failures"] += 1
                    if len(errors) < 5:
                        errors.append(f"user {i}: {e!r}")
                done = len(users) + stats["failures"]
                if done % 200 == 0:
                    el = time.time() - t0
                    print(f"  {done}/{args.n} users in {el:.0f}s ({done / el:.1f}/s)", file=sys.stderr, flush=True)

        await asyncio.gather(*(worker(w) for w in range(args.concurrency)))
    el = time.time() - t0
    with open(args.out, "w") as f:
        json.dump(users, f)
    print(
        f"created {len(users)} users in {el:.1f}s ({len(users) / el:.1f} users/s), failures={stats['failures']}, "
        f"prompt_failures={stats['prompt_failures']} -> {args.out}"
    )
    for e in errors:
        print("  error:", e, file=sys.stderr)
    return 0 if users and stats["failures"] == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
