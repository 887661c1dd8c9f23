"""Long documents, end to end on the real server and model: passages ranked by their best match, snippets whose
offsets point at the text, folders of text files with their rejects, and the cron guarantees with passages.

What a user notices: a fact at the end of a long note is found in vector mode; `-k 10` is ten documents however many
passages of one match; a reload of unchanged notes embeds nothing; a killed load leaves every document with one
consistent set of passages; bad files are one reject line each; a text cut by a model without passages is counted.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, one_error_line
from tests.e2e.test_cron import counts, write_jsonl

FILLER = ("The committee went through the budget line by line and agreed to revisit the staffing plan next month. "
          "Several members asked for clearer figures on travel costs and the printing contract. ")
FACT = "Finally, a giraffe escaped from the city zoo and ate the plants in the mayor's office."


def long_text(fact_at_end: bool = True, repeats: int = 40) -> str:
    body = FILLER * repeats
    return f"{body}\n\n{FACT}\n" if fact_at_end else body


def vsearch(*args: str, home: Path | None = None, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if home is not None:
        env["VSEARCH_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "vsearch", *args], capture_output=True, text=True, env=env, **kwargs)


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    folder = tmp_path / "notes"
    (folder / "sub").mkdir(parents=True)
    (folder / "minutes.md").write_text("# Council minutes\n\n" + long_text())
    (folder / "pasta.txt").write_text("Cooking pasta with garlic, olive oil and a little chilli.\n")
    (folder / "sub" / "bikes.rst").write_text("Bicycles\n========\n\nMountain trails and gravel roads for bicycles.\n")
    return folder


def test_a_new_text_index_splits_texts_into_passages_and_says_so(cli, index_name) -> None:
    made = cli("create-index", index_name, "--text", "text")
    assert "on json keys" in made.stderr and "passages of 254 tokens" in made.stderr
    info = json.loads(cli("info", index_name).stdout)
    vector = next(f for f in info["fields"] if f["name"] == "text_vector")
    assert vector["attrs"]["passages"] == {"max_tokens": 254, "overlap": 38, "splitter": 1}


def test_passages_on_hash_storage_are_refused_with_the_way_out(cli, index_name) -> None:
    result = cli("create-index", index_name, "--storage", "hash", "--passages", ok=False)
    assert result.exit_code == 2
    assert "passages need --storage json" in one_error_line(result)
    plain = cli("create-index", index_name, "--storage", "hash")  # hash alone: one vector a document, as before
    assert "passages" not in plain.stderr


def test_a_fact_only_in_the_last_passage_is_found_in_vector_mode(cli, index_name, notes) -> None:
    cli("create-index", index_name, "--text", "title", "--text", "text")
    loaded = cli("load", index_name, notes)
    assert counts(loaded) == {"read": 3, "embedded": 3, "updated": 0, "skipped": 0, "deleted": 0, "rejected": 0}
    assert "passages embedded" in loaded.stderr
    rows = cli.jsonl("query", index_name, "an animal escaped from the zoo", "--mode", "vector", "-k", "3", "-f", "jsonl")
    assert rows[0]["id"] == "minutes.md"
    text = (notes / "minutes.md").read_text()
    assert rows[0]["snippet_field"] == "text"
    assert text[rows[0]["snippet_start"]:rows[0]["snippet_end"]] == rows[0]["snippet"]
    assert FACT in rows[0]["snippet"] and rows[0]["snippet_end"] > len(text) * 0.8  # the last passage
    for row in rows:  # every snippet's offsets point at its document's text
        source = (notes / row["id"]).read_text()
        assert source[row["snippet_start"]:row["snippet_end"]] == row["snippet"]


def test_the_same_fact_in_a_plain_index_is_lost_past_the_window(cli, index_name, notes) -> None:
    """The baseline the passages fix: one vector a document, the text cut where the model stops reading, and the
    summary line says how many texts were cut."""
    cli("create-index", index_name, "--no-passages", "--storage", "hash")
    loaded = cli("load", index_name, notes)
    assert "1 text(s) longer than the model reads were cut" in loaded.stderr
    rows = cli.jsonl("query", index_name, "an animal escaped from the zoo", "--mode", "vector", "-k", "3", "-f", "jsonl")
    assert rows[0]["id"] != "minutes.md"


def test_k_is_a_number_of_documents_however_many_passages_of_one_match(cli, index_name, tmp_path) -> None:
    rows = [{"id": "long", "text": (FACT + " ") * 120}]
    rows += [{"id": f"d{i}", "text": f"Note {i} about zoo animals escaping, number {i}."} for i in range(14)]
    cli("create-index", index_name, "--text", "text")
    cli("load", index_name, write_jsonl(tmp_path / "z.jsonl", rows), "--text-field", "text")
    for mode in ("vector", "hybrid"):
        found = cli.jsonl("query", index_name, "giraffe escaped from the zoo", "--mode", mode, "-k", "10", "-f", "jsonl")
        ids = [r["id"] for r in found]
        assert len(ids) == 10 and len(set(ids)) == 10
        assert ids[0] == "long"


def test_filters_apply_to_documents_and_like_works_on_a_passage_document(cli, index_name, tmp_path) -> None:
    rows = [{"id": "a", "kind": "zoo", "text": long_text()}, {"id": "b", "kind": "city", "text": long_text()},
            {"id": "c", "kind": "zoo", "text": "Penguins at the zoo were fed twice a day."}]
    cli("create-index", index_name, "--tag", "kind", "--text", "text")
    cli("load", index_name, write_jsonl(tmp_path / "k.jsonl", rows), "--text-field", "text")
    found = cli.jsonl("query", index_name, "giraffe escaped", "--where", "kind=city", "-f", "jsonl")
    assert [r["id"] for r in found] == ["b"]
    like = cli.jsonl("query", index_name, "--like", "a", "-k", "2", "-f", "jsonl")
    assert like[0]["id"] == "b"  # the same text; `a` itself is left out


def test_text_mode_shows_the_query_words_in_context(cli, index_name, notes) -> None:
    cli("create-index", index_name, "--text", "text")
    cli("load", index_name, notes)
    row = cli.jsonl("query", index_name, "giraffe", "--mode", "text", "-f", "jsonl")[0]
    assert row["id"] == "minutes.md" and "giraffe" in row["snippet"]
    text = (notes / "minutes.md").read_text()
    assert text[row["snippet_start"]:row["snippet_end"]] == row["snippet"]
    table = cli("query", index_name, "giraffe", "--mode", "text", "-f", "table").stdout
    assert "giraffe" in table


def test_a_folder_reload_embeds_only_what_changed_and_prune_removes_deleted_files(cli, index_name, notes) -> None:
    cli("create-index", index_name, "--text", "text")
    cli("load", index_name, notes)
    again = cli("load", index_name, notes)
    assert counts(again)["skipped"] == 3 and counts(again)["embedded"] == 0
    (notes / "pasta.txt").write_text("Cooking rice with saffron.\n")
    (notes / "sub" / "bikes.rst").unlink()
    (notes / "new.md").write_text("# New\n\nA new note about trains.\n")
    dry = cli("load", index_name, notes, "--prune", "--prune-limit", "50", "--dry-run")
    assert "--prune would delete 'sub/bikes.rst'" in dry.stderr
    changed = cli("load", index_name, notes, "--prune", "--prune-limit", "50")
    assert counts(changed) == {"read": 3, "embedded": 2, "updated": 0, "skipped": 1, "deleted": 1, "rejected": 0}
    ids = {r["id"] for r in cli.jsonl("query", index_name, "cooking", "-k", "10", "-f", "jsonl")}
    assert ids == {"minutes.md", "pasta.txt", "new.md"}
    assert cli.jsonl("query", index_name, "saffron rice", "-k", "1", "-f", "jsonl")[0]["id"] == "pasta.txt"


def test_each_bad_file_is_one_reject_line_and_the_rest_load(cli, index_name, notes, tmp_path) -> None:
    (notes / "binary.txt").write_bytes(b"text\0with a NUL byte")
    (notes / "latin1.txt").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (notes / "huge.txt").write_bytes(b"a" * (10 * 2**20 + 1))
    outside = tmp_path / "outside.md"
    outside.write_text("secret")
    (notes / "link.md").symlink_to(outside)
    os.mkfifo(notes / "pipe.txt")
    cli("create-index", index_name, "--text", "text")
    result = cli("load", index_name, notes, ok=False)
    assert result.exit_code == 4 and "Traceback" not in result.stderr
    rejected = [line for line in result.stderr.splitlines() if line.startswith("vsearch: rejected")]
    assert len(rejected) == 5
    for name, why in (("binary.txt", "binary"), ("latin1.txt", "UTF-8"), ("huge.txt", "limit for a text file"),
                      ("link.md", "out of the folder"), ("pipe.txt", "not a file")):
        line = next((line for line in rejected if name in line), "")
        assert why.lower() in line.lower(), (name, rejected)
    assert counts(result)["embedded"] == 3
    # Each reject's id is known (its path), so --prune still runs: it deletes a removed note, keeps the rejected ones.
    (notes / "pasta.txt").unlink()
    pruned = cli("load", index_name, notes, "--prune", "--prune-limit", "50", ok=False)
    assert pruned.exit_code == 4 and "--prune skipped" not in pruned.stderr
    assert counts(pruned)["deleted"] == 1


def test_a_load_killed_mid_way_leaves_whole_documents_and_a_rerun_finishes(cli, index_name, tmp_path, redis_client) -> None:
    rows = [{"id": f"n{i}", "text": long_text(repeats=12) + f" Note {i}."} for i in range(60)]
    path = write_jsonl(tmp_path / "many.jsonl", rows)
    cli("create-index", index_name, "--text", "text")
    run = subprocess.Popen([sys.executable, "-m", "vsearch", "load", index_name, str(path), "--text-field", "text",
                            "--batch-size", "4"], env={**os.environ, "PYTHONPATH": str(ROOT)},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not redis_client.exists(f"{index_name}:n5"):
        time.sleep(0.2)
    run.send_signal(signal.SIGKILL)
    run.wait()
    def consistent(doc_id: str) -> bool:
        body = json.loads(redis_client.execute_command("JSON.GET", f"{index_name}:{doc_id}", "$"))[0]
        spans = body["__vsearch_passages"]["text_vector"]["spans"]
        return len(spans) == len(body["text_vector"]) and spans[-1][1] == len(body["text"].strip())
    stored = [r["id"] for r in rows if redis_client.exists(f"{index_name}:{r['id']}")]
    assert 0 < len(stored) < len(rows)
    assert all(consistent(doc_id) for doc_id in stored)
    again = cli("load", index_name, path, "--text-field", "text", "--wait", "120")  # the killed run's lock lapses
    assert counts(again)["skipped"] == len(stored) and counts(again)["embedded"] == len(rows) - len(stored)
    assert all(consistent(r["id"]) for r in rows)


def test_changing_a_long_document_rewrites_all_its_passages(cli, index_name, tmp_path, redis_client) -> None:
    cli("create-index", index_name, "--text", "text")
    cli("load", index_name, write_jsonl(tmp_path / "a.jsonl", [{"id": "x", "text": long_text(repeats=30)}]),
        "--text-field", "text")
    before = json.loads(redis_client.execute_command("JSON.GET", f"{index_name}:x", "$"))[0]
    cli("load", index_name, write_jsonl(tmp_path / "b.jsonl", [{"id": "x", "text": "Now a short note."}]),
        "--text-field", "text")
    after = json.loads(redis_client.execute_command("JSON.GET", f"{index_name}:x", "$"))[0]
    assert len(before["text_vector"]) > 3 and len(after["text_vector"]) == 1
    assert after["__vsearch_passages"]["text_vector"]["spans"] == [[0, len("Now a short note.")]]


def test_encode_passages_gives_one_vector_a_passage_with_its_offsets(tmp_path) -> None:
    source = tmp_path / "doc.jsonl"
    text = long_text(repeats=20)
    source.write_text(json.dumps({"id": "doc", "text": text}) + "\n")
    result = vsearch("encode", str(source), "--field", "text", "--passages")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) > 3 and all(line["id"] == "doc" for line in lines)
    assert [line["passage"] for line in lines] == list(range(len(lines)))
    assert all(len(line["vector"]) == 384 for line in lines)
    assert lines[0]["start"] == 0 and lines[-1]["end"] == len(text.strip()) + text.index(text.strip()[0])
    plain = vsearch("encode", str(source), "--field", "text")
    assert "1 text(s) longer than the model reads were cut" in plain.stderr


def test_a_passage_index_exports_and_restores_its_passages(cli, index_name, notes, tmp_path) -> None:
    cli("create-index", index_name, "--text", "text")
    cli("load", index_name, notes)
    query = ("query", "an animal escaped from the zoo", "--mode", "vector", "-k", "3", "-f", "jsonl")
    before = cli.jsonl(query[0], index_name, *query[1:])
    exported = tmp_path / "notes.export.jsonl"
    cli("export", index_name, "-o", exported)
    cli("drop-index", index_name, "--delete-documents")
    restored = cli("load", index_name, exported, "--from-export")
    assert "3 written" in restored.stderr
    after = cli.jsonl(query[0], index_name, *query[1:])
    assert [(r["id"], r["score"], r["snippet_start"], r["snippet_end"]) for r in after] == \
        [(r["id"], r["score"], r["snippet_start"], r["snippet_end"]) for r in before]
    again = cli("load", index_name, notes)
    assert counts(again)["skipped"] == 3 and counts(again)["embedded"] == 0


def test_given_vectors_in_a_passage_index_are_written_by_batch_as_lists_of_one(cli, index_name, tmp_path,
                                                                              redis_client) -> None:
    # The batch path of a load of given vectors (make_batch, write_batch, the write thread) on create-index's default
    # layout for a text index: JSON with passages. Rejects keep their lines and order; a reload skips every document.
    import numpy as np

    cli("create-index", index_name, "--text", "text")
    vectors = np.random.default_rng(5).standard_normal((10, 384)).round(6).tolist()
    rows = [{"id": f"g{i}", "text": f"note {i}", "vec": v} for i, v in enumerate(vectors)]
    rows[3] = {"id": "g3", "text": "bad", "vec": vectors[3][:5]}
    rows.insert(7, {"id": "g1", "text": "again", "vec": vectors[1]})
    path = write_jsonl(tmp_path / "given.jsonl", rows)
    loaded = cli("load", index_name, path, "--vector-column", "vec", "--batch-size", "4", ok=False)
    assert loaded.exit_code == 4 and counts(loaded)["rejected"] == 2
    rejected = [line for line in loaded.stderr.splitlines() if f"{path} line " in line]
    assert [line.split(" line ")[1].split(":")[0] for line in rejected] == ["4", "8"]
    for i in (0, 1, 9):
        body = json.loads(redis_client.execute_command("JSON.GET", f"{index_name}:g{i}", "$"))[0]
        assert np.allclose(body["text_vector"], [vectors[i]], atol=1e-6) and body["text"] == f"note {i}"
        assert "__vsearch_passages" not in body  # a vector given whole has no text spans
    hits = cli.jsonl("query", index_name, "--vector", json.dumps(vectors[9]), "-k", "1", "-f", "jsonl")
    assert hits[0]["id"] == "g9"
    again = cli("load", index_name, path, "--vector-column", "vec", "--batch-size", "4", ok=False)
    assert counts(again)["skipped"] == 9 and counts(again).get("given", 0) == 0
