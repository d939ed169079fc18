"""A corpus embedded into a faiss index on disk, built resumably and searched by text.

    from genembed.index import build_index, Index
    build_index(model, "corpus.jsonl", "idx/", field="text")      # documents: "document" instruction
    Index.open("idx/").search("how do I boil an egg?", k=5)        # queries: "query" instruction

The folder holds:
    index.json     manifest: model, instruction, field, source file (size, sha1), count, dim, kind, progress
    vectors.f32    raw float32 rows, L2-normalised (inner product = cosine), appended chunk by chunk
    rows.jsonl     {"id", "text"} per row: the way back from a hit to its text
    offsets.u64    byte offset of each row in rows.jsonl, so a hit is read with one seek
    index.faiss    the faiss index, written once every row is encoded

Rows are encoded `chunk_size` at a time; each finished chunk is appended and forced to disk before
the manifest (replaced atomically) counts it, so a kill loses at most the chunk in flight and a
rerun continues after the last counted one (bytes past it are cut away). Memory stays flat in
corpus size apart from the faiss index itself. faiss is imported only when an index is built or
opened: `import genembed` never loads it.
"""
from __future__ import annotations

import json
import os
import sys
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import distributed
from .atomic import file_digest, folder_lock, replace_file, write_text
from .errors import InputError, MissingDependency
from .jsonl import numbered_rows, read_json_object, string_field
from .reader import TextFile, chunked

MANIFEST, VECTORS, ROWS, OFFSETS, FAISS_FILE = "index.json", "vectors.f32", "rows.jsonl", "offsets.u64", "index.faiss"
FORMAT = 1
KINDS = ("auto", "flat", "hnsw")
AUTO_HNSW_ROWS = 100_000  # `auto`: exact search below this many rows, HNSW from it on
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 200, 128
CHUNK_SIZE = 4096  # rows encoded between two durable progress points
FAISS_ADD_BLOCK = 65536  # rows handed to faiss at a time, so the vectors are never copied whole


def _faiss():
    try:
        import faiss
    except ImportError:
        raise MissingDependency("genembed search needs faiss: pip install 'genembed[search]'") from None
    return faiss


@dataclass(frozen=True)
class Hit:
    id: object  # the row's id as the source gave it (str or int), else its line number
    score: float  # cosine similarity to the query
    text: str
    row: int  # position in the index (0-based)

    def to_dict(self) -> dict:
        return {"id": self.id, "score": self.score, "text": self.text}


# -- the source file -----------------------------------------------------------------------
def source_rows(path: str | Path, field: str = "text", id_field: str | None = "id"):
    """(id, text) for each row of a corpus file, streamed. `.jsonl`: the `field` of each row, its id
    the `id_field` value (str or int, kept as given) when the first row has one — then every row
    must — else the line number. Any other file: one text per line, id = line number (1-based)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"corpus file not found: {path}")
    if path.suffix != ".jsonl":
        for i, text in enumerate(TextFile(path)):
            yield i + 1, text
        return
    with_ids = None
    for n, row in numbered_rows(path):
        text = string_field(path, n, row, field)
        has_id = bool(id_field) and id_field in row
        if with_ids is None:
            with_ids = has_id  # the first row decides, so ids and line numbers never mix
        elif has_id != with_ids:
            raise InputError(f"{path}:{n} {'has' if has_id else 'has no'} '{id_field}' key but the first row "
                             f"{'has none' if has_id else 'has one'}: give every row an id or none")
        if not has_id:
            yield n, text
            continue
        yield string_field(path, n, row, id_field, integers=True), text


# -- the model a build used ---------------------------------------------------------------
def _fingerprint(model) -> str:
    """checkpoint.model_fingerprint (imported here, not above: importing genembed.index stays torch-free): a
    resume or a search with another model than the build's (whose vectors would not be comparable) is refused."""
    from .checkpoint import model_fingerprint

    return model_fingerprint(model)


