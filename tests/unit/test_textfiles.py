"""vsearch.textfiles: a folder or glob of text files as records; each bad file a reject, never an exception."""

from __future__ import annotations

import os
import socket
import stat
import threading
import time
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from vsearch import textfiles
from vsearch.errors import InputError
from vsearch.records import Record
from vsearch.textfiles import DEFAULT_MAX_BYTES, TITLE_CHARS, read_text_files, text_files, title_of


def by_id(records: list[Record]) -> dict[str, Record]:
    return {r.data.get("id", r.raw): r for r in records}


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    return path


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    root = tmp_path / "notes"
    write(root / "a.md", "# Alpha notes\n\nSome text about alpha.\n")
    write(root / "sub" / "b.txt", "First line is the title\nand then more.\n")
    write(root / "sub" / "deeper" / "c.rst", "=====\nGamma\n=====\n\nBody.\n")
    write(root / "image.png", b"\x89PNG\r\n\x1a\n\0\0\0")  # not a text extension: not listed
    write(root / ".hidden" / "secret.md", "# hidden\n")
    write(root / ".dotfile.md", "# dot\n")
    return root


def test_a_folder_becomes_records_with_path_title_size_mtime_text(notes: Path):
    records = list(read_text_files(str(notes)))
    assert [r.data["id"] for r in records] == ["a.md", "sub/b.txt", "sub/deeper/c.rst"]
    first = records[0]
    assert first.error is None and first.source == str(notes) and first.line == 1 and first.raw == "a.md"
    assert first.data == {"id": "a.md", "path": "a.md", "title": "Alpha notes", "size": 38,
                          "mtime": int((notes / "a.md").stat().st_mtime), "text": "# Alpha notes\n\nSome text about alpha.\n"}
    assert records[1].data["title"] == "First line is the title"
    assert records[2].data["title"] == "Gamma"


def test_extensions_are_a_choice_and_case_does_not_matter(tmp_path: Path):
    write(tmp_path / "A.MD", "upper")
    write(tmp_path / "b.log", "log line")
    assert [r.data["id"] for r in read_text_files(str(tmp_path))] == ["A.MD"]
    assert [r.data["id"] for r in read_text_files(str(tmp_path), extensions=[".LOG"])] == ["b.log"]


def test_a_glob_reads_what_it_matches_with_ids_from_its_fixed_part(notes: Path):
    records = list(read_text_files(str(notes / "sub" / "**" / "*")))
    assert [r.data["id"] for r in records] == ["b.txt", "deeper/c.rst"]  # folders are not files
    assert [r.data["id"] for r in read_text_files(str(notes / "*.md"))] == ["a.md"]  # no hidden file


def test_a_single_file(notes: Path):
    (record,) = read_text_files(str(notes / "sub" / "b.txt"))
    assert record.data["id"] == "b.txt" and record.error is None


def test_a_missing_folder_is_an_error_not_a_reject(tmp_path: Path):
    with pytest.raises(InputError, match="folder not found"):
        list(read_text_files(str(tmp_path / "nope")))


def test_an_empty_folder_and_an_empty_file(tmp_path: Path):
    assert list(read_text_files(str(tmp_path))) == []
    write(tmp_path / "empty.txt", "")
    (record,) = read_text_files(str(tmp_path))
    assert record.error is None and record.data["text"] == "" and record.data["title"] == ""


def rejected(folder: Path, name: str, **options) -> str:
    found = by_id(list(read_text_files(str(folder), **options)))[name]
    assert found.error is not None and found.data == {"id": name} and found.raw == name
    assert found.error.startswith(f"{name}: ")
    return found.error


def test_binary_file_is_a_reject(tmp_path: Path):
    write(tmp_path / "bin.txt", b"text then \0 a NUL")
    write(tmp_path / "ok.txt", "fine")
    assert "binary file (a NUL byte at offset 10)" in rejected(tmp_path, "bin.txt")
    assert by_id(list(read_text_files(str(tmp_path))))["ok.txt"].error is None


def test_a_nul_past_the_first_8_kb_is_text(tmp_path: Path):
    write(tmp_path / "late.txt", b"a" * 9000 + b"\0")
    (record,) = read_text_files(str(tmp_path))
    assert record.error is None and record.data["text"].endswith("\0")


