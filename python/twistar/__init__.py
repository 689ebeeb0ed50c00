"""twistar from Python: load data, fit the whole chain, evaluate, and recommend with a rationale.

Every call runs twistar's C++ library in this process, with the GIL released while it works. Options
are the command line's, as keyword arguments: ``bsarec_epochs=3`` is ``--bsarec-epochs 3``, ``True``
passes a flag, lists are joined with commas. Bad input raises ``ValueError`` with the library's
message; other failures raise ``RuntimeError``.

    import twistar
    data = twistar.load_dataset("../shared/data/amazon2018_scientific")
    twistar.fit(data.path, "runs/sci")                 # every stage, resumable
    model = twistar.load("runs/sci")
    model.recommend(["B00004Z6FB"], k=10, mode="auto", explain=True)
"""
import json
import os
import tempfile

from . import _twistar
from ._twistar import Dataset, Model, fit_stages

__all__ = ["Dataset", "Model", "load_dataset", "fit", "train", "sid", "knowledge", "load", "evaluate",
           "command", "fit_stages"]


def _flags(options):
    """Keyword arguments as command-line flags."""
    out = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            if value:
                out.append(flag)
            continue
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        out += [flag, str(value)]
    return out


def _global(threads, seed):
    out = []
    if threads is not None:
        out += ["--threads", str(threads)]
    if seed is not None:
        out += ["--seed", str(seed)]
    return out + ["--quiet"]


class _LoadedDataset:
    """A Dataset that remembers the path it came from (what fit, train and evaluate take)."""

    def __init__(self, path, dataset):
        self.path = str(path)
        self._d = dataset

    def __getattr__(self, name):
        return getattr(self._d, name)

    def __repr__(self):
        return self._d.summary()


def _path(data):
    return data.path if isinstance(data, _LoadedDataset) else os.fspath(data)


def load_dataset(path, format=None):
    """Loads any format twistar reads (sequences.txt dir, LC-Rec, RecBole, CSV/TSV, raw Amazon).

    The result has num_users, num_items, num_interactions, item_ids, user_ids, sequences (lists of
    item indices, oldest first), sequences_array(max_len) (a numpy array) and path."""
    return _LoadedDataset(os.fspath(path), _twistar.load_dataset(os.fspath(path), format))


def fit(data, run, progress=None, **options):
    """Runs every stage of `twistar fit` (backbone, sid, sidgen, ranker, knowledge, reasoner, planner,
    eval), reusing finished stages and resuming interrupted ones. `progress(event)` hears each stage's
    start and end (a dict with stage, done, seconds, eta_seconds, summary, line); without it the lines
    go to the "twistar" logger. Returns {"stages": [...], "eval": results document or None}."""
    return _twistar.fit(_path(data), os.fspath(run), _flags(options), progress)


def command(args):
    """Runs one twistar command line in-process, e.g. ["info", "--data", "d"]."""
    _twistar.command([str(a) for a in args])


def train(model, data, run, threads=None, seed=None, **options):
    """`twistar train MODEL`: sasrec, bsarec, sidgen, ranker, reasoner or planner."""
    command(_global(threads, seed) + ["train", model, "--data", _path(data), "--run", os.fspath(run)] + _flags(options))


def sid(data, run, threads=None, seed=None, **options):
    """`twistar sid`: semantic IDs into run/sid."""
    command(_global(threads, seed) + ["sid", "--data", _path(data), "--run", os.fspath(run)] + _flags(options))


def knowledge(data, run, threads=None, seed=None, **options):
    """`twistar knowledge`: the collaborative-commonsense corpus and tokenizer into run/knowledge."""
    command(_global(threads, seed) + ["knowledge", "--data", _path(data), "--run", os.fspath(run)] + _flags(options))


def load(run, data="", threads=1):
    """The served run: model.recommend(history, k=10, mode="auto", explain=True) gives the answer the
    HTTP API gives for the same request, as Python objects; model.recommend_batch(histories, ...)."""
    return Model(os.fspath(run), os.fspath(data) if data else "", threads)


def evaluate(data, run, systems=("mostpop", "swing"), split="test", lists=True, threads=None, seed=None, **options):
    """`twistar eval`: full-ranking metrics per system. Returns the results document (what
    run/eval/results.json holds) with, when `lists`, "lists": every user's returned list per system."""
    args = _global(threads, seed) + ["eval", "--data", _path(data), "--run", os.fspath(run),
                                     "--systems", ",".join(systems), "--split", split] + _flags(options)
    with tempfile.TemporaryDirectory() as tmp:
        lists_path = os.path.join(tmp, "lists.jsonl")
        if lists:
            args += ["--lists", lists_path]
        command(args)
        # The valid split's report goes to run/eval-valid, the test split's to run/eval.
        out_dir = "eval" if split == "test" else "eval-" + split
        with open(os.path.join(os.fspath(run), out_dir, "results.json")) as f:
            doc = json.load(f)
        if lists:
            with open(lists_path) as f:
                doc["lists"] = [json.loads(line) for line in f if line.strip()]
    return doc