def _resolve_model(model, backend: str | None = None):
    """(GenEmbed, what the manifest records): a path → that checkpoint, None → the bundled default
    ("default"; a bundled checkpoint is recorded by its name), a loaded model → itself (recorded as
    null: search then needs it passed again).
    backend: the one to run it on (backends.py; None: "torch" for a path, a loaded model's own)."""
    if model is None or isinstance(model, (str, Path)):
        from .checkpoint import bundled_name  # here, not above: importing genembed.index stays torch-free
        from .loading import load_model, resolve

        folder = resolve(model)  # (a hub id: its downloaded folder)
        return load_model(folder, backend=backend or "torch"), bundled_name(folder) or str(folder.resolve())
    return (model if backend is None else model.set_backend(backend)), None


# -- building ------------------------------------------------------------------------------
def build_index(model, source: str | Path, out_dir: str | Path, field: str = "text", id_field: str | None = "id",
                instruction: str | None = "document", kind: str = "auto", batch_size: int = 32,
                chunk_size: int = CHUNK_SIZE, show_progress_bar: bool | None = None,
                backend: str | None = None) -> "Index":
    """Encode every row of `source` and write a searchable index to `out_dir`; returns it opened.

    model: a GenEmbed, a checkpoint folder, or None (the bundled default); backend: how it runs
    (backends.py; the embeddings do not depend on it beyond float rounding). kind: "flat" (exact
    cosine), "hnsw" (approximate, for large corpora) or "auto" (flat below AUTO_HNSW_ROWS rows).
    A rerun on an unfinished `out_dir` resumes it (same model, instruction, field and an unchanged
    source file, else refused); on a finished one it only rebuilds the faiss index if `kind` changed.
    """
    if kind not in KINDS:
        raise InputError(f"kind must be one of {KINDS}, got {kind!r}")
    if batch_size < 1 or chunk_size < 1:
        raise InputError(f"batch_size and chunk_size must be >= 1, got {batch_size} and {chunk_size}")
    _faiss()  # missing faiss is reported now, not after the corpus is encoded
    procs = distributed.current()  # under a launcher, each process encodes every N-th chunk
    source, out_dir = Path(source), Path(out_dir)
    count = sum(1 for _ in source_rows(source, field, id_field))  # validates every row before any work
    if count == 0:
        raise InputError(f"{source} has no rows to index")
    model, model_ref = _resolve_model(model, backend)
    settings = {
        "format": FORMAT, "model": model_ref, "model_fingerprint": _fingerprint(model),
        "instruction": instruction, "instruction_text": model.resolve_instruction(instruction),
        "field": field, "id_field": id_field,
        "count": count, "dim": model.config.embedding_dim,
        "source": {"path": str(source.resolve()), "size": source.stat().st_size, "sha1": file_digest(source, "sha1")},
    }
    if procs.is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    with folder_lock(out_dir, "index build") if procs.is_main else nullcontext():  # (the main process writes)
        with procs.main_first():
            manifest = _start_or_resume(out_dir, settings) if procs.is_main else read_manifest(out_dir)
        if manifest["rows_done"] < count:
            _encode_rows(model, source, out_dir, manifest, batch_size, chunk_size, show_progress_bar, procs)
        chosen = ("flat" if count < AUTO_HNSW_ROWS else "hnsw") if kind == "auto" else kind
        if procs.is_main and not (manifest["complete"] and manifest["kind"] == chosen and (out_dir / FAISS_FILE).exists()):
            vectors = np.memmap(out_dir / VECTORS, dtype=np.float32, mode="r", shape=(count, settings["dim"]))
            index = make_faiss_index(vectors, chosen)
            del vectors
            faiss = _faiss()
            replace_file(out_dir / FAISS_FILE, lambda p: faiss.write_index(index, str(p)))
            manifest.update(complete=True, kind=chosen,
                            hnsw={"m": HNSW_M, "ef_construction": HNSW_EF_CONSTRUCTION,
                                  "ef_search": HNSW_EF_SEARCH} if chosen == "hnsw" else None)
        if procs.is_main:
            _write_manifest(out_dir, manifest)
        procs.barrier()  # the index exists before any process opens it
    return Index.open(out_dir, model=model)


