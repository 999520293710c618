"""The choices the benchmarks take, without torch: `cnnzoo bench` lists them in its help, and the
help is built before the bench re-starts itself with passive OpenMP waiting (torch must not be
loaded by then)."""

MODES = ("infer", "train")  # the steps a run can time
PRECISIONS = ("fp32", "bf16")  # bf16: autocast
