"""Caches that make repeated commands fast; none of them ever changes an answer.

* The per-user folder (`$XDG_CACHE_HOME/veil`, else `~/.cache/veil`, mode 0700): Lark's built
  parser (see `parser.lark_cache_file`) and the key that signs the check cache.
* The check cache, `.veil-cache/` in the working directory (like `.pytest_cache`): every parsed
  file (its IR, or the diagnostics that stopped it), stored under a hash of veil's own parsing
  code, the file's name and its bytes. A changed file, a changed veil or a changed name misses.
  Each entry is a pickle signed with HMAC-SHA256 under the per-user key, and read only when the
  signature holds: a pickle runs code when loaded, and `.veil-cache/` sits in a working tree
  that a pull request can write to; without the key nobody can forge an entry. An entry that
  is unsigned, corrupt, truncated or moved to another file's name is a miss, never an error.
  The folder is safe to delete and ignores itself in git (it holds a `.gitignore` of `*`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pickle
import secrets
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import veil

FOLDER = ".veil-cache"
#: Set to any value to turn the check cache off (the bench measures cold runs with it).
DISABLE = "VEIL_NO_CACHE"


def private_folder() -> Path | None:
    """The current user's cache folder, created 0700; None when there is none that only this
    user can write (no home, a read-only one, or a folder others can write)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = Path(base) / "veil"
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = folder.stat()
        if info.st_uid != os.getuid() or info.st_mode & 0o022:
            return None
    except (OSError, AttributeError):  # no home, read-only, or no getuid (Windows)
        return None
    return folder


def private_file_ok(path: Path) -> bool:
    """A regular file of the current user that nobody else can write (or no file yet)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return stat.S_ISREG(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o022


def _signing_key() -> bytes | None:
    folder = private_folder()
    if folder is None:
        return None
    path = folder / "check-cache.key"
    try:
        if not private_file_ok(path):
            return None
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(secrets.token_bytes(32))
        key = path.read_bytes()
    except OSError:
        return None
    return key if len(key) == 32 else None


def _code_fingerprint() -> bytes:
    """What a parse depends on besides the file: veil's version and the source of the modules
    that turn text into IR (so a development checkout never reads entries of older code)."""
    here = Path(veil.__file__).parent
    digest = hashlib.sha256(veil.__version__.encode())
    for name in ("parser.py", "transformer.py", "ir.py", "diagnostics.py", "grammar/veil.lark"):
        digest.update(name.encode() + b"\0" + (here / name).read_bytes())
    return digest.digest()


@dataclass
class ParseCache:
    """Parsed files by content, in `<root>/.veil-cache/parse/`. `hits` and `misses` count
    lookups (a test reads them)."""

    folder: Path
    key: bytes
    fingerprint: bytes
    hits: int = 0
    misses: int = 0
    _ready: bool = field(default=False, repr=False)

    @staticmethod
    def open(root: Path | None = None) -> ParseCache | None:
        """The cache under `root` (the working directory), or None when it is turned off or
        there is no private key to sign it with."""
        if os.environ.get(DISABLE):
            return None
        key = _signing_key()
        if key is None:
            return None
        folder = (root or Path.cwd()) / FOLDER / "parse"
        return ParseCache(folder=folder, key=key, fingerprint=_code_fingerprint())

    def _name(self, display: str, data: bytes) -> str:
        digest = hashlib.sha256(self.fingerprint)
        digest.update(len(display).to_bytes(8, "big") + display.encode("utf-8", "surrogatepass"))
        digest.update(data)
        return digest.hexdigest()

    def _mac(self, name: str, payload: bytes) -> bytes:
        return hmac.new(self.key, name.encode() + b"\0" + payload, hashlib.sha256).digest()

    def get(self, display: str, data: bytes) -> object | None:
        name = self._name(display, data)
        try:
            blob = (self.folder / name).read_bytes()
        except OSError:
            self.misses += 1
            return None
        mac, payload = blob[:32], blob[32:]
        if len(blob) > 32 and hmac.compare_digest(mac, self._mac(name, payload)):
            value: object = None
            try:
                value = pickle.loads(payload)
            except Exception:  # signed but unreadable (another Python?): a miss, not an error
                value = None
            if value is not None:
                self.hits += 1
                return value
        self.misses += 1
        return None

    def put(self, display: str, data: bytes, value: object) -> None:
        name = self._name(display, data)
        try:
            self._prepare()
            payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.folder)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(self._mac(name, payload) + payload)
                os.replace(tmp, self.folder / name)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except (OSError, pickle.PicklingError, RecursionError):
            pass  # a cache that cannot be written is no cache

    def _prepare(self) -> None:
        if self._ready:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        ignore = self.folder.parent / ".gitignore"
        if not ignore.exists():
            ignore.write_text("# veil's check cache: safe to delete\n*\n", encoding="utf-8")
        self._ready = True
