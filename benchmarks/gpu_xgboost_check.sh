#!/usr/bin/env bash
# GPU check for the boost stage: fit a small XGBoost with device "auto" on random
# embedding-like data through artstyle.boosting (select_device -> fit_booster) and
# print the device that actually ran (read back from the booster configuration),
# the fit time, and — unless COMPARE_CPU=0 — the same fit on the CPU for comparison.
#
#   bash benchmarks/gpu_xgboost_check.sh            # from the repository root
#
# Exit status: 0 when the fit ran on CUDA (or REQUIRE_GPU=0), 1 when it ran on the
# CPU, 2 when xgboost 3.2.0 could not be installed, 3 while wheel parts are missing.
# Results also go to $OUT/gpu_xgboost_check.json when OUT is set.
#
# Environment: N (training rows, default 20000), D (features, 512), K (classes, 13),
# ROUNDS (n_estimators, 60), COMPARE_CPU (1), REQUIRE_GPU (1), PYTHON (python3).
#
# Getting xgboost 3.2.0 there. Needs numpy, scipy and scikit-learn (all in the H200 image);
# NCCL is not needed on one GPU (the wheel dlopens it: build_info USE_DLOPEN_NCCL).
# In order of preference the script uses:
#   1. an xgboost 3.2.0 that python already imports;
#   2. a wheel file: $XGB_WHEEL, or .whl/xgboost-3.2.0-*.whl;
#   3. split wheel parts (.whl/xgb-p*/xgboost-3.2.0-*.whl.part-* + .whl/xgb-p*/SHA256SUMS),
#      stashed in /tmp/xgb-parts across calls on the same warm machine, reassembled
#      and checked against SHA256SUMS once all parts are there;
#   4. `python3 -m pip install xgboost==3.2.0` (only where a package index answers).
# The manylinux x86-64 wheel is 131.7 MB, over the device tool's 64 MiB per call, and
# the device machine reaches no index, so there (3) is the way: here, run
#   bash benchmarks/gpu_xgboost_check.sh --prepare-parts 3
# which downloads the wheel into /tmp and writes .whl/xgb-p1 .. .whl/xgb-p3 (~42 MiB each),
# then make three device calls in quick succession (the machine stays warm ~30 s),
# carrying [".whl/xgb-p1"], [".whl/xgb-p2"], [".whl/xgb-p3"], each running this script.
set -euo pipefail

WANT=3.2.0
PY=${PYTHON:-python3}
cd "$(dirname "$0")/.."

