#!/bin/bash
# GPU check of nnunetv2-paseg, one command of about 8 min on a CUDA machine (Python 3.12, torch with CUDA, nvcc; no
# internet). make.sh builds its folder KIT (~58 MiB; default PROJECT/.gpu); on the GPU machine, from KIT's parent:
#   OUT=<results folder> bash .gpu/bin/run.sh
# 1. installs nnU-Net and the project into /tmp/site (fails fast on an import error);
# 2. plans/preprocesses the cohort seed's two datasets (clicks 820 + 2 SEED, full labels +1) and adds 3d_small;
# 3. times train_step on CUDA: 3d_big (128^3, nnU-Net's 6-stage network) and 3d_small (bench_trainer_overhead);
# 4. times the mCRF on CUDA (bench_crf.measure): dense vs ours, fp32/AMP, 128^3 and 160^3;
# 5. trains full / pCE / PASeg on 3d_small for a budget the step times allow (up to EMAX x ITS), time-boxed,
#    beside a torch.compile smoke run of PASeg at 3d_fullres and a FastGeodis CUDA build;
# 6. predicts the 12 test cases, scores them (the benchmark's own scoring), CPU vs CUDA pseudo-labels, CUDA tests.
# MODE=budget skips 3d_big, the mCRF, compile and FastGeodis (steps 3, 4 and the extras of 5, 6) and gives stage 1
# the time (ends by t+500 s; epochs of 250 iterations, at most 400): the longest pCE / PASeg / full runs one call allows.
# END / X_END (default 440 / 560): seconds after the start by which training / the GPU-only extras are cut off,
# for a shorter call.
# DRY=1 DEV=cpu NP=2 W=/tmp/wdry on a CPU machine, with PATH and PYTHONPATH as after step 1, runs steps 2, 5 and 6 on
# a tiny budget: try it there before spending GPU time.
export PYTHONUNBUFFERED=1
G=$(cd "$(dirname "$0")/.." && pwd); S=/tmp/site; W=${W:-/tmp/w}; T0=$(date +%s)
DEV=${DEV:-cuda}; TRAIN_S=${TRAIN_S:-290}; ITS=${ITS:-50}; EMAX=${EMAX:-96}; NP=${NP:-12}; MODE=${MODE:-check}
END=${END:-440}; X_END=${X_END:-560}; [ "$MODE" = budget ] && { END=500; TRAIN_S=460; EMAX=${EMAX_BUDGET:-400}; ITS=${ITS_BUDGET:-250}; }
EXTRAS=; [ -z "$DRY" ] && [ "$MODE" = check ] && EXTRAS=1   # the GPU-only checks beside the trainings
OUT=${OUT:-$PWD/gpu_results}; mkdir -p $OUT
SEED=$(cat $G/bin/seed); DC=$((820 + 2 * SEED)); DF=$((DC + 1))
el() { echo "[t+$(( $(date +%s) - T0 ))s] $*"; }
now() { echo $(( $(date +%s) - T0 )); }
# end PID by T0+SECONDS at the latest
until_t() { while kill -0 $1 2>/dev/null && [ $(now) -lt $2 ]; do sleep 2; done; kill $1 2>/dev/null; wait $1 2>/dev/null; }
exec > >(tee -a $OUT/main.log) 2>&1
echo "commit $(cat $G/bin/commit 2>/dev/null)"
if [ -z "$DRY" ]; then
  el "install"
  mkdir -p $S && tar xJf $G/pkg/sitk.tar.xz -C $S
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target $S $G/pkg/whl/*.whl 2>&1 \
    | grep -v -i warn | tail -3
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader; nproc
  export PYTHONPATH=$S:$G/proj PATH=$S/bin:$PATH
fi
export nnUNet_compile=f nnUNet_extTrainer=$G/bin/trainers
python3 -c "
import torch, nnunetv2, SimpleITK, blosc2, nnunetv2_paseg, nnunetv2_paseg.trainers
from benchmarks import accuracy, bench_trainer_overhead, bench_crf
print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available(), 'nnunetv2_paseg', nnunetv2_paseg.__file__)
" || { el "IMPORT FAILED"; exit 3; }
which nnUNetv2_train paseg_convert || exit 3

if [ -n "$EXTRAS" ]; then  # FastGeodis with CUDA kernels (the README's GPU path), built in the background
  ( mkdir -p /tmp/fg && tar xzf $G/pkg/src/FastGeodis-1.0.5.tar.gz -C /tmp/fg && cd /tmp/fg/FastGeodis-1.0.5 && \
    export CUDA_HOME=${CUDA_HOME:-$(dirname $(dirname $(which nvcc)))} && s=$(date +%s) && \
    FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST=9.0 MAX_JOBS=2 nice -n 19 python3 -m pip install -q --no-deps \
      --no-build-isolation --no-cache-dir --target /tmp/fgsite . > $OUT/fastgeodis_build.log 2>&1
    echo "rc=$? build_s=$(( $(date +%s) - s ))" >> $OUT/fastgeodis_build.log ) &
  FGB=$!
fi

el "datasets"
export nnUNet_raw=$W/raw nnUNet_preprocessed=$W/pre nnUNet_results=$W/res; mkdir -p $W/raw $W/pre $W/res $W/logs
C=Dataset${DC}_AtlasVentriclesSeed${SEED}Clicks; F=Dataset${DF}_AtlasVentriclesSeed${SEED}Full
if [ ! -f $W/pre/$F/nnUNetPlans.json ]; then
  cp -r $G/data/$C $W/raw/ && mkdir -p $W/raw/$F && cp -r $G/data/$F/* $W/raw/$F/
  ln -sfn $W/raw/$C/imagesTr $W/raw/$F/imagesTr
  nnUNetv2_plan_and_preprocess -d $DC $DF -c 3d_fullres -np $NP > $W/logs/preprocess.log 2>&1 \
    || { tail -30 $W/logs/preprocess.log; exit 4; }
  for d in $DC $DF; do paseg_add_small_plans -d $d --max_features 64 >> $W/logs/preprocess.log 2>&1 || exit 4; done
fi
C=$C python3 - <<'PY'
# 3d_big: nnU-Net's usual 3d_fullres at a BraTS-like patch (128^3, 6 stages, 32..320 features) on the same data,
# padded to the patch by nnU-Net's loader: the step cost of a full-size network (the cohort's own is 32x72x56).
import json, os
f = os.environ["nnUNet_preprocessed"] + "/" + os.environ["C"] + "/nnUNetPlans.json"
p = json.load(open(f))
arch = json.loads(json.dumps(p["configurations"]["3d_fullres"]["architecture"]))
n = 6
arch["arch_kwargs"].update(n_stages=n, features_per_stage=[min(32 * 2 ** i, 320) for i in range(n)],
                           kernel_sizes=[[3, 3, 3]] * n, strides=[[1, 1, 1]] + [[2, 2, 2]] * (n - 1),
                           n_conv_per_stage=[2] * n, n_conv_per_stage_decoder=[2] * (n - 1))
p["configurations"]["3d_big"] = {"inherits_from": "3d_fullres", "patch_size": [128, 128, 128], "batch_size": 2,
                                 "architecture": arch}
json.dump(p, open(f, "w"), indent=1)
for c in ("3d_fullres", "3d_small", "3d_big"):
    cfg = p["configurations"][c]
    print(c, "patch", cfg.get("patch_size"), "batch", cfg.get("batch_size"), "spacing", cfg.get("spacing"))
PY

if [ -n "$DRY" ]; then
  timeout 300 python3 $G/proj/benchmarks/bench_trainer_overhead.py -d $DC -c 3d_small -device $DEV \
    -tr nnUNetTrainer nnUNetTrainerPASeg --iterations 2 --warmup 1 --json $OUT/trainer_small.json 2>&1 | grep -v -i warn | tail -4
elif [ -n "$EXTRAS" ]; then
  el "trainer steps on cuda (no compile): 3d_big (128^3, nnU-Net's 6-stage network)"
  timeout 140 python3 $G/proj/benchmarks/bench_trainer_overhead.py -d $DC -c 3d_big -device cuda \
    -tr nnUNetTrainer nnUNetTrainerPASeg nnUNetTrainerPASegAux nnUNetTrainerSCM --iterations 10 --warmup 3 \
    --json $OUT/trainer_big.json 2>&1 | grep -v -i warn | tail -8
  el "trainer steps on cuda: 3d_small"
  timeout 70 python3 $G/proj/benchmarks/bench_trainer_overhead.py -d $DC -c 3d_small -device cuda \
    -tr nnUNetTrainer nnUNetTrainerPASeg nnUNetTrainerSCM --iterations 20 --warmup 5 \
    --json $OUT/trainer_small.json 2>&1 | grep -v -i warn | tail -6
  el "mCRF on cuda"
  timeout 60 python3 $G/bin/crf_cuda.py $G/proj $OUT/crf.json 2>&1 | tail -8
else
  el "trainer steps on cuda: 3d_small"
  timeout 70 python3 $G/proj/benchmarks/bench_trainer_overhead.py -d $DC -c 3d_small -device cuda \
    -tr nnUNetTrainer nnUNetTrainerPASeg --iterations 20 --warmup 5 \
    --json $OUT/trainer_small.json 2>&1 | grep -v -i warn | tail -5
fi

TS=$(( END - $(now) )); [ $TS -gt $TRAIN_S ] && TS=$TRAIN_S; [ $TS -lt 60 ] && TS=60
E=$(python3 - <<PY
import json, os
try:
    steps = json.load(open("$OUT/trainer_small.json"))["seconds_per_iteration"]["nnUNetTrainerPASeg"]
    sec = sum(steps) / len(steps)
except Exception:
    sec = None
if sec is None:
    print(24)
else:  # 3 trainings share the GPU; ~2 s per epoch for validation, plots and checkpoints
    print(max(12, min($EMAX, int(($TS - 40) / ($ITS * sec * 2.5 + 2)))))
PY
)
[ -n "$DRY" ] && { echo "calibrated epochs: $E"; E=1; ITS=2; }
el "stage 1 on 3d_small: $E epochs x $ITS iterations, 3 at a time (time box ${TS}s)${EXTRAS:+; compile smoke beside it}"
export PASEG_BUDGET_EPOCHS=$E PASEG_BUDGET_ITERATIONS=$ITS nnUNet_n_proc_DA=${DA:-4}
declare -A DS=([G_full]=$DF [G_pce]=$DC [G_paseg]=$DC)
PIDS=""
for tr in G_full G_pce G_paseg; do
  timeout -s INT -k 15 $TS nnUNetv2_train ${DS[$tr]} 3d_small all -tr $tr -device $DEV > $W/logs/train_$tr.log 2>&1 &
  PIDS="$PIDS $!"
done
if [ -n "$EXTRAS" ]; then
  ( export nnUNet_results=$W/cres nnUNet_compile=t PASEG_BUDGET_EPOCHS=2 PASEG_BUDGET_ITERATIONS=8 nnUNet_n_proc_DA=2
    s=$(date +%s); timeout -s INT -k 10 200 nnUNetv2_train $DC 3d_fullres all -tr nnUNetTrainerPASeg_rampFromStart_budget \
      > $W/logs/compile.log 2>&1; echo "compile smoke rc=$? s=$(( $(date +%s) - s ))" >> $W/logs/compile.log ) &
  CPID=$!
fi
wait $PIDS
el "predict"
PIDS=""
for tr in G_full G_pce G_paseg; do
  fd=$(ls -d $W/res/Dataset${DS[$tr]}_*/${tr}__nnUNetPlans__3d_small/fold_all 2>/dev/null)
  chk=checkpoint_final.pth; [ -f "$fd/$chk" ] || chk=checkpoint_latest.pth
  [ -f "$fd/$chk" ] || { echo "$tr: no checkpoint"; continue; }
  echo "$tr $chk epochs done: $(grep -cE 'Epoch time' $W/logs/train_$tr.log)" | tee -a $W/chk.txt
  nnUNetv2_predict -i $W/raw/$C/imagesTs -o $W/pred/$tr -d ${DS[$tr]} -c 3d_small -f all -tr $tr -chk $chk \
    -npp 2 -nps 2 -device $DEV > $W/logs/pred_$tr.log 2>&1 &
  PIDS="$PIDS $!"
