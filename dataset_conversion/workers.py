"""The worker processes of a conversion: started once for the whole build, killed at once by an error, Ctrl-C or
SIGTERM, and a worker that dies is an error naming the cases left unfinished, not a hang."""
from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Iterator, Sequence

from tqdm import tqdm

from dataset_conversion.cases import Case
from dataset_conversion.errors import ConversionError


def _init_worker(threads: int) -> None:
    import torch  # workers share the cores: one torch pool per worker would oversubscribe them

    torch.set_num_threads(threads)
    # The main process handles Ctrl-C and SIGTERM: it kills the workers and removes the temporary folder. The
    # terminal, ``timeout`` and schedulers signal the whole process group; a worker that ended on the signal itself
    # could be noticed (as a dead worker) before the main process runs its handler, so workers ignore both.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


@contextlib.contextmanager
def worker_pool(num_processes: int, num_items: int, device: str | None) -> Iterator[ProcessPoolExecutor | None]:
    """Worker processes for the whole build, or None to work in-process; an exception (or Ctrl-C, SIGTERM) that
    leaves the block kills them first.

    For ``device="cpu"`` on Linux they are forked: this process has imported torch but run nothing on it yet, and
    a spawned worker would spend seconds importing torch and nnU-Net again (as long as converting ten cases).
    Otherwise they are spawned, as nnU-Net does, because a process that may have touched CUDA cannot be forked.
    """
    if num_processes <= 1 or num_items <= 1:
        yield None
        return
    processes = min(num_processes, num_items)
    threads = max(1, (os.cpu_count() or 1) // processes)
    method = "fork" if device == "cpu" and sys.platform == "linux" else "spawn"
    pool = ProcessPoolExecutor(processes, multiprocessing.get_context(method), _init_worker, (threads,))
    try:
        yield pool
    except BaseException:  # the manager thread, not this one, cancels the cases not started (shutdown below)
        # An error or an interruption ends the build: stop the workers now, not after their current case, and before
        # the caller removes the folder they write into. This also ends the workers of a pool interrupted while it
        # started them, which would otherwise wait for work forever, and the interpreter's exit for them.
        for process in list(pool._processes.values()):  # no public way before Python 3.14's terminate_workers
            process.kill()
            process.join()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def in_workers(fn: Callable, cases: Sequence[Case], pool: ProcessPoolExecutor | None, desc: str) -> list:
    """``[fn(c) for c in cases]``, in ``pool`` if there is one, with a progress bar.

    An error ends it (``worker_pool`` then stops the pool and drops the cases not yet started); a worker that dies
    (killed, out of memory) is a ConversionError naming the cases that were not finished, not a hang.
    """
    if not cases:
        return []
    # The bar closes while an error unwinds, so that the error's message is the last line on the terminal.
    with tqdm(total=len(cases), desc=desc, unit="case") as bar:
        if pool is None:
            results = []
            for case in cases:
                results.append(fn(case))
                bar.update()
            return results
        futures: dict[Future, Case] = {pool.submit(fn, c): c for c in cases}
        try:
            for future in as_completed(futures):
                future.result()
                bar.update()
        except BrokenProcessPool:
            unfinished = [c.name for f, c in futures.items() if f.exception() is not None]
            listed = ", ".join(unfinished[:5]) + (f" and {len(unfinished) - 5} more" if len(unfinished) > 5 else "")
            raise ConversionError(f"a worker process died (killed by a signal, or by the system for lack of "
                                  f"memory) before case(s) {listed} were converted; rerun, with fewer "
                                  "worker processes (-np) if memory is short") from None
        # Any other error leaves the cases not yet started to ``worker_pool``, which stops the pool: futures cancelled
        # here could race with the pool's own clean-up of dead workers (Python 3.11 then prints an
        # InvalidStateError traceback from its manager thread).
    return [f.result() for f in futures]
