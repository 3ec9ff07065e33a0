"""Caches that make repeated commands fast; none of them ever changes an answer.

* The per-user folder (`$XDG_CACHE_HOME/veil`, else `~/.cache/veil`, mode 0700): Lark's built
  parser (see `parser.lark_cache_file`) and the key that signs the check cache.
* The check cache, `.veil-cache/` in the working directory (like `.pytest_cache`): every parsed
  file (its IR, or the diagnostics that stopped it), stored under a hash of veil's own parsing
  code, the file's name and its bytes, with the SHA-256 digest of what was stored; and the
  diagnostics of `veil check`, stored under a hash of veil's whole source and the name and
  digest of every parsed file. A changed file, a changed veil or a changed name misses; a file
  whose edit leaves its IR, spans and diagnostics as they were (a comment or blank lines at its
  end) keeps its digest, so the earlier diagnostics are reused without loading anything.
  For a repository checked file by file (`checker/units.py`) also each file's summary, each
  catalog file's diagnostics and the context's, named by hashes of veil's whole source and of
  what they were computed from, together in one entry.
  Each entry is signed with HMAC-SHA256 under the per-user key, and read only when the
  signature holds: a pickle runs code when loaded, and `.veil-cache/` sits in a working tree
  that a pull request can write to; without the key nobody can forge an entry. An entry that
  is unsigned, corrupt, truncated or moved to another file's name is a miss, never an error.
  The folder is safe to delete and ignores itself in git (it holds a `.gitignore` of `*`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import io
import operator
import os
import pickle
import secrets
import stat
import tempfile
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

import veil
from veil.diagnostics import Diagnostic, Span

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


def write_cache_file(path: Path, blob: bytes) -> None:
    """Put `blob` at `path` whole or not at all (a temporary file in the same folder, then a
    rename), so a reader never sees half an entry; a cache that cannot be written is no cache."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:
        pass


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
    for name in (
        "parser.py",
        "lalr.py",
        "transformer.py",
        "ir.py",
        "diagnostics.py",
        "grammar/veil.lark",
    ):
        digest.update(name.encode() + b"\0" + (here / name).read_bytes())
    return digest.digest()


def _source_fingerprint() -> bytes:
    """What a check depends on besides the parsed files: veil's version and all of its source
    (the checker reads the method registry, the model, the diagnostics' wording...)."""
    here = Path(veil.__file__).parent
    digest = hashlib.sha256(veil.__version__.encode())
    for path in sorted([*here.rglob("*.py"), *here.rglob("*.lark")]):
        digest.update(str(path.relative_to(here)).encode() + b"\0" + path.read_bytes())
    return digest.digest()


# --------------------------------------------------------------------------------------------
# Pickling IR fast. A frozen slotted dataclass pickles through `dataclasses`' own
# `__getstate__`/`__setstate__`, which look the fields up again for every object: at 10,000
# tables most of the time of writing and reading the cache. Here every dataclass of veil is
# written as its class and a tuple of its field values, and read back by setting the fields
# in that order.

_FIELDS: dict[type, tuple[str, ...]] = {}


def _fields(cls: type) -> tuple[str, ...]:
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


_MAKERS: dict[type, t.Callable[[tuple[object, ...]], object]] = {}


def _rebuild(cls: type, values: tuple[object, ...]) -> object:
    make = _MAKERS.get(cls)
    if make is None:
        make = _MAKERS[cls] = maker(cls)
    return make(values)


def maker(cls: type) -> t.Callable[[tuple[object, ...]], object]:
    """A function that makes a `cls` (a veil dataclass) from its field values in order, as its
    `__init__` would: straight-line code that sets each slot through its descriptor (twice as
    fast as a loop of `object.__setattr__`, three times as fast as a frozen `__init__`)."""
    names = _fields(cls)
    slots = [vars(cls).get(name) for name in names]
    if not all(type(slot).__name__ == "member_descriptor" for slot in slots):

        def make(values: tuple[object, ...]) -> object:
            obj: object = object.__new__(cls)
            for name, value in zip(names, values, strict=True):
                object.__setattr__(obj, name, value)
            return obj

        return make
    namespace: dict[str, object] = {"new": object.__new__, "cls": cls}
    code = ["def make(values):", "    obj = new(cls)"]
    for i, slot in enumerate(slots):
        namespace[f"set{i}"] = slot.__set__  # type: ignore[union-attr]
        code.append(f"    set{i}(obj, values[{i}])")
    code.append("    return obj")
    exec("\n".join(code), namespace)  # code made above from the class's fields
    return t.cast(t.Callable[[tuple[object, ...]], object], namespace["make"])


_D = t.TypeVar("_D")


