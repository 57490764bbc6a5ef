"""What raynas lets Ray Tune unpickle when a training search resumes.

``Tuner.restore`` unpickles ``tuner.pkl`` and the search algorithm's state
(``search_gen_state-*.json`` is a cloudpickle file), and runs cloudpickle on blobs that
``experiment_state-*.json`` embeds; a result grid unpickles a trial's ``error.pkl``. A
crafted file in a results folder would run code. So raynas signs every such file that
it lets Tune write, and checks the signatures before it restores anything:

* The signature of a file is an HMAC-SHA256 of its path in the experiment and its
  bytes, with a key private to the user: the file named by ``$RAYNAS_TRUST_KEY``, or
  ``~/.config/raynas/trust-key`` (created on first use, mode 0600). Nobody without the
  key can sign a file; a folder copied from another machine or user does not verify.
* Signatures go to ``<results folder>/tune-signatures.json``. Tune's files are signed
  the moment Tune has written them: ``tuner.pkl`` when the ``Tuner`` is built, the
  experiment and searcher state by :class:`TuneSigner` inside Tune's own save (before
  Tune copies them to the storage path), so a search killed at any moment resumes.
* Before ``Tuner.restore``, :func:`verify_experiment` checks every top-level file of
  Tune's experiment and every ``*.pkl`` below it. A top-level file that fails refuses
  the resume (:class:`~raynas.errors.UntrustedFolderError`) unless the user trusts the
  folder (``raynas search --resume DIR --trust-folder``). A trial's ``params.pkl`` or
  ``error.pkl`` that fails is not needed to resume: it is renamed ``*.untrusted`` and
  never loaded.

Everything else raynas reads back from a results folder is JSON, YAML (``safe_load``),
Parquet or torch weights (``weights_only=True``), none of which can run code.

Example:
    >>> problems = verify_experiment("results/run1", "results/run1/tune")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from ray.tune import Callback

from raynas.errors import StartupError, UntrustedFolderError
from raynas.files import write_text
from raynas.tune.experiment import filesystem

logger = logging.getLogger(__name__)

KEY_ENV = "RAYNAS_TRUST_KEY"
SIGNATURES_FILE = "tune-signatures.json"
UNTRUSTED_SUFFIX = ".untrusted"
_KEEP = 8  # signatures kept per file: storage may lag behind the newest staged copy
_IGNORED = frozenset({".validate_storage_marker"})  # Tune checks it exists; never reads it


def key_path() -> Path:
    """Where the signing key lives: ``$RAYNAS_TRUST_KEY``, else ``~/.config/raynas/trust-key``
    (``$XDG_CONFIG_HOME`` respected)."""
    if os.environ.get(KEY_ENV):
        return Path(os.environ[KEY_ENV]).expanduser()
    config = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "raynas" / "trust-key"


def trust_key() -> bytes:
    """The signing key, created (random, mode 0600) if it does not exist yet."""
    path = key_path()
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process made it first
        except OSError as exc:
            raise StartupError(f"cannot create the raynas trust key {path}: {exc.strerror}; "
                               f"set ${KEY_ENV} to a file you can write, or create it there "
                               "(docs/cluster.md, section 6)") from None
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32) + "\n")
    key = path.read_text().strip()
    if len(key) < 32:
        raise UntrustedFolderError(f"{path}: the raynas trust key is too short (expected 64 "
                                   "hex digits); delete it and a new one is made")
    return key.encode()


def signature(key: bytes, relpath: str, data: bytes) -> str:
    """HMAC-SHA256 of a file's path in the experiment and its bytes."""
    mac = hmac.new(key, relpath.encode() + b"\0", hashlib.sha256)
    mac.update(data)
    return mac.hexdigest()


def _checked(relpath: str) -> bool:
    """Files Tune may unpickle: every top-level file, and pickles anywhere below."""
    name = relpath.rsplit("/", 1)[-1]
    if name in _IGNORED or name.endswith(UNTRUSTED_SUFFIX):
        return False
    return "/" not in relpath or name.endswith((".pkl", ".pickle"))


class Signatures:
    """The signatures file of a results folder: relative path -> recent signatures."""

    def __init__(self, out_dir: str | Path) -> None:
        self.path = Path(out_dir) / SIGNATURES_FILE
        self.files: dict[str, list[str]] = {}
        if self.path.is_file():
            try:
                self.files = dict(json.loads(self.path.read_text())["files"])
            except (ValueError, KeyError, TypeError):
                logger.warning("%s is unreadable; starting a new one", self.path)

    def add(self, key: bytes, relpath: str, data: bytes) -> bool:
        """Sign ``data`` as ``relpath``; ``True`` if the signature is new."""
        sig = signature(key, relpath, data)
        known = self.files.setdefault(relpath, [])
        if sig in known:
            return False
        known.append(sig)
        del known[:-_KEEP]
        return True

    def check(self, key: bytes, relpath: str, data: bytes) -> bool:
        return signature(key, relpath, data) in self.files.get(relpath, ())

    def save(self) -> None:
        write_text(self.path, json.dumps({"version": 1, "files": self.files}, indent=0))


