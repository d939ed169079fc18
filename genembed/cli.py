"""`genembed` command line: each command parses its options, calls the library, prints.

Heavy modules (torch, transformers) are imported inside the commands that need them, so that
`genembed --help` and a mistyped option answer at once. Every option is checked before a model
loads. A user's mistake (a GenembedError, a click usage error, a file the system refuses) ends the
command with one `error: ...` line on stderr, exit code 2; any other exception is a bug and shows
its traceback.
"""
from __future__ import annotations

import contextlib
import dataclasses
import inspect as pyinspect
import json
import sys
import typing
from pathlib import Path
from typing import Optional

import typer
from typer.core import TyperGroup

from . import distributed, load
from .data import load_sharegpt
from .errors import GenembedError, InputError, MissingDependency
from .jsonl import numbered_rows, read_rows
from .reader import TextFile, chunked
from .recipe import DTYPES, RECIPES, TrainConfig

MODEL_HELP = ("The model: a genembed checkpoint folder, an official llm2vec-gen folder, a hub id of either, or a "
              "bundled one by name: 'default' (the default) or 'self-supervised'.")
BACKEND_HELP = ("How inference runs: 'torch' (the reference), 'onnx' (onnxruntime, CPU; pip install 'genembed[onnx]') "
                "or 'openvino' (CPU; pip install 'genembed[openvino]').")
BF16_HELP = ("Embed under bf16 autocast: faster where the CPU has native bf16 (AVX-512 BF16 / AMX), on backend torch "
             "or openvino; embeddings within ~2e-3 in cosine of float32.")
BACKBONE_HELP = "A local copy of the model's backbone (a folder or .gguf) instead of the one it records."
BATCH_HELP = "Texts run through the model together (more: faster, more memory)."
INSTRUCTION_HELP = "Instruction of the texts: 'query' (the default), 'document', or an instruction text."
# click's UsageError as typer uses it (recent typer versions carry their own copy of click)
ClickUsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")


class UsageError(GenembedError, ClickUsageError):
    """A command refusing its options or input before any work: one `error:` line, exit code 2."""

    def show(self, file=None) -> None:
        error_line(self.format_message())


class MissingExtra(UsageError, MissingDependency):
    """An optional dependency the command needs is not installed (checked before any model loads)."""


def error_line(message: str) -> None:
    """`error: <message>` as one line on stderr."""
    typer.secho("error: " + " ".join(str(message).splitlines()), fg="red", err=True)


@contextlib.contextmanager
def _one_line_usage_errors():
    try:
        yield
    except ClickUsageError as e:  # unknown option, missing argument, bad value, typer.BadParameter
        if isinstance(e, UsageError) or type(e).__name__ == "NoArgsIsHelpError":  # `genembed` alone: the help
            raise
        hint = f"; see '{e.ctx.command_path} --help'" if e.ctx is not None else ""
        raise UsageError(e.format_message() + hint) from None


class _Commands(TyperGroup):
    """genembed's root group: click's own usage errors come out in the one `error:` line style too."""

    def make_context(self, *args, **kwargs):
        with _one_line_usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):
        with _one_line_usage_errors():
            return super().invoke(ctx)


# rich_markup_mode=None: help text is shown as written (rich markup would drop every [bracketed] word,
# e.g. 'genembed[onnx]'); pretty_exceptions_enable=False: a bug shows Python's own traceback
app = typer.Typer(add_completion=False, no_args_is_help=True, cls=_Commands, rich_markup_mode=None,
                  pretty_exceptions_enable=False,
                  help="LLM2Vec-Gen embeddings from a frozen chat LLM: generate → train → encode / decode.")


@app.callback()
def _root():
    """LLM2Vec-Gen embeddings from a frozen chat LLM."""


def read_texts(texts: list[str], input_file: Optional[Path], field: str = "text", stream: bool = False):
    """Texts from arguments, or from a file (reader.TextFile: .jsonl by its `field` key, else one
    text per line, row i = line i). stream=True returns the file as a sized iterable, validated
    once, read again batch by batch; otherwise a list."""
    if texts and input_file:
        raise UsageError("give texts as arguments or --input, not both")
    if input_file is None:
        return list(texts)
    try:
        source = TextFile(input_file, field)
        count = len(source)  # one validating pass: a bad row is reported before any model work starts
    except GenembedError as e:
        raise UsageError(str(e)) from None
    if not count:
        raise UsageError(f"{input_file} holds no texts")
    return source if stream else list(source)


