"""Errors a user can act on. The CLI prints them as one clear message, never a traceback."""


class MMCLError(Exception):
    """Base class: the message names the file or option and the problem."""


class SkeletonFormatError(MMCLError):
    """A raw skeleton file that cannot be parsed (names the file and, where known, the line)."""

    def __init__(self, path, problem, line=None):
        self.path, self.problem, self.line = str(path), problem, line
        where = f"{path}, line {line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")


class CacheError(MMCLError):
    """A cache file that is missing, partial, of another schema version, or inconsistent."""


class LockedError(MMCLError):
    """Another process is writing the same output."""


class CoordinateError(SkeletonFormatError):
    """A skeleton coordinate that is not finite or not a physical position (names the file, frame, joint)."""


class OutputError(MMCLError):
    """An output that cannot be written (read-only folder, full disk, file-size limit)."""
