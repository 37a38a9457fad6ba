"""``build_report.json``: one entry per stage run (steps, timings, final losses, the command) and the quality."""
from __future__ import annotations

import json
import os
from pathlib import Path


def update_report(path: Path, stage: str, entry: dict, quality: dict | None) -> dict:
    """Re-read the report and set one stage (two builds of different stages may share ``--out``)."""
    report = json.loads(path.read_text()) if path.exists() else {}
    report.setdefault("stages", {})[stage] = entry
    if quality is not None:
        report["quality"] = quality
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, path)
    return report
