"""Output folders the project owns: a run deletes, replaces or reads only what it wrote there.

A run's output folder holds a manifest, ``.lightning_agx.json``: the names (relative to the folder, top level) of
everything runs of lightning_agx wrote or will write there. A run claims its names before writing any of them
(`check_claim`, then `record`): a name that already exists in the folder but is not in the manifest belongs to somebody else, and
the run stops with one line instead of touching it. ``--overwrite`` removes the manifest's entries only
(`remove`); a file or folder the project did not write is never deleted, moved or read as results,
whatever its name. The temporary folders of an interrupted save (``.<name>.<8 hex>.tmp``) are removed only
for names the manifest holds.

A folder written by a version before the manifest (a ``run.json`` and no manifest) is adopted only where the
provenance can be checked: a sub-folder holding a complete explanation whose recorded run identity is the
folder's ``run.json``, and the run's own files (`RUN_FILES`).
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

from .errors import UserError

MANIFEST = ".lightning_agx.json"
RUN_FILES = ("run.json", "index.json", "table1.md", "table1.csv", "table2.md", "table2.csv")
_TMP = re.compile(r"^\.(?P<name>.+)\.[0-9a-f]{8}\.tmp$")


def owned(output_dir: Path) -> set[str]:
    """The names the manifest of `output_dir` holds (none without a manifest)."""
    path = Path(output_dir) / MANIFEST
    if not path.is_file():
        return set()
    try:
        names = json.loads(path.read_text()).get("written", [])
    except (ValueError, AttributeError):
        raise UserError(f"{path} is unreadable, so lightning_agx cannot tell what it wrote in {output_dir}; "
                        "choose another --output_dir (nothing was changed)") from None
    return {n for n in names if isinstance(n, str) and _plain_name(n)}


def check_claim(output_dir: Path, names: list[str], legacy_identity: dict | None = None) -> set[str]:
    """What the project owns in `output_dir` (its manifest, or for a folder without one what `legacy_identity`,
    its ``run.json``, provably wrote: module doc), checked against the `names` a run will write: one that
    exists there unowned stops the run (`UserError`). Changes nothing."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return set()
    mine = owned(output_dir)
    if not (output_dir / MANIFEST).is_file() and legacy_identity is not None:
        mine |= adoptable(output_dir, legacy_identity)
    for name in names:
        if not _plain_name(name):
            raise ValueError(f"not a top-level name: {name!r}")  # a bug of the caller, not the user's
    foreign = sorted(n for n in names if n not in mine and (output_dir / n).exists())
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise UserError(f"output folder {output_dir} holds {shown}, which lightning_agx did not write; move "
                        "it away or choose another --output_dir (nothing was changed)")
    return mine


def record(output_dir: Path, names: set[str]) -> None:
    """The manifest of `output_dir` (created) says the project owns `names`: written before any of them is."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    _write(output_dir, set(names))


def remove(output_dir: Path, names: set[str]) -> int:
    """Remove the entries `names` of `output_dir` (what the project owns there, ``--overwrite``); returns how
    many existed. Nothing else in the folder is touched."""
    output_dir = Path(output_dir)
    removed = 0
    for name in sorted(names):
        if not _plain_name(name):
            continue
        path = output_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
            removed += 1
        elif path.exists() or path.is_symlink():
            path.unlink()
            removed += 1
    return removed


def remove_stale_tmp(output_dir: Path) -> int:
    """Remove the temporary folders an interrupted save left for names the manifest holds; returns how many."""
    output_dir = Path(output_dir)
    mine = owned(output_dir)
    stale = [p for p in output_dir.iterdir() if p.is_dir() and (m := _TMP.match(p.name)) and m["name"] in mine]
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return len(stale)


def adoptable(output_dir: Path, identity: dict) -> set[str]:
    """The entries of a folder without a manifest that a run with `identity` provably wrote (module doc)."""
    from .explanation import JSON_NAME
    out = {name for name in RUN_FILES if (output_dir / name).is_file()}
    prompts = output_dir / "prompts"  # an evaluation's per-prompt folders, each with its original.json
    if identity.get("task") == "evaluate" and prompts.is_dir() and all(
            p.is_dir() and (p / "original.json").is_file() for p in prompts.iterdir()):
        out.add("prompts")
    for path in output_dir.iterdir():
        if path.is_dir() and (path / JSON_NAME).is_file():
            try:
                made = json.loads((path / JSON_NAME).read_text()).get("metadata", {}).get("run")
            except (ValueError, AttributeError, OSError):
                continue
            if made == identity:
                out.add(path.name)
    return out


def _plain_name(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..", MANIFEST)


def _write(output_dir: Path, names: set[str]) -> None:
    path = output_dir / MANIFEST
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_text(json.dumps({"format": 1, "written": sorted(names)}, indent=1))
    os.replace(tmp, path)


__all__ = ["MANIFEST", "RUN_FILES", "adoptable", "check_claim", "owned", "record", "remove", "remove_stale_tmp"]
