"""The vsearch command line: parse options, resolve settings, make one library call, render."""

# No `from __future__ import annotations` here: Typer would then eval every option's annotation string on each
# run, a fifth of a cached query's time above Python's own start-up (get_command 0.029 s against 0.007 s).
import gc
import math
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Iterator, Optional

import typer
from typer.core import TyperCommand, TyperGroup

from vsearch import config, server
from vsearch.errors import UsageError, VsearchError
from vsearch.config import Engine, EngineOptions
from vsearch.query.hybrid import DEFAULT_ALPHA, DEFAULT_RRF_K, DEFAULT_WINDOW, Fusion, Mode
from vsearch.output import OutputFormat, VectorEncoding, VectorFormat, default_format, render
from vsearch.records import STDIN, Format, is_unicode
from vsearch.schema import Algorithm, DataType, Metric, Storage


class VsearchGroup(TyperGroup):
    """Turns every VsearchError into one line on stderr and its exit code, in one place."""

    def main(self, args: Any = None, *rest: Any, **options: Any) -> Any:
        # Python turns argument bytes that are not UTF-8 into lone surrogates, which nothing downstream (Redis
        # keys, queries, file names in messages) can encode: refuse them here, once, for every command.
        for number, arg in enumerate(sys.argv[1:] if args is None else args, start=1):
            if isinstance(arg, str) and not is_unicode(arg):
                typer.echo(f"vsearch: error: argument {number} ({ascii(arg)}) is not valid UTF-8 text", err=True)
                sys.exit(2)
        return super().main(args, *rest, **options)

    def invoke(self, ctx: Any) -> Any:  # typer.Context, from typer's own click
        try:
            return super().invoke(ctx)
        except VsearchError as exc:
            typer.echo(f"vsearch: error: {' '.join(str(exc).split())}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("vsearch: interrupted", err=True)
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # The reader went away (`vsearch query ... | head -1`): not an error. Point stdout at
            # /dev/null so the interpreter's final flush does not complain either.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(141) from None


class CheckedCommand(TyperCommand):
    """Refuses, before a command runs, a number option that is NaN or infinite: Click's ranges let NaN through
    (every comparison with it is false), so `--prune-limit nan` would prune without any limit."""

    def invoke(self, ctx: Any) -> Any:
        for param in self.params:
            value = ctx.params.get(param.name or "")
            if isinstance(value, float) and not math.isfinite(value):
                name = param.opts[0] if param.opts and param.opts[0].startswith("-") else (param.name or "").upper()
                raise UsageError(f"{name} must be a finite number, not {value}")
        return super().invoke(ctx)


app = typer.Typer(
    cls=VsearchGroup,
    help="Semantic search over your own text and images, with vector indexes in Redis.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)


def _show_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"vsearch {version('vsearch')}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[Optional[bool], typer.Option(
        "--version", callback=_show_version, is_eager=True, help="Print vsearch's version and exit.")] = None,
) -> None:
    """Semantic search over your own text and images, with vector indexes in Redis."""


server_app = typer.Typer(cls=VsearchGroup, help="Manage the embedded Redis Stack server.", no_args_is_help=True)
app.add_typer(server_app, name="server")
models_app = typer.Typer(cls=VsearchGroup, help="Prepare the models vsearch runs.", no_args_is_help=True)
app.add_typer(models_app, name="models")

RedisUrl = Annotated[Optional[str], typer.Option(
    "--redis-url", metavar="URL",
    help="Redis Stack / Redis 8 server (redis://, rediss://, unix://). Default: $VSEARCH_REDIS_URL, $REDIS_URL, "
         "else vsearch's embedded server.")]
Model = Annotated[Optional[str], typer.Option(
    "--model", metavar="NAME_OR_PATH", help="sentence-transformers text model. Default: the index's, else all-MiniLM-L6-v2.")]
ImageModel = Annotated[Optional[str], typer.Option(
    "--image-model", metavar="NAME_OR_PATH",
    help="Image model: efficientnet-lite0-gem (a CNN's latent space, GeM-pooled), efficientnet-lite0 (the same, "
         "mean-pooled) or a sentence-transformers CLIP model. Default: the index's, else efficientnet-lite0-gem.")]
Device = Annotated[Optional[str], typer.Option("--device", help="torch device for the models: cpu, cuda, cuda:1...")]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Items the model embeds at once.")]
OutputFmt = Annotated[Optional[OutputFormat], typer.Option(
    "--format", "-f", help="Output format. Default: table on a terminal, jsonl in a pipe.")]
