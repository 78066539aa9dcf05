#!/bin/bash
# Builds the GPU check's folder KIT (about 58 MiB; default PROJECT/.gpu, git-excluded there): wheels of nnU-Net and
# the dependencies a bare CUDA image lacks, SimpleITK (xz), the FastGeodis source, this checkout's HEAD, the atlas
# cohort of SEED (default 0) as two raw nnU-Net datasets, and the scripts.
#   SEED=0 bash benchmarks/gpu_check/make.sh [PROJECT]      (PROJECT: a checkout with scripts/setup.sh run in it; default .)
# Then, on the CUDA machine, from KIT's parent: OUT=<results> bash .gpu/bin/run.sh  (needs pkg proj data bin of KIT)
set -e
K=$(cd "$(dirname "$0")" && pwd); P=$(cd "${1:-.}" && pwd); V=$P/.venv; G=${KIT:-$P/.gpu}; SEED=${SEED:-0}
[ -x $V/bin/python ] || { echo "no $V: run scripts/setup.sh first"; exit 1; }
mkdir -p $G/pkg/whl $G/pkg/src $G/bin
if [ "$G" = "$P/.gpu" ]; then x=$(cd $P && realpath -m "$(git rev-parse --git-path info/exclude)")
  mkdir -p "$(dirname $x)"; grep -qs "^/.gpu/" $x || echo "/.gpu/" >> $x; fi
PLAT="--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64"
for p in nnunetv2==2.8.1 dynamic_network_architectures==0.4.4 batchgeneratorsv2==0.3.6 graphviz==0.21 nibabel==5.4.2 \
         yacs==0.1.8 blosc2==4.14.1 ndindex==1.10.1 numexpr==2.14.2 connected-components-3d==4.1.1; do
  $V/bin/python -m pip download -q --no-deps $PLAT -d $G/pkg/whl $p; done
$V/bin/pip wheel -q --no-deps -w $G/pkg/whl acvl_utils==0.2.6 batchgenerators==0.25.5
rm -f $G/pkg/whl/nnunetv2_paseg-*.whl; (cd $P && $V/bin/pip wheel -q --no-deps --no-build-isolation -w $G/pkg/whl .)
[ -f $G/pkg/src/FastGeodis-1.0.5.tar.gz ] || $V/bin/pip download -q --no-deps --no-binary FastGeodis --no-build-isolation -d $G/pkg/src FastGeodis==1.0.5
[ -f $G/pkg/sitk.tar.xz ] || { d=$(mktemp -d); $V/bin/python -m pip download -q --no-deps $PLAT -d $d simpleitk==2.5.7
  (cd $d && unzip -q simpleitk-*.whl && rm simpleitk-*.whl && tar cf - . | xz -9 -T2 > $G/pkg/sitk.tar.xz); }
rm -rf $G/proj && mkdir $G/proj && (cd $P && git archive HEAD) | tar x -C $G/proj && rm -rf $G/proj/docs $G/proj/benchmarks/results
C=Dataset$((820 + 2 * SEED))_AtlasVentriclesSeed${SEED}Clicks; F=Dataset$((821 + 2 * SEED))_AtlasVentriclesSeed${SEED}Full
[ -f $G/acc/nnUNet_raw/$F/dataset.json ] || SEED=$SEED GPU_KIT=$G P=$P $V/bin/python $K/prep.py
rm -rf $G/data && mkdir -p $G/data/$F $G/data/cohort/train
cp -r $G/acc/nnUNet_raw/$C $G/data/ && cp -r $G/acc/nnUNet_raw/$F/{labelsTr,dataset.json} $G/data/$F/
cp -r $G/acc/cohort_seed$SEED/train/clicks $G/data/cohort/train/
cp $K/run.sh $K/crf_cuda.py $K/score.py $G/bin/ && rm -rf $G/bin/trainers && cp -r $K/trainers $G/bin/ && echo $SEED > $G/bin/seed
(cd $P && git rev-parse --short HEAD) > $G/bin/commit
du -sh $G/pkg $G/proj $G/data $G/bin; du -sc $G/pkg $G/proj $G/data $G/bin | tail -1
