"""What a run must never do to stored data, tried as a careless user, a second writer and a full disk would.

- A load holds its index's lock for as long as it runs, renewing the lease; a load that finds its lock gone
  (another run may hold it) stops before writing anything more. `drop-index` takes the lock too.
- Nothing is deleted by a prefix vsearch cannot prove is the index's own: an index with no prefix (made by
  another tool), or one that shares its prefix, keeps every key; a `--prefix` holding `~` (vsearch's
  generation mark) is refused, and so is one whose future generations would collide with another index's.
- A rebuild's next generation is checked against every other index before any key is deleted; generations a
  killed rebuild left behind are dropped, with their documents, by the next rebuild and by `drop-index`.
- `--rebuild` keeps the live documents of rejected records, and those the input no longer has unless
  `--prune`, which then counts them as deleted and is held to `--prune-limit` like a plain prune.
- `--prune` does nothing when a rejected record had no readable id (missing, null, empty), and a NaN or infinite
  number option (`--prune-limit nan`, whose every comparison is false) is a usage error before anything runs.
- A write that Redis could not put on disk (disk full) fails the load with exit 1, and is not counted.
- `--rejects` and `--report` never overwrite the input, and a path that cannot be written is refused before
  anything is read; the rejects file is private (0600) like the report.
- `create-index --replace` that adds a TEXT field makes text mode find the new field's words.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, one_error_line
from vsearch import server

DIM = 4


def rows(n: int, start: int = 0) -> list[dict]:
    return [{"id": f"d{i}", "title": f"record {i}", "v": [1.0, float(i % 7), 0.5, 0.25]}
            for i in range(start, start + n)]


def jsonl(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in items))
    return path


def make_index(cli, name: str, *options: str) -> None:
    cli("create-index", name, "--dim", str(DIM), "--algorithm", "flat", "--text", "title", *options)


def load_args(name: str, source: str, *options: str) -> list[str]:
    return ["load", name, source, "--vector-column", "v", *options]


def documents(redis_client, name: str) -> set[str]:
    """The ids the index answers for, read back through FT.SEARCH on its alias."""
    reply = redis_client.execute_command("FT.SEARCH", name, "*", "NOCONTENT", "LIMIT", 0, 10000)
    prefix = json.loads(redis_client.get(f"__vsearch:index:{name}"))["index"]["prefix"]
    return {key.decode()[len(prefix):] for key in reply[1:]}


def vsearch_process(*args: str, stdin=None) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "vsearch", *args], env=env, cwd=ROOT, stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# -- the lock ---------------------------------------------------------------------------------------------


def test_a_load_longer_than_the_lease_keeps_its_lock_against_a_second_writer(cli, redis_client, index_name,
                                                                             tmp_path) -> None:
    make_index(cli, index_name)
    base = jsonl(tmp_path / "base.jsonl", rows(5))
    slow = vsearch_process(*load_args(index_name, "-", "--batch-size", "1"), stdin=subprocess.PIPE)
    try:
        started = time.monotonic()
        for i, row in enumerate(rows(14)):  # one record a second: the load runs past the 10 s lease
            slow.stdin.write(json.dumps(row) + "\n")
            slow.stdin.flush()
            if i == 12:
                assert time.monotonic() - started > 11
                second = subprocess.run(
                    [sys.executable, "-m", "vsearch", *load_args(index_name, str(base), "--rebuild")],
                    capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
                assert second.returncode == 75, second.stderr
                assert "another run is writing" in second.stderr
            time.sleep(1.0)
        slow.stdin.close()
        assert slow.wait(60) == 0, slow.stderr.read()
    finally:
        slow.kill()
    assert documents(redis_client, index_name) == {f"d{i}" for i in range(14)}


def test_a_load_that_lost_its_lock_writes_nothing_more(cli, redis_client, index_name) -> None:
    make_index(cli, index_name)
    slow = vsearch_process(*load_args(index_name, "-", "--batch-size", "1"), stdin=subprocess.PIPE)
    try:
        for row in rows(2):
            slow.stdin.write(json.dumps(row) + "\n")
            slow.stdin.flush()
        deadline = time.monotonic() + 60
        while len(documents(redis_client, index_name)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        # The lease lapsed (a paused process, a slow disk) and another run took the lock.
        redis_client.set(f"__vsearch:lock:{index_name}", "another-run", px=60_000)
        for row in rows(3, start=2):
            slow.stdin.write(json.dumps(row) + "\n")
        slow.stdin.close()
        assert slow.wait(60) == 1
        assert "lost the write lock" in slow.stderr.read()
    finally:
        slow.kill()
        redis_client.delete(f"__vsearch:lock:{index_name}")
    assert documents(redis_client, index_name) == {"d0", "d1"}


def test_a_lease_starved_of_renewals_says_it_lapsed_and_for_how_long(redis_client, index_name) -> None:
    """A thread that holds the GIL (a long C call, simulated by a busy loop under a 10 s switch interval) starves
    the renewer: the lease lapses, and the run's next check says so with the gap, not just 'lost'."""
    from vsearch.errors import LockLost
    from vsearch.store.lock import index_lock

    interval = sys.getswitchinterval()
    with index_lock(redis_client, index_name, ttl_ms=300) as lease:
        sys.setswitchinterval(10.0)
        try:
            until = time.monotonic() + 1.0
            while time.monotonic() < until:  # no blocking call: the renewer never gets the GIL
                pass
        finally:
            sys.setswitchinterval(interval)
        with pytest.raises(LockLost) as lost:
            lease.check()
    message = str(lost.value)
    gap = re.search(r"its lease lapsed, unrenewed for ([0-9.]+) s of its 0.3 s", message)
    assert gap and float(gap.group(1)) >= 1.0, message


