"""Work shared over processes started by ``accelerate launch`` (and a no-op otherwise)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def launched_processes() -> Iterator[object | None]:
    """Yield an Accelerator when launched as several processes, else None.

    On exit every process meets at a barrier and the process group is destroyed: a gloo group
    left alive at interpreter shutdown aborts the process ("terminate called without an active
    exception") and fails the launch even though the work was done.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        yield None
        return
    import torch
    from accelerate import Accelerator

    from advsig.errors import ConfigError

    # Without a GPU, accelerate joins the processes into one (gloo) group only when told to use
    # the CPU; otherwise each process would believe it is alone and do all the work.
    acc = Accelerator(cpu=not torch.cuda.is_available())
    try:
        if acc.num_processes != world:
            raise ConfigError(
                f"launched as {world} processes, but accelerate set up {acc.num_processes}; "
                "check the accelerate launch options"
            )
        yield acc
        acc.wait_for_everyone()
    finally:
        acc.end_training()