if [[ ${1:-} == --prepare-parts ]]; then
  n=${2:-3}
  dl=/tmp/xgb-wheel-dl
  mkdir -p "$dl"
  "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 -d "$dl" "xgboost==$WANT"
  whl=$(ls "$dl"/xgboost-$WANT-*manylinux_2_28_x86_64.whl)
  base=$(basename "$whl")
  rm -rf .whl/xgb-p[0-9]*
  tmp=$(mktemp -d)
  split -n "$n" -d -a 2 "$whl" "$tmp/$base.part-"
  sum=$(sha256sum "$whl" | cut -d' ' -f1)
  i=1
  for part in "$tmp"/*; do
    mkdir -p ".whl/xgb-p$i"
    mv "$part" ".whl/xgb-p$i/"
    printf '%s  %s\nparts %s\n' "$sum" "$base" "$n" > ".whl/xgb-p$i/SHA256SUMS"
    i=$((i + 1))
  done
  rmdir "$tmp"
  du -sh .whl/xgb-p*
  exit 0
fi

have_xgb() {
  "$PY" -c "import sys, xgboost; sys.exit(xgboost.__version__ != '$WANT')" 2>/dev/null
}

install_wheel() {
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/xgb-site "$1"
  export PYTHONPATH=/tmp/xgb-site${PYTHONPATH:+:$PYTHONPATH}
}

if ! have_xgb; then
  shopt -s nullglob
  wheels=(${XGB_WHEEL:-} .whl/xgboost-$WANT-*.whl)
  parts=(.whl/xgb-p*/xgboost-$WANT-*.whl.part-*)
  if ((${#wheels[@]})); then
    install_wheel "${wheels[0]}"
  elif ((${#parts[@]})); then
    stash=/tmp/xgb-parts
    mkdir -p "$stash"
    sums=(.whl/xgb-p*/SHA256SUMS)
    cp "${parts[@]}" "${sums[0]}" "$stash/"
    read -r sum base < "$stash/SHA256SUMS"
    need=$(awk '/^parts/ {print $2}' "$stash/SHA256SUMS")
    got=("$stash/$base".part-*)
    if ((${#got[@]} < need)); then
      echo "have ${#got[@]}/$need wheel parts in $stash; call again (on the warm machine) with the next part"
      exit 3
    fi
    cat "${got[@]}" > "/tmp/$base"
    echo "$sum  /tmp/$base" | sha256sum -c --quiet
    install_wheel "/tmp/$base"
  else
    "$PY" -m pip install -q "xgboost==$WANT" || true
  fi
  if ! have_xgb; then
    echo "xgboost $WANT is not importable; see the header of $0 for how to bring the wheel"
    exit 2
  fi
fi

nvidia-smi -L 2>/dev/null || echo "(nvidia-smi lists no GPU)"

PYTHONUNBUFFERED=1 "$PY" - <<'EOF'
import importlib.util, json, logging, os, sys, time
import numpy as np

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
# Load artstyle/boosting.py by path: it needs only numpy and xgboost, not the whole package.
spec = importlib.util.spec_from_file_location("artstyle_boosting", "src/artstyle/boosting.py")
boosting = importlib.util.module_from_spec(spec)
spec.loader.exec_module(boosting)
import xgboost as xgb

n, d, k = (int(os.environ.get(v, dflt)) for v, dflt in (("N", 20000), ("D", 512), ("K", 13)))
rounds = int(os.environ.get("ROUNDS", 60))
info_build = xgb.build_info()
print(f"xgboost {xgb.__version__} from {os.path.dirname(xgb.__file__)}; USE_CUDA="
      f"{info_build.get('USE_CUDA')} CUDA_VERSION={info_build.get('CUDA_VERSION')}")

rng = np.random.default_rng(0)
W = rng.normal(size=(d, k)).astype(np.float32)
def make(m):
    X = np.maximum(rng.normal(size=(m, d)), 0).astype(np.float32)  # ReLU-like embeddings
    y = np.argmax(X @ W + rng.normal(scale=2.0, size=(m, k)), axis=1)
    return X, y
X_tr, y_tr = make(n); X_va, y_va = make(n // 5)
common = dict(n_classes=k, seed=0, n_estimators=rounds, max_depth=6, learning_rate=0.3,
              subsample=0.8, colsample_bytree=0.8, early_stopping_rounds=10)

t = time.perf_counter(); gpu_seen = boosting.xgboost_sees_gpu()
probe_s = time.perf_counter() - t
device = boosting.select_device("auto")
print(f"probe: XGBoost sees a GPU: {gpu_seen} ({probe_s:.2f} s); select_device('auto') -> {device}")
model, info = boosting.fit_booster(X_tr, y_tr, X_va, y_va, device=device, **common)
acc = float((model.predict_proba(X_va).argmax(1) == y_va).mean())
result = {"selected_device": device, "ran_on": info["device"], "fit_seconds": info["fit_seconds"],
          "n_rounds": info["n_rounds"], "best_iteration": info["best_iteration"],
          "val_accuracy": round(acc, 4), "shape": [n, d, k], "probe_seconds": round(probe_s, 3)}
if os.environ.get("COMPARE_CPU", "1") == "1":
    cpu_model, cpu_info = boosting.fit_booster(X_tr, y_tr, X_va, y_va, device="cpu", **common)
    cpu_acc = float((cpu_model.predict_proba(X_va).argmax(1) == y_va).mean())
    agree = float((cpu_model.predict(X_va) == model.predict(X_va)).mean())
    result.update(cpu_fit_seconds=cpu_info["fit_seconds"], cpu_n_rounds=cpu_info["n_rounds"],
                  cpu_val_accuracy=round(cpu_acc, 4), prediction_agreement=round(agree, 4))
print("DEVICE THAT RAN:", info["device"])
print(json.dumps(result, indent=1))
if os.environ.get("OUT"):
    with open(os.path.join(os.environ["OUT"], "gpu_xgboost_check.json"), "w") as fh:
        json.dump(result, fh, indent=1)
if os.environ.get("REQUIRE_GPU", "1") == "1" and not info["device"].startswith("cuda"):
    print("FAIL: the fit did not run on a CUDA device", file=sys.stderr)
    sys.exit(1)
EOF