def test_not_utf8_is_a_reject_naming_the_line(tmp_path: Path):
    write(tmp_path / "latin.txt", "line one\ncaf\xe9\n".encode("latin-1"))
    assert "not UTF-8 text (byte 0xe9 at line 2)" in rejected(tmp_path, "latin.txt")


def test_a_byte_order_mark_is_dropped(tmp_path: Path):
    write(tmp_path / "bom.md", "\ufeff# Title\n".encode("utf-8"))
    (record,) = read_text_files(str(tmp_path))
    assert record.data["text"] == "# Title\n" and record.data["title"] == "Title"


def test_over_the_size_limit_is_a_reject_read_no_further(tmp_path: Path):
    write(tmp_path / "big.txt", "x" * 2000)
    assert "2,000 bytes, over the 1,000 bytes limit" in rejected(tmp_path, "big.txt", max_bytes=1000)
    assert DEFAULT_MAX_BYTES == 10 * 2**20


def test_a_file_that_grows_past_the_limit_while_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = write(tmp_path / "growing.txt", "x" * 10)
    real_stat = Path.stat

    def small_stat(self, *args, **kwargs):
        result = real_stat(self, *args, **kwargs)
        if self == path and kwargs.get("follow_symlinks", True):
            path.write_text("x" * 5000)  # grows after its size was checked
        return result

    monkeypatch.setattr(Path, "stat", small_stat)
    assert "it grew while read" in rejected(tmp_path, "growing.txt", max_bytes=1000)


def test_symlinks_inside_are_read_and_outside_are_rejects(tmp_path: Path):
    root = tmp_path / "root"
    write(root / "real.md", "# Real")
    write(tmp_path / "outside.md", "# Outside secret")
    (root / "inside-link.md").symlink_to(root / "real.md")
    (root / "outside-link.md").symlink_to(tmp_path / "outside.md")
    (root / "broken.md").symlink_to(root / "missing.md")
    (root / "linked-folder").symlink_to(tmp_path, target_is_directory=True)  # not followed: no loop, no leak
    records = by_id(list(read_text_files(str(root))))
    assert set(records) == {"real.md", "inside-link.md", "outside-link.md", "broken.md"}
    assert records["inside-link.md"].data["text"] == "# Real"
    assert "symlink that leads out of the folder" in records["outside-link.md"].error
    assert "Outside secret" not in str(records["outside-link.md"])
    assert "does not exist" in records["broken.md"].error


def test_a_fifo_is_a_reject_and_is_never_opened(tmp_path: Path):
    os.mkfifo(tmp_path / "pipe.txt")
    write(tmp_path / "after.txt", "still read")
    result: list[Record] = []
    reader = threading.Thread(target=lambda: result.extend(read_text_files(str(tmp_path))), daemon=True)
    reader.start()
    reader.join(5)
    assert not reader.is_alive(), "reading a folder with a FIFO blocked"
    records = by_id(result)
    assert "a FIFO, not a file" in records["pipe.txt"].error
    assert records["after.txt"].data["text"] == "still read"


def test_a_fifo_swapped_in_after_the_check_does_not_block(tmp_path: Path):
    fifo = tmp_path / "swap.txt"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(InputError, match="a FIFO, not a file"):
        textfiles._read_bounded(fifo, 1000)  # the open itself: O_NONBLOCK, then fstat
    assert time.monotonic() - started < 2


def test_a_socket_is_a_reject(tmp_path: Path):
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(tmp_path / "sock.md"))
        assert "a socket, not a file" in rejected(tmp_path, "sock.md")
    finally:
        server.close()


