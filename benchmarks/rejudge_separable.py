"""Recompute a separable.json's verdict from its own runs with the current rule.

    python benchmarks/rejudge_separable.py benchmarks/results/experiments/fashion-mnist/separable.json

The measured run of 2026-12-04 was made with code whose accuracy part read the arms the wrong
way round (commit 36d7be7 fixed it); its runs are unchanged, only the verdict is recomputed here
from the seeds' test errors stored in the file, and the file says so (`verdict_recomputed`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from cnnzoo.experiments.common import values
from cnnzoo.experiments.efficiency import separable_accuracy_part
from cnnzoo.experiments.verdicts import RULE, combine, describe


def main(path: Path) -> None:
    r = json.loads(path.read_text())
    runs = r["measured"]["runs"]
    cost = r["measured"]["parts"][0]
    parts = [cost, separable_accuracy_part(values(runs, "separable"), values(runs, "conv"))]
    before = r["verdict"]["status"]
    head = r["verdict"]["text"].split("; ")[0]
    r["measured"]["parts"] = parts
    r["verdict"] = {"status": combine(parts), "text": head + "; " + "; ".join(describe(p) for p in parts),
                    "tolerance": RULE}
    r["verdict_recomputed"] = (f"verdict recomputed from the stored runs after commit 36d7be7 fixed the "
                               f"accuracy part's arm order (was: {before})")
    path.write_text(json.dumps(r, indent=2) + "\n")
    print(r["verdict"]["status"], "-", r["verdict"]["text"])


if __name__ == "__main__":
    main(Path(sys.argv[1]))