def test_the_renewer_keeps_the_lease_while_every_connection_of_the_run_is_busy(vsearch_home, index_name) -> None:
    """The renewer has a connection of its own: a run whose pool is used up (here: one connection, held) keeps its
    lock, and a lock removed under a renewed lease is told apart from one that lapsed."""
    import redis as redis_py

    from vsearch import server
    from vsearch.errors import LockLost
    from vsearch.store.lock import index_lock

    pool = redis_py.BlockingConnectionPool(
        max_connections=1, timeout=0.1, connection_class=redis_py.UnixDomainSocketConnection,
        path=str(server.ServerPaths(vsearch_home).socket), password=server.password(vsearch_home))
    client = redis_py.Redis(connection_pool=pool, protocol=2)
    other = server.client(vsearch_home, protocol=2)
    try:
        with index_lock(client, index_name, ttl_ms=600) as lease:
            busy = pool.get_connection()  # the run's one connection, in use for 2 s (3 leases)
            time.sleep(2.0)
            assert other.get(f"__vsearch:lock:{index_name}") == lease.token.encode()
            pool.release(busy)
            lease.check()
            other.delete(f"__vsearch:lock:{index_name}")
            with pytest.raises(LockLost) as lost:
                lease.check()
        assert "removed or taken while renewed" in str(lost.value)
    finally:
        client.close()
        other.close()


# -- what may be deleted ----------------------------------------------------------------------------------


def test_drop_index_never_deletes_by_an_empty_prefix(cli, redis_client) -> None:
    foreign = f"foreign{uuid.uuid4().hex[:8]}"
    redis_client.set(f"unrelated:{foreign}", "keep me")
    redis_client.execute_command("FT.CREATE", foreign, "ON", "JSON", "SCHEMA", "$.t", "AS", "t", "TEXT")
    try:
        result = cli("drop-index", foreign, "--delete-documents", ok=False)
        assert result.exit_code == 2
        assert "no key prefix" in one_error_line(result)
        assert redis_client.get(f"unrelated:{foreign}") == b"keep me"
        assert redis_client.execute_command("FT.INFO", foreign)  # nothing was dropped either
    finally:
        redis_client.execute_command("FT.DROPINDEX", foreign)
        redis_client.delete(f"unrelated:{foreign}")


