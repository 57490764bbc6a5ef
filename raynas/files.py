"""Writing results files: atomically, and with one clear error naming the file.

Every file a search writes (``history.parquet``, ``checkpoint.json``, ``config.yaml``,
bench results, reports) goes through :func:`write_atomically`: it is written to a
temporary file beside it, then renamed over it, so a crash, a kill or a full disk
never leaves half a file, and the previous version stays readable. A failed write
raises :class:`~raynas.errors.WriteError` naming the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from raynas.errors import WriteError


def write_atomically(path: str | Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` to write a temporary file, then rename it to ``path``.

    Raises:
        WriteError: The file system refused (no space, read-only, permissions).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        tmp.replace(path)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise WriteError(path, exc) from exc


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`write_atomically`)."""
    write_atomically(path, lambda tmp: tmp.write_text(text))


CACHE_ENV = "RAYNAS_CACHE_DIR"


def cache_dir() -> Path:
    """raynas's cache of derived data (numbers and empty stores, never code):
    ``$RAYNAS_CACHE_DIR``, else ``~/.cache/raynas``."""
    import os

    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "raynas").expanduser()


def load_yaml(text: str):
    """YAML as ``yaml.safe_load`` reads it (no tags that build objects), except that a
    key given twice in one mapping is an error (``yaml.YAMLError`` naming the key and
    its line), not silently the last value."""
    import yaml

    class _UniqueKeys(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        seen = {}
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{key!r} is given twice (lines {seen[key] + 1} and "
                    f"{key_node.start_mark.line + 1})", key_node.start_mark)
            seen[key] = key_node.start_mark.line
        return loader.construct_mapping(node, deep=deep)

    _UniqueKeys.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    return yaml.load(text, Loader=_UniqueKeys)  # noqa: S506 - a SafeLoader subclass
