"""Write src/cnnzoo/commands/param_counts.json: each registered model's trainable parameter count
at its default classes, so `cnnzoo list` prints counts without building 78 models
(tests/test_cli_startup.py fails when the file is stale: rerun this script, or `make docs`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cnnzoo.commands.models import PARAM_COUNTS, count_params
from cnnzoo.registry import list_models

counts = {name: count_params(name) for name in list_models()}
PARAM_COUNTS.write_text(json.dumps(counts, indent=0, sort_keys=True) + "\n")
print(f"wrote {PARAM_COUNTS}: {len(counts)} models")
