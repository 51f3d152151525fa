#!/usr/bin/env bash
# Packs what gpu_sweeps.sh needs on a GPU machine without network into two
# git-ignored folders: .devdata/data.tgz (the raw files of the study's
# datasets from DATA_ROOT, laid out as in ddl_gnn/data/README.md; about
# 17 MB compressed) and .whl/ (ogb 1.3.6 and its two pure-Python needs, for
# an image that has torch and PyG but not ogb), plus .devdata/checkpoints.tgz:
# the local runs cut off mid-way (checkpoints without a record, at most
# 30 MiB), which gpu_sweeps.sh resumes first.
#   study/tools/gpu_pack.sh [DATA_ROOT]     (default: $DDL_GNN_DATA)
# then, on the GPU machine with .devdata and .whl copied beside the code:
#   bash study/tools/gpu_sweeps.sh .devdata/data.tgz OUT SECONDS
set -euo pipefail
SRC=${1:-${DDL_GNN_DATA:?give the data root or set DDL_GNN_DATA}}
cd "$(dirname "$0")/../.."
grep -qx '/.devdata/' .git/info/exclude 2>/dev/null || \
    printf '/.devdata/\n/.whl/\n' >> .git/info/exclude
mkdir -p .devdata .whl
# SHA256SUMS (optional) lets the loaders check the files before processing
members=(planetoid/Cora/raw planetoid/CiteSeer/raw geom_gcn heterophilous
         ogb/ogbg_molbace ogb/ogbg_molbbbp ogb/ogbg_molhiv ogb/ogbl_ddi lrgb)
[ -f "$SRC/SHA256SUMS" ] && members+=(SHA256SUMS)
tar czf .devdata/data.tgz -C "$SRC" "${members[@]}"
${PYTHON:-python} -m pip download -q --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 -d .whl \
    ogb==1.3.6 outdated==0.2.2 littleutils==0.2.4
rm -f .devdata/checkpoints.tgz
${PYTHON:-python} study/tools/pack_checkpoints.py .devdata/checkpoints.tgz \
    --limit-mib 30
ls -la .devdata .whl