def keyword_maker(cls: type[_D]) -> t.Callable[..., _D]:
    """`cls(**fields)` for a frozen slotted veil dataclass, as its `__init__` would make it but
    at a third of the cost (straight-line slot setting, defaults as declared); `cls` itself
    when it has a `__post_init__`, a default factory or a field that is not a slot. Parsing
    makes an IR node per rule, so the transformer makes its most frequent ones this way."""
    fields = dataclasses.fields(t.cast(t.Any, cls))
    slots = [vars(cls).get(f.name) for f in fields]
    if (
        hasattr(cls, "__post_init__")
        or any(f.default_factory is not dataclasses.MISSING for f in fields)
        or not all(type(slot).__name__ == "member_descriptor" for slot in slots)
    ):
        return cls
    namespace: dict[str, object] = {"_new": object.__new__, "_cls": cls}
    params, body = [], []
    for i, (f, slot) in enumerate(zip(fields, slots, strict=True)):
        if f.default is dataclasses.MISSING:
            params.append(f.name)
        else:
            namespace[f"_d{i}"] = f.default
            params.append(f"{f.name}=_d{i}")
        namespace[f"_set{i}"] = slot.__set__  # type: ignore[union-attr]
        body.append(f"    _set{i}(_obj, {f.name})")
    code = [f"def make(*, {', '.join(params)}):", "    _obj = _new(_cls)", *body, "    return _obj"]
    exec("\n".join(code), namespace)  # code made above from the class's fields
    return t.cast(t.Callable[..., _D], namespace["make"])


#: `Span(file=…, line=…, col=…, end_line=…, end_col=…)` from a tuple of those, at a third of the
#: frozen dataclass's `__init__`: parsing and the checker make one per node and column.
make_span = t.cast(t.Callable[[tuple[str, int, int, int, int]], Span], maker(Span))


_GETTERS: dict[type, t.Callable[[object], tuple[object, ...]] | None] = {}


def _getter(cls: type) -> t.Callable[[object], tuple[object, ...]] | None:
    """The field values of a veil dataclass as a tuple (None for any other class)."""
    if cls not in _GETTERS:
        _GETTERS[cls] = None
        if dataclasses.is_dataclass(cls) and cls.__module__.startswith("veil."):
            names = _fields(cls)
            if len(names) > 1:
                _GETTERS[cls] = operator.attrgetter(*names)
            else:  # attrgetter of one name gives no tuple, of none is no getter
                _GETTERS[cls] = lambda o: tuple(getattr(o, n) for n in names)
    return _GETTERS[cls]


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: object) -> t.Any:
        cls = type(obj)
        get = _getter(cls)
        if get is None:
            return NotImplemented
        return _rebuild, (cls, get(obj))


def dumps(value: object) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(value)
    return buffer.getvalue()


def content_digest(value: object) -> bytes:
    """SHA-256 of a value of veil's dataclasses, tuples and scalars that depends on the values
    only (a pickle without its memo, so objects shared or not, read from the cache or parsed,
    give the same bytes); spans included."""
    buffer = io.BytesIO()
    pickler = _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.fast = True  # no memo: the IR is a tree
    pickler.dump(value)
    return hashlib.sha256(buffer.getvalue()).digest()


