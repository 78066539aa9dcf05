"""Add a small, CPU-friendly configuration to an nnU-Net plans file.

nnU-Net's planner sizes the network for a GPU. For CPU runs (tests, the demo, quick experiments) this
adds a configuration that inherits everything from a planned one (preprocessed data included, so
nothing is preprocessed again) and only caps the feature widths and the batch size:

    paseg_add_small_plans -d 501 -n 3d_small --max_features 32
    nnUNetv2_train 501 3d_small 0 -tr nnUNetTrainerPASeg -device cpu
"""
from __future__ import annotations

import argparse
import json
import os
from copy import deepcopy
from pathlib import Path


def add_small_configuration(plans_file: str | os.PathLike, name: str = "3d_small", base: str = "3d_fullres",
                            max_features: int = 32, min_features: int = 4, batch_size: int | None = 2) -> dict:
    """Add configuration ``name`` to ``plans_file`` (in place) and return it.

    The new configuration inherits from ``base``; its ``features_per_stage`` are the base's widths
    scaled so that the widest stage has ``max_features`` (never below ``min_features``), and its
    batch size is ``batch_size`` (None keeps the base's). Stages, kernels, strides and the patch size
    are unchanged, so the network still fits the planned patch.
    """
    plans_file = Path(plans_file)
    plans = json.loads(plans_file.read_text())
    configurations = plans["configurations"]
    if base not in configurations:
        raise ValueError(f"{plans_file}: no configuration {base!r} (has {sorted(configurations)})")
    resolved = deepcopy(configurations[base])
    while "inherits_from" in resolved:
        parent = deepcopy(configurations[resolved.pop("inherits_from")])
        parent.update(resolved)
        resolved = parent
    architecture = deepcopy(resolved["architecture"])
    widths = architecture["arch_kwargs"]["features_per_stage"]
    scale = max_features / max(widths)
    architecture["arch_kwargs"]["features_per_stage"] = [max(min_features, int(round(w * scale))) for w in widths]
    small = {"inherits_from": base, "architecture": architecture}
    if batch_size is not None:
        small["batch_size"] = batch_size
    configurations[name] = small
    tmp = plans_file.with_name(plans_file.name + ".tmp")
    tmp.write_text(json.dumps(plans, indent=4))
    os.replace(tmp, plans_file)
    return small


def main() -> None:
    """The command ``paseg_add_small_plans``; a dataset, plans file or configuration that is not there is one line
    on stderr (status 1), not a traceback."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-d", required=True, help="dataset id or name (as for nnUNetv2_train)")
    parser.add_argument("-p", default="nnUNetPlans", help="plans identifier (default: nnUNetPlans)")
    parser.add_argument("-n", default="3d_small", help="name of the new configuration (default: 3d_small)")
    parser.add_argument("-c", default="3d_fullres", help="configuration to inherit from (default: 3d_fullres)")
    parser.add_argument("--max_features", type=int, default=32, help="width of the widest stage (default: 32)")
    parser.add_argument("--batch_size", type=int, default=2, help="batch size (default: 2)")
    args = parser.parse_args()
    preprocessed = os.environ.get("nnUNet_preprocessed")
    if not preprocessed:
        raise SystemExit("paseg_add_small_plans: the environment variable nnUNet_preprocessed is not set")
    from nnunetv2.utilities.dataset_name_id_conversion import maybe_convert_to_dataset_name

    try:
        dataset = maybe_convert_to_dataset_name(args.d)
    except RuntimeError as e:  # nnU-Net's "Could not find a dataset with the ID ..." or "More than one ..."
        raise SystemExit(f"paseg_add_small_plans: dataset {args.d}: {' '.join(str(e).split())}") from None
    plans_file = Path(preprocessed) / dataset / f"{args.p}.json"
    if not plans_file.is_file():
        raise SystemExit(f"paseg_add_small_plans: {plans_file} does not exist: plan the dataset first "
                         f"(nnUNetv2_plan_and_preprocess -d {args.d}) or name its plans with -p")
    try:
        small = add_small_configuration(plans_file, args.n, args.c, args.max_features, batch_size=args.batch_size)
    except (ValueError, KeyError, OSError) as e:
        raise SystemExit(f"paseg_add_small_plans: {plans_file}: {type(e).__name__}: {e}") from None
    print(f"added configuration {args.n!r} to {plans_file}: features_per_stage="
          f"{small['architecture']['arch_kwargs']['features_per_stage']}, batch_size={small.get('batch_size')}")

if __name__ == "__main__":
    main()