def check_model(*models) -> None:
    """--model naming a file, where a checkpoint folder (or a hub id, or a bundled name) is expected."""
    for model in models:
        if model is not None and Path(str(model)).expanduser().is_file():
            raise UsageError(f"--model {model} is a file; a checkpoint folder is expected")


def check_backend(name: str) -> None:
    """--backend: a known one, with its optional dependencies installed; checked before any model loads."""
    from . import backends

    try:
        backends.check_name(name)
    except ValueError as e:  # the library's own check, made before anything loads
        raise InputError(str(e)) from None
    try:
        if name == "onnx":
            from .onnx_export import require_onnx

            require_onnx()
        elif name == "openvino":
            backends.require_openvino()
    except ImportError as e:
        raise MissingExtra(str(e)) from None


def check_via(via: Optional[str]) -> None:
    """--via: one of the decoders' ways to read an embedding (or None: the model's default)."""
    from .decoders import VIA

    if via is not None and via not in VIA:
        raise UsageError(f"--via must be one of {', '.join(VIA)}, got {via!r}")


def require_faiss() -> None:
    """faiss, which `index build` and `search` need, is installed (checked before any model loads)."""
    import importlib.util

    if importlib.util.find_spec("faiss") is None:
        raise MissingExtra("genembed search needs faiss: pip install 'genembed[search]'")


@app.command()
def generate(
    out: Path = typer.Option(..., "--out", "-o", help="JSONL to write (appended to; a rerun resumes)."),
    backbone: str = typer.Option("smollm2-135m-instruct", help="Alias, .gguf file, folder or hub id."),
    input_file: Optional[Path] = typer.Option(None, "--input", help="Queries: .jsonl (key --field) or text, one per line. Default: ShareGPT training split."),
    field: str = typer.Option("query", help="Key of the query in an --input JSONL."),
    limit: Optional[int] = typer.Option(None, min=1, help="Answer only the first N queries."),
    max_new_tokens: int = typer.Option(64, min=1, help="Tokens each answer may have at most (a longer one is cut)."),
    max_query_tokens: int = typer.Option(256, min=1, help="Queries are cut to this many tokens."),
    batch_size: int = typer.Option(16, min=1, help="Queries answered together in one generation call."),
    sample: bool = typer.Option(False, help="Sample instead of greedy decoding."),
    temperature: float = typer.Option(0.7, help="Sampling temperature, > 0 (with --sample)."),
    top_p: float = typer.Option(0.9, help="Nucleus sampling: the smallest set of tokens holding this much probability (with --sample)."),
    seed: int = typer.Option(0, help="Random seed of the sampling (with --sample)."),
    bf16: bool = typer.Option(False, help="bf16 autocast (CPU or GPU)."),
    dtype: str = typer.Option("float32", help="The backbone's weights: float32, bfloat16 or float16 (an 8B backbone is 32 GB in float32)."),
):
    """Let the frozen backbone answer queries (the training targets). Under `accelerate launch` /
    `torchrun` each process answers its share."""
    from .backbone import load_backbone
    from .generate import answer_queries

    if dtype not in DTYPES:
        raise UsageError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if not temperature > 0 or not 0 < top_p <= 1:
        raise UsageError(f"--temperature must be > 0 and --top-p in (0, 1], got {temperature} and {top_p}")
    if input_file is None:
        queries = [(c.id, c.query) for c in load_sharegpt("train")]
    else:
        queries = [(f"{input_file.name}:{i}", q) for i, q in enumerate(read_texts([], input_file, field))]
    if limit is not None:
        queries = queries[:limit]
    if not queries:
        raise UsageError("no queries to answer")
    rows = answer_queries(load_backbone(backbone, dtype=dtype, device=distributed.current().device), queries, out,
                          max_new_tokens=max_new_tokens,
                          batch_size=batch_size, max_query_tokens=max_query_tokens, sample=sample,
                          temperature=temperature, top_p=top_p, seed=seed, bf16=bf16)
    typer.echo(f"{len(rows)} answered queries in {out}")


