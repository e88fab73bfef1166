"""torch.distributed under ``torchrun``: processes share feature extraction and experiment runs.

``torchrun --nproc_per_node N -m bla_core …`` starts N processes with RANK / WORLD_SIZE set; the
CLI then joins a process group (NCCL when CUDA is present, gloo otherwise or when more processes
than GPUs share a machine — useful, as small heads leave a GPU mostly idle). Without torchrun every
function here is a no-op for a single process. Work is divided deterministically (every N-th batch,
every N-th run) and each piece is computed exactly as one process would, so results are the same
for any N; the processes only synchronise with barriers and meet on the shared file system.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def launched() -> bool:
    """True when started by torchrun with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def init_from_environment() -> torch.device | None:
    """Join the process group torchrun describes; returns this process's CUDA device, if any."""
    if not launched() or dist.is_initialized():
        return None
    if not torch.cuda.is_available():
        dist.init_process_group("gloo")
        return None
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local % torch.cuda.device_count())
    torch.cuda.set_device(device)
    if int(os.environ.get("LOCAL_WORLD_SIZE", "1")) <= torch.cuda.device_count():
        dist.init_process_group("nccl", device_id=device)
    else:  # several processes share a GPU, which NCCL refuses; they only need barriers
        dist.init_process_group("gloo")
    return device


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    return rank() == 0


def progress_disabled() -> bool | None:
    """tqdm's ``disable``: only the first process shows progress, and only on a terminal."""
    return None if is_main() else True


def barrier() -> None:
    """Wait for every process (nothing to wait for in a single process)."""
    if dist.is_initialized():
        dist.barrier()


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
