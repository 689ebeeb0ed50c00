"""The Python package on small synthetic data: loading, fit, evaluate, recommend (the same answer as
the HTTP API), errors as Python exceptions, the GIL released while C++ works."""
import json
import os
import subprocess
import threading
import urllib.request

import numpy as np
import pytest

import twistar

CLI = os.environ.get("TWISTAR_CLI", "build/twistar")
SMALL = dict(threads=2, bsarec_epochs=2, codebook_size=8, rqvae_epochs=20, sidgen_epochs=2)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A run fitted up to the ranker on 200 synthetic users, with the progress events it reported."""
    root = tmp_path_factory.mktemp("tw")
    data = root / "data"
    twistar.command(["--quiet", "synth", "--out", str(data), "--users", "200", "--items", "60"])
    events = []
    out = twistar.fit(str(data), str(root / "run"), progress=events.append, until="ranker", **SMALL)
    return data, root / "run", out, events


def test_load_dataset_counts_lists_and_numpy(fitted):
    data, _, _, _ = fitted
    d = twistar.load_dataset(data)
    assert d.num_users == 200
    assert d.num_items <= 60
    assert d.num_interactions == sum(len(s) for s in d.sequences)
    assert len(d.item_ids) == d.num_items and len(d.user_ids) == d.num_users
    a = d.sequences_array(5)
    assert a.shape == (200, 5) and a.dtype == np.int64
    first = d.sequences[0]
    assert list(a[0][a[0] >= 0]) == first[-5:]
    assert (a < d.num_items).all()


def test_bad_input_raises_value_error_with_the_message(tmp_path):
    with pytest.raises(ValueError, match="nonexistent"):
        twistar.load_dataset(tmp_path / "nonexistent")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "sequences.txt").write_text("1 1 2\n2 3 x\n")
    with pytest.raises(ValueError, match=r"sequences.txt:2"):
        twistar.load_dataset(tmp_path / "d")
    with pytest.raises(ValueError, match="bsarec-epochs"):
        twistar.fit(tmp_path / "d", tmp_path / "run", bsarec_epochs="many")
    with pytest.raises(ValueError, match="unknown stage|nowhere"):
        twistar.fit(tmp_path / "d", tmp_path / "run", until="nowhere")


def test_fit_reports_each_stage_and_reuses_finished_ones(fitted):
    data, run, out, events = fitted
    assert [s["stage"] for s in out["stages"]] == ["backbone", "sid", "sidgen", "ranker"]
    assert out["eval"] is None
    starts = [e for e in events if not e["done"]]
    assert [e["stage"] for e in starts] == ["backbone", "sid", "sidgen", "ranker"]
    assert all(e["line"].startswith("fit [") for e in events)
    again = twistar.fit(str(data), str(run), until="ranker", **SMALL)
    assert all(s["reused"] for s in again["stages"])


def test_recommend_equals_the_http_answer(fitted):
    data, run, _, _ = fitted
    d = twistar.load_dataset(data)
    history = [d.item_ids[i] for i in d.sequences[3][:4]]
    model = twistar.load(run)
    mine = model.recommend(history, k=5, mode="rank", explain=True)
    proc = subprocess.Popen([CLI, "--quiet", "serve", "--run", str(run), "--port", "0", "--threads", "1"],
                            stdout=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline().rsplit(":", 1)[1])
        body = json.dumps({"history": history, "k": 5, "mode": "rank", "explain": True, "exclude_history": True})
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz") as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            threading.Event().wait(0.05)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/recommend", body.encode(),
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            theirs = json.loads(r.read())
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    def without_timings(a):
        a = dict(a)
        a.pop("latency_ms", None)
        a["plan"] = [{k: v for k, v in step.items() if k != "latency_ms"} for step in a.get("plan", [])]
        return a

    assert without_timings(mine) == without_timings(theirs)
    assert len(mine["items"]) == 5
    batch = model.recommend_batch([history, history[:2]], k=5, mode="rank")
    assert [i["id"] for i in batch[0]["items"]] == [i["id"] for i in mine["items"]]
    with pytest.raises(ValueError, match="mode"):
        model.recommend(history, mode="psychic")


def test_evaluate_returns_metrics_and_per_user_lists(fitted):
    data, run, _, _ = fitted
    doc = twistar.evaluate(data, run, systems=["mostpop", "fast_only"], split="valid", users=40,
                           latency_requests=0, throughput_batch=0)
    assert set(doc["systems"]) >= {"mostpop", "fast_only"}
    assert 0.0 <= doc["systems"]["fast_only"]["ndcg@10"] <= 1.0
    assert len(doc["lists"]) == 40
    assert set(doc["lists"][0]["lists"]) == {"mostpop", "fast_only"}


def test_the_gil_is_released_while_cpp_works(fitted):
    data, run, _, _ = fitted
    model = twistar.load(run)
    d = twistar.load_dataset(data)
    histories = [[d.item_ids[i] for i in s[:4]] for s in d.sequences] * 5
    ticks = 0
    worker = threading.Thread(target=lambda: model.recommend_batch(histories, k=10, mode="rank"))
    worker.start()
    while worker.is_alive():
        ticks += 1
    worker.join()
    # Holding the GIL for the whole batch would leave this thread a handful of turns at most.
    assert ticks > 1000
