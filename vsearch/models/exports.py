"""Exported models kept under vsearch's data directory: made atomically (a private scratch folder renamed into
place), checked for damage by size, a cheap stamp, and sha256, and removed aside when damaged. Shared by the text
export (`onnx`) and the image export (`onnx_image`)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vsearch.errors import ModelError

META_FILE = "vsearch-onnx.json"
# The files' inode, size, mtime and ctime when their digests last matched: while they stay the same, a load need
# not read the model again (0.15 s for 90 MB, a fifth of a cold query). Any write to a file changes its ctime.
VERIFIED_FILE = "vsearch-verified.json"


def private_folders(models: Path) -> None:
    """vsearch's home and its models folder, made (or closed again) for their owner only, as vsearch.server does."""
    models.parent.parent.mkdir(parents=True, exist_ok=True)
    for folder in (models.parent, models):
        folder.mkdir(mode=0o700, exist_ok=True)
        if folder.stat().st_mode & 0o077:
            folder.chmod(0o700)


def scratch(dest: Path) -> Path:
    # The pid lets a later export tell an abandoned scratch folder from one still being written.
    return dest.parent / f".{dest.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"


def discard(dest: Path) -> None:
    """Remove a damaged export: renamed aside first, so no other process loads it half-deleted."""
    aside = scratch(dest)
    try:
        dest.rename(aside)
    except FileNotFoundError:  # another process discarded it first
        return
    except OSError as exc:
        raise ModelError(f"cannot remove the damaged ONNX export {dest}: {exc.strerror or exc}") from exc
    shutil.rmtree(aside, ignore_errors=True)


def damage(export_dir: Path, checked: tuple[str, ...]) -> str | None:
    """What is wrong with an export (a file missing, truncated, or not the bytes written), or None if it is whole."""
    try:
        files = json.loads((export_dir / META_FILE).read_text(encoding="utf-8"))["files"]
        stats = {name: (export_dir / name).stat() for name in checked}
        for name, stat in stats.items():
            if stat.st_size != int(files[name]["size"]):
                return f"{name} has {stat.st_size:,} bytes, not {int(files[name]['size']):,}"
        if _read_json(export_dir / VERIFIED_FILE) == _signature(stats):
            return None
        for name in checked:
            if sha256(export_dir / name) != files[name]["sha256"]:
                return f"{name} is not the file that was exported"
    except FileNotFoundError as exc:
        return f"{Path(str(exc.filename)).name} is missing"
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{META_FILE} cannot be read: {type(exc).__name__}"
    write_verified(export_dir, checked)
    return None


def _signature(stats: dict[str, os.stat_result]) -> dict[str, list[int]]:
    return {name: [s.st_ino, s.st_size, s.st_mtime_ns, s.st_ctime_ns] for name, s in stats.items()}


def write_verified(export_dir: Path, checked: tuple[str, ...]) -> None:
    """Note that the files are as exported; best effort (a read-only home only costs a digest per load)."""
    signature = _signature({name: (export_dir / name).stat() for name in checked})
    temporary = export_dir / f".{VERIFIED_FILE}.{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
            handle.write(json.dumps(signature))
        temporary.replace(export_dir / VERIFIED_FILE)
    except OSError:
        temporary.unlink(missing_ok=True)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def remove_abandoned(dest: Path) -> None:
    """Delete scratch folders of exports whose process is gone (killed mid-export)."""
    for scratch in dest.parent.glob(f".{dest.name}.*.tmp"):
        pid = scratch.name.removeprefix(f".{dest.name}.").split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(scratch, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True




def make_export(name: str, dest: Path, checked: tuple[str, ...], write: Callable[[Path], None]) -> Path:
    """`dest`, the export of model `name`: kept if whole, else made by `write(folder)` into a private scratch folder
    renamed into place only once written and checked, so a failed or killed export leaves no `dest`, and of two
    concurrent exports one wins and the other's work is dropped. A damaged one is made again, once, with a warning."""
    if dest.exists():
        reason = damage(dest, checked)
        if reason is None:
            return dest
        # A truncated or altered export would fail every query (or embed wrongly): make it again, once.
        print(f"vsearch: warning: the ONNX export in {dest} is damaged ({reason}): making it again…", file=sys.stderr)
        discard(dest)
    folder = scratch(dest)
    try:
        private_folders(dest.parent)
        remove_abandoned(dest)
        folder.mkdir(mode=0o700)
        write(folder)
        for path in folder.iterdir():  # the libraries write with the umask's modes; before the stamp (ctime)
            path.chmod(0o600)
        write_verified(folder, checked)
        try:
            folder.rename(dest)
        except OSError:
            if not (dest / META_FILE).is_file():  # not a concurrent export that finished first
                raise
    except OSError as exc:
        raise ModelError(f"cannot write the ONNX export of '{name}' in {dest.parent}: {exc}") from exc
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return dest