InputFormat = Annotated[Optional[Format], typer.Option(
    "--format", help="Input format. Default: from the file extension.")]
EngineOpt = Annotated[Engine, typer.Option(
    "--engine", help="Where models run: local (this process) or ray (a pool of Ray actors; pip install 'vsearch[ray]').")]
RayAddress = Annotated[Optional[str], typer.Option(
    "--ray-address", metavar="ADDR", help="Ray cluster to join (e.g. ray://head:10001, auto). Default: Ray local mode here.")]
Workers = Annotated[int, typer.Option("--workers", min=1, help="--engine ray: encoder actors in the pool.")]
GpusPerWorker = Annotated[float, typer.Option("--gpus-per-worker", min=0, help="--engine ray: GPUs each actor reserves (fractions share one).")]


def _settings(**flags: Any) -> config.Settings:
    return config.resolve(**flags)


def _out_format(fmt: OutputFormat | None) -> OutputFormat:
    return fmt or default_format(sys.stdout)


@contextmanager
def _progress(label: str, total: int | None = None, enabled: bool = True) -> Iterator[Any]:
    """A progress bar on stderr when a person is watching it; a no-op otherwise."""
    if not enabled or not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


@contextmanager
def _load_progress(name: str, source: str, enabled: bool) -> Iterator[Any]:
    """`load`'s bar on a terminal: records and their rate, and for a file the share of it read, with the time
    left (its size is known; a record's characters stand for its bytes)."""
    if not enabled or not sys.stderr.isatty():
        yield lambda records, size: None
        return
    from rich.console import Console
    from rich.progress import (BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    size = os.path.getsize(source) if source != STDIN and os.path.isfile(source) else None
    columns = [TextColumn(f"loading {name}"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn(),
               TextColumn("{task.fields[records]:,} records, {task.fields[rate]}/s"), TimeElapsedColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(name, total=size, records=0, rate="-")
        seen, started = 0, time.monotonic()

        def advance(records: int, characters: int) -> None:
            nonlocal seen
            seen += records
            rate = f"{seen / max(time.monotonic() - started, 1e-3):,.0f}"
            bar.update(task, advance=characters if size else 0, records=seen, rate=rate)

        yield advance


def _check_stdin(path: str) -> None:
    """Reading `-` from a terminal would wait for typing that nobody means to do."""
    if path == STDIN and sys.stdin.isatty():
        raise UsageError("no input: give a FILE, or pipe data into stdin")


def _note(message: str) -> None:
    typer.echo(message, err=True)


def _engine(engine: Engine, address: str | None, workers: int, gpus: float) -> EngineOptions:
    if engine is Engine.local and (address is not None or workers != 1 or gpus):
        raise UsageError("--ray-address, --workers and --gpus-per-worker need --engine ray")
    return EngineOptions(engine, address, workers, gpus)


# ---------------------------------------------------------------------------------------------------


@app.command(cls=CheckedCommand)
def similarity(
    query: Annotated[str, typer.Argument(help="The text to compare the candidates with.")],
    candidates: Annotated[Optional[list[str]], typer.Argument(help="Candidate texts.")] = None,
    file: Annotated[Optional[str], typer.Option("--file", "-i", metavar="PATH",
                                                help="Read candidates one a line from PATH, or - for stdin.")] = None,
    metric: Annotated[Metric, typer.Option(help="cosine and ip: higher is closer; l2 (Euclidean distance): lower is closer.")] = Metric.cosine,
    top: Annotated[Optional[int], typer.Option("--top", "-k", min=1, help="Show only the best N.")] = None,
    model: Model = None,
    device: Device = None,
    fmt: OutputFmt = None,
) -> None:
    """Rank candidate texts by their similarity to a query.

    Example: vsearch similarity "That is a happy person" "That is a very happy person" "Today is a sunny day"
    """
    from vsearch.records import read_lines
    from vsearch.similarity import compare

    texts = list(candidates or [])
    if file is not None:
        _check_stdin(file)
        texts += [r.data["text"] for r in read_lines(file)]
    if not texts:
        raise UsageError("give candidates as arguments or with --file PATH (- for stdin)")
    settings = _settings(model=model, device=device)
    ranked = compare(settings, query, texts, metric, top)
    rows = [{"rank": r.rank, "text": r.text, "score": r.score} for r in ranked]
    render(rows, _out_format(fmt), title=f"{metric.value} similarity to: {query}")


@app.command(cls=CheckedCommand)
def encode(
    inputs: Annotated[Optional[list[str]], typer.Argument(
        help="Text files (one text a line), CSV/TSV/JSON/JSONL files (with --field), image files or globs; - or nothing for stdin.")] = None,
    field: Annotated[Optional[str], typer.Option("--field", help="The field that holds the text, for CSV/TSV/JSON/JSONL.")] = None,
    id_field: Annotated[Optional[str], typer.Option("--id-field", help="The field that holds the id. Default: id if present, else the line number.")] = None,
    input_format: InputFormat = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    vector_format: Annotated[Optional[VectorFormat], typer.Option(
        "--to", help="Vector format. Default: from --output's extension (.npy, .f32), else jsonl.")] = None,
    image: Annotated[bool, typer.Option("--image", help="Treat the inputs as images even without image extensions.")] = False,
    passages: Annotated[bool, typer.Option("--passages", help="One vector a passage of each text (split to fit the model's window), with its number and [start, end) offsets, instead of one for the text's start.")] = False,
    batch_size: BatchSize = 64,
    model: Model = None,
    image_model: ImageModel = None,
    device: Device = None,
    engine: EngineOpt = Engine.local,
    ray_address: RayAddress = None,
    workers: Workers = 1,
    gpus_per_worker: GpusPerWorker = 0.0,
) -> None:
    """Turn texts or images into vectors: JSONL {"id", "vector"} lines, .npy, or raw float32.

    Example: vsearch encode sample_data/sentences.txt > vectors.jsonl
    """
    from vsearch import encode as use_case

    paths = list(inputs or [STDIN])
    for path in paths:
        _check_stdin(path)
    settings = _settings(model=model, image_model=image_model, device=device)
    engine_options = _engine(engine, ray_address, workers, gpus_per_worker)
    job = use_case.plan_inputs(paths, image, input_format, field, id_field)
    fmt = vector_format or use_case.format_for(output)
    with _progress("encoding", job.count) as advance:
        done = use_case.run_encode(settings, job, output, fmt, batch_size, engine_options, advance, passages)
    if done.cut:
        _note(f"vsearch: {done.cut} text(s) longer than the model reads were cut (their ends are not in their "
              "vectors): --passages gives one vector a passage")
    if output:
        ids_note = f", their ids to {done.ids_file}" if done.ids_file else ""
        _note(f"wrote {done.rows} vectors of {done.dim} dimensions to {output}{ids_note}")


@app.command("create-index", cls=CheckedCommand)
def create_index(
    name: Annotated[str, typer.Argument(help="Index name.")],
    algorithm: Annotated[Algorithm, typer.Option(help="flat: exact search; hnsw: approximate, fast on large corpora.")] = Algorithm.hnsw,
    metric: Annotated[Metric, typer.Option(help="Distance metric of the vector fields.")] = Metric.cosine,
    datatype: Annotated[DataType, typer.Option("--type", help="Vector element type stored in Redis.")] = DataType.float32,
    dim: Annotated[Optional[int], typer.Option(help="Text vector dimension. Default: the model's.", min=1)] = None,
    image: Annotated[bool, typer.Option("--image", help="Add an image vector field (image_vector).")] = False,
    image_dim: Annotated[Optional[int], typer.Option(help="Image vector dimension. Default: the image model's.", min=1)] = None,
    no_text: Annotated[bool, typer.Option("--no-text-vector", help="Leave out the text vector field (images only).")] = False,
    tag: Annotated[Optional[list[str]], typer.Option("--tag", metavar="FIELD", help="TAG field for exact-match filters (repeatable).")] = None,
    text: Annotated[Optional[list[str]], typer.Option("--text", metavar="FIELD", help="TEXT field for full-text filters (repeatable).")] = None,
    numeric: Annotated[Optional[list[str]], typer.Option("--numeric", metavar="FIELD", help="NUMERIC field for range filters (repeatable).")] = None,
    geo: Annotated[Optional[list[str]], typer.Option("--geo", metavar="FIELD", help="GEO field, values 'lon,lat' (repeatable).")] = None,
    storage: Annotated[Optional[Storage], typer.Option(help="Store documents as Redis hashes or JSON documents. Default: json for a text index with passages (RediSearch indexes several vectors per document only there), else hash.")] = None,
    passages: Annotated[Optional[bool], typer.Option("--passages/--no-passages", help="Split each text into passages that fit the model's window, embed each, rank a document by its best one (default: on). --no-passages: one vector per document, the text cut where the model stops reading (~190 words), in 7x less memory for short texts.")] = None,
    passage_tokens: Annotated[Optional[int], typer.Option("--passage-tokens", min=8, metavar="N", help="Tokens a passage (default: what the model reads, 254 for all-MiniLM-L6-v2).")] = None,
    passage_overlap: Annotated[Optional[int], typer.Option("--passage-overlap", min=0, metavar="N", help="Tokens a passage shares with the one before (default: ~15%).")] = None,
    prefix: Annotated[Optional[str], typer.Option(help="Key prefix of the documents. Default: NAME:")] = None,
    initial_cap: Annotated[Optional[int], typer.Option(help="FLAT/HNSW INITIAL_CAP.")] = None,
    block_size: Annotated[Optional[int], typer.Option(help="FLAT BLOCK_SIZE.")] = None,
    m: Annotated[Optional[int], typer.Option("--m", help="HNSW M: edges per node.")] = None,
    ef_construction: Annotated[Optional[int], typer.Option(help="HNSW EF_CONSTRUCTION.")] = None,
    ef_runtime: Annotated[Optional[int], typer.Option(help="HNSW EF_RUNTIME default for queries (vsearch: 100, for recall@10 >= 0.99; RediSearch: 10).")] = None,
    epsilon: Annotated[Optional[float], typer.Option(help="HNSW EPSILON for range queries.")] = None,
    schema_file: Annotated[Optional[Path], typer.Option("--schema", help="Take everything from a YAML or JSON schema file (RedisVL layout).")] = None,
    replace_live: Annotated[bool, typer.Option("--replace", help="Replace an existing index's schema without downtime: its documents are copied into a new index that then takes over the name.")] = False,
    model: Model = None,
    image_model: ImageModel = None,
    redis_url: RedisUrl = None,
) -> None:
    """Create a vector index; Redis then indexes every document written under its prefix.

    Example: vsearch create-index products --tag gender --tag articleType --text productDisplayName --image
    """
    from vsearch import indexes

    settings = _settings(redis_url=redis_url, model=model, image_model=image_model)
    fields = indexes.FieldOptions(tag=tag or [], text=text or [], numeric=numeric or [], geo=geo or [])
    params = {"initial_cap": initial_cap, "block_size": block_size, "m": m, "ef_construction": ef_construction,
              "ef_runtime": ef_runtime, "epsilon": epsilon}
    vectors = indexes.VectorOptions(algorithm, metric, datatype, params, not no_text, dim, image, image_dim,
                                    passages, passage_tokens, passage_overlap)
    spec = indexes.build_spec(name, settings, fields, vectors, storage, prefix, schema_file)
    if replace_live:
        layout_given = storage is not None or schema_file is not None or any(
            option is not None for option in (passages, passage_tokens, passage_overlap))
        spec, copied = indexes.replace_schema(settings, spec, explicit_prefix=prefix is not None or schema_file is not None,
                                              explicit_layout=layout_given)
        _note(f"replaced index '{spec.name}': {copied} documents copied into the new schema")
        return
    spec = indexes.create(settings, spec)
    _note(f"created index '{spec.name}' on {spec.storage.value} keys '{spec.prefix}*': "
          + ", ".join(f"{v.name} {v.algorithm.value.upper()} {v.metric.value.upper()} {v.dim}-d ({v.model}"
                      + (f", passages of {v.passages.max_tokens} tokens" if v.passages else "") + ")"
                      for v in spec.vectors))


@app.command("drop-index", cls=CheckedCommand)
def drop_index(
    name: Annotated[str, typer.Argument(help="Index name.")],
    delete_documents: Annotated[bool, typer.Option("--delete-documents", help="Also delete the documents.")] = False,
    redis_url: RedisUrl = None,
) -> None:
    """Drop an index (its documents stay unless --delete-documents).

    Example: vsearch drop-index products --delete-documents
    """
    from vsearch import indexes

    indexes.drop(_settings(redis_url=redis_url), name, delete_documents)
    _note(f"dropped index '{name}'" + (" and its documents" if delete_documents else ""))


@app.command("list", cls=CheckedCommand)
def list_indexes(
    fmt: OutputFmt = None,
    redis_url: RedisUrl = None,
) -> None:
    """List the indexes on the server: documents, vector fields, models, fields.

    Example: vsearch list
    """
    from vsearch import indexes

    rows = indexes.list_indexes(_settings(redis_url=redis_url))
    render(rows, _out_format(fmt), title="indexes")
    if not rows:
        _note("no indexes yet: make one with `vsearch create-index NAME`")


@app.command(cls=CheckedCommand)
def info(
    name: Annotated[str, typer.Argument(help="Index name.")],
    redis_url: RedisUrl = None,
) -> None:
    """Show an index's schema, models, document count and memory (per document, index, server) as JSON.

    Example: vsearch info products
    """
    import json

    from vsearch import indexes

    typer.echo(json.dumps(indexes.info(_settings(redis_url=redis_url), name), indent=2))


@app.command(cls=CheckedCommand)
def load(
    name: Annotated[str, typer.Argument(help="Index name.")],
    source: Annotated[str, typer.Argument(metavar="[FILE|FOLDER|-]", help="CSV, TSV, JSON or JSONL file; a folder or glob of images; - for stdin.")] = STDIN,
    id_field: Annotated[str, typer.Option("--id-field", help="Field with each document's id, used exactly as written; its key is PREFIX + id.")] = "id",
    text_field: Annotated[Optional[list[str]], typer.Option("--text-field", help="Field(s) to embed with the text model; several are joined with spaces.")] = None,
    image_field: Annotated[Optional[str], typer.Option("--image-field", help="Field with an image path, inside the image root.")] = None,
    image_root: Annotated[Optional[Path], typer.Option("--image-root", help="Folder image paths must stay inside; relative paths start at the input file's folder (stdin: the current one). Default: that folder.")] = None,
    vector_column: Annotated[Optional[str], typer.Option("--vector-column", metavar="COLUMN[=FIELD]", help="Column that already holds the vector (a JSON array, e.g. from `vsearch encode`): stored as it is, no model.")] = None,
    vectors: Annotated[Optional[Path], typer.Option("--vectors", metavar="FILE.npy", help="Vectors made elsewhere, as `vsearch encode -o FILE.npy` writes them (with FILE.ids.jsonl beside): each record takes the row of its id; no model.")] = None,
    input_format: InputFormat = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", min=1, help="Documents embedded and written per batch (one MULTI/EXEC); default 256, or 1000 when every vector is given.")] = None,
    prune: Annotated[bool, typer.Option("--prune", help="Delete the index's documents whose ids are not in this input (a full snapshot).")] = False,
    prune_limit: Annotated[float, typer.Option("--prune-limit", min=0, max=100, metavar="PERCENT", help="Refuse to --prune more than this share of the index.")] = 10.0,
    force: Annotated[bool, typer.Option("--force", help="Prune even past --prune-limit.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be embedded, updated, skipped and deleted; write nothing.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Stop at the first bad record instead of rejecting it and going on.")] = False,
    rejects: Annotated[Optional[Path], typer.Option("--rejects", metavar="FILE", help="Write rejected records here, exactly as received.")] = None,
    report_file: Annotated[Optional[Path], typer.Option("--report", metavar="FILE", help="Write the run's counts, times, exit code and error as JSON (failed runs too; with --dry-run --prune, the ids it would delete).")] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Build a fresh copy of the index beside the live one, then swap it in atomically.")] = False,
    wait: Annotated[float, typer.Option("--wait", min=0, metavar="SECONDS", help="Wait this long for another run's lock (default: exit 75 at once).")] = 0.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print errors only.")] = False,
    model: Model = None,
    image_model: ImageModel = None,
    device: Device = None,
    engine: EngineOpt = Engine.local,
    ray_address: RayAddress = None,
    workers: Workers = 1,
    gpus_per_worker: GpusPerWorker = 0.0,
    redis_url: RedisUrl = None,
    from_export: Annotated[bool, typer.Option("--from-export", help="FILE is a `vsearch export`: restore its documents (fields, vectors, fingerprints) with no model, creating NAME from its schema if there is none.")] = False,
) -> None:
    """Load records into an index: embeds only what is new or changed, so a nightly reload is cheap.

    Exit codes: 0 loaded; 4 loaded, but some records were rejected; 5 --prune refused (it would delete more
    than --prune-limit: nothing deleted); 1 runtime failure (what was written stays intact: rerun to finish);
    2 usage error; 75 another run holds the index's lock. --report FILE is written for failed runs too.

    Example: vsearch load products sample_data/products.csv --text-field productDisplayName --image-field image
    """
    from vsearch.load.request import LoadRequest
    from vsearch.load.run import run_load

    _check_stdin(source)
    if from_export:
        others = {"--id-field": id_field != "id", "--text-field": text_field, "--image-field": image_field,
                  "--image-root": image_root, "--vector-column": vector_column, "--vectors": vectors,
                  "--format": input_format, "--prune": prune, "--force": force, "--dry-run": dry_run,
                  "--report": report_file, "--rebuild": rebuild, "--model": model, "--image-model": image_model,
                  "--device": device, "--engine": engine is not Engine.local}
        _restore(name, source, [option for option, given in others.items() if given], batch_size, wait, strict,
                 rejects, quiet, redis_url)
    settings = _settings(redis_url=redis_url, model=model, image_model=image_model, device=device)
    request = LoadRequest(
        name=name, source=source, input_format=input_format, id_field=id_field, text_fields=tuple(text_field or ()),
        image_field=image_field, image_root=image_root, vector_column=vector_column, vectors=vectors,
        batch_size=batch_size,
        prune=prune, prune_limit=prune_limit / 100, force=force, dry_run=dry_run, strict=strict, rejects=rejects,
        report=report_file,
        rebuild=rebuild, wait_s=wait, model=model, image_model=image_model,
        engine=_engine(engine, ray_address, workers, gpus_per_worker))
    warn = (lambda message: None) if quiet else (lambda message: _note(f"vsearch: {message}"))
    with _load_progress(name, source, enabled=not quiet) as advance:
        report = run_load(settings, request, advance, warn)
    if not quiet:
        _note(report.summary())
    elif report.exit_code != 0 or report.prune_skipped:
        _note(f"vsearch: {report.attention()}")  # --quiet is errors only, and these need a look
    raise typer.Exit(report.exit_code)


@app.command(cls=CheckedCommand)
def query(
    name: Annotated[str, typer.Argument(help="Index name.")],
    text: Annotated[Optional[str], typer.Argument(help="Query text, embedded with the index's text model.")] = None,
    image: Annotated[Optional[Path], typer.Option("--image", help="Query image: search the image vectors.")] = None,
    vector: Annotated[Optional[str], typer.Option(
        "--vector", metavar="JSON", help="Query vector as a JSON array; - reads it from stdin (a JSON array, or "
        "the first line of `vsearch encode`).")] = None,
    like: Annotated[Optional[str], typer.Option("--like", metavar="ID", help="Find documents like the stored document ID.")] = None,
    batch: Annotated[Optional[str], typer.Option(
        "--batch", metavar="FILE", help="Many queries: one text a line, or JSONL with \"text\" (or \"image\": a path) and \"id\"; - for stdin. "
        "Each row is tagged with its query (and query_id).")] = None,
    k: Annotated[Optional[int], typer.Option(
        "-k", "--top", min=1, help="Number of results (default 10; a range query: every match, up to 10,000).")] = None,
    offset: Annotated[int, typer.Option("--offset", min=0, help="Skip the N best results (paging, with -k).")] = 0,
    min_score: Annotated[Optional[float], typer.Option(
        "--min-score", metavar="S", help="Range query (COSINE/IP): every result scoring at least S.")] = None,
    max_distance: Annotated[Optional[float], typer.Option(
        "--max-distance", metavar="D", help="Range query (L2): every result at most D away.")] = None,
    filter_expression: Annotated[Optional[str], typer.Option(
        "--filter", metavar="EXPR", help="RediSearch pre-filter, e.g. '@gender:{Men} @year:[2011 2012]'.")] = None,
    where: Annotated[Optional[list[str]], typer.Option(
        "--where", metavar="COND", help="Typed condition, repeatable (ANDed): 'gender=Men', 'gender!=Men', "
        "'articleType in (Watches, Belts)', 'year>=2012', 'year between 2010 and 2012', 'name~leather boots', "
        "'location near 52.52,13.40 10km'. Values are escaped for you.")] = None,
    explain_only: Annotated[bool, typer.Option("--explain", help="Print the RediSearch command that would be sent; send nothing.")] = False,
    field: Annotated[Optional[str], typer.Option("--field", help="Vector field to search (e.g. image_vector for text-to-image with CLIP).")] = None,
    fields: Annotated[Optional[str], typer.Option("--return", metavar="F1,F2", help="Document fields to show. Default: all (a table shows the indexed ones).")] = None,
    ef_runtime: Annotated[Optional[int], typer.Option(help="HNSW EF_RUNTIME for this query (recall vs speed).", min=1)] = None,
    model: Annotated[Optional[str], typer.Option("--model", metavar="NAME_OR_PATH", help="Override the model the index recorded for that field.")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Embed the text even if the query cache holds it; cache nothing.")] = False,
    cache_ttl: Annotated[int, typer.Option(
        "--cache-ttl", metavar="SECONDS", min=1, envvar="VSEARCH_QUERY_CACHE_TTL",
        help="How long the query cache keeps a text's embedding (default 7 days).")] = 7 * 24 * 3600,
    device: Device = None,
    fmt: OutputFmt = None,
    redis_url: RedisUrl = None,
    mode: Annotated[Optional[Mode], typer.Option(
        "--mode", help="hybrid: KNN and BM25 fused (the default for query TEXT on an index with TEXT fields); "
        "vector: KNN (the default otherwise; --min-score and --max-distance need it); text: BM25 over the "
        "stems of the TEXT fields. --offset pages in every mode. --like, --vector and --image search the vectors only.")] = None,
    fusion: Annotated[Fusion, typer.Option(
        "--fusion", help="Hybrid fusion: linear (min-max normalised scores, alpha * vector + (1 - alpha) * text) "
        "or rrf (reciprocal rank fusion).")] = Fusion.linear,
    alpha: Annotated[float, typer.Option("--alpha", min=0.0, max=1.0, help="Linear fusion: weight of the vector side.")] = DEFAULT_ALPHA,
    window: Annotated[int, typer.Option("--window", min=1, help="Hybrid: candidates taken from each side before fusing (at least -k).")] = DEFAULT_WINDOW,
    rrf_k: Annotated[int, typer.Option("--rrf-k", min=0, help="RRF: the constant k in 1 / (k + rank).")] = DEFAULT_RRF_K,
    collapse: Annotated[bool, typer.Option(
        "--collapse/--no-collapse", help="Show identical documents (every vector made from the same text, "
        "image or given vector) as one result, the others' ids in its copies column.")] = True,
) -> None:
    """Search by text, image, vector or stored document (KNN, range, BM25 or hybrid), with optional filters; one query or a batch.

    Scores, higher is better unless said: vector mode on COSINE indexes gives cosine similarity (1 = identical),
    IP the inner product, L2 the Euclidean distance (lower is closer); text mode the BM25 score (comparable
    within one query only); hybrid the fused score: linear in [0, 1], rrf the sum of 1 / (rrf_k + rank).

    Example: vsearch query products "black leather watch for men" -k 5 --where gender=Men
    """
    from vsearch.query import run as use_case
    from vsearch.query.hybrid import FusionParams
    from vsearch.query.request import QueryRequest
    from vsearch.query.vectors import read_vector

    if vector == STDIN:
        _check_stdin(vector)
        vector = read_vector(sys.stdin)
    settings = _settings(redis_url=redis_url, device=device)
    keep = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    request = QueryRequest(
        text=text, image=image, vector=vector, like=like, field=field, k=k, offset=offset, filter=filter_expression,
        ef_runtime=ef_runtime, model=model, return_fields=tuple(keep) if keep else None, where=tuple(where or ()),
        min_score=min_score, max_distance=max_distance, cache=not no_cache, cache_ttl=cache_ttl,
        mode=mode, fusion=FusionParams(fusion, window, alpha, rrf_k), collapse=collapse)
    if explain_only:
        typer.echo(use_case.explain_query(settings, name, request))
        return
    out_format = _out_format(fmt)
    table = out_format is OutputFormat.table
    if batch is None:
        rows = use_case.query_rows(settings, name, request, for_table=table)
        render(rows, out_format, title=f"{name}: {text or image or like or 'vector'}")
        return
    from vsearch.query.batch_file import open_batch

    _check_stdin(batch)
    streaming = out_format is OutputFormat.jsonl
    for rows in use_case.batch_query_rows(settings, name, request, open_batch(batch), table, streaming):
        render(rows, out_format, title=f"{name}: --batch {batch}")


# ---------------------------------------------------------------------------------------------------


@server_app.command("start", cls=CheckedCommand)
def server_start(
    port: Annotated[Optional[int], typer.Option(help="Also listen on 127.0.0.1:PORT (default: unix socket only).")] = None,
) -> None:
    """Start the embedded server (other commands also start it on demand).

    Example: vsearch server start --port 6380
    """
    settings = _settings()
    socket = server.ensure_running(settings.home, port)
    _note(f"embedded Redis Stack running on unix://{socket}" + (f" and 127.0.0.1:{port}" if port else "")
          + f" (password in {server.ServerPaths(settings.home).password})")


@server_app.command("stop", cls=CheckedCommand)
def server_stop() -> None:
    """Stop the embedded server; its data stays on disk (AOF) for the next start.

    Example: vsearch server stop
    """
    stopped = server.stop(_settings().home)
    _note("embedded server stopped" if stopped else "embedded server was not running")


@server_app.command("status", cls=CheckedCommand)
def server_status() -> None:
    """Say whether the embedded server runs, where, and what it holds (exit 3 when it is stopped).

    Example: vsearch server status
    """
    state = server.status(_settings().home)
    if not state.running:
        typer.echo(f"stopped (socket {state.socket})")
        raise typer.Exit(3)
    modules = ", ".join(f"{n} {v}" for n, v in sorted(state.modules.items()))
    typer.echo(f"running pid {state.pid}: Redis {state.version} ({modules}), {state.keys} keys, "
               f"{state.used_memory}, unix://{state.socket}" + (f", 127.0.0.1:{state.port}" if state.port else "")
               + f", log {state.logfile}, password file {state.password_file}")


@server_app.command("setup", cls=CheckedCommand)
def server_setup() -> None:
    """Fetch what the embedded server needs (OpenSSL 1.1) into a private folder; safe to rerun.

    Example: vsearch server setup
    """
    installed = server.setup(_settings().home)
    _note(f"installed OpenSSL 1.1 into {installed}" if installed else "the embedded server has everything it needs")


@models_app.command("prepare", cls=CheckedCommand)
def models_prepare(model: Model = None, image_model: ImageModel = None) -> None:
    """Export the text model and the image CNN to ONNX once (offline), so queries start fast and never load torch;
    safe to rerun.

    Example: vsearch models prepare --model all-MiniLM-L6-v2
    """
    from vsearch.encode import prepare_image_query_model, prepare_query_model

    settings = _settings(model=model, image_model=image_model)
    _note(f"fast query model for '{settings.model}' ready in {prepare_query_model(settings)}")
    if model is None or image_model is not None:  # --model alone asks for that text model only
        folder = prepare_image_query_model(settings)
        if folder is not None:
            _note(f"fast image model for '{settings.image_model}' ready in {folder}")


@app.command(cls=CheckedCommand)
def export(
    name: Annotated[str, typer.Argument(help="Index name.")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", metavar="FILE", help="Write here (atomically, mode 0600); - or nothing for stdout.")] = None,
    vectors: Annotated[VectorEncoding, typer.Option("--vectors", help="Vectors as base64 of their little-endian bytes, or as JSON arrays of numbers.")] = VectorEncoding.base64,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print errors only.")] = False,
    redis_url: RedisUrl = None,
) -> None:
    """Write an index (schema, models, every document's fields, vectors and fingerprint) as JSONL, for a backup
    or another server: `vsearch load NEW FILE --from-export` restores it without any model.

    Example: vsearch export products -o products.vsearch.jsonl
    """
    from vsearch.encode import open_output
    from vsearch.transfer import open_export

    path = None if output is None or str(output) == STDIN else output.expanduser()
    source = open_export(_settings(redis_url=redis_url), name)
    with _progress(f"exporting {name}", source.documents, enabled=not quiet) as advance, open_output(path) as out:
        report = source.write(out, vectors, advance)
    if not quiet or report.unwritable:
        _note(report.summary(str(path) if path else "stdout"))


def _restore(name: str, source: str, others: list[str], batch_size: Optional[int], wait: float, strict: bool,
             rejects: Optional[Path], quiet: bool, redis_url: Optional[str]) -> None:
    """`load NAME FILE --from-export`: the export's documents into NAME, no model; exits with load's codes."""
    from vsearch.transfer import RESTORE_BATCH, RestoreRequest, restore

    if others:
        raise UsageError(f"--from-export restores what the export holds: {', '.join(others)} cannot be given with it")
    request = RestoreRequest(name, source, batch_size or RESTORE_BATCH, wait, strict, rejects)
    warn = (lambda message: None) if quiet else (lambda message: _note(f"vsearch: {message}"))
    with _load_progress(name, source, enabled=not quiet) as advance:
        report = restore(_settings(redis_url=redis_url), request, advance, warn)
    if not quiet or report.rejected:
        _note(report.summary())
    raise typer.Exit(report.exit_code)


def main() -> None:
    try:
        app(prog_name="vsearch")
    finally:
        # The process ends here: the interpreter's last cyclic collection would go over every object of every module
        # (numpy, redis, typer, the models) only to free memory the OS takes back anyway. 0.1-0.35 s of the exit of a
        # 10,000-vector load on this machine (bench/report.py --part loading); CliRunner's tests never come here.
        gc.freeze()