def test_a_device_is_a_reject(tmp_path: Path):
    try:
        os.mknod(tmp_path / "null.txt", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    except (PermissionError, OSError):
        pytest.skip("cannot make a device node here")
    assert "a device, not a file" in rejected(tmp_path, "null.txt")


def test_an_unreadable_file_is_a_reject(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = write(tmp_path / "locked.txt", "secret")
    if os.geteuid() != 0:
        path.chmod(0)
    else:  # root reads anything: make the open fail as it would for anyone else
        real_open = os.open

        def refuse(file, flags, *args, **kwargs):
            if Path(file) == path:
                raise PermissionError(13, "Permission denied")
            return real_open(file, flags, *args, **kwargs)

        monkeypatch.setattr(textfiles.os, "open", refuse)
    assert "cannot read it: Permission denied" in rejected(tmp_path, "locked.txt")


def test_a_file_name_that_is_not_utf8_is_a_reject_without_an_id(tmp_path: Path):
    name = os.fsdecode(b"bad-\xff.txt")
    write(tmp_path / name, "text")
    (record,) = read_text_files(str(tmp_path))
    assert record.error is not None and "is not UTF-8" in record.error and record.data == {}


def test_the_listing_is_the_read_order(notes: Path):
    assert [p.name for p in text_files(str(notes))] == ["a.md", "b.txt", "c.rst"]


def test_memory_is_bounded_by_the_limit_not_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A file that lies about its size (stat says small, it is large) is read a chunk at a time, up to the limit."""
    path = write(tmp_path / "liar.txt", "y" * (3 * textfiles.READ_CHUNK))
    reads: list[int] = []
    real = textfiles.os.fdopen

    def spy(*args, **kwargs):
        handle = real(*args, **kwargs)
        original = handle.read

        class Spy:
            def __getattr__(self, name):
                return getattr(handle, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                handle.close()

            def read(self, size):
                reads.append(size)
                return original(size)

        return Spy()

    monkeypatch.setattr(textfiles.os, "fdopen", spy)
    with pytest.raises(InputError, match="grew while read"):
        textfiles._read_bounded(path, textfiles.READ_CHUNK + 10)
    assert max(reads) <= textfiles.READ_CHUNK and sum(reads) <= textfiles.READ_CHUNK + 11


# -- titles ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, suffix, title", [
    ("# Markdown title #\n\ntext", ".md", "Markdown title"),
    ("intro line\n\n## Second level\n", ".md", "Second level"),
    ("Setext title\n============\n\nbody", ".md", "Setext title"),
    ("Setext two\n---\n", ".md", "Setext two"),
    ("=======\n RST  \n=======\n\nbody", ".rst", "RST"),
    (".. comment\n\nRST underlined\n~~~~~~~~~~~~~~\n", ".rst", "RST underlined"),
    ("= AsciiDoc Title\n:author: me\n", ".adoc", "AsciiDoc Title"),
    ("#+TITLE: Org title\n* Heading\n", ".org", "Org title"),
    ("* Org heading\ntext\n", ".org", "Org heading"),
    ("* a list item\n* another\n", ".md", "* a list item"),
    ("---\ntitle: \"Front matter\"\ndate: 2024\n---\n# Heading\n", ".md", "Front matter"),
    ("---\ndate: 2024\n---\n\n# After front matter\n", ".md", "After front matter"),
    ("+++\ntitle = 'TOML front'\n+++\n", ".md", "TOML front"),
    ("\n\n   \n  plain first   line  \nsecond\n", ".txt", "plain first line"),
    ("", ".txt", ""),
    ("   \n\n", ".txt", ""),
    ("#hashtag is not a heading\n", ".md", "#hashtag is not a heading"),
    ("<!-- comment -->\nReal first line\n", ".md", "Real first line"),
])
def test_titles(text: str, suffix: str, title: str):
    assert title_of(text, suffix) == title


def test_a_long_title_is_cut_at_a_word():
    title = title_of("# " + "word " * 100, ".md")
    assert len(title) <= TITLE_CHARS and title.endswith("word…")
    assert len(title_of("x" * 1000)) == TITLE_CHARS


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=2000), suffix=st.sampled_from(["", ".md", ".rst", ".org", ".adoc"]))
def test_property_a_title_is_short_one_line_and_from_the_text(text: str, suffix: str):
    title = title_of(text, suffix)
    assert len(title) <= TITLE_CHARS and "\n" not in title and "\r" not in title
    assert title == title.strip()
    words = title.rstrip("…").split()
    assert all(word.strip("\"'") in text or word.strip("\"'").rstrip("…") in text for word in words[:-1])