def _read(fs, path: str) -> bytes:
    with fs.open_input_stream(path) as f:
        return f.read()


def sign_files(out_dir: str | Path, experiment_uri: str, relpaths: list[str]) -> None:
    """Sign files of the experiment at the storage path (written there directly, not
    through Tune's staging folder: ``tuner.pkl``, raynas's identity file)."""
    fs, root = filesystem(experiment_uri)
    key, sigs = trust_key(), Signatures(out_dir)
    for rel in relpaths:
        sigs.add(key, rel, _read(fs, f"{root}/{rel}"))
    sigs.save()


def verify_experiment(out_dir: str | Path, experiment_uri: str, trust: bool = False) -> list[str]:
    """Check the Tune experiment at ``experiment_uri`` before it is restored.

    Returns the trial files that failed and were set aside (renamed ``*.untrusted``).

    Raises:
        UntrustedFolderError: A top-level file is unsigned or changed, and ``trust`` is off.
    """
    import pyarrow.fs as pafs

    fs, root = filesystem(experiment_uri)
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=True))
    files = sorted(i.path[len(root) + 1:] for i in infos if i.type == pafs.FileType.File)
    key, sigs = trust_key(), Signatures(out_dir)
    bad = [rel for rel in files if _checked(rel) and not sigs.check(key, rel, _read(fs, f"{root}/{rel}"))]
    if trust:
        if bad:
            logger.warning("trusting %d unsigned file(s) in %s (--trust-folder): %s", len(bad),
                           experiment_uri, ", ".join(bad[:5]))
        return []
    top = [rel for rel in bad if "/" not in rel]
    if top:
        shown = ", ".join(top[:3]) + (f" and {len(top) - 3} more" if len(top) > 3 else "")
        one = len(top) == 1
        reason = ("the folder has no signatures (it was not made by this raynas, or by a "
                  "version before signatures)" if not sigs.files else
                  f"raynas on this machine did not write {'it' if one else 'them'}, or "
                  f"{'it' if one else 'they'} changed since")
        raise UntrustedFolderError(
            f"{experiment_uri}: {shown} {'is' if one else 'are'} not signed by this machine's "
            f"raynas key ({key_path()}): {reason}. Resuming would let Ray Tune unpickle "
            f"{'it' if one else 'them'}, which can run code. If you trust this folder, resume "
            "with --trust-folder"
        )
    for rel in bad:  # trial-level pickles: not needed to resume; never loaded
        fs.move(f"{root}/{rel}", f"{root}/{rel}{UNTRUSTED_SUFFIX}")
        logger.warning("%s/%s is not signed; renamed it %s and left it unread", experiment_uri,
                       rel, UNTRUSTED_SUFFIX)
    return bad


class TuneSigner(Callback):
    """A Tune callback that signs the experiment's files inside Tune's own save.

    Tune saves the experiment state, then the search algorithm's (whose base searcher,
    a :class:`~raynas.tune.runner.PolicySearcher`, records the staging folder), then
    asks every callback for its state: that is when this callback signs what Tune has
    just written, before Tune copies the staging folder to the storage path. It keeps
    no state in Tune (so Tune writes no callback pickle), and never pickles the key.

    Args:
        searcher: The search's :class:`~raynas.tune.runner.PolicySearcher`.
        out_dir: The results folder (where the signatures file lives).
    """

    def __init__(self, searcher: Any, out_dir: str | Path) -> None:
        self.searcher = searcher
        self.out_dir = str(out_dir)
        self._seen: dict[str, tuple[int, int]] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_seen": {}}

    def get_state(self) -> None:
        staging = getattr(self.searcher, "staging_dir", None)
        if staging:
            self.sign_staged(Path(staging))
        return None

    def sign_staged(self, staging: Path) -> None:
        """Sign the files of Tune's staging folder that Tune may unpickle (those changed
        since the last call)."""
        key, sigs, changed = None, None, False
        for path in staging.rglob("*"):
            rel = path.relative_to(staging).as_posix()
            if not path.is_file() or not _checked(rel):
                continue
            stat = path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
            if self._seen.get(rel) == stamp:
                continue
            if key is None:
                key, sigs = trust_key(), Signatures(self.out_dir)
            changed |= sigs.add(key, rel, path.read_bytes())
            self._seen[rel] = stamp
        if changed:
            sigs.save()