done
if [ -n "$EXTRAS" ]; then
  ( for i in $(seq 45); do grep -q "^rc=" $OUT/fastgeodis_build.log 2>/dev/null && break; sleep 2; done
    tail -2 $OUT/fastgeodis_build.log
    export PYTHONPATH=/tmp/fgsite:$PYTHONPATH
    python3 -c "import torch, FastGeodis; x=torch.ones(1,1,4,4,4,device='cuda'); print('FastGeodis cuda ok', FastGeodis.generalised_geodesic3d(x, x, [1.,1.,1.], 1e10, 0.5, 1).shape)"
    for dev in cpu cuda; do
      s=$(date +%s.%N)
      timeout 45 paseg_convert -i $W/raw/$C/imagesTr -a $G/data/cohort/train/clicks -d 9$([ $dev = cpu ] && echo 01 || echo 02) \
        -n Conv$dev --classes lateral_ventricles --channel_names T1 -np 4 --device $dev > $W/logs/conv_$dev.log 2>&1
      echo "paseg_convert $dev rc=$? $(python3 -c "print(round($(date +%s.%N)-$s,1))") s"; tail -2 $W/logs/conv_$dev.log
    done
    python3 -c "
import SimpleITK as sitk, glob, numpy as np, os
r = os.environ['nnUNet_raw']; a = sorted(glob.glob(r + '/Dataset901_*/labelsTr/*')); b = sorted(glob.glob(r + '/Dataset902_*/labelsTr/*'))
g = [np.mean(sitk.GetArrayFromImage(sitk.ReadImage(x)) == sitk.GetArrayFromImage(sitk.ReadImage(y))) for x, y in zip(a, b)]
print('cpu vs cuda pseudo-labels: cases', len(g), 'voxel agreement min', min(g) if g else None)"
    cd $G/proj && timeout 60 python3 -m pytest -q -p no:cacheprovider tests/test_losses.py tests/test_geodesic.py tests/test_crf_triton.py -k "cuda or CUDA" 2>&1 | tail -3
  ) > $W/logs/fg_checks.log 2>&1 &
  FGC=$!
fi
wait $PIDS; cat $W/chk.txt
el "score"
python3 $G/bin/score.py $W/raw/$C/labelsTs $W/pred $OUT/accuracy.json
for tr in G_full G_pce G_paseg; do echo "-- $tr"; grep -E "Pseudo dice|ramp weight|Epoch time" $W/logs/train_$tr.log | tail -3 | cut -c1-160; done
if [ -n "$EXTRAS" ]; then
  until_t $FGC $X_END; cat $W/logs/fg_checks.log
  until_t $CPID $((X_END + 5)); echo "-- compile smoke"; grep -E -i "compil|error|rc=|Epoch time" $W/logs/compile.log | tail -8
fi
el "pack"
cd $W && tar czf $OUT/details.tgz logs chk.txt $(ls res/*/*/fold_all/progress.png res/*/*/fold_all/training_log_*.txt 2>/dev/null) 2>/dev/null
el "done"
