"""Write src/cnnzoo/serve/zoo_table.json: each registered model's analyzer totals (params,
multiply-adds, activation memory) at its native input, so `cnnzoo serve`'s Zoo page answers at
once instead of analysing every model first (tests/test_serve_zoo.py fails when the file is
stale: rerun this script, or `make docs`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cnnzoo.analysis import analyze
from cnnzoo.registry import list_models
from cnnzoo.serve import zoo

models = {name: zoo.totals(name, analyze(name)) for name in list_models()}
out = Path(zoo.__file__).with_name(zoo.TABLE_FILE)
lines = [f"{json.dumps(name)}: {json.dumps(row, sort_keys=True)}" for name, row in sorted(models.items())]
out.write_text('{"models": {\n' + ",\n".join(lines) + "\n}}\n")  # one model a line: readable diffs
print(f"wrote {out}: {len(models)} models")
