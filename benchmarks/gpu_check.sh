#!/usr/bin/env bash
# The GPU check, prepared on the CPU, run in one go when a GPU is at hand (`make gpu-check`).
#
#   1. the cuda-marked tests (tests/test_cuda.py) and the determinism op list
#   2. `cnnzoo bench models --device cuda --models resnet50` in a fresh process: training and inference
#      images/s, MFU against the card's bf16 peak, the floors (3,000 / 10,000 img/s)
#   3. time to 99% test accuracy on full MNIST (lenet5_modern, the `fast` recipe)
#   4. the image-folder loader (`cnnzoo bench loader`): ready training batches per second from
#      photo-sized JPEGs, ours (nvJPEG, or DALI where installed) against torchvision's reference
#      pipeline, next to ResNet-50's training images/s from step 2
#
# Everything lands in $OUT (default gpu_check_out/): gpu_check.json (the summary), gpu_check.log
# and each step's own files. Works from a plain copy of the repository: it needs a Python with
# torch (CUDA), typer, rich, safetensors, pillow, pyyaml, matplotlib and pytest, e.g. the GPU
# image's python3, or CNNZOO_PYTHON=/path/to/venv/bin/python. MNIST: $MNIST, else
# ../shared/data/mnist, else .mnist/ (a copy carried with the repository); without it step 3
# is skipped and says so. Budget: under 9 minutes on an H100. Exit 1 when a step failed.
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

say "1/4 cuda tests"
timeout 300 "$PY" -m pytest -q -p no:cacheprovider -m "cuda or not slow" tests/test_cuda.py \
    tests/test_determinism.py tests/test_fast_loader.py --junitxml="$OUT/cuda_tests.xml" >>"$LOG" 2>&1
TESTS_RC=$?
tail -n 15 "$LOG"

say "2/4 bench resnet50 (fresh process)"
timeout 300 "$PY" -m cnnzoo bench models --device cuda --models resnet50 --no-loop --no-fastpath \
    --format json --out "$OUT/bench_resnet50.json" >/dev/null 2>>"$LOG"
BENCH_RC=$?

say "3/4 time to 99% on full MNIST"
MNIST_RC=0
if [ -n "$MNIST_DIR" ]; then
    timeout 180 "$PY" -m cnnzoo train lenet5_modern --data "mnist:$MNIST_DIR" --recipe fast \
        --epochs 4 --device cuda --no-progress --out "$OUT/mnist" >>"$LOG" 2>&1
    MNIST_RC=$?
else
    say "no MNIST found (MNIST=, ../shared/data/mnist, .mnist): skipped"
fi

timeout 240 "$PY" benchmarks/speedrun_cifar_epoch.py --device cuda >"$OUT/speedrun_cifar.json" 2>>"$LOG"  # CIFAR speedrun s/epoch (synthetic data)

F=${FASHION:-../shared/data/fashion-mnist}; [ -f "$F/train-images-idx3-ubyte.gz" ] && timeout "${LEADERBOARD_S:-300}" "$PY" -m cnnzoo experiment leaderboard --data "fashion-mnist:$F" --device cuda --out "$OUT/leaderboard" --format json >"$OUT/leaderboard_run.json" 2>>"$LOG"  # issue 26: the full-size Fashion-MNIST leaderboard (docs/experiments.md); its table grows member by member (in the default 300 s, LEADERBOARD_S, the first members; all 13 need about 15 min)

say "4/4 image-folder loader (1024 photo-like 500x375 JPEGs, 12 workers, batch 128)"
PHOTOS=${TMPDIR:-/tmp}/cnnzoo_gpu_check_photos
timeout 240 "$PY" -m cnnzoo bench loader "folder:$PHOTOS" --make-folder 1024 --images 1024 --workers 12 \
    --batch 128 --reps 2 --device cuda --format json --out "$OUT/bench_loader.json" >/dev/null 2>>"$LOG"
LOADER_RC=$?

"$PY" - "$OUT" "$TESTS_RC" "$BENCH_RC" "$MNIST_RC" "$LOADER_RC" <<'EOF' | tee -a "$LOG"
import csv, json, sys
import xml.etree.ElementTree as ET
from pathlib import Path

out, tests_rc, bench_rc, mnist_rc, loader_rc = Path(sys.argv[1]), *map(int, sys.argv[2:])
summary = {"tests": {"rc": tests_rc}, "bench": {"rc": bench_rc}, "mnist": {"rc": mnist_rc},
           "loader": {"rc": loader_rc}}
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
try:
    ld = json.loads((out / "bench_loader.json").read_text())
    summary["loader"].update({k: ld[k] for k in ("decode", "workers", "batch", "images", "ratio", "cores")})
    summary["loader"].update(images_per_s=ld["ours"]["images_per_s"],
                             reference_images_per_s=ld["reference"]["images_per_s"])
    train = summary["bench"].get("train", {}).get("images_per_s")
    if train:  # > 1: the loader keeps up with ResNet-50 training on this card
        summary["loader"]["loader_over_resnet50_train"] = ld["ours"]["images_per_s"] / train
except Exception as err:
    summary["loader"]["note"] = f"no loader result ({err})"
(out / "gpu_check.json").write_text(json.dumps(summary, indent=2))
print(json.dumps(summary, indent=2))
EOF
say "done: tests rc=$TESTS_RC bench rc=$BENCH_RC mnist rc=$MNIST_RC loader rc=$LOADER_RC"
[ "$TESTS_RC" -eq 0 ] && [ "$BENCH_RC" -eq 0 ] && [ "$MNIST_RC" -eq 0 ] && [ "$LOADER_RC" -eq 0 ]
