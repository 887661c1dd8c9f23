"""A folder (or glob) of text files as records, one a file, for `load` to embed as it embeds image folders.

Each file becomes a `records.Record` with the fields id and path (the path relative to the folder, with `/`), title
(the first Markdown, RST, AsciiDoc or Org heading, else the first non-empty line, at most TITLE_CHARS), size (bytes),
mtime (Unix seconds) and text (the whole file, UTF-8). A file that cannot be a document yields a reject, a record with
`error` set, never an exception: a binary file (a NUL byte in its first 8 KB), one that is not UTF-8, one over the
size limit (DEFAULT_MAX_BYTES, 10 MiB), a symlink that leads out of the folder, one that cannot be read (permissions),
and anything that is not a plain file (a FIFO or a device is never opened for reading: its type is checked first, and
the file is opened with O_NONBLOCK and checked again on the open descriptor). A reject's data holds its id where the
id is readable, so that --prune can keep that document.

A folder is walked without following symlinked folders (no loops, nothing outside it), leaving out hidden folders
and files (names starting with "."), taking files with one of `extensions` (TEXT_EXTENSIONS). A glob takes what it
matches, whatever the extension; its ids start at the part of the pattern before the first wildcard, as an image
glob's do (`records.image_folder`). No file is held in memory beyond the size limit, plus one chunk.
"""

from __future__ import annotations

import codecs
import os
import re
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from vsearch.errors import InputError
from vsearch.records import Record, image_folder, is_unicode

TEXT_EXTENSIONS = frozenset({
    ".txt", ".text", ".md", ".markdown", ".mdown", ".mkd", ".mdx", ".rst", ".rest", ".org", ".adoc", ".asciidoc",
    ".asc", ".textile", ".wiki",
})
DEFAULT_MAX_BYTES = 10 * 2**20  # 10 MiB: a long book is 1-2 MB; past this a "text" file is usually a dump or a log
BINARY_PROBE = 8192  # a NUL byte in this many first bytes makes a file binary, as git and grep decide
READ_CHUNK = 1 << 20
TITLE_CHARS = 200
TITLE_LINES = 200  # a heading is looked for in this many first lines
ELLIPSIS = "…"


def read_text_files(source: str, extensions: Iterable[str] = TEXT_EXTENSIONS,
                    max_bytes: int = DEFAULT_MAX_BYTES) -> Iterator[Record]:
    """The records of a folder, glob or single file of texts (see the module's docstring), in path order.

    Raises InputError only for the source itself (a folder that does not exist); each bad file is a reject.
    """
    root, paths = _listing(source, frozenset(e.lower() for e in extensions))
    resolved_root = root.resolve()
    for number, path in enumerate(paths, start=1):
        relative = Path(os.path.relpath(path, root)).as_posix()
        if not is_unicode(relative):
            yield Record(source, number, {}, raw=relative, error=f"file name {ascii(str(path))} is not UTF-8: it "
                         "cannot be an id; rename the file")
            continue
        try:
            info, text = read_text_file(path, resolved_root, max_bytes)
        except InputError as exc:
            yield Record(source, number, {"id": relative}, raw=relative, error=f"{relative}: {exc}")
            continue
        yield Record(source, number, {
            "id": relative, "path": relative, "title": title_of(text, path.suffix.lower()), "size": info.st_size,
            "mtime": int(info.st_mtime), "text": text,
        }, raw=relative)


def text_files(source: str, extensions: Iterable[str] = TEXT_EXTENSIONS) -> list[Path]:
    """The paths `read_text_files` reads, in its order."""
    return _listing(source, frozenset(e.lower() for e in extensions))[1]


def _listing(source: str, extensions: frozenset[str]) -> tuple[Path, list[Path]]:
    given = Path(source)
    if given.is_dir():
        return given, list(_walk(given, extensions))
    if any(c in source for c in "*?[") and not given.is_file():
        import glob

        # Folders (and symlinks to folders) are left out as a folder's walk leaves them; a broken symlink is
        # listed, to be rejected.
        found = (Path(p) for p in glob.glob(source, recursive=True))
        return image_folder(source), sorted(p for p in found if not p.is_dir())
    if given.is_file() or given.is_symlink():
        return given.parent, [given]
    if os.path.lexists(given):  # a FIFO or device given by name: listed, to be rejected unopened
        return given.parent, [given]
    raise InputError(f"folder not found: {source}")


def _walk(folder: Path, extensions: frozenset[str]) -> Iterator[Path]:
    """Files under `folder` with one of the extensions, sorted, hidden ones and symlinked folders left out. An
    unreadable subfolder is left out too (os.walk cannot list it)."""
    for directory, folders, files in os.walk(folder, followlinks=False):
        folders[:] = sorted(f for f in folders if not f.startswith("."))
        base = Path(directory)
        for name in sorted(files):
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in extensions:
                yield base / name


