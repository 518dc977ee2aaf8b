"""The baseline: a promotion loop as users script it today, for comparison with iq-promote.

A semaphore bounds the applications in flight; each one looks up its publicId, POSTs
promoteScan and polls its status URL at a fixed interval until it is no longer PENDING.
Run as ``python -m benchmarks.script URL INTERVAL CONCURRENCY PUBLIC_IDS_FILE OUT``; it writes
its wall-clock makespan and the time it saw each evaluation finish.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp

from benchmarks.simulator import PASSWORD, USERNAME


async def promote_all(
    base_url: str, interval: float, concurrency: int, public_ids: list[str]
) -> dict[str, object]:
    semaphore = asyncio.Semaphore(concurrency)
    detected: dict[str, float] = {}
    headers = {"Authorization": aiohttp.encode_basic_auth(USERNAME, PASSWORD)}
    started = time.time()
    async with aiohttp.ClientSession(base_url, headers=headers) as session:

        async def promote(public_id: str) -> None:
            async with semaphore:
                async with session.get("api/v2/applications", params={"publicId": public_id}) as r:
                    application = (await r.json())["applications"][0]
                body = {"sourceStageId": "build", "targetStageId": "stage-release"}
                path = f"api/v2/evaluation/applications/{application['id']}/promoteScan"
                async with session.post(path, json=body) as r:
                    status_url = (await r.json())["statusUrl"]
                while True:
                    await asyncio.sleep(interval)
                    async with session.get(status_url) as r:
                        status = await r.json()
                    if status["status"] != "PENDING":
                        detected[status_url.rsplit("/", 1)[-1]] = time.time()
                        return

        await asyncio.gather(*(promote(p) for p in public_ids))
    return {"makespan": time.time() - started, "startedWall": started, "detected": detected}


def main() -> None:
    base_url, interval, concurrency, ids_file, out = sys.argv[1:6]
    public_ids = json.loads(Path(ids_file).read_text())
    result = asyncio.run(promote_all(base_url, float(interval), int(concurrency), public_ids))
    Path(out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
