"""Print docs/experiments.md's measured table from the committed experiment results:

    python benchmarks/experiments_table.py [benchmarks/results/experiments/fashion-mnist]

One row per NAME.json: the command, each arm's test error over the seeds (mean +/- std,
[min, max]), the mult-adds where the experiment counts them, each part of the verdict with its
difference and margin, and the run's wall time."""

from __future__ import annotations

import json
import sys
from pathlib import Path

ORDER = ("batchnorm", "separable", "nin-1x1", "width-multiplier", "stacked-3x3", "lrn", "aux-heads",
         "ensemble", "degradation", "inception-reduction")


def _arms(r: dict) -> str:
    macs = r["measured"].get("macs_m", {})
    out = []
    for arm, s in r["measured"].get("arms", {}).items():
        e = s["test_err_pct"]
        cost = f", {macs[arm]:.1f}M MACs" if arm in macs else ""
        out.append(f"{arm} {e['mean']:.2f} ± {e['std']:.2f}% [{e['min']:.2f}, {e['max']:.2f}]{cost}")
    return "; ".join(out)


def _parts(r: dict) -> str:
    out = []
    for p in r["measured"].get("parts", []):
        if "difference_pts" in p:
            out.append(f"{p['claim']}: {p['difference_pts']:+.2f} pts vs margin {p['margin_pts']:.2f} "
                       f"(threshold {p['threshold_pts']:+.1f}): {p['status']}")
        else:
            out.append(f"{p['claim']}: {p['measured']}: {p['status']}")
    return "<br>".join(out)


def main(folder: Path) -> None:
    print("| experiment | command | paper | test error per arm, mean ± std [min, max] over the seeds | parts of "
          "the verdict | verdict | wall time |")
    print("|---|---|---|---|---|---|---|")
    files = {p.stem: p for p in folder.glob("*.json")}
    for name in sorted(files, key=lambda n: ORDER.index(n) if n in ORDER else 99):
        r = json.loads(files[name].read_text())
        print(f"| {name} | `{r['command']}` | {r['paper_figure']} | {_arms(r)} | {_parts(r)} | "
              f"**{r['verdict']['status']}** | {r['seconds'] / 60:.1f} min |")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/experiments/fashion-mnist"))