def make_faiss_index(vectors: np.ndarray, kind: str, m: int = HNSW_M, ef_construction: int = HNSW_EF_CONSTRUCTION):
    """A faiss index over L2-normalised rows, by inner product (= cosine): IndexFlatIP for "flat",
    IndexHNSWFlat for "hnsw". Rows are added block by block from a (memory-mapped) array."""
    faiss = _faiss()
    dim = vectors.shape[1]
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        raise InputError(f"kind must be 'flat' or 'hnsw', got {kind!r}")
    for start in range(0, len(vectors), FAISS_ADD_BLOCK):
        index.add(np.ascontiguousarray(vectors[start:start + FAISS_ADD_BLOCK], dtype=np.float32))
    return index


IDENTITY = ("format", "model_fingerprint", "instruction_text", "field", "id_field", "count", "dim")


def _start_or_resume(out_dir: Path, settings: dict) -> dict:
    """The manifest to continue from: a fresh one, or the folder's own when its settings match
    (its stores then cut back to the rows it counts: a kill mid-append leaves a tail)."""
    path = out_dir / MANIFEST
    if not path.exists():
        # our own stores may be there without a manifest (a kill before the first one was written)
        leftovers = sorted(p.name for p in out_dir.iterdir()
                           if not p.name.startswith(".") and p.name not in (VECTORS, ROWS, OFFSETS))
        if leftovers:
            raise InputError(f"{out_dir} is not empty and holds no {MANIFEST} ({', '.join(leftovers[:5])}): "
                             f"choose an empty or new folder")
        for name in (VECTORS, ROWS, OFFSETS):
            (out_dir / name).write_bytes(b"")
        manifest = {**settings, "rows_done": 0, "rows_bytes": 0, "complete": False, "kind": None,
                    "hnsw": None}
        _write_manifest(out_dir, manifest)
        return manifest
    manifest = read_manifest(out_dir)
    old = manifest["source"]
    if (old["size"], old["sha1"]) != (settings["source"]["size"], settings["source"]["sha1"]):
        raise InputError(f"{out_dir} was built from {old['path']} (size {old['size']}, sha1 {old['sha1'][:12]}); "
                         f"{settings['source']['path']} differs (size {settings['source']['size']}, sha1 "
                         f"{settings['source']['sha1'][:12]}): the source changed, so it cannot be resumed; "
                         f"use a new --out folder or delete {out_dir}")
    differ = [k for k in IDENTITY if manifest.get(k) != settings[k]]
    if differ:
        raise InputError(f"{out_dir} holds an index built with other settings ({', '.join(differ)} differ): "
                         f"use a new --out folder or delete {out_dir}")
    _cut_stores(out_dir, manifest)
    # the same bytes and model, perhaps at new paths (the model's is where search will load it)
    manifest.update(source=settings["source"], model=settings["model"] or manifest.get("model"))
    return manifest


def _cut_stores(out_dir: Path, manifest: dict) -> None:
    expected = {VECTORS: manifest["rows_done"] * manifest["dim"] * 4, ROWS: manifest["rows_bytes"],
                OFFSETS: manifest["rows_done"] * 8}
    for name, size in expected.items():
        path = out_dir / name
        actual = path.stat().st_size if path.exists() else -1
        if actual < size:
            raise InputError(f"{path} holds {max(actual, 0)} bytes but {MANIFEST} counts {size}: the index "
                             f"folder is damaged; delete {out_dir} and build again")
        if actual > size:
            os.truncate(path, size)


def _encode_chunk(model, texts: list[str], instruction: str | None, batch_size: int) -> np.ndarray:
    """One chunk's L2-normalised vectors (a seam the tests use to simulate a kill)."""
    return model.encode(texts, instruction=instruction, batch_size=batch_size, normalize=True,
                        show_progress_bar=False)