@dataclass
class ParseCache:
    """Parsed files by content, in `<root>/.veil-cache/parse/`, and check results by the
    parsed content of a whole repository, in `<root>/.veil-cache/result/`. `hits` and
    `misses` count lookups of parsed files, `result_hits` of results (tests read them).

    A parsed file's entry is `MAC(name, digest) ‖ digest ‖ pickle`, `digest` being the
    pickle's SHA-256: the digest stands for the parsed file (the same digest, the same IR
    with the same spans and diagnostics), and can be read and trusted without reading the
    pickle. A result's entry is `MAC(name, pickle) ‖ pickle`."""

    folder: Path
    key: bytes
    fingerprint: bytes
    hits: int = 0
    misses: int = 0
    result_hits: int = 0
    _ready: bool = field(default=False, repr=False)
    _source: bytes | None = field(default=None, repr=False)

    @staticmethod
    def open(root: Path | None = None) -> ParseCache | None:
        """The cache under `root` (the working directory), or None when it is turned off or
        there is no private key to sign it with."""
        if os.environ.get(DISABLE):
            return None
        key = _signing_key()
        if key is None:
            return None
        folder = (root or Path.cwd()) / FOLDER
        return ParseCache(folder=folder, key=key, fingerprint=_code_fingerprint())

    def _name(self, display: str, data: bytes) -> str:
        digest = hashlib.sha256(self.fingerprint)
        digest.update(len(display).to_bytes(8, "big") + display.encode("utf-8", "surrogatepass"))
        digest.update(data)
        return digest.hexdigest()

    def _mac(self, name: str, payload: bytes) -> bytes:
        return hmac.new(self.key, name.encode() + b"\0" + payload, hashlib.sha256).digest()

    def digest(self, display: str, data: bytes) -> bytes | None:
        """The digest of the parsed file, if it is in the cache (reads 64 bytes)."""
        name = self._name(display, data)
        try:
            with open(self.folder / "parse" / name, "rb") as f:
                head = f.read(64)
        except OSError:
            return None
        if len(head) == 64 and hmac.compare_digest(head[:32], self._mac(name, head[32:])):
            return head[32:]
        return None

    def get(self, display: str, data: bytes) -> object | None:
        name = self._name(display, data)
        try:
            blob = (self.folder / "parse" / name).read_bytes()
        except OSError:
            self.misses += 1
            return None
        mac, digest, payload = blob[:32], blob[32:64], blob[64:]
        if (
            len(blob) > 64
            and hmac.compare_digest(mac, self._mac(name, digest))
            and hmac.compare_digest(digest, hashlib.sha256(payload).digest())
        ):
            value = _loads(payload)
            if value is not None:
                self.hits += 1
                return value
        self.misses += 1
        return None

    def put(
        self, display: str, data: bytes, value: object, payload: bytes | None = None
    ) -> bytes | None:
        """Store a parsed file (`payload`: its pickle, when there is one); its digest, or None
        when it cannot be stored."""
        name = self._name(display, data)
        try:
            payload = payload or dumps(value)
        except (pickle.PicklingError, RecursionError):
            return None
        digest = hashlib.sha256(payload).digest()
        self._write("parse", name, self._mac(name, digest) + digest + payload)
        return digest

    def result_key(self, files: list[tuple[str, bytes]]) -> str:
        """The name of the result of checking these files (display name, digest), in order."""
        key = hashlib.sha256(b"result\0" + self.source_fingerprint())
        for display, digest in files:
            encoded = display.encode("utf-8", "surrogatepass")
            key.update(len(encoded).to_bytes(8, "big") + encoded + digest)
        return key.hexdigest()

    def get_result(self, name: str) -> tuple[Diagnostic, ...] | None:
        value = as_diagnostics(self.get_entry("result", name))
        if value is not None:
            self.result_hits += 1
        return value

    def put_result(self, name: str, value: tuple[Diagnostic, ...]) -> None:
        self.put_entry("result", name, value)

    def entry_name(self, kind: str, *parts: bytes) -> str:
        """The name of an entry of `kind` made of `parts` (and veil's whole source)."""
        key = hashlib.sha256(kind.encode() + b"\0" + self.source_fingerprint())
        for part in parts:
            key.update(len(part).to_bytes(8, "big") + part)
        return key.hexdigest()

    def source_fingerprint(self) -> bytes:
        """`_source_fingerprint`, read once per cache (it reads all of veil's source)."""
        if self._source is None:
            self._source = _source_fingerprint()
        return self._source

    def get_entry(self, kind: str, name: str) -> object | None:
        """A signed entry of `kind` (a folder: `result`, `summary`, `unit`), or None."""
        try:
            blob = (self.folder / kind / name).read_bytes()
        except OSError:
            return None
        mac, payload = blob[:32], blob[32:]
        if len(blob) > 32 and hmac.compare_digest(mac, self._mac(name, payload)):
            return _loads(payload)
        return None

    def put_entry(self, kind: str, name: str, value: object) -> None:
        try:
            payload = dumps(value)
        except (pickle.PicklingError, RecursionError):
            return
        self._write(kind, name, self._mac(name, payload) + payload)

    def _write(self, kind: str, name: str, blob: bytes) -> None:
        try:
            folder = self._prepare() / kind
            folder.mkdir(exist_ok=True)
        except OSError:
            return  # a cache that cannot be written is no cache
        write_cache_file(folder / name, blob)

    def _prepare(self) -> Path:
        if not self._ready:
            self.folder.mkdir(parents=True, exist_ok=True)
            ignore = self.folder / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# veil's check cache: safe to delete\n*\n", encoding="utf-8")
            self._ready = True
        return self.folder


def as_diagnostics(value: object) -> tuple[Diagnostic, ...] | None:
    """`value` when it is a tuple of diagnostics (what a result entry holds), else None."""
    if isinstance(value, tuple) and all(isinstance(d, Diagnostic) for d in value):
        return value
    return None


def _loads(payload: bytes) -> object | None:
    try:
        value: object = pickle.loads(payload)
    except Exception:  # signed but unreadable (another Python?): a miss, not an error
        return None
    return value
