"""The benchmark, without installing the package: `python benchmarks/run.py --quick`.

Same options as `cnnzoo bench models` (see --help).
"""

import os
import sys
from pathlib import Path

# Before torch loads OpenMP: waiting threads sleep instead of spinning. On a shared CPU a
# spinning thread holds a core its partner needs, and 2-thread steps get up to 20x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from cnnzoo.cli import main

if __name__ == "__main__":
    main(["bench", "models", *sys.argv[1:]])