def _encode_rows(model, source: Path, out_dir: Path, manifest: dict, batch_size: int, chunk_size: int,
                 show_progress_bar: bool | None, procs) -> None:
    """Encode the rows after manifest["rows_done"], in rounds of one chunk per process: each
    process writes its chunk's vectors to parts/<first row>.f32 (atomically), then the main
    process appends the round's chunks in order. A part left by a killed run is used, not encoded
    again, under any number of processes (same chunk_size)."""
    from tqdm.auto import tqdm

    parts = out_dir / "parts"
    done, count = manifest["rows_done"], manifest["count"]
    if procs.is_main:
        parts.mkdir(exist_ok=True)
    procs.barrier()
    if show_progress_bar is None:
        show_progress_bar = sys.stderr.isatty()
    rows = source_rows(source, manifest["field"], manifest["id_field"])
    for _ in range(done):  # finished rows are read past, not encoded again
        next(rows)
    chunks = chunked(rows, chunk_size)
    with tqdm(total=count, initial=done, desc="index", disable=not (show_progress_bar and procs.is_main)) as bar:
        while True:
            round_ = [c for _, c in zip(range(procs.world), chunks)]  # the next chunk of every process
            if not round_:
                break
            first_rows = [done + sum(len(c) for c in round_[:i]) for i in range(len(round_))]
            if procs.rank < len(round_):
                part = parts / f"{first_rows[procs.rank]}.f32"
                if not part.exists():
                    vectors = _encode_chunk(model, [text for _, text in round_[procs.rank]], manifest["instruction"],
                                            batch_size)
                    replace_file(part, lambda p: p.write_bytes(np.ascontiguousarray(vectors, dtype="<f4").tobytes()))
            procs.barrier()
            if procs.is_main:
                for chunk, first in zip(round_, first_rows):
                    part = parts / f"{first}.f32"
                    vectors = np.frombuffer(part.read_bytes(), dtype="<f4").reshape(len(chunk), manifest["dim"])
                    _append_chunk(chunk, vectors, out_dir, manifest)
                    part.unlink()
            procs.barrier()
            done += sum(len(c) for c in round_)
            bar.update(sum(len(c) for c in round_))
    if procs.is_main:
        for stale in parts.glob("*.f32"):  # (left by a run with another chunk size)
            stale.unlink()
    if done != count:
        raise InputError(f"{source} changed while it was being indexed ({done} rows, expected {count})")