def test_a_prefix_that_a_future_generation_would_collide_with_is_refused(cli, index_name) -> None:
    base = f"doc{uuid.uuid4().hex[:8]}"
    make_index(cli, index_name, "--prefix", f"{base}:")
    result = cli("create-index", f"{index_name}b", "--dim", str(DIM), "--prefix", f"{base}~2:", ok=False)
    assert result.exit_code == 2
    assert "'~'" in one_error_line(result)
    family = cli("create-index", f"{index_name}c", "--dim", str(DIM), "--prefix", f"{base}", ok=False)
    assert family.exit_code == 2
    assert "overlaps index" in one_error_line(family)


def test_a_rebuild_never_deletes_another_index_s_documents(cli, redis_client, index_name, tmp_path) -> None:
    base = f"doc{uuid.uuid4().hex[:8]}"
    make_index(cli, index_name, "--prefix", f"{base}:")
    path = jsonl(tmp_path / "a.jsonl", rows(5))
    cli(*load_args(index_name, path))
    other = f"other{uuid.uuid4().hex[:8]}"  # made by another tool, under what would be the next generation's prefix
    redis_client.execute_command("FT.CREATE", other, "PREFIX", 1, f"{base}~2:", "SCHEMA", "t", "TEXT")
    redis_client.hset(f"{base}~2:x", "t", "theirs")
    try:
        result = cli(*load_args(index_name, path, "--rebuild"), ok=False)
        assert result.exit_code == 2
        assert "overlaps index" in one_error_line(result)
        assert redis_client.hget(f"{base}~2:x", "t") == b"theirs"
        assert documents(redis_client, index_name) == {f"d{i}" for i in range(5)}
    finally:
        redis_client.execute_command("FT.DROPINDEX", other, "DD")


def test_old_generations_of_a_killed_rebuild_are_dropped_with_their_documents(cli, redis_client, index_name,
                                                                             tmp_path) -> None:
    from dataclasses import replace

    from vsearch.store.generations import next_generation
    from vsearch.store import get_spec

    make_index(cli, index_name)
    path = jsonl(tmp_path / "a.jsonl", rows(3))
    cli(*load_args(index_name, path))
    live = get_spec(redis_client, index_name)
    # As a killed `create-index --replace --prefix ...` leaves it: a generation that never went live.
    stale_prefix = f"stale{uuid.uuid4().hex[:8]}:"
    stale = next_generation(redis_client, live, replace(live, prefix=stale_prefix))
    redis_client.hset(f"{stale.prefix}d0", mapping={"title": "half written"})
    cli(*load_args(index_name, path, "--rebuild"))
    generations = [n.decode() for n in redis_client.execute_command("FT._LIST")
                   if n.decode().startswith(f"{index_name}~")]
    assert generations == [get_spec(redis_client, index_name).physical]
    assert not redis_client.exists(f"{stale.prefix}d0")
    assert documents(redis_client, index_name) == {"d0", "d1", "d2"}
    # And drop-index removes one too.
    live = get_spec(redis_client, index_name)
    stale = next_generation(redis_client, live, replace(live, prefix=stale_prefix))
    redis_client.hset(f"{stale.prefix}d0", mapping={"title": "half written"})
    cli("drop-index", index_name, "--delete-documents")
    names = {n.decode() for n in redis_client.execute_command("FT._LIST")}
    assert not any(n == index_name or n.startswith(f"{index_name}~") for n in names)
    assert not redis_client.exists(f"{stale.prefix}d0")


# -- what a rebuild and a prune drop ----------------------------------------------------------------------


def test_a_rebuild_is_held_to_the_prune_limit(cli, redis_client, index_name, tmp_path) -> None:
    make_index(cli, index_name)
    cli(*load_args(index_name, jsonl(tmp_path / "all.jsonl", rows(20))))
    few = jsonl(tmp_path / "few.jsonl", rows(2))
    refused = cli(*load_args(index_name, few, "--rebuild", "--prune"), ok=False)
    assert refused.exit_code == 5
    assert "would delete 18 of 20" in one_error_line(refused)
    assert len(documents(redis_client, index_name)) == 20
    forced = cli(*load_args(index_name, few, "--rebuild", "--prune", "--force", "--report", tmp_path / "r.json"))
    assert forced.exit_code == 0
    assert json.loads((tmp_path / "r.json").read_text())["deleted"] == 18
    assert documents(redis_client, index_name) == {"d0", "d1"}


