#!/usr/bin/env bash
# One lease of a lent GPU machine, prepared to fit its time budget:
#   1. tests/test_cuda.py (GPU == CPU oracle: op gradients, every family,
#      checkpointing, a training run);
#   2. the perf table of benchmarks/perf.py on the GPU (issue 5), alone on
#      the machine so its timings are not disturbed;
#   3. campaign sweeps (issue 6) as N independent `ddl-gnn sweep --shard k/N
#      --device cuda` processes writing the same result folders (records are
#      appended under a file lock; a run key is never written twice), each
#      walking the configs in priority order, until the deadline.
# Everything lands in OUT: log.txt, pytest_cuda.txt, profile_gpu.md
# (benchmarks/profile_layer.py: kernel times of res vs delta), perf_gpu.json,
# perf_compile_gpu.json (torch.compile vs eager),
# campaign.tgz (every benchmarks/results/*/results.jsonl, refreshed every
# 30 s so a killed lease still returns the finished runs) and
# checkpoints.tgz (the runs in flight, checkpointed every 60 s; at most
# 15 MiB, most-trained first: benchmarks/pack_checkpoints.py; with
# SKIP_PERF=1 also checkpoints.2.tgz and checkpoints.3.tgz). Locally the
# records are merged by run key and the checkpoints adopted
# (benchmarks/merge_records.py); benchmarks/gpu_pack.sh puts the local
# unfinished runs into .devdata/checkpoints.tgz, which the next lease
# unpacks first, so a run longer than a lease spans leases.
#
# Usage: benchmarks/gpu_campaign.sh DATA_TGZ OUT SECONDS [WORKERS]
#   DATA_TGZ: tarball of the dataset raw files laid out as ../shared/data
#   SECONDS:  wall-clock budget of the whole script (sweeps stop then)
set -u
#   DEVICE=cpu SKIP_PERF=1 (environment) dry-runs the script on a CPU;
#   SKIP_PERF=1 alone gives the lease to the sweeps (the CUDA tests then
#   run beside them);
#   CONFIGS="a b" picks the sweep configs; DEPTHS_<config>="4,16" limits a
#   config to those depths (run keys do not change, so the cells merge
#   with the config's other records); MPS=1 starts the CUDA MPS daemon
#   so the shards' kernels share the GPU instead of time-slicing it (falls
#   back to plain contexts if a CUDA call fails under it).
DATA_TGZ=$1; OUT=$2; BUDGET=$3; WORKERS=${4:-14}; DEVICE=${DEVICE:-cuda}
T0=$(date +%s); DEADLINE=$((T0 + BUDGET))
cd "$(dirname "$0")/.."
mkdir -p "$OUT" /tmp/ddl_logs && rm -f /tmp/ddl_logs/done_*
exec > >(tee -a "$OUT/log.txt") 2>&1
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1
export DDL_GNN_OFFLINE=1 DDL_GNN_DATA=/tmp/ddl_data
PY=${PYTHON:-python3}
stamp() { echo "[$(( $(date +%s) - T0 )) s] $*"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
$PY -c "import torch, torch_geometric as g; print('torch', torch.__version__,
'pyg', g.__version__, torch.cuda.is_available() and
torch.cuda.get_device_name())" || exit 1
mkdir -p "$DDL_GNN_DATA" && tar xzf "$DATA_TGZ" -C "$DDL_GNN_DATA"
CKPTS=$(dirname "$DATA_TGZ")/checkpoints.tgz    # runs cut off earlier
[ -f "$CKPTS" ] && tar xzf "$CKPTS" && stamp "resuming: $(tar tzf "$CKPTS" | wc -l) checkpoints"
if ls .whl/*.whl >/dev/null 2>&1; then  # ogb (benchmarks/gpu_pack.sh)
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --target /tmp/ddl_site .whl/*.whl && export PYTHONPATH=$PYTHONPATH:/tmp/ddl_site
fi

# Order (session 5): what the 2-core CPU cannot finish first (Peptides-func
# and ogbg-molhiv take ~1 h per run there, Tolokers L = 32 ~30 min), then
# the seeds still missing from the CPU-sized tables.
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

# Datasets are processed once here, before any shard enters their config
# (shards starting together would race on the loaders' processed/ folders):
# the slow ones (Peptides-func raw files + processing, ogbg-molhiv) each in
# its own process from the start, the others in one chain in priority order.
# done_<config> marks a finished preparation (the log says whether it
# failed; then its sweep fails with the loader's message). A shard
# takes the first config of the priority order not yet entered whose
# preparation is done; for PREP_WAIT seconds (default 90: Peptides-func
# takes ~20 s on one core) it waits for a higher-priority config instead of
# passing it by, since a shard that enters a later config stays there.
SLOW_PREP="peptides_func ogbg_molhiv"; PREP_WAIT=${PREP_WAIT:-90}
prep() {
    if [ "$1" = peptides_func ] && [ -f "$DDL_GNN_DATA/verify_data.py" ]; then
        $PY "$DDL_GNN_DATA/verify_data.py" --root "$DDL_GNN_DATA" \
            --prepare "$DDL_GNN_DATA"  # Peptides-func raw files
    fi
    st=prepared; $PY -c "
import tomllib; from ddl_gnn.data import load_dataset
spec = tomllib.load(open('benchmarks/configs/$1.toml', 'rb'))
print(load_dataset(spec['dataset']))" || st=FAILED
    touch "/tmp/ddl_logs/done_$1"; echo "[$(( $(date +%s) - T0 )) s] $st $1"
}
for c in $SLOW_PREP; do
    case " $CONFIGS " in *" $c "*) prep "$c" > "/tmp/ddl_logs/prep_$c.txt" 2>&1 &;; esac
done
(for c in $CONFIGS; do case " $SLOW_PREP " in *" $c "*) ;; *) prep "$c";; esac
 done) > /tmp/ddl_logs/prep.txt 2>&1 &

cuda_tests() {
    stamp "tests/test_cuda.py"
    timeout 150 $PY -m pytest -q -p no:cacheprovider tests/test_cuda.py \
        > "$OUT/pytest_cuda.txt" 2>&1
    stamp "pytest rc=$? $(tail -n 1 "$OUT/pytest_cuda.txt")"
}
# Without the perf table nothing needs a quiet machine: the tests run beside
# the sweeps instead of before them.
if [ -n "${SKIP_PERF:-}" ]; then cuda_tests & TESTS=$!; else cuda_tests; TESTS=; fi

stamp "step profile (arxiv size, depth 8)"
[ -n "${SKIP_PERF:-}" ] || timeout 90 $PY benchmarks/profile_layer.py \
    --device "$DEVICE" --nodes 169343 --depth 8 --out "$OUT/profile_gpu.md" \
    > /tmp/ddl_logs/profile.txt 2>&1
stamp "profile rc=$?"

stamp "perf table (arxiv-size 64/16, then 256 checkpointed, then cora-size)"
PERF="$PY benchmarks/perf.py --device cuda --adj csr --ckpt-from 256 \
--big-steps 6 --steps 10 --rounds 2 --out $OUT/perf_gpu.json"
[ -n "${SKIP_PERF:-}" ] || timeout 200 bash -c "$PERF --graphs arxiv --depths 64 16 && \
$PERF --graphs arxiv --depths 256 --models res delta delta_dv4 plain \
res+ gcnii && $PERF --graphs cora --depths 16 64 256" \
    > /tmp/ddl_logs/perf.txt 2>&1
stamp "perf rc=$?"; grep -E "step|failed" /tmp/ddl_logs/perf.txt | head -60
stamp "torch.compile vs eager (arxiv size, depth 16)"
[ -n "${SKIP_PERF:-}" ] || timeout 150 $PY benchmarks/perf.py --compile \
    --device "$DEVICE" --adj csr --graphs arxiv --depths 16 \
    --models res delta delta_nonorm --steps 5 \
    --save "$OUT/perf_compile_gpu.json" > /tmp/ddl_logs/compile.txt 2>&1
stamp "compile rc=$?"; grep -E "eager" /tmp/ddl_logs/compile.txt

# At most 8 files come back from a lease, 16 MiB each: with the perf files
# (3) there is room for one checkpoint part, without them for three.
CKPT_PARTS=1; [ -n "${SKIP_PERF:-}" ] && CKPT_PARTS=3
snapshot() {
    tar czf "$OUT/campaign.tgz.tmp" benchmarks/results/*/results.jsonl \
        2>/dev/null && mv "$OUT/campaign.tgz.tmp" "$OUT/campaign.tgz"
    $PY benchmarks/pack_checkpoints.py "$OUT/checkpoints.tgz" \
        --limit-mib 15 --parts "$CKPT_PARTS" > /tmp/ddl_logs/pack.txt 2>&1
}
stamp "campaign: $WORKERS shards until +$BUDGET s"
PIDS=""
for k in $(seq 0 $((WORKERS - 1))); do
    (entered=" "
     while [ "$(date +%s)" -lt "$DEADLINE" ]; do
         pick=""; pending=0
         for c in $CONFIGS; do      # first prepared config not yet entered
             case "$entered" in *" $c "*) continue;; esac
             pending=1
             [ -e "/tmp/ddl_logs/done_$c" ] && { pick=$c; break; }
             [ "$(date +%s)" -lt $((T0 + PREP_WAIT)) ] && break  # wait for it
         done
         [ "$pending" = 0 ] && break
         [ -z "$pick" ] && { sleep 2; continue; }
         entered="$entered$pick "
         echo "== $pick"
         dv="DEPTHS_$pick"
         $PY -m ddl_gnn sweep --config "benchmarks/configs/$pick.toml" \
             ${!dv:+--depths ${!dv}} \
             --out "benchmarks/results/$pick" --shard "$k/$WORKERS" \
             --device "$DEVICE" --no-report --checkpoint-every 60
     done) > "/tmp/ddl_logs/w$k.txt" 2>&1 &
    PIDS="$PIDS $!"
done
while [ "$(date +%s)" -lt "$DEADLINE" ]; do
    sleep 30; snapshot
    running=0; for p in $PIDS; do kill -0 "$p" 2>/dev/null && running=1; done
    stamp "$(nvidia-smi --query-gpu=utilization.gpu,memory.used \
        --format=csv,noheader) records: $(cat benchmarks/results/*/results.jsonl \
        | wc -l)"
    [ "$running" = 0 ] && break
done
pkill -f "ddl_gnn sweep" ; sleep 2; snapshot
for k in $(seq 0 $((WORKERS - 1))); do
    echo "-- w$k: $(grep -c '^== ' /tmp/ddl_logs/w$k.txt) configs entered"
    grep -E "Error|error|Traceback" /tmp/ddl_logs/w$k.txt | head -5
done
[ -n "$TESTS" ] && wait "$TESTS"
tail -n 12 /tmp/ddl_logs/prep*.txt
stamp "done"
