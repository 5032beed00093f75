"""Reading pickles that come from elsewhere (pyskl annotations, CTR-GCN score files) without running code.

`pickle.load` calls whatever a file names (`__reduce__` can name `os.system`), so every pickle the
product reads goes through `load_plain`: an unpickler that resolves only numpy's array and scalar
reconstruction (numpy 1 and 2 module paths) and `collections.OrderedDict`. Everything else, plain
containers, strings and numbers included, is built by pickle's opcodes and needs no global, so a
file of arrays and plain values loads and any other class or function is refused before it runs.
"""

from __future__ import annotations

import pickle
from pathlib import Path

from .errors import MMCLError

_NUMPY_CORE = ("numpy.core.multiarray", "numpy._core.multiarray")
ALLOWED_GLOBALS = frozenset(
    {(module, name) for module in _NUMPY_CORE for name in ("_reconstruct", "scalar")}
    | {(module, "_frombuffer") for module in ("numpy.core.numeric", "numpy._core.numeric")}
    | {("numpy", "ndarray"), ("numpy", "dtype"), ("collections", "OrderedDict")}
)


class _PlainValuesOnly(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing {module}.{name}: only arrays and plain values are read")
        return super().find_class(module, name)


def load_plain(path: Path, what: str):
    """The object in pickle `path`, refused (one `MMCLError` naming the file and `what` it should be)
    when it is not readable or holds anything but numpy arrays and plain Python values."""
    path = Path(path)
    if not path.is_file():
        raise MMCLError(f"{path}: no such file")
    try:
        with path.open("rb") as f:
            return _PlainValuesOnly(f).load()
    except (
        OSError,
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        ImportError,
        IndexError,
        KeyError,
        MemoryError,
        OverflowError,
        UnicodeDecodeError,
    ) as e:
        raise MMCLError(f"{path}: not {what} ({type(e).__name__}: {e})") from None
