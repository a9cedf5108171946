#!/usr/bin/env bash
# Everything to check on a machine with an NVIDIA GPU, in one go, logs in $1 (default gpu-logs,
# at most eight files):
# the CuPy kernels against the NumPy reference, the whole suite on the cupy backend, the kernel
# and model benchmarks against PyTorch on cuda, and a Fashion-MNIST epoch through the CLI.
# Each step has its own time limit and the script goes on when one fails; the GPU machines lent
# here have CuPy, PyTorch (CUDA), pytest, pytest-xdist and hypothesis preinstalled, so it uses
# their python3 with PYTHONPATH set to this checkout instead of installing. DATA: a directory holding Fashion-MNIST.
set -u
cd "$(dirname "$0")/.."
LOGS=${1:-gpu-logs}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
PY=${PYTHON:-python3}
mkdir -p "$LOGS"
export PYTHONPATH="$PWD" PYTHONUNBUFFERED=1  # absolute: tests run examples from other directories

step() {  # step NAME SECONDS COMMAND...: run with a limit, log to $LOGS/NAME.log, print the tail
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    timeout "$limit" "$@" >"$LOGS/$name.log" 2>&1
    local rc=$?
    echo "== $name: exit $rc after $((SECONDS - start)) s"
    tail -n 4 "$LOGS/$name.log"
}

nvidia-smi -L
$PY -c "import cupy, numpy, torch; print('cupy', cupy.__version__, 'numpy', numpy.__version__,
'torch', torch.__version__, 'CUDA runtime', cupy.cuda.runtime.runtimeGetVersion())"
step kernel-tests 90 $PY -m pytest -q -p no:cacheprovider tests/test_conv_pool.py -k cupy
step suite-on-cupy 200 env MINIGRAD_BACKEND=cupy $PY -m pytest -q -p no:cacheprovider \
    -n 12 --timeout 100 --maxfail 60
step bench-kernels 100 $PY benchmarks/kernels.py --device cuda --quick
step bench-models 90 $PY benchmarks/models.py --device cuda --quick
step train-simplecnn 60 $PY -m minigrad.train --model simplecnn --dataset fashion-mnist \
    --data-dir "$DATA" --epochs 2 --backend cupy --out /tmp/gpu-check/simplecnn
step train-resnet20 90 $PY -m minigrad.train --model resnet20 --dataset fashion-mnist \
    --data-dir "$DATA" --epochs 1 --backend cupy --out /tmp/gpu-check/resnet20
for model in simplecnn resnet20; do  # the metrics only: checkpoints and plots stay behind
    cp /tmp/gpu-check/$model/metrics.json "$LOGS/train-$model.json" 2>/dev/null
done