def _train_option(f: dataclasses.Field, annotation) -> pyinspect.Parameter:
    """The `genembed train` option of one TrainConfig field: its flag, default and help from the field."""
    flags = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
    flags = (flags,) if isinstance(flags, str) else tuple(flags)
    if typing.get_origin(annotation) is not None and type(None) in typing.get_args(annotation):
        annotation = Optional[next(a for a in typing.get_args(annotation) if a is not type(None))]
    if annotation is bool:  # a switch both ways, e.g. --query-lens / --no-query-lens
        flags = (f"{flags[0]}/--no-{flags[0][2:]}", *flags[1:])
    default = ... if f.default is dataclasses.MISSING else f.default
    return pyinspect.Parameter(f.name, pyinspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                               default=typer.Option(default, *flags, help=f.metadata.get("help")))


def _recipe_option(recipes, default: str) -> pyinspect.Parameter:
    """`--recipe NAME`: the named recipes (recipe.RECIPES, teacher_build.config.TEACHER_RECIPES), each with its
    description; `default` is the one whose settings are the field defaults."""
    names = "; ".join(f"'{name}': {r.description}" for name, r in recipes.items())
    return pyinspect.Parameter("recipe", pyinspect.Parameter.KEYWORD_ONLY, annotation=str, default=typer.Option(
        default, "--recipe", help=f"The named recipe to start from ({names}). Options given explicitly override its "
                                  f"settings; the defaults shown here are the '{default}' recipe's."))


def _given(ctx: typer.Context, settings: dict) -> dict:
    """The options given on the command line (or in the environment), which override the recipe's settings
    (click's ParameterSource by name: typer may carry its own copy of click)."""
    sources = {k: getattr(ctx.get_parameter_source(k), "name", "DEFAULT") for k in settings}
    return {k: v for k, v in settings.items() if sources[k] not in ("DEFAULT", "DEFAULT_MAP")}


