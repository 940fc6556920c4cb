"""The directory where `voting serve`'s workers keep their metrics (prometheus-client's
multiprocess mode): each worker writes its counters to files there, and a scrape sums
the files, so /metrics tells the same whichever worker answers it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def prepare_metrics_dir(data_dir: Path) -> Path:
    """Empty <data dir>/metrics and point PROMETHEUS_MULTIPROC_DIR at it.

    Emptied at each start: files a previous run left would add its counts to this one's.
    Set before any worker imports prometheus-client, which reads it once, at import."""
    path = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or data_dir / "metrics")
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path
