"""Peak memory of a block of code: CUDA allocator peak on GPU, sampled resident set size on CPU."""
from __future__ import annotations

import contextlib
import os
import threading
import time

import torch


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@contextlib.contextmanager
def peak_memory(device: str):
    """Yields a dict whose 'peak_mb' is set on exit: the peak extra memory used inside the block."""
    result = {"peak_mb": 0.0, "kind": "cuda max_memory_allocated" if device.startswith("cuda") else "cpu peak RSS"}
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        yield result
        torch.cuda.synchronize()
        result["peak_mb"] = (torch.cuda.max_memory_allocated() - base) / 2**20
        return
    base = _rss_bytes()
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], _rss_bytes())
            time.sleep(0.005)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield result
    finally:
        stop.set()
        thread.join()
        result["peak_mb"] = (max(peak[0], _rss_bytes()) - base) / 2**20
