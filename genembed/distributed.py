"""Who am I in a multi-process run, and the few collective steps genembed needs.

Processes are started by an existing launcher (`accelerate launch`, `torchrun`); accelerate's
PartialState joins the process group it prepared (gloo on CPU, NCCL on GPUs) and names each
process's device. A plain `genembed ...` is one process: nothing is imported or initialised (not even torch).
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from .errors import InputError


@dataclass(frozen=True)
class Processes:
    rank: int = 0
    world: int = 1
    device: str | None = None  # None: genembed's default device (one process)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, items: list) -> list:
        """This process's contiguous slice of `items`; len(items) must divide evenly."""
        if len(items) % self.world:
            raise InputError(f"{len(items)} items cannot be split evenly over {self.world} processes: "
                             f"choose a batch size divisible by the number of processes")
        n = len(items) // self.world
        return items[self.rank * n:(self.rank + 1) * n]

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed

            torch.distributed.barrier()

    def sum_(self, tensors: list) -> None:
        """All-reduce (sum) each tensor in place across processes, one flat message."""
        if self.world == 1 or not tensors:
            return
        import torch
        import torch.distributed

        flat = torch.cat([t.reshape(-1) for t in tensors])
        torch.distributed.all_reduce(flat)
        offset = 0
        for t in tensors:
            t.copy_(flat[offset:offset + t.numel()].view_as(t))
            offset += t.numel()

    @contextmanager
    def main_first(self):
        """The main process runs the block first (e.g. fills a cache), then the others."""
        if not self.is_main:
            self.barrier()
        yield
        if self.is_main:
            self.barrier()


def current() -> Processes:
    """The running process's place: from the launcher's environment, else a single process."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Processes()
    import torch
    from accelerate import PartialState

    # joins the process group the launcher set up: NCCL on GPUs; gloo when there is none (accelerate
    # only picks gloo when told the run is on CPUs)
    state = PartialState(cpu=not torch.cuda.is_available())
    return Processes(rank=state.process_index, world=state.num_processes, device=str(state.device))