def _append_chunk(chunk: list, vectors: np.ndarray, out_dir: Path, manifest: dict) -> None:
    lines = [json.dumps({"id": i, "text": t}, ensure_ascii=False).encode("utf-8") + b"\n" for i, t in chunk]
    offsets = np.cumsum([manifest["rows_bytes"]] + [len(line) for line in lines[:-1]], dtype=np.uint64)
    for name, data in ((VECTORS, np.ascontiguousarray(vectors, dtype="<f4").tobytes()),
                       (ROWS, b"".join(lines)), (OFFSETS, offsets.astype("<u8").tobytes())):
        with open(out_dir / name, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    # only now, with the chunk on disk, does the manifest count it
    manifest["rows_done"] += len(chunk)
    manifest["rows_bytes"] += sum(len(line) for line in lines)
    _write_manifest(out_dir, manifest)


def _write_manifest(out_dir: Path, manifest: dict) -> None:
    write_text(out_dir / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


def read_manifest(out_dir: str | Path) -> dict:
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise InputError(f"index folder not found: {out_dir}")
    path = out_dir / MANIFEST
    if not path.exists():
        raise InputError(f"{out_dir} is not a genembed index: it has no {MANIFEST}")
    manifest = read_json_object(path)
    if manifest.get("format") != FORMAT:
        raise InputError(f"{path} is not a genembed index manifest of format {FORMAT}")
    return manifest


# -- searching -----------------------------------------------------------------------------
class Index:
    """A finished index folder, opened for search. The model (for query texts) loads on first use:
    the one the manifest records unless `model` (a GenEmbed or checkpoint folder) is given."""

    def __init__(self, folder: Path, manifest: dict, faiss_index, offsets: np.ndarray, model):
        self.folder, self.manifest, self.faiss_index, self._offsets = folder, manifest, faiss_index, offsets
        self._model = model
        self._backend = None  # the backend a model loaded on first use runs on (Index.open)

    @classmethod
    def open(cls, folder: str | Path, model=None, backend: str | None = None) -> "Index":
        folder = Path(folder)
        manifest = read_manifest(folder)
        if not manifest.get("complete"):
            raise InputError(f"the index in {folder} is not finished ({manifest.get('rows_done')} of "
                             f"{manifest.get('count')} rows encoded): rerun `genembed index build` to resume it")
        faiss = _faiss()
        index = faiss.read_index(str(folder / FAISS_FILE))
        count, dim = manifest["count"], manifest["dim"]
        if (index.ntotal, index.d) != (count, dim) or (folder / OFFSETS).stat().st_size != 8 * count:
            raise InputError(f"{folder} is damaged: {FAISS_FILE} or {OFFSETS} does not hold the {count} rows "
                             f"of dimension {dim} that {MANIFEST} records; build it again")
        offsets = np.memmap(folder / OFFSETS, dtype="<u8", mode="r", shape=(count,))
        opened = cls(folder, manifest, index, offsets, None)
        opened._backend = backend
        if model is not None:
            opened._model = opened._check_model(*_resolve_model(model, backend))
        return opened

    def __len__(self) -> int:
        return self.manifest["count"]

    @property
    def kind(self) -> str:
        return self.manifest["kind"]

    @property
    def model(self):
        if self._model is None:
            ref = self.manifest.get("model")
            if ref is None:
                raise InputError(f"the index in {self.folder} was built from a model in memory, not a "
                                 f"checkpoint folder: pass the model (Index.open(..., model=...) or --model)")
            self._model = self._check_model(*_resolve_model(ref, self._backend))
        return self._model

    def _check_model(self, model, ref):
        if _fingerprint(model) != self.manifest["model_fingerprint"]:
            where = ref or "the model given"
            raise InputError(f"{where} is not the model the index in {self.folder} was built with: "
                             f"its vectors would not be comparable")
        return model

    def search(self, queries: str | list[str], k: int = 10, instruction: str | None = "query",
               batch_size: int = 32) -> list[list[Hit]]:
        """The k best rows for each query (one list per query, also for a single string), best first."""
        if isinstance(queries, str):
            queries = [queries]
        if k < 1:
            raise InputError(f"k must be >= 1, got {k}")
        if not queries:
            raise InputError("no queries to search")
        vectors = self.model.encode(list(queries), instruction=instruction, batch_size=batch_size, normalize=True,
                                    show_progress_bar=False)
        return self.search_vectors(vectors, k)

    def search_vectors(self, vectors: np.ndarray, k: int = 10, ef_search: int | None = None) -> list[list[Hit]]:
        """Hits for query vectors [n, dim] (L2-normalise them for cosine scores)."""
        if k < 1:
            raise InputError(f"k must be >= 1, got {k}")
        vectors = np.ascontiguousarray(np.atleast_2d(vectors), dtype=np.float32)
        if vectors.shape[1] != self.manifest["dim"]:
            raise InputError(f"query vectors have dimension {vectors.shape[1]}, the index {self.manifest['dim']}")
        if self.kind == "hnsw":  # the candidate list must hold at least k
            self.faiss_index.hnsw.efSearch = max(ef_search or self.manifest["hnsw"]["ef_search"], k)
        scores, rows = self.faiss_index.search(vectors, min(k, len(self)))
        with open(self.folder / ROWS, "rb") as f:
            return [[self._hit(f, int(r), float(s)) for r, s in zip(row_ids, row_scores) if r >= 0]
                    for row_ids, row_scores in zip(rows, scores)]

    def _hit(self, f, row: int, score: float) -> Hit:
        f.seek(int(self._offsets[row]))
        stored = json.loads(f.readline())
        return Hit(stored["id"], score, stored["text"], row)

    def row(self, row: int) -> tuple[object, str]:
        """(id, text) of the row at a 0-based position."""
        with open(self.folder / ROWS, "rb") as f:
            hit = self._hit(f, row, 0.0)
        return hit.id, hit.text
