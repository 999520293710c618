"""Issue 29: the web app's report cache under many distinct input sizes of one big model.

    PYTHONPATH=src python benchmarks/serve_cache.py [--model densenet201] [--sizes 100]

Asks `/api/models/MODEL?input=3xSxS` for --sizes distinct sizes (one request each, through
Starlette's test client: the app's own code path, no network) and prints the process's resident
memory and the number of cached reports every 20 requests, and the time per request. The cache
keeps serve.zoo.REPORTS_KEPT reports, so memory levels off once it is full (before the bound:
+326 MB for 600 sizes of densenet201, still growing).
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time

from starlette.testclient import TestClient

from cnnzoo.serve import create_app, zoo


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="densenet201")
    ap.add_argument("--sizes", type=int, default=100)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, TestClient(create_app(tmp, cache=tmp)) as client:
        client.get(f"/api/models/{args.model}")  # imports and first analysis out of the way
        start, t0 = rss_mb(), time.perf_counter()
        kept = getattr(zoo, "REPORTS_KEPT", "every")  # before issue 29: no bound
        print(f"{args.model}: rss {start:.0f} MB after one request; cache keeps {kept} reports")
        for i in range(1, args.sizes + 1):
            side = 224 + i
            r = client.get(f"/api/models/{args.model}", params={"input": f"3x{side}x{side}"})
            if r.status_code != 200:
                raise SystemExit(f"{side}: HTTP {r.status_code} {r.text}")
            if i % 20 == 0 or i == args.sizes:
                rss = rss_mb()
                print(f"{i:4d} sizes: rss {rss:.0f} MB (+{rss - start:.0f}), {len(zoo._REPORTS)} reports cached, "
                      f"{(time.perf_counter() - t0) / i:.2f} s per request")


if __name__ == "__main__":
    main()