def test_a_rebuild_without_prune_keeps_what_the_input_left_out(cli, redis_client, index_name, tmp_path) -> None:
    make_index(cli, index_name)
    cli(*load_args(index_name, jsonl(tmp_path / "all.jsonl", rows(20))))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    cli(*load_args(index_name, empty, "--rebuild"))
    assert len(documents(redis_client, index_name)) == 20
    within = cli(*load_args(index_name, jsonl(tmp_path / "19.jsonl", rows(19)), "--rebuild", "--prune",
                            "--report", tmp_path / "r.json"))
    assert within.exit_code == 0
    assert json.loads((tmp_path / "r.json").read_text())["deleted"] == 1
    assert len(documents(redis_client, index_name)) == 19


def test_a_rebuild_keeps_the_documents_of_rejected_records(cli, redis_client, index_name, tmp_path) -> None:
    make_index(cli, index_name, "--storage", "hash")
    cli(*load_args(index_name, jsonl(tmp_path / "all.jsonl", rows(5))))
    bad = rows(5)
    bad[3]["v"] = [1.0, 2.0]  # the wrong dimension: rejected
    result = cli(*load_args(index_name, jsonl(tmp_path / "bad.jsonl", bad), "--rebuild", "--prune"), ok=False)
    assert result.exit_code == 4
    assert documents(redis_client, index_name) == {f"d{i}" for i in range(5)}
    prefix = json.loads(redis_client.get(f"__vsearch:index:{index_name}"))["index"]["prefix"]
    assert prefix == f"{index_name}~2:"  # the new generation, with the live document of the rejected record
    assert redis_client.hget(f"{prefix}d3", "title") == b"record 3"


@pytest.mark.parametrize("broken", [{"title": "no id"}, {"id": None, "title": "null id"}, {"id": "", "title": "empty"}])
def test_prune_does_nothing_when_a_rejected_record_had_no_readable_id(cli, redis_client, index_name, tmp_path,
                                                                     broken) -> None:
    make_index(cli, index_name)
    cli(*load_args(index_name, jsonl(tmp_path / "all.jsonl", rows(3))))
    again = rows(2) + [{**broken, "v": [1.0, 0.0, 0.0, 0.0]}]
    result = cli(*load_args(index_name, jsonl(tmp_path / "again.jsonl", again), "--prune", "--force"), ok=False)
    assert result.exit_code == 4
    assert "--prune skipped" in result.stderr
    assert documents(redis_client, index_name) == {"d0", "d1", "d2"}


# -- the disk ---------------------------------------------------------------------------------------------


@pytest.fixture
def small_disk(monkeypatch):
    """A private server home on a 16 MB tmpfs, so the test can fill its disk for real."""
    mount = Path(tempfile.mkdtemp(prefix="vs-"))
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        shutil.rmtree(mount, ignore_errors=True)
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.strip()}): needs root")
    monkeypatch.setenv("VSEARCH_HOME", str(mount))
    yield mount
    server.stop(mount, say=lambda message: None)
    subprocess.run(["umount", "-l", str(mount)], check=False)
    shutil.rmtree(mount, ignore_errors=True)


def test_a_load_onto_a_full_disk_fails_instead_of_calling_it_loaded(small_disk, tmp_path) -> None:
    env = {**os.environ, "VSEARCH_HOME": str(small_disk), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}

    def vsearch(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "vsearch", *map(str, args)], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=300)

    assert vsearch("create-index", "full", "--dim", DIM, "--algorithm", "flat").returncode == 0
    filler = small_disk / "filler"
    with open(filler, "wb") as handle:  # every byte the tmpfs has left...
        try:
            while True:
                handle.write(b"\0" * (1 << 16))
                handle.flush()
        except OSError:
            pass
    os.truncate(filler, filler.stat().st_size - (64 << 10))  # ...but 64 KB: the lock and the ids fit, the batch not
    items = [{**r, "title": f"{r['title']} " + "x" * 1000} for r in rows(200)]
    result = vsearch(*load_args("full", str(jsonl(tmp_path / "a.jsonl", items))))
    assert result.returncode == 1, result.stderr
    line = result.stderr.strip().splitlines()[-1]
    assert "could not write its data to disk" in line
    assert "Traceback" not in result.stderr


