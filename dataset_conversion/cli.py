"""Command-line plumbing shared by the converters (``paseg_convert``, ``paseg_convert_vs``, ``paseg_convert_brats``).

argparse parses the options; the values of the settings (method, lambda, threshold, device, worker processes) are
checked once, where the conversion takes them (``dataset_conversion.label_settings``), before any image is read,
and ``run`` reports them as argparse reports a bad option (``argument --lambda: ...``, status 2). ``run`` turns
every expected failure into one line on stderr instead of a traceback. Exit statuses:

- 0: the dataset was written;
- 1: nothing was written: a problem with the inputs (all of them listed), a file that could not be written, a
  worker process that died;
- 2: a bad option (argparse, or a setting's value: ``SETTING_OPTIONS``);
- 3: the dataset was written, but some objects got (almost) no pseudo-foreground (listed, and in the dataset's
  ``pseudo_label_quality.json``); ``--allow_empty_foreground`` accepts them and exits 0;
- 130 / 143: stopped by SIGINT (Ctrl-C) / SIGTERM (``kill``, ``timeout``, batch schedulers); nothing was written.
"""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Callable

from point_tools.clicks import ClickError
from point_tools.geodesic import DEFAULT_LAMBDA, DEFAULT_THRESHOLD
from point_tools.pseudo_labels import DEFAULT_METHOD, METHODS

from dataset_conversion.errors import ConversionError, DatasetInputError
from dataset_conversion.label_settings import ConversionOptions, SettingError
from dataset_conversion.quality_report import MIN_FOREGROUND_VOXELS, LittleForegroundError

# The option of each setting that ``SettingError`` names.
SETTING_OPTIONS = {"method": "--method", "lambda": "--lambda", "threshold": "--threshold", "device": "--device",
                   "num_processes": "-np"}


def add_label_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by every converter: dataset id, pseudo-label method and geodesic settings, workers, device,
    overwrite, and whether objects without pseudo-foreground are accepted."""
    parser.add_argument("-d", dest="dataset_id", type=int, required=True, help="dataset id (1..999)")
    # The values are checked where the conversion takes them (the method too: no argparse choices).
    parser.add_argument("--method", metavar="{" + ",".join(METHODS) + "}", default=DEFAULT_METHOD, help=METHOD_HELP)
    # dest "lamb": the Python name of lambda, a keyword.
    parser.add_argument("--lambda", dest="lamb", metavar="LAMBDA", type=float, default=DEFAULT_LAMBDA,
                        help=f"geodesic weight of the intensity term, 0..1 (default {DEFAULT_LAMBDA})")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD,
                        help=f"geodesic foreground threshold (--method refined or extremes: its core's), strictly "
                             f"between 0 and 1 (default {DEFAULT_THRESHOLD})")
    parser.add_argument("-np", dest="num_processes", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--device", default=None,
                        help="cpu, cuda or cuda:N (default: cuda when available)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing dataset with this id in nnUNet_raw (whatever its name)")
    parser.add_argument("--allow_empty_foreground", action="store_true",
                        help=f"exit 0 even if some objects' pseudo-labels have fewer than {MIN_FOREGROUND_VOXELS} "
                             "foreground voxels (they are listed either way; without this flag the dataset is "
                             "written and the exit status is 3)")


def conversion_options(args: argparse.Namespace) -> ConversionOptions:
    """The values of ``add_label_arguments``'s options (but the dataset id), as a converter takes them."""
    return ConversionOptions(method=args.method, lamb=args.lamb, threshold=args.threshold, device=args.device,
                             num_processes=args.num_processes, overwrite=args.overwrite,
                             allow_empty_foreground=args.allow_empty_foreground)


METHOD_HELP = (
    f"pseudo-label method (default {DEFAULT_METHOD}). geodesic: foreground where the geodesic distance from the "
    "foreground click is under threshold x (d_fg + d_bg), d_bg from the box faces and background clicks. "
    "refined: that geodesic foreground as a core, grown along an intensity model learned per object from the "
    "core and the box's surround (all channels), its surface peeled where object and surround intensities "
    "overlap. On 120 real brain structures (benchmarks/results/pseudo_label_extremes.md) geodesic labels 17.8%% "
    "of each structure at mean foreground precision 0.970 (min 0.835), refined 23.6%% at 0.970 (min 0.843); "
    "about 1.2x the conversion time per case. extremes: refined, plus the geodesic paths from the foreground click "
    "to the object's extreme voxels (one step inward of each background click) where the image agrees: 25.0%% "
    "exact, 28.4%% with 2 mm jitter, at mean precision 0.979 / 0.965 (refined 20.9%% / 25.0%% at 0.982 / 0.964); "
    "46%% of each lateral ventricle (the one structure there whose surface is an edge of the T1 image) at 0.972. "
    "On two validation cohorts (ventricles) models trained on extremes labels beat those trained on geodesic ones "
    "in Dice and HD95 on both, PASeg 0.810 vs 0.760 Dice, pCE 0.732 vs 0.697 (docs/experiments.md), so extremes "
    "is the default; geodesic is PA-Seg's own rule")


class Stopped(BaseException):
    """SIGTERM arrived. A BaseException, like KeyboardInterrupt, so that every clean-up on the way out runs."""


def _stop(signum: int, frame: object) -> None:
    raise Stopped(signal.Signals(signum).name)


def run(fn: Callable, *args, **kwargs) -> None:
    """Call a converter; end the program with one line on stderr and the module docstring's status for every
    expected failure, and handle SIGTERM as Ctrl-C is handled (the converter removes its temporary folder)."""
    prog = Path(sys.argv[0]).name
    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        fn(*args, **kwargs)
    except SettingError as e:
        _exit(f"{prog}: error: " + "; ".join(f"argument {SETTING_OPTIONS[setting]}: {why}"
                                             for setting, why in e.problems.items()), 2)
    except (DatasetInputError, ClickError, ConversionError) as e:
        _exit(f"{prog}: error: {e}", 1)
    except LittleForegroundError as e:
        _exit(f"{prog}: {e}", 3)
    except KeyboardInterrupt:
        _exit(f"{prog}: stopped by Ctrl-C (SIGINT); nothing was written", 128 + signal.SIGINT)
    except Stopped as e:
        _exit(f"{prog}: stopped by {e}; nothing was written", 128 + signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _exit(message: str, status: int) -> None:
    print(message, file=sys.stderr)
    sys.exit(status)

