"""Output files that never cost a user what they had: written beside the target as `NAME.part` and
renamed onto it when done, with one error message per cause (a full disk, a read-only place)."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from edgewatch.errors import EdgewatchError

PART_SUFFIX = ".part"


def write_error(path: str | Path, error: OSError, what: str) -> EdgewatchError:
    """The one line for an OSError while writing `path` (the output of option `what`), with the fix
    that fits its cause."""
    reason = error.strerror or str(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        hint = "free some disk space; what fitted was kept"
    elif error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        hint = f"choose a writable place for {what}"
    elif error.errno == errno.EISDIR:
        hint = f"name a file for {what}, not a folder"
    else:
        hint = f"choose another place for {what}"
    return EdgewatchError(f"cannot write {path}: {reason}", hint)


def staged_path(target: str | Path) -> Path:
    """Where a file for `target` is written until it is complete: `target.part` beside it, or the
    target itself when it is no regular file (a FIFO, /dev/stdout, /dev/full), which cannot be renamed
    onto. A symlink's own target is the one replaced."""
    path = Path(os.path.realpath(target))
    if path.exists() and not path.is_file():
        return path
    return path.with_name(path.name + PART_SUFFIX)


def write_whole(path: Path, data: bytes) -> None:
    """Write `data` to `.NAME.tmp` beside `path` and rename it onto `path`: the file is whole, or as it
    was (a crash or a full disk leaves no half file, and no temporary one).

    Raises:
        OSError: the write or the rename failed.
    """
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def make_parent(path: Path, what: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EdgewatchError(
            f"cannot create folder {path.parent}: {error.strerror}", f"choose a writable place for {what}"
        ) from None


class StagedFile:
    """A binary file for `target`, written as `target.part` and renamed onto `target` by `commit()`:
    until then whatever `target` held is untouched, and a run that is killed leaves it as it was.

    Args:
        target: the file the user named.
        what: the option that named it, for messages (`--json`).

    Raises:
        EdgewatchError: `target` is a folder, or its folder cannot be written.

    Example:
        >>> staged = StagedFile("lines.jsonl", "--json")  # doctest: +SKIP
        >>> staged.write(b'{"frame": 0}\\n'); staged.commit()  # doctest: +SKIP
    """

    def __init__(self, target: str | Path, what: str) -> None:
        self.target = Path(os.path.realpath(target))
        self.what = what
        if self.target.is_dir():
            raise EdgewatchError(f"{what} {target} is a folder", f"name a file for {what}")
        self.path = staged_path(self.target)
        make_parent(self.path, what)
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as error:
            raise write_error(target, error, what) from None
        self.written = 0  # bytes of whole records in the file

    @property
    def staged(self) -> bool:
        return self.path != self.target

    def write(self, data: bytes) -> None:
        """Append `data` whole, or not at all: on a failed write the file is cut back to where it was."""
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as error:
            if self.staged:  # a device or FIFO cannot be cut back, and holds nothing to keep
                os.ftruncate(self._fd, self.written)
            raise write_error(self.target, error, self.what) from None
        self.written += len(data)

    def commit(self) -> None:
        """Close, and put the file in place of the target."""
        if self._fd < 0:
            return
        os.close(self._fd)
        self._fd = -1
        if self.staged:
            try:
                os.replace(self.path, self.target)
            except OSError as error:
                raise write_error(self.target, error, self.what) from None

    def discard(self) -> None:
        """Close and remove the staged file; the target stays as it was."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self.staged:
            self.path.unlink(missing_ok=True)


def refuse_outputs_over_inputs(outputs: list[tuple[str, str | Path | None]], inputs: list[str | Path | None]) -> None:
    """Refuse a run whose output would overwrite one of its inputs, or another of its outputs.

    Args:
        outputs: (option, path) of each file or folder the run writes; a path ending in `/`, or an
            existing folder, is a folder of images.
        inputs: what the run reads (sources, models, label files, the config); names that are no
            local path (a URL, a camera index) are left out.

    Raises:
        EdgewatchError: an output is an input file, writes images into an input folder, or is
            another output.
    """
    from edgewatch.sources.images import IMAGE_SUFFIXES

    files = [Path(os.path.realpath(item)) for item in inputs if item is not None and Path(item).exists()]
    seen: dict[Path, str] = {}
    for what, path in outputs:
        if path is None:
            continue
        target = Path(os.path.realpath(path))
        folder_out = str(path).endswith(("/", os.sep)) or target.is_dir()
        writes_images = folder_out or target.suffix.lower() in IMAGE_SUFFIXES
        for source in files:
            same = target == source or (target.exists() and os.path.samefile(target, source))
            into = source.is_dir() and writes_images and (target if folder_out else target.parent) == source
            if same or into:
                raise EdgewatchError(
                    f"{what} {path} would overwrite the input {source}",
                    "write the output somewhere else; the input is left as it is",
                )
        if target in seen:
            raise EdgewatchError(f"{what} and {seen[target]} both name {path}", "give each output its own file")
        seen[target] = what