def read_text_file(path: Path, root: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[os.stat_result, str]:
    """The file's stat and text; InputError saying why it cannot be a text document. `root` (resolved): where a
    symlink may lead."""
    try:
        link = path.lstat()
    except OSError as exc:
        raise InputError(_os_reason(exc)) from None
    target = path
    if stat.S_ISLNK(link.st_mode):
        target = path.resolve()
        if not target.is_relative_to(root):
            raise InputError(f"a symlink that leads out of the folder {root} (to {target}): left out")
        if not target.exists():
            raise InputError("a symlink to a file that does not exist")
    try:
        info = target.stat()  # never blocks, whatever the file is
    except OSError as exc:
        raise InputError(_os_reason(exc)) from None
    _check_plain(info.st_mode)
    if info.st_size > max_bytes:
        raise InputError(f"{info.st_size:,} bytes, over the {_size(max_bytes)} limit for a text file")
    data = _read_bounded(target, max_bytes)
    nul = data.find(b"\0", 0, BINARY_PROBE)
    if nul >= 0:
        raise InputError(f"a binary file (a NUL byte at offset {nul}), not text")
    try:
        text = codecs.decode(data, "utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(f"not UTF-8 text (byte 0x{data[exc.start]:02x} at line {line}): convert it to UTF-8 "
                         "(e.g. iconv -f latin1 -t utf-8)") from None
    return info, text


def _read_bounded(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, opened without blocking and checked to be a plain file on the open descriptor itself (a
    file swapped for a FIFO after the first check still cannot block); never more than max_bytes + one chunk held."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        raise InputError(_os_reason(exc)) from None
    with os.fdopen(descriptor, "rb", buffering=0) as handle:
        _check_plain(os.fstat(descriptor).st_mode)
        os.set_blocking(descriptor, True)
        chunks: list[bytes] = []
        total = 0
        try:
            while chunk := handle.read(min(READ_CHUNK, max_bytes + 1 - total)):
                if not chunks and b"\0" in chunk[:BINARY_PROBE]:
                    return chunk[:BINARY_PROBE]  # binary: the caller says so, no need to read the rest
                chunks.append(chunk)
                total += len(chunk)
                if total > max_bytes:
                    raise InputError(f"over the {_size(max_bytes)} limit for a text file (it grew while read)")
        except OSError as exc:
            raise InputError(_os_reason(exc)) from None
    return b"".join(chunks)


def _check_plain(mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kind = ("a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else
            "a socket" if stat.S_ISSOCK(mode) else "a device")
    raise InputError(f"{kind}, not a file: left out unread")


def _os_reason(exc: OSError) -> str:
    return f"cannot read it: {exc.strerror or exc}"


def _size(count: int) -> str:
    return f"{count / 2**20:g} MiB" if count >= 2**20 else f"{count:,} bytes"


# -- titles ------------------------------------------------------------------------------------------------------

_ATX = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$")
_ADOC = re.compile(r"^={1,6}[ \t]+(\S.*)$")
_ORG_TITLE = re.compile(r"^#\+title:[ \t]*(.+)$", re.IGNORECASE)
_ORG_HEADING = re.compile(r"^\*+[ \t]+(.+)$")
_FRONT_TITLE = re.compile(r"^title:[ \t]*(.+)$", re.IGNORECASE)
# An RST (or Markdown setext) underline: one punctuation character repeated.
_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+_:.!$%&,;<>?@\\/|])\1+[ \t]*$|^[=\-][ \t]*$")
_SKIPPED = re.compile(r"^(?:\.\.(?:\s|$)|<!--|#\+\w+:|:\w+:|\[//\]:)")


def title_of(text: str, suffix: str = "") -> str:
    """A file's title: its front matter's `title:`, else its first heading (Markdown `#` or setext, RST over- and
    underlined, AsciiDoc `=`, Org `#+TITLE:` or `*`), in its first TITLE_LINES lines; else its first non-empty line
    that is not markup (an RST directive, an HTML comment); at most TITLE_CHARS, cut at a word with "…". `suffix`
    (the file's extension) turns on Org's `*` headings, which in Markdown are list items."""
    head = text[:TITLE_LINES * 400]
    lines = head.splitlines()[:TITLE_LINES]
    start = 0
    if lines and lines[0].strip() in ("---", "+++"):  # YAML (or TOML) front matter
        fence = lines[0].strip()
        for i in range(1, len(lines)):
            if lines[i].strip() in (fence, "..."):
                for line in lines[1:i]:
                    found = _FRONT_TITLE.match(line.strip()) or re.match(r'^title\s*=\s*(.+)$', line.strip())
                    if found and found.group(1).strip(" \"'"):
                        return _bounded(found.group(1).strip().strip("\"'"))
                start = i + 1
                break
    lines = lines[start:]
    first_line = None
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line:
            continue
        following = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if _UNDERLINE.match(line) and i + 2 < len(lines) and lines[i + 2].strip() == line and following:
            return _bounded(following)  # RST title with an overline
        for pattern in (_ORG_TITLE, _ATX, _ADOC) + ((_ORG_HEADING,) if suffix == ".org" else ()):
            found = pattern.match(raw if pattern is _ATX else line)
            if found and found.group(1).strip():
                return _bounded(found.group(1))
        if following and _UNDERLINE.match(following) and not _UNDERLINE.match(line):
            return _bounded(line)  # a Markdown setext heading, an RST title
        if first_line is None and not _SKIPPED.match(line) and not _UNDERLINE.match(line):
            first_line = line
    return _bounded(first_line or "")


def _bounded(title: str) -> str:
    title = " ".join(title.split())
    if len(title) <= TITLE_CHARS:
        return title
    cut = title.rfind(" ", 0, TITLE_CHARS)
    return (title[:cut] if cut > TITLE_CHARS // 2 else title[:TITLE_CHARS - 1]).rstrip() + ELLIPSIS
