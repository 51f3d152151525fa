#!/usr/bin/env bash
# Packs what benchmarks/gpu_campaign.sh needs on a lent GPU machine into
# two git-ignored folders (the device tool's `carry`): .devdata/data.tgz
# (raw dataset files from ../shared/data, ~17 MB compressed; the machine has
# no network) and .whl/ (ogb 1.3.6 and its two pure-Python needs, which the
# device image lacks; torch, PyG, sklearn and pandas are there), plus
# .devdata/checkpoints.tgz: the local runs cut off mid-way (checkpoints
# without a record, at most 30 MiB), which gpu_campaign.sh resumes first.
#   benchmarks/gpu_pack.sh [SHARED_DATA]
# then: run(command="bash benchmarks/gpu_campaign.sh .devdata/data.tgz $OUT
#       SECONDS", carry=[".devdata", ".whl"]).
set -euo pipefail
SRC=${1:-../shared/data}
cd "$(dirname "$0")/.."
grep -qx '/.devdata/' .git/info/exclude 2>/dev/null || \
    printf '/.devdata/\n/.whl/\n' >> .git/info/exclude
mkdir -p .devdata .whl
tar czf .devdata/data.tgz -C "$SRC" planetoid/Cora/raw planetoid/CiteSeer/raw \
    geom_gcn heterophilous ogb/ogbg_molbace ogb/ogbg_molbbbp ogb/ogbg_molhiv \
    ogb/ogbl_ddi \
    lrgb verify_data.py PROVENANCE.md SHA256SUMS
${PYTHON:-python} -m pip download -q --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 -d .whl \
    ogb==1.3.6 outdated==0.2.2 littleutils==0.2.4
rm -f .devdata/checkpoints.tgz
${PYTHON:-python} benchmarks/pack_checkpoints.py .devdata/checkpoints.tgz \
    --limit-mib 30
ls -la .devdata .whl