def train(ctx: typer.Context, resume: bool = False, recipe: str = "default", **settings):
    """Train the special tokens and projections on a frozen backbone."""
    from .train import loss_summary, train as run

    cfg = TrainConfig.from_recipe(recipe, **_given(ctx, settings))
    if not Path(cfg.responses).exists():
        raise typer.BadParameter(f"responses file not found: {cfg.responses}")
    run(cfg, resume=resume)
    if not distributed.current().is_main:
        return  # one summary, from the process that wrote the run
    out = Path(cfg.out_dir)
    log = read_rows(out / "log.jsonl")
    for key in ("rec", "align"):
        k = max(1, min(10, sum(r.get(key) is not None for r in log) // 4))
        summary = loss_summary(log, key, k)
        if summary:
            typer.echo(f"{key:>5}: mean of the first {k} steps {summary[0]:.4f} → last {k} steps {summary[1]:.4f}")
    typer.echo(f"model: {out / 'model'}   log: {out / 'log.jsonl'}   plot: {out / 'losses.png'}")


# the options are TrainConfig's fields, written once there (recipe.py), plus --resume and --recipe
train.__signature__ = pyinspect.Signature(
    [pyinspect.Parameter("ctx", pyinspect.Parameter.KEYWORD_ONLY, annotation=typer.Context),
     pyinspect.Parameter("resume", pyinspect.Parameter.KEYWORD_ONLY, annotation=bool,
                         default=typer.Option(False, "--resume", help="Continue the run in --out from its resume/ state.")),
     _recipe_option(RECIPES, "default")]
    + [_train_option(f, typing.get_type_hints(TrainConfig)[f.name]) for f in dataclasses.fields(TrainConfig)])
app.command()(train)


@app.command()
def encode(
    texts: list[str] = typer.Argument(None, help="Texts to embed."),
    input_file: Optional[Path] = typer.Option(None, "--input", help=".jsonl (key --field) or text file, one per line."),
    field: str = typer.Option("text", help="Key of the text in an --input JSONL."),
    out: Path = typer.Option(Path("embeddings.npy"), "--out", "-o", help=".npy file to write."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    backbone: Optional[str] = typer.Option(None, "--backbone", help=BACKBONE_HELP),
    backend: str = typer.Option("torch", "--backend", help=BACKEND_HELP),
    instruction: Optional[str] = typer.Option(None, help=INSTRUCTION_HELP),
    batch_size: int = typer.Option(32, min=1, help=BATCH_HELP),
    normalize: bool = typer.Option(False, help="L2-normalise the embeddings."),
    bf16: bool = typer.Option(False, help=BF16_HELP),
):
    """Embed texts and write a float32 .npy array [n, dim]."""
    if out.suffix != ".npy":
        raise UsageError(f"--out must be a .npy file, got {out}")
    check_model(model)
    check_backend(backend)
    items = read_texts(texts or [], input_file, field, stream=True)
    if not len(items):
        raise UsageError("no texts to encode: give them as arguments or with --input")
    # texts are read, tokenized and embedded batch by batch and rows go to the file as they come
    # (a memory map), so neither the corpus nor its vectors sit in RAM
    vectors = load(model, backbone=backbone, backend=backend).encode(items, instruction=instruction, batch_size=batch_size, normalize=normalize,
                                 show_progress_bar=len(items) > batch_size, output_path=out, bf16=bf16)
    typer.echo(f"{vectors.shape[0]} embeddings of dimension {vectors.shape[1]} written to {out}")


@app.command("query-lens")
def query_lens(
    model: Path = typer.Option(..., "--model", "-m", help="Checkpoint folder to write the lens into."),
    input_file: Optional[Path] = typer.Option(None, "--input", help="The queries: .jsonl (key --field) or text, one per line; rows that are ShareGPT training queries (their id and text) are kept by id, not text."),
    sharegpt: bool = typer.Option(False, "--sharegpt", help="Every ShareGPT training-split query instead (the lens keeps their ids, not their text)."),
    field: str = typer.Option("query", help="Key of the query in an --input JSONL (a responses file has 'query')."),
    batch_size: int = typer.Option(32, min=1, help=BATCH_HELP),
    bf16: bool = typer.Option(False, help="bf16 autocast, as `genembed train --bf16` builds it."),
):
    """(Re)build a checkpoint's query lens from queries (`genembed train` writes one from its training
    queries): the default decoder then reads embeddings through the nearest of them."""
    from .checkpoint import save_checkpoint
    from .query_lens import QueryLens

    if (input_file is None) == (not sharegpt):
        raise UsageError("give the queries with --input or --sharegpt (one of them)")
    check_model(model)
    if input_file is not None:
        queries = read_texts([], input_file, field)
        ids = ([row.get("id") for _, row in numbered_rows(input_file)] if input_file.suffix == ".jsonl"
               else [None] * len(queries))  # (validated above: one row per line, no blank lines)
    m = load(model)
    kw = dict(batch_size=batch_size, show_progress_bar=True, bf16=bf16)
    if sharegpt:
        m.query_lens = QueryLens.build_sharegpt(m, **kw)
    else:  # a responses file of ShareGPT queries keeps their ids, not their text
        m.query_lens = QueryLens.build_rows(m, [{"id": i, "query": q} for i, q in zip(ids, queries)], **kw)
    save_checkpoint(m, model)
    typer.echo(f"query lens of {len(m.query_lens.queries)} queries written to {model}")


teacher_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False,
                          help="Build an LLM2Vec teacher from a causal LM, offline (bidirectional attention, MNTP, "
                               "SimCSE) for `genembed train --teacher`.")
app.add_typer(teacher_app, name="teacher")


def teacher_build(ctx: typer.Context, resume: bool = False, recipe: str = "llm2vec", **settings):
    """Build an LLM2Vec teacher from unlabeled text: the backbone made bidirectional, MNTP-trained (a LoRA, the
    mntp/ folder), then SimCSE-trained (a second LoRA, the simcse/ folder). Resumable after a kill (--resume)."""
    from .teacher_build import TeacherBuildConfig, build_teacher

    spec = build_teacher(TeacherBuildConfig.from_recipe(recipe, **_given(ctx, settings)), resume=resume)
    typer.echo(f"teacher: {spec}   (genembed train --teacher {spec})")


# the options are TeacherBuildConfig's fields, written once there (teacher_build/config.py), plus --resume
def _teacher_build_signature() -> pyinspect.Signature:
    from .teacher_build.config import TEACHER_RECIPES, TeacherBuildConfig

    hints = typing.get_type_hints(TeacherBuildConfig)
    return pyinspect.Signature(
        [pyinspect.Parameter("ctx", pyinspect.Parameter.KEYWORD_ONLY, annotation=typer.Context),
         pyinspect.Parameter("resume", pyinspect.Parameter.KEYWORD_ONLY, annotation=bool, default=typer.Option(
            False, "--resume", help="Continue the build in --out: finished phases are skipped, the running one "
                                    "resumes from its last save.")),
         _recipe_option(TEACHER_RECIPES, "llm2vec")]
        + [_train_option(f, hints[f.name]) for f in dataclasses.fields(TeacherBuildConfig)])


teacher_build.__signature__ = _teacher_build_signature()
teacher_app.command("build")(teacher_build)


index_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False,
                        help="Build a faiss index of a corpus for `genembed search`.")
app.add_typer(index_app, name="index")


@index_app.command("build")
def index_build(
    source: Path = typer.Argument(..., help="Corpus: .jsonl (key --field) or text file, one text per line."),
    out: Path = typer.Option(..., "--out", "-o", help="Index folder (a rerun resumes an unfinished build)."),
    field: str = typer.Option("text", help="Key of the text in a JSONL corpus."),
    id_field: str = typer.Option("id", help="Key of the row id in a JSONL corpus (default when absent: the line number)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    backbone: Optional[str] = typer.Option(None, "--backbone", help=BACKBONE_HELP),
    backend: str = typer.Option("torch", "--backend", help=BACKEND_HELP),
    kind: str = typer.Option("auto", help="'flat' (exact), 'hnsw' (approximate) or 'auto' (flat below 100k rows)."),
    instruction: str = typer.Option("document", help="Instruction of the indexed texts: 'document', 'query' or a text."),
    batch_size: int = typer.Option(32, min=1, help=BATCH_HELP),
    chunk_size: int = typer.Option(4096, min=1, help="Rows encoded between two saved progress points."),
):
    """Embed a corpus into a faiss index folder, resumably."""
    from .index import KINDS, build_index

    if kind not in KINDS:
        raise UsageError(f"--kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if source.is_dir():
        raise UsageError(f"{source} is a folder; a corpus file is expected")
    check_model(model)
    check_backend(backend)
    require_faiss()
    index = build_index(load(model, backbone=backbone) if backbone else model, source, out, field=field, id_field=id_field or None, instruction=instruction,
                        kind=kind, batch_size=batch_size, chunk_size=chunk_size, backend=backend)
    typer.echo(f"{len(index)} rows indexed ({index.kind}, dimension {index.manifest['dim']}) in {out}")


@app.command()
def search(
    index_dir: Path = typer.Argument(..., help="Folder written by `genembed index build`."),
    queries: list[str] = typer.Argument(None, help="Query texts."),
    input_file: Optional[Path] = typer.Option(None, "--input", help="Queries: .jsonl (key --field) or text file, one per line."),
    field: str = typer.Option("text", help="Key of the query in an --input JSONL."),
    k: int = typer.Option(10, "-k", "--top-k", help="Results per query."),
    as_json: bool = typer.Option(False, "--json", help="One JSON line per query: {query, hits: [{id, score, text}]}."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="The model (default: the one the index records); " + MODEL_HELP[4:]),
    backbone: Optional[str] = typer.Option(None, "--backbone", help=BACKBONE_HELP),
    backend: str = typer.Option("torch", "--backend", help=BACKEND_HELP),
    instruction: str = typer.Option("query", help="Instruction of the queries: 'query', 'document' or a text."),
    batch_size: int = typer.Option(32, min=1, help=BATCH_HELP),
    width: int = typer.Option(100, min=1, help="Characters of each hit's text shown (not with --json)."),
):
    """Search an index with query texts: ranked hits (rank, score, id, text)."""
    from .index import Index

    if k < 1:
        raise UsageError(f"-k must be >= 1, got {k}")
    check_model(model)
    check_backend(backend)
    require_faiss()
    items = read_texts(queries or [], input_file, field, stream=True)
    if not len(items):
        raise UsageError("no queries: give them as arguments or with --input")
    index = Index.open(index_dir, model=load(model, backbone=backbone) if backbone else model, backend=backend)
    for batch in chunked(items, 256):  # a batch of queries at a time: a long --input file is never held whole
        for query, hits in zip(batch, index.search(batch, k=k, instruction=instruction, batch_size=batch_size)):
            if as_json:
                typer.echo(json.dumps({"query": query, "hits": [h.to_dict() for h in hits]}, ensure_ascii=False))
                continue
            typer.echo(f"query: {query}")
            for rank, hit in enumerate(hits, 1):
                text = " ".join(hit.text.split())
                text = text if len(text) <= width else text[: max(width - 1, 0)] + "…"
                typer.echo(f"{rank:>4}  {hit.score:.4f}  {hit.id}  {text}")
            typer.echo("")


VIA_HELP = ("'queries': the LLM answers the nearest training query followed by the embedding's nearest words (a "
            "departure; the default where the checkpoint has a query lens). 'words': the LLM answers a request made "
            "of the nearest words alone (the default otherwise). 'soft-prompt': the LLM continues the soft prompt "
            "(the paper's).")


@app.command()
def decode(
    texts: list[str] = typer.Argument(None, help="Texts whose embeddings to decode."),
    input_file: Optional[Path] = typer.Option(None, "--input", help=".jsonl (key --field) or text file, one per line."),
    field: str = typer.Option("text", help="Key of the text in an --input JSONL."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    backbone: Optional[str] = typer.Option(None, "--backbone", help=BACKBONE_HELP),
    backend: str = typer.Option("torch", "--backend", help=BACKEND_HELP),
    instruction: Optional[str] = typer.Option(None, help=INSTRUCTION_HELP),
    max_new_tokens: int = typer.Option(64, min=1, help="Tokens each decoded text may have at most."),
    via: Optional[str] = typer.Option(None, help=VIA_HELP),
    repetition_penalty: float = typer.Option(1.0, help="Divide (multiply, where negative) the logit of every token "
                                             "already written by this (> 0; 1.0: off; transformers' option)."),
    no_repeat_ngram_size: int = typer.Option(3, help="Never write the same N tokens in a row twice (0: off; "
                                             "transformers' option). The Python API's default is 0, the paper's "
                                             "plain greedy decoder."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch threads for decoding (default: as "
                                          "many as the other processes leave cores free, measured as it runs)."),
):
    """Show what each text's embedding "says": text the frozen LLM writes from it (greedy)."""
    from .decoders import check_decoding_options

    check_model(model)
    check_backend(backend)
    check_via(via)
    check_decoding_options(max_new_tokens, repetition_penalty, no_repeat_ngram_size)
    items = read_texts(texts or [], input_file, field)
    if not items:
        raise UsageError("no texts to decode: give them as arguments or with --input")
    m = load(model, backbone=backbone, backend=backend)
    m.num_threads = threads
    decoded = m.decode(items, max_new_tokens=max_new_tokens, instruction=instruction, via=via,
                       repetition_penalty=repetition_penalty, no_repeat_ngram_size=no_repeat_ngram_size)
    for text, said in zip(items, decoded):
        typer.echo(f"input:   {text}\ndecoded: {said}\n")


@app.command()
def serve(
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    backbone: Optional[str] = typer.Option(None, "--backbone", help=BACKBONE_HELP),
    backend: str = typer.Option("torch", "--backend", help=BACKEND_HELP),
    host: str = typer.Option("127.0.0.1", help="Address to bind; the default answers this machine only."),
    port: int = typer.Option(8000, min=0, max=65535, help="Port to listen on (0: any free one)."),
    api_key: Optional[str] = typer.Option(None, "--api-key", envvar="GENEMBED_API_KEY", show_default=False,
                                          help="Require 'Authorization: Bearer KEY' (all but /health). Also from $GENEMBED_API_KEY."),
    max_batch: int = typer.Option(32, min=1, help="Texts per forward pass when concurrent requests are batched."),
    max_wait_ms: float = typer.Option(5.0, min=0.0, help="How long a request may wait for others to batch with (0: no batching)."),
    max_texts: int = typer.Option(2048, min=1, help="Texts per request (more: 413)."),
    max_chars: int = typer.Option(16384, min=1, help="Characters per text (more: 413)."),
    bf16: bool = typer.Option(False, help=BF16_HELP + " Decoding stays float32."),
    served_model_name: Optional[str] = typer.Option(None, "--served-model-name", help="The name clients send as "
                                                    "'model' (GET /v1/models lists it); default: --model as given, "
                                                    "'default' without one."),
):
    """Serve an OpenAI-compatible /v1/embeddings (plus /v1/decode, /health, /metrics) over HTTP."""
    from .serve import serve as run

    check_model(model)
    check_backend(backend)
    run(load(model, backbone=backbone) if backbone else model, host=host, port=port, api_key=api_key,
        max_batch=max_batch, max_wait_ms=max_wait_ms, max_texts=max_texts, max_chars=max_chars, backend=backend,
        bf16=bf16, model_name=served_model_name or model or "default")


@app.command()
def export(
    model: str = typer.Option(..., "--model", "-m", help=MODEL_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write."),
    format: str = typer.Option("llm2vec-gen", "--format", help="'llm2vec-gen': the official code's layout "
                               "(LLM2VecGenModel.from_pretrained loads it)."),
    backbone_path: Optional[str] = typer.Option(None, help="What the folder names as its backbone (a hub id or folder "
                                                "the official code can load); default: the hub id of the model's "
                                                "backbone (for the bundled alias, HuggingFaceTB/SmolLM2-135M-Instruct), "
                                                "or its own folder; never a folder of this machine's caches."),
):
    """Write a model in another tool's layout: a model trained with --input-layout official as an official
    llm2vec-gen folder."""
    from .official import write_official

    if format != "llm2vec-gen":
        raise UsageError(f"--format must be 'llm2vec-gen', got {format!r}")
    check_model(model)
    write_official(load(model), out, backbone_path=backbone_path)
    typer.echo(f"official llm2vec-gen folder written to {out}")


@app.command("eval")
def evaluate(
    model: list[str] = typer.Option(None, "--model", "-m", help="Model(s): genembed or official llm2vec-gen folders, hub ids, or 'self-supervised'; the bundled default is always included."),
    tasks: str = typer.Option("qa,safety,classification,clustering,decoding", help="Comma-separated: qa, safety, classification, clustering, decoding."),
    baselines: str = typer.Option("teacher,backbone,ridge,hyde", help="Comma-separated: teacher, backbone, ridge, hyde, fused (each model averaged with its own teacher's embedding of the input), or '' for none."),
    ridge_responses: Optional[Path] = typer.Option(None, help="Training rows (JSONL) the ridge baseline is fitted on: the student's own."),
    hyde_tasks: str = typer.Option("qa,decoding", help="Tasks HyDE runs on (generation is slow on CPU); 'all' for every task. On 'decoding' it is the reference: the backbone reading the real query."),
    out: Path = typer.Option(Path("runs/eval"), "--out", "-o", help="Folder for results.md / .json / .png and caches."),
    no_default: bool = typer.Option(False, "--no-default", help="Leave the bundled default out."),
    cost_only: bool = typer.Option(False, "--cost-only", help="Keep the scores in --out; measure only the encode cost again (run it on an idle machine)."),
    cost_texts: int = typer.Option(32, min=1, help="Queries the encode cost is measured on."),
    skip_cost: bool = typer.Option(False, "--skip-cost", help="Keep the encode cost rows in --out already have (measured on an idle machine)."),
    bf16: Optional[bool] = typer.Option(None, "--bf16/--no-bf16", help="bf16 autocast for every method that runs the backbone (default: only where bf16 is native: a GPU, a CPU with AVX-512 BF16 / AMX; emulated it is several times slower)."),
    backend: str = typer.Option("torch", "--backend", help=BACKEND_HELP + " (the students)"),
):
    """Score genembed checkpoints and the baselines on real offline tasks, in one table."""
    from .backbone import bf16_is_native
    from .eval.suite import evaluate_models

    check_model(*(model or []))
    check_backend(backend)
    evaluate_models(list(model or []), tasks.split(","), baselines.split(","), out, include_default=not no_default,
                    ridge_responses=ridge_responses, hyde_tasks=None if hyde_tasks == "all" else set(hyde_tasks.split(",")),
                    cost_texts=cost_texts, cost_only=cost_only, skip_cost=skip_cost,
                    bf16=(bf16_is_native() and backend != "onnx") if bf16 is None else bf16, backend=backend)
    typer.echo((out / "results.md").read_text())
    typer.echo(f"written: {out / 'results.md'}, {out / 'results.json'}, {out / 'results.png'}")


@app.command()
def benchmark(
    model: list[str] = typer.Option(None, "--model", "-m", help="Model(s): genembed or official llm2vec-gen folders, hub ids, or 'self-supervised'; the bundled default is included unless --no-default."),
    sets: str = typer.Option("selection,report", "--set", help="Comma-separated: selection (choose recipes on it), report (report the chosen one only)."),
    tasks: str = typer.Option("", help="Comma-separated task names instead of whole sets (see genembed/eval/benchmark.py)."),
    baselines: str = typer.Option("teacher,backbone,hyde", help="Comma-separated: teacher, backbone, hyde (on the query → document tasks), fused (each model averaged with its own teacher's embedding of the input), or '' for none."),
    out: Path = typer.Option(Path("runs/benchmark"), "--out", "-o", help="Folder for results.md / .json / .png and caches."),
    no_default: bool = typer.Option(False, "--no-default", help="Leave the bundled default out."),
    rescore: bool = typer.Option(False, help="Score again what --out already holds."),
    bf16: Optional[bool] = typer.Option(None, "--bf16/--no-bf16", help="bf16 autocast for every method (default: only where bf16 is native: a GPU, a CPU with AVX-512 BF16 / AMX)."),
    backend: str = typer.Option("torch", "--backend", help=BACKEND_HELP + " (the students; onnx gives the same embeddings within 1e-6 in cosine, faster on a CPU)"),
    teacher: Optional[str] = typer.Option(None, "--teacher", help="The teacher the teacher baseline runs (any --teacher of genembed train: a sentence-transformers model, an LLM2Vec FIRST+SECOND, cls:ENCODER); default: the first model's."),
):
    """The broad offline benchmark (24 tasks, MTEB's six task types, a selection and a report set)."""
    from .backbone import bf16_is_native
    from .eval import benchmark as bench
    from .eval.suite import build_methods

    names = bench.task_names(sets.split(","), [t for t in tasks.split(",") if t])
    check_model(*(model or []))
    check_backend(backend)
    use_bf16 = (bf16_is_native() and backend != "onnx") if bf16 is None else bf16
    methods = build_methods(list(model or []), baselines.split(","), include_default=not no_default,
                            cache_dir=out / "cache", bf16=use_bf16, backend=backend, teacher=teacher)
    results = bench.run(methods, names, out, rescore=rescore)
    typer.echo((out / "results.md").read_text())
    typer.echo(f"written: {out / 'results.md'}, {out / 'results.json'}, {out / 'results.png'}")
    if results["stopped"]:
        raise typer.Exit(1)


@app.command()
def inspect(
    texts: list[str] = typer.Argument(None, help="Texts whose embeddings to look into."),
    input_file: Optional[Path] = typer.Option(None, "--input", help=".jsonl (key --field) or text file, one per line."),
    field: str = typer.Option("text", help="Key of the text in an --input JSONL."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help=MODEL_HELP),
    backbone: Optional[str] = typer.Option(None, "--backbone", help=BACKBONE_HELP),
    backend: str = typer.Option("torch", "--backend", help=BACKEND_HELP),
    instruction: Optional[str] = typer.Option(None, help=INSTRUCTION_HELP),
    top_k: int = typer.Option(5, min=1, help="Top tokens the logit lens shows for each compression token."),
    max_new_tokens: int = typer.Option(48, min=1, help="Tokens each decoded text may have at most."),
    via: Optional[str] = typer.Option(None, help=VIA_HELP),
    words: int = typer.Option(10, min=1, help="Nearest words shown (with via 'words' or 'queries')."),
):
    """What an embedding holds: its nearest words in the teacher's space, the decoded text, and the
    logit lens on each compression token."""
    from .inspection import inspect as look

    check_model(model)
    check_backend(backend)
    check_via(via)
    items = read_texts(texts or [], input_file, field)
    if not items:
        raise UsageError("no texts to inspect: give them as arguments or with --input")
    for item in look(load(model, backbone=backbone, backend=backend), items, via=via, instruction=instruction, top_k=top_k,
                     max_new_tokens=max_new_tokens, words=words):
        typer.echo(f"input:   {item.text}")
        if item.nearest_query is not None:
            typer.echo(f"nearest training query ({item.nearest_query[1]:.2f}): {item.nearest_query[0]}")
        if item.words is not None:
            typer.echo("words:   " + ", ".join(f"{w} {c:.2f}" for w, c in item.words))
        typer.echo(f"decoded: {item.decoded}\n")
        typer.echo("logit lens (top tokens of each compression token's last-layer state):")
        for i, tokens in enumerate(item.logit_lens):
            typer.echo(f"  c{i:<2} " + "  ".join(repr(t) for t in tokens))
        typer.echo("")


def main():
    """Entry point: a user's mistake (a GenembedError: bad input, file, checkpoint, option, a missing
    optional dependency; or a file the system refuses) prints one `error:` line, exit code 2 (click's
    usage errors are printed so by the app itself). Anything else is a bug: its traceback shows."""
    try:
        app()
    except GenembedError as e:
        error_line(str(e))
        sys.exit(2)
    except OSError as e:  # a missing file, a full disk, a folder that cannot be written
        where = " -> ".join(str(f) for f in (e.filename, e.filename2) if f)
        error_line(f"{e.strerror or e}{': ' + where if where else ''}")
        sys.exit(2)
