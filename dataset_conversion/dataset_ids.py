"""nnU-Net's dataset ids: ``$nnUNet_raw``, the ``DatasetXXX_NAME`` folder name, and whether an id is free."""
from __future__ import annotations

import os
import re
from pathlib import Path

from dataset_conversion.errors import DatasetInputError

_DATASET_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_NNUNET_FOLDERS = ("nnUNet_raw", "nnUNet_preprocessed", "nnUNet_results")


def nnunet_raw() -> Path:
    """``$nnUNet_raw`` as an existing folder."""
    raw = os.environ.get("nnUNet_raw")
    if not raw:
        raise DatasetInputError("nnUNet_raw is not set: export nnUNet_raw=/path/to/nnUNet_raw (see nnU-Net's "
                                "documentation/set_environment_variables.md)")
    if not Path(raw).is_dir():
        raise DatasetInputError(f"nnUNet_raw={raw} is not a folder")
    return Path(raw)


def dataset_folder_name(dataset_id: int, name: str) -> str:
    """``DatasetXXX_NAME`` as nnU-Net spells it (three-digit id)."""
    if isinstance(dataset_id, bool) or not isinstance(dataset_id, int) or not 1 <= dataset_id <= 999:
        raise DatasetInputError(f"dataset id must be an integer in 1..999 (nnU-Net names datasets with three "
                                f"digits), got {dataset_id!r}")
    if not _DATASET_NAME.fullmatch(name or ""):
        raise DatasetInputError(f"dataset name {name!r}: use letters, digits, '_', '-' and '.' only")
    return f"Dataset{dataset_id:03d}_{name}"


def existing_datasets(root: Path, dataset_id: int) -> list[Path]:
    """Folders of ``root`` that nnU-Net would take for dataset ``dataset_id``, whatever their name."""
    return sorted(p for p in root.glob(f"Dataset{dataset_id:03d}_*") if p.is_dir())


def check_dataset_id(raw: Path, dataset_id: int, folder_name: str, overwrite: bool) -> list[Path]:
    """The datasets of ``raw`` that the new dataset ``folder_name`` replaces; DatasetInputError if the id is taken.

    Taken: by a dataset in ``raw`` (unless ``overwrite``), or by a folder of another name in
    ``$nnUNet_preprocessed`` or ``$nnUNet_results`` (where set): nnU-Net would then find two names for one id
    ("More than one dataset name found"). ``overwrite`` replaces only the raw dataset, never preprocessed data or
    trained models.
    """
    existing = existing_datasets(raw, dataset_id)
    if existing and not overwrite:
        raise DatasetInputError(f"dataset id {dataset_id} already exists: {', '.join(map(str, existing))} "
                                "(--overwrite replaces it)")
    clashes = [f"{path} ({variable})" for variable in _NNUNET_FOLDERS[1:] if os.environ.get(variable)
               for path in existing_datasets(Path(os.environ[variable]), dataset_id) if path.name != folder_name]
    if clashes:
        raise DatasetInputError(f"dataset id {dataset_id} is already used under another name than {folder_name}: "
                                f"{', '.join(clashes)}; nnU-Net needs one name per id: use that name, another id, "
                                "or remove the folder")
    return existing
