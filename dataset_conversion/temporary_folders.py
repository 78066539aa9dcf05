"""The hidden temporary folders in which a dataset is built, its publication by one rename, and the clean-up
after conversions that were killed before their own clean-up ran.

A dataset is built in ``.DatasetXXX_NAME.partial-PID-XXXX`` beside its final folder; an old dataset that it
replaces is moved aside into ``.DatasetXXX_NAME.replaced-PID-XXXX`` until the new one is in place. nnU-Net does
not take either for a dataset (they do not start with ``Dataset``), and the process id in the name tells a later
run whether the folder is stale.
"""
from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Iterable

from dataset_conversion.dataset_ids import existing_datasets
from dataset_conversion.errors import writing

_TEMPORARY = re.compile(r"\.(?P<dataset>Dataset\d{3}_.+)\.(?P<kind>partial|replaced)-(?:(?P<pid>\d+)-)?[0-9a-f]+")


def hidden_sibling(path: Path, what: str) -> Path:
    """A new empty folder beside ``path`` that nnU-Net does not take for a dataset (it does not start with Dataset),
    named with this process's id so that a later run can tell whether it is stale (``remove_stale_temporaries``)."""
    sibling = path.with_name(f".{path.name}.{what}-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    with writing(path.parent, "create a folder in"):
        sibling.mkdir()
    return sibling


def publish(tmp: Path, final: Path, replace: Iterable[Path]) -> None:
    """Rename ``tmp`` to ``final``, first moving the datasets ``replace`` aside (and deleting them after)."""
    moved = []
    try:
        for old in replace:
            aside = hidden_sibling(old, "replaced")
            with writing(old, "move aside"):
                os.replace(old, aside / old.name)
            moved.append((aside, old))
        with writing(final, "rename the finished dataset to"):
            os.replace(tmp, final)
    except BaseException:
        for aside, old in moved:
            os.replace(aside / old.name, old)
            aside.rmdir()
        raise
    for aside, _ in moved:
        shutil.rmtree(aside)


def _process_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process
    return True


def remove_stale_temporaries(raw: Path, dataset_id: int) -> None:
    """Clean up after conversions of ``dataset_id`` that were killed (SIGKILL, power loss) before their own
    clean-up ran, saying what was done.

    A ``.DatasetXXX_*.partial-PID-*`` folder whose process is gone is removed. A ``.replaced-PID-*`` folder holds
    an old dataset that a replacement moved aside: it is removed if a dataset with this id is in place (the
    replacement finished), else the old dataset is put back. Folders of a process that still runs are left alone.
    """
    for path in sorted(raw.glob(f".Dataset{dataset_id:03d}_*")):
        match = _TEMPORARY.fullmatch(path.name)
        if match is None or not path.is_dir():
            continue
        if match["pid"] and _process_running(int(match["pid"])) and int(match["pid"]) != os.getpid():
            print(f"{path} belongs to a conversion that is still running (process {match['pid']}); left alone")
            continue
        old = path / match["dataset"]
        if match["kind"] == "replaced" and old.is_dir() and not existing_datasets(raw, dataset_id):
            os.replace(old, raw / old.name)
            print(f"restored {raw / old.name} from {path}, which an interrupted replacement left behind")
        shutil.rmtree(path, ignore_errors=True)
        print(f"{'could not remove' if path.exists() else 'removed'} {path}, left behind by an interrupted conversion")
