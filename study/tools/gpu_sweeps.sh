#!/usr/bin/env bash
# Study sweeps on a GPU machine with a fixed time budget and no network:
#   1. tests/test_cuda.py (GPU == CPU oracle), beside the sweeps;
#   2. WORKERS independent `ddl-gnn sweep --shard k/WORKERS --device cuda`
#      processes writing the same result folders (records are appended under
#      a file lock; a run key is never written twice), each walking the
#      configs in priority order, until the deadline.
# Everything lands in OUT: log.txt, pytest_cuda.txt, records.tgz (every
# study/results/*/results.jsonl, refreshed every 30 s so a machine taken
# back early still returns the finished runs) and checkpoints.tgz (the runs
# in flight, checkpointed every 60 s, most-trained first, at most PARTS
# files of 15 MiB: pack_checkpoints.py). Back home, merge_records.py merges
# the records by run key and adopts the checkpoints; gpu_pack.sh packs the
# local unfinished runs into .devdata/checkpoints.tgz, which this script
# unpacks first, so a run longer than one budget continues in the next.
#
# Usage: study/tools/gpu_sweeps.sh DATA_TGZ OUT SECONDS [WORKERS]
#   DATA_TGZ: the data root (ddl_gnn/data/README.md layout) as a tarball
#   SECONDS:  wall-clock budget of the whole script (sweeps stop then)
# Environment: DEVICE=cpu dry-runs the script on a CPU; CONFIGS="a b" picks
#   the configs (names in study/configs); DEPTHS_<config>="4,16" limits a
#   config to those depths (run keys do not change); MPS=1 starts the CUDA
#   MPS daemon so the shards' kernels share the GPU instead of time-slicing
#   it; PARTS (default 3) caps the checkpoint tarballs; WORK (default: a
#   fresh temporary folder) holds the data, logs and wheels.
set -u
DATA_TGZ=$1; OUT=$2; BUDGET=$3; WORKERS=${4:-14}; DEVICE=${DEVICE:-cuda}
T0=$(date +%s); DEADLINE=$((T0 + BUDGET))
cd "$(dirname "$0")/../.."
WORK=${WORK:-$(mktemp -d)}; LOGS=$WORK/logs
mkdir -p "$OUT" "$LOGS"
exec > >(tee -a "$OUT/log.txt") 2>&1
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
export DDL_GNN_OFFLINE=1 DDL_GNN_DATA=$WORK/data
PY=${PYTHON:-python3}
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
$PY -c "import torch, torch_geometric as g; print('torch', torch.__version__,
'pyg', g.__version__, torch.cuda.is_available() and
torch.cuda.get_device_name())" || exit 1
mkdir -p "$DDL_GNN_DATA" && tar xzf "$DATA_TGZ" -C "$DDL_GNN_DATA"
CKPTS=$(dirname "$DATA_TGZ")/checkpoints.tgz    # runs cut off earlier
[ -f "$CKPTS" ] && tar xzf "$CKPTS" && stamp "resuming: $(tar tzf "$CKPTS" | wc -l) checkpoints"
if ls .whl/*.whl >/dev/null 2>&1; then  # ogb (gpu_pack.sh)
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --target "$WORK/site" .whl/*.whl && export PYTHONPATH=$PYTHONPATH:$WORK/site
fi

# Priority: what a CPU cannot finish first (Peptides-func and ogbg-molhiv
# take about an hour per run on one core, Tolokers at L = 32 half an hour),
# then the seeds still missing from the smaller sets.
CONFIGS=${CONFIGS:-"peptides_func ogbg_molhiv hetero_tolokers ogbg_molbace \
ogbg_molbbbp hetero_squirrel hetero_actor hetero_minesweeper hetero_chameleon \
hetero_squirrel_filtered cora_normfeat citeseer_normfeat cora_delta_beta01 \
citeseer_delta_beta01 ablation_cora hetero_chameleon_filtered cora citeseer \
hetero_texas hetero_cornell hetero_wisconsin cora_deep ogbl_ddi"}
if [ -n "${MPS:-}" ]; then
    nvidia-cuda-mps-control -d && sleep 1
    if $PY -c "import torch; torch.ones(1, device='cuda').sum().item()"; then
        stamp "MPS daemon running"
    else
        echo quit | nvidia-cuda-mps-control; stamp "MPS failed: plain contexts"
    fi
fi

# Datasets are processed once, before any shard enters their config (shards
# starting together would race on the loaders' processed/ folders): the slow
# ones each in their own process from the start, the others in one chain in
# priority order. done_<config> marks a finished preparation (the log says
# whether it failed; then its sweep fails with the loader's message). A
# shard takes the first config of the priority order not yet entered whose
# preparation is done; for PREP_WAIT seconds it waits for a higher-priority
# config instead of passing it by, since a shard stays in a config it
# entered.
SLOW_PREP="peptides_func ogbg_molhiv"; PREP_WAIT=${PREP_WAIT:-90}
prep() {
    st=prepared; $PY -c "
import tomllib; from ddl_gnn.data import load_dataset
spec = tomllib.load(open('study/configs/$1.toml', 'rb'))
print(load_dataset(spec['dataset']))" || st=FAILED
    touch "$LOGS/done_$1"; stamp "$st $1"
}
for c in $SLOW_PREP; do
    case " $CONFIGS " in *" $c "*) prep "$c" > "$LOGS/prep_$c.txt" 2>&1 &;; esac
done
(for c in $CONFIGS; do case " $SLOW_PREP " in *" $c "*) ;; *) prep "$c";; esac
 done) > "$LOGS/prep.txt" 2>&1 &

( timeout 150 $PY -m pytest -q -p no:cacheprovider tests/test_cuda.py \
      > "$OUT/pytest_cuda.txt" 2>&1
  stamp "tests/test_cuda.py rc=$? $(tail -n 1 "$OUT/pytest_cuda.txt")" ) &
TESTS=$!

snapshot() {
    tar czf "$OUT/records.tgz.tmp" study/results/*/results.jsonl \
        2>/dev/null && mv "$OUT/records.tgz.tmp" "$OUT/records.tgz"
    $PY study/tools/pack_checkpoints.py "$OUT/checkpoints.tgz" \
        --limit-mib 15 --parts "${PARTS:-3}" > "$LOGS/pack.txt" 2>&1
}
stamp "$WORKERS shards until +$BUDGET s"
PIDS=""
for k in $(seq 0 $((WORKERS - 1))); do
    (entered=" "
     while [ "$(date +%s)" -lt "$DEADLINE" ]; do
         pick=""; pending=0
         for c in $CONFIGS; do      # first prepared config not yet entered
             case "$entered" in *" $c "*) continue;; esac
             pending=1
             [ -e "$LOGS/done_$c" ] && { pick=$c; break; }
             [ "$(date +%s)" -lt $((T0 + PREP_WAIT)) ] && break  # wait for it
         done
         [ "$pending" = 0 ] && break
         [ -z "$pick" ] && { sleep 2; continue; }
         entered="$entered$pick "
         echo "== $pick"
         dv="DEPTHS_$pick"
         # the sweep stops itself at the deadline (its run in flight keeps
         # its last checkpoint): no process is left to hunt down by name
         left=$((DEADLINE - $(date +%s))); [ "$left" -gt 0 ] || break
         timeout "$left" \
             $PY -m ddl_gnn sweep --config "study/configs/$pick.toml" \
             ${!dv:+--depths ${!dv}} \
             --out "study/results/$pick" --shard "$k/$WORKERS" \
             --device "$DEVICE" --no-report --checkpoint-every 60
     done) > "$LOGS/w$k.txt" 2>&1 &
    PIDS="$PIDS $!"
done
while [ "$(date +%s)" -lt "$DEADLINE" ]; do
    sleep 30; snapshot
    running=0; for p in $PIDS; do kill -0 "$p" 2>/dev/null && running=1; done
    stamp "$(nvidia-smi --query-gpu=utilization.gpu,memory.used \
        --format=csv,noheader) records: $(cat study/results/*/results.jsonl \
        2>/dev/null | wc -l)"
    [ "$running" = 0 ] && break
done
wait $PIDS; snapshot
for k in $(seq 0 $((WORKERS - 1))); do
    echo "-- w$k: $(grep -c '^== ' "$LOGS/w$k.txt") configs entered"
    grep -E "Error|error|Traceback" "$LOGS/w$k.txt" | head -5
done
wait "$TESTS"
tail -n 12 "$LOGS"/prep*.txt
stamp "done"
