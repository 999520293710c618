"""Write docs/models.md from the registry: one section per family, one row per model.

    python scripts/gen_model_docs.py          # rewrite docs/models.md
    python scripts/gen_model_docs.py --check  # exit 1 if docs/models.md is stale (used by a test)
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import cnnzoo  # noqa: E402
from cnnzoo.registry import get_entry  # noqa: E402


def _fmt(n: float | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1e6:.2f}M" if n >= 1e5 else f"{n:,.0f}"


def render() -> str:
    by_family: dict[str, list[str]] = defaultdict(list)
    for name in cnnzoo.list_models():
        by_family[get_entry(name).family].append(name)
    out = [
        "# Models",
        "",
        "Generated from the registry by `python scripts/gen_model_docs.py`; do not edit by hand.",
        "Parameters are counted on the model as built (its default classes, auxiliary heads included);",
        "published figures are quoted with their source; torchvision's come from its weights' rows",
        "(`cnnzoo weights`), its 'GFLOPS' being multiply-adds. Every model runs under",
        "`torch.compile(fullgraph=True)` (tests compile one per family).",
        "",
    ]
    for family in sorted(by_family):
        out += [f"## {family}", "", "| model | input | params | published | paper |",
                "|---|---|---|---|---|"]
        for name in by_family[family]:
            e = get_entry(name)
            with torch.device("meta"):
                params = sum(p.numel() for p in cnnzoo.create_model(name).parameters() if p.requires_grad)
            pubs = "; ".join(
                ", ".join(x for x in (
                    f"{_fmt(p.params)} params" if p.params else "",
                    f"{p.macs / 1e6:,.0f}M MACs" if p.macs else "",
                    f"top-1 err {p.top1_err}%" if p.top1_err is not None else "",
                    f"top-5 err {p.top5_err}%" if p.top5_err is not None else "",
                ) if x) + f" ({p.source})"
                for p in e.published
            ) or "-"
            paper = f"[{e.paper.authors.split(',')[0]} {e.paper.year}]({e.paper.url})"
            out.append(f"| `{name}` | {'x'.join(map(str, e.input_size))} | {params:,} | {pubs} | "
                       f"{paper} |")
        out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    target = ROOT / "docs" / "models.md"
    text = render()
    if "--check" in sys.argv:
        if not target.exists() or target.read_text() != text:
            print("docs/models.md is stale: run python scripts/gen_model_docs.py")
            sys.exit(1)
        sys.exit(0)
    target.write_text(text)
    print(f"wrote {target} ({text.count(chr(10))} lines)")