# -- output files -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["--rejects", "--report"])
def test_rejects_or_report_naming_the_input_is_refused_before_reading(cli, redis_client, index_name, tmp_path,
                                                                      option) -> None:
    make_index(cli, index_name)
    bad = rows(3) + [{"id": "broken"}]
    path = jsonl(tmp_path / "a.jsonl", bad)
    before = path.read_bytes()
    result = cli(*load_args(index_name, path, option, path), ok=False)
    assert result.exit_code == 2
    assert "is the input file" in one_error_line(result)
    assert path.read_bytes() == before
    assert documents(redis_client, index_name) == set()


@pytest.mark.parametrize("option", ["--rejects", "--report"])
def test_an_output_path_into_a_missing_folder_is_refused_before_reading(cli, redis_client, index_name, tmp_path,
                                                                        option) -> None:
    make_index(cli, index_name)
    result = cli(*load_args(index_name, jsonl(tmp_path / "a.jsonl", rows(3)), option, tmp_path / "nope" / "f"),
                 ok=False)
    assert result.exit_code == 2
    assert "does not exist" in one_error_line(result)
    assert documents(redis_client, index_name) == set()


def test_the_rejects_file_is_private(cli, index_name, tmp_path) -> None:
    make_index(cli, index_name)
    cli(*load_args(index_name, jsonl(tmp_path / "a.jsonl", rows(2) + [{"id": "broken"}]),
                   "--rejects", tmp_path / "rejects.jsonl"), ok=False)
    assert stat.S_IMODE((tmp_path / "rejects.jsonl").stat().st_mode) == 0o600


# -- schema changes ---------------------------------------------------------------------------------------


def test_replace_adding_a_text_field_makes_text_mode_find_its_words(cli, index_name, tmp_path) -> None:
    make_index(cli, index_name)
    items = [{**r, "body": word} for r, word in zip(rows(3), ["zeppelin", "harbour", "lighthouse"])]
    cli(*load_args(index_name, jsonl(tmp_path / "a.jsonl", items)))
    cli("create-index", index_name, "--dim", str(DIM), "--algorithm", "flat", "--text", "title", "--text", "body",
        "--replace")
    found = cli.jsonl("query", index_name, "harbour", "--mode", "text", "--format", "jsonl")
    assert [hit["id"] for hit in found] == ["d1"]


@pytest.mark.parametrize("limit", ["nan", "inf", "-nan"])
def test_a_prune_limit_that_is_not_a_number_prunes_nothing(cli, redis_client, index_name, tmp_path, limit) -> None:
    make_index(cli, index_name)
    cli(*load_args(index_name, jsonl(tmp_path / "all.jsonl", rows(10))))
    result = cli(*load_args(index_name, jsonl(tmp_path / "one.jsonl", rows(1)), "--prune", "--prune-limit", limit),
                 ok=False)
    assert result.exit_code == 2  # infinity is out of Click's range already; NaN passed every comparison
    assert "--prune-limit" in result.stderr and "Traceback" not in result.stderr
    assert len(documents(redis_client, index_name)) == 10


@pytest.mark.parametrize("parameter,value", [("m", ".nan"), ("m", ".inf"), ("epsilon", ".nan"), ("epsilon", ".inf")])
def test_a_schema_parameter_that_is_not_a_finite_number_is_a_usage_error(cli, index_name, tmp_path, parameter,
                                                                         value) -> None:
    schema = tmp_path / "schema.yaml"
    schema.write_text(f"index:\n  name: {index_name}\nfields:\n  - name: v\n    type: vector\n    attrs:\n"
                      f"      dims: 4\n      algorithm: hnsw\n      {parameter}: {value}\n")
    result = cli("create-index", index_name, "--schema", schema, ok=False)
    assert result.exit_code == 2
    assert f"{parameter.upper()} must be" in one_error_line(result)
