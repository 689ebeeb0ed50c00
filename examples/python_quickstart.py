"""twistar from Python, start to finish, without a notebook.

    cmake -S . -B build -G Ninja && cmake --build build -j2
    PYTHONPATH=build/python /usr/bin/python3 examples/python_quickstart.py [DATA_DIR] [RUN_DIR]

Without DATA_DIR it generates the synthetic dataset. It loads the data, fits every stage (finished
stages are reused, so a second run is quick), evaluates on the test split and prints one
recommendation with its plan and rationale.
"""
import logging
import sys
import tempfile

import twistar

logging.basicConfig(level=logging.INFO, format="%(message)s")

data = sys.argv[1] if len(sys.argv) > 1 else None
run = sys.argv[2] if len(sys.argv) > 2 else "runs/python-quickstart"
small = {}
if data is None:
    data = tempfile.mkdtemp(prefix="twistar-synth-")
    twistar.command(["--quiet", "synth", "--out", data, "--users", "2000", "--items", "400"])
    # Minutes, not hours, on a laptop: short budgets for the synthetic data.
    small = dict(bsarec_max_minutes=2, sidgen_max_minutes=2, reasoner_max_minutes=1, planner_sft_max_minutes=1,
                 planner_grpo_max_minutes=1, vocab_size=2000)

d = twistar.load_dataset(data)
print(d.summary())

out = twistar.fit(d, run, threads=2, **small)  # progress lines go to the "twistar" logger
for name, s in out["eval"]["systems"].items():
    print(f"{name:>18}  NDCG@10 {s['ndcg@10']:.4f}  Recall@10 {s['recall@10']:.4f}")

model = twistar.load(run, threads=1)
history = [d.item_ids[i] for i in d.sequences[0][-5:]]
answer = model.recommend(history, k=5, mode="auto", explain=True)
print("history:", history)
print("plan:", " -> ".join(f"{step['tool']}({step['args'].get('k')})" for step in answer["plan"]))
if "rationale" in answer:
    print("rationale:", answer["rationale"])
for rank, item in enumerate(answer["items"], 1):
    print(f"{rank:>2}. {item['id']}  score {item['score']:.4f}")
