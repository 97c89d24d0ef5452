"""Training metrics: appended to ``metrics.jsonl`` always, and to TensorBoard when it is installed."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)


class MetricsLog:
    def __init__(self, run_dir: Path) -> None:
        self.file = (run_dir / "metrics.jsonl").open("a")
        self.tensorboard = None
        try:
            from torch.utils.tensorboard import SummaryWriter  # needs the optional `tensorboard` package
        except ImportError:
            log.debug("tensorboard is not installed; metrics go to metrics.jsonl only")
        else:
            self.tensorboard = SummaryWriter(str(run_dir / "tensorboard"))

    def write(self, step: int, row: dict) -> None:
        self.file.write(json.dumps({"step": step, "time": round(time.time(), 1), **row}) + "\n")
        self.file.flush()
        if self.tensorboard is not None:
            for key, value in row.items():
                if isinstance(value, (int, float)):
                    self.tensorboard.add_scalar(f"{row.get('kind', 'train')}/{key}", value, step)

    def close(self) -> None:
        self.file.close()
        if self.tensorboard is not None:
            self.tensorboard.close()
