#!/usr/bin/env bash
# The GPU check, prepared on the CPU, run in one go when a GPU is at hand (`make gpu-check`).
#
#   1. the cuda-marked tests (tests/test_cuda.py) and the determinism op list
#   2. `cnnzoo bench --device cuda --models resnet50` in a fresh process: training and inference
#      images/s, MFU against the card's bf16 peak, the floors (3,000 / 10,000 img/s)
#   3. time to 99% test accuracy on full MNIST (lenet5_modern, the `fast` recipe)
#
# Everything lands in $OUT (default gpu_check_out/): gpu_check.json (the summary), gpu_check.log
# and each step's own files. Works from a plain copy of the repository: it needs a Python with
# torch (CUDA), typer, rich, safetensors, pillow, pyyaml, matplotlib and pytest, e.g. the GPU
# image's python3, or CNNZOO_PYTHON=/path/to/venv/bin/python. MNIST: $MNIST, else
# ../shared/data/mnist, else .mnist/ (a copy carried with the repository); without it step 3
# is skipped and says so. Budget: under 8 minutes on an H100. Exit 1 when a step failed.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${CNNZOO_PYTHON:-python3}
OUT=${OUT:-gpu_check_out}
mkdir -p "$OUT"
LOG="$OUT/gpu_check.log"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export CUBLAS_WORKSPACE_CONFIG=:4096:8  # before CUDA starts: --deterministic needs it
say() { echo "== $(date -u +%T) $*" | tee -a "$LOG"; }

say "gpu check: $(git rev-parse --short HEAD 2>/dev/null || echo no-git)"
nvidia-smi -L >>"$LOG" 2>&1 || true
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" >>"$LOG" 2>&1; then
    say "no CUDA device visible to $PY: nothing to check"
    echo '{"error": "no CUDA device"}' >"$OUT/gpu_check.json"
    exit 2
fi
"$PY" -c "import torch; print('torch', torch.__version__, torch.cuda.get_device_name())" | tee -a "$LOG"
MNIST_DIR=""
for d in "${MNIST:-}" ../shared/data/mnist .mnist; do
    if [ -n "$d" ] && [ -f "$d/train-images-idx3-ubyte.gz" ]; then MNIST_DIR=$d; break; fi
done

say "1/3 cuda tests"
timeout 240 "$PY" -m pytest -q -p no:cacheprovider -m "cuda or not slow" tests/test_cuda.py \
    tests/test_determinism.py --junitxml="$OUT/cuda_tests.xml" >>"$LOG" 2>&1
TESTS_RC=$?
tail -n 15 "$LOG"

say "2/3 bench resnet50 (fresh process)"
timeout 300 "$PY" -m cnnzoo bench --device cuda --models resnet50 --no-loop --no-fastpath \
    --format json --out "$OUT/bench_resnet50.json" >/dev/null 2>>"$LOG"
BENCH_RC=$?

say "3/3 time to 99% on full MNIST"
MNIST_RC=0
if [ -n "$MNIST_DIR" ]; then
    timeout 180 "$PY" -m cnnzoo train lenet5_modern --data "mnist:$MNIST_DIR" --recipe fast \
        --epochs 4 --device cuda --no-progress --out "$OUT/mnist" >>"$LOG" 2>&1
    MNIST_RC=$?
else
    say "no MNIST found (MNIST=, ../shared/data/mnist, .mnist): skipped"
fi

timeout 240 "$PY" benchmarks/speedrun_cifar_epoch.py --device cuda >"$OUT/speedrun_cifar.json" 2>>"$LOG"  # CIFAR speedrun s/epoch (synthetic data)

"$PY" - "$OUT" "$TESTS_RC" "$BENCH_RC" "$MNIST_RC" <<'EOF' | tee -a "$LOG"
import csv, json, sys
import xml.etree.ElementTree as ET
from pathlib import Path

out, tests_rc, bench_rc, mnist_rc = Path(sys.argv[1]), *map(int, sys.argv[2:])
summary = {"tests": {"rc": tests_rc}, "bench": {"rc": bench_rc}, "mnist": {"rc": mnist_rc}}
try:
    suite = ET.parse(out / "cuda_tests.xml").getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    summary["tests"].update({k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")})
    summary["tests"]["failed"] = [f"{c.get('classname')}::{c.get('name')}" for c in suite.iter("testcase")
                                  if c.find("failure") is not None or c.find("error") is not None]
except Exception as err:
    summary["tests"]["note"] = f"no junit report ({err})"
try:
    b = json.loads((out / "bench_resnet50.json").read_text())
    summary["bench"]["gpu"] = b["machine"].get("gpu")
    for m in b["models"]:
        for mode in ("train", "infer"):
            if mode in m:
                o = m[mode]["ours"]
                summary["bench"][mode] = {"images_per_s": o["images_per_s"], "mfu": o.get("mfu"),
                                          "reference_images_per_s": m[mode]["reference"]["images_per_s"],
                                          "batch": m[mode]["batch"]}
    summary["bench"]["floors"] = b.get("floors")
    summary["bench"]["nvidia_a100_amp_train_images_per_s"] = 2470
except Exception as err:
    summary["bench"]["note"] = f"no bench result ({err})"
try:
    rows = list(csv.DictReader(open(out / "mnist" / "metrics.csv")))
    t, first = 0.0, None
    for r in rows:
        t += float(r["epoch_time_s"])
        if first is None and r.get("test_acc") and float(r["test_acc"]) >= 0.99:
            first = {"epoch": int(r["epoch"]), "train_s": round(t, 2), "test_acc": float(r["test_acc"])}
    summary["mnist"].update({"epochs": [{k: r[k] for k in ("epoch", "test_acc", "epoch_time_s")} for r in rows],
                             "to_99": first})
except Exception as err:
    summary["mnist"]["note"] = f"no MNIST result ({err})"
(out / "gpu_check.json").write_text(json.dumps(summary, indent=2))
print(json.dumps(summary, indent=2))
EOF
say "done: tests rc=$TESTS_RC bench rc=$BENCH_RC mnist rc=$MNIST_RC"
[ "$TESTS_RC" -eq 0 ] && [ "$BENCH_RC" -eq 0 ] && [ "$MNIST_RC" -eq 0 ]
