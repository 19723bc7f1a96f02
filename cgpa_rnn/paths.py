"""Where the `cgpa` command may write: every `--out` is checked here before any work starts.

A user's path is never clobbered by surprise. An output is refused when it names an input
of the same command, a folder where a file is meant (or a file where a folder is meant), or
anything that is not a regular file, a folder or nothing yet (a device, a FIFO, a socket).

Symbolic links are refused, consistently: an `--out` that is itself a symbolic link is an
error whatever it points to. Writes replace a file by renaming a finished temporary file
over it, which would replace the link itself rather than what it points to, and following
it would write somewhere the user did not name. Links among the parent folders (a home
folder on another disk, /tmp on macOS) are followed as usual.

A site folder that `cgpa web` wrote holds the marker file SITE_MARKER; only such a folder
(or an empty or new one) is written into again without `--force`.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from cgpa_rnn.errors import UserError

SITE_MARKER = ".cgpa-site"  # in every folder `cgpa web` wrote: "this is a site of ours, rebuild freely"


def _refuse_link_or_special(path: Path, option: str) -> os.stat_result | None:
    """The entry's own status (a link is not followed), refusing links and special files."""
    try:
        status = path.lstat()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise UserError(f"{option} {path}: cannot be used ({error.strerror or error})") from None
    if stat.S_ISLNK(status.st_mode):
        raise UserError(f"{option} {path}: is a symbolic link; give the path of a real file or folder "
                        "(links are not followed for outputs)")
    if not (stat.S_ISREG(status.st_mode) or stat.S_ISDIR(status.st_mode)):
        raise UserError(f"{option} {path}: is not a regular file or folder (a device, FIFO or socket); "
                        "give a new name")
    return status


def _same_entry(first: Path, second: Path) -> bool:
    try:
        return first.resolve() == second.resolve() or (first.exists() and second.exists()
                                                       and os.path.samefile(first, second))
    except OSError:
        return False


def check_output_file(out: str | Path, inputs: tuple[str | Path, ...] = (), what: str = "the output",
                      option: str = "--out") -> Path:
    """A file path the command may replace: nonexistent or a regular file, not one of its inputs."""
    path = Path(out)
    status = _refuse_link_or_special(path, option)
    if status is not None and stat.S_ISDIR(status.st_mode):
        raise UserError(f"{option} {path}: a folder is in the way; give a file name for {what}")
    for source in inputs:
        if _same_entry(path, Path(source)):
            raise UserError(f"{option} {path}: is the input file {source}; give another name "
                            "(writing there would destroy the input)")
    parent = path.parent
    if parent.exists() and not parent.is_dir():
        raise UserError(f"{option} {path}: {parent} is a file, not a folder")
    return path


def check_output_folder(out: str | Path, inputs: tuple[str | Path, ...] = (), what: str = "the run",
                        option: str = "--out") -> Path:
    """A folder path the command may write into: nonexistent or a folder, not one of its inputs."""
    path = Path(out)
    status = _refuse_link_or_special(path, option)
    if status is not None and not stat.S_ISDIR(status.st_mode):
        raise UserError(f"{option} {path}: a file is in the way; give a folder for {what}")
    for source in inputs:
        if _same_entry(path, Path(source)):
            raise UserError(f"{option} {path}: is the input {source}; give another folder for {what}")
    return path


def is_site_folder(folder: str | Path) -> bool:
    """Whether `cgpa web` wrote this folder (it holds SITE_MARKER as a regular file)."""
    marker = Path(folder) / SITE_MARKER
    return marker.is_file() and not marker.is_symlink()


def check_site_folder(out: str | Path, run: str | Path, force: bool = False) -> Path:
    """A folder for `cgpa web`: new, empty, a site it wrote before, or anything with `force`."""
    path = check_output_folder(out, (run,), "the site")
    if path.is_dir() and not force and not is_site_folder(path) and any(path.iterdir()):
        shown = sorted(p.name for p in path.iterdir())[:3]
        raise UserError(f"--out {path}: holds files that are not a site `cgpa web` wrote ({', '.join(shown)}"
                        f"{', ...' if len(shown) == 3 else ''}); give a new or empty folder, or add --force "
                        "to write the site into it")
    return path


def mark_site(folder: str | Path) -> None:
    """Leave SITE_MARKER in a finished site folder, so the next build may replace it."""
    (Path(folder) / SITE_MARKER).write_text("written by `cgpa web`; remove this file to protect the folder\n",
                                           encoding="utf-8")
