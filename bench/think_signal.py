#!/usr/bin/env python3
"""Which observations before the call predict what thinking after ranking gains, per user?

Reads `twistar eval --lists` of a validation run with fast_only, fast_rank, slow and fast_rank_slow at
--list-length 50, fast_rank_slow being the ranker's order alone (--slow-thought-rank-weight 0;
bench/think_signal.sh), and the run's knowledge/knowledge.tsv. The gain of a user is
fast_rank_slow's NDCG@10 minus fast_rank's. For each candidate observation a router could read before
calling think_and_rec, it prints the Pearson correlation with the gain and the mean gain of the users
with the lowest and highest 12% of it; then the mean gain of the `share` of users a cross-fitted
ridge regression of the gain picks (two folds: each user is scored by a model fitted on the other fold),
on the observations the planner reads and on those plus the new candidates. A random router's pick has
the mean gain. Standard library only (no numpy on the reference machine).

Last, whether thinking's list could be combined better: a fusion that scores each candidate of the
joined ranking and the thought's list by -(log(2 + its rank in fast_rank_slow) + w log(2 + its rank in
slow)) (an absent item ranks 60), with w chosen on one fold's users from a grid and scored on the
other's, against fast_rank_slow as it is.

With --apply TEST_LISTS (the same systems' lists on the test split), the regression is fitted once on
all of LISTS and applied to the test users, as a router fitted on validation would be: it reports the
mean gain of the test users it picks against the test users' mean (a random router's pick). The test
targets are read once, to score that fixed router, never to fit it.

    bench/think_signal.py LISTS KNOWLEDGE_TSV [--share 0.12] [--seed 1] [--apply TEST_LISTS]
"""
import argparse
import collections
import json
import math
import random
import sys

WIDE, RANKED, THOUGHT, THOUGHT_RANKED = "fast_only", "fast_rank", "slow", "fast_rank_slow"
# Five of the observations the planner reads (agent/agent_loop.h feature_vector): the confidence of
# fast_rec and the ranker, and the history length. The entropies, diversity and popularity are left out.
PLANNER = ["fast_top", "fast_margin", "rank_top", "rank_margin", "log_length"]
# New candidates: the knowledge graph around the last items, and how much the tools agree.
NEW = ["knowledge_degree_last", "knowledge_degree_recent", "knowledge_outside_pool", "knowledge_outside_share",
       "pool_knowledge_share", "top10_knowledge_share", "overlap_fast_ranked_top10", "ranked_position_of_fast_top",
       "ranked_spread_top10"]
# After the call (no router can read these; they say where the gain comes from).
POST = ["POST_thought_outside_pool", "POST_thought_top10_overlap_ranked"]


def ndcg10(items, target):
    for p, item in enumerate(items[:10]):
        if item == target:
            return 1.0 / math.log2(p + 2)
    return 0.0


def load_knowledge(path):
    neighbours = collections.defaultdict(set)
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        try:
            ia, ib = header.index("a_id"), header.index("b_id")
        except ValueError:
            sys.exit(f"{path}:1: no a_id/b_id columns (is it a twistar knowledge.tsv?)")
        for n, line in enumerate(f, start=2):
            cells = line.rstrip("\n").split("\t")
            if len(cells) <= max(ia, ib):
                sys.exit(f"{path}:{n}: {len(cells)} fields, expected at least {max(ia, ib) + 1}")
            neighbours[cells[ia]].add(cells[ib])
            neighbours[cells[ib]].add(cells[ia])
    return neighbours


def features(row, neighbours):
    lists = row["lists"]
    wide = [x[0] for x in lists[WIDE]]
    wide_scores = [x[1] for x in lists[WIDE]]
    ranked = [x[0] for x in lists[RANKED]][:10]
    ranked_scores = [x[1] for x in lists[RANKED]][:10]
    thought = [x[0] for x in lists[THOUGHT]]
    history = row["history"]
    seen, pool = set(history), set(wide)
    near = set()
    for item in history[-3:]:
        near |= neighbours.get(item, set())
    near -= seen
    outside = near - pool
    f = {
        "fast_top": wide_scores[0],
        "fast_margin": wide_scores[0] - wide_scores[1],
        "rank_top": ranked_scores[0],
        "rank_margin": ranked_scores[0] - ranked_scores[1],
        "log_length": math.log1p(len(history)),
        "knowledge_degree_last": math.log1p(len(neighbours.get(history[-1], ()))),
        "knowledge_degree_recent": math.log1p(len(near)),
        "knowledge_outside_pool": math.log1p(len(outside)),
        "knowledge_outside_share": len(outside) / len(near) if near else 0.0,
        "pool_knowledge_share": sum(1 for i in wide if i in near) / len(wide),
        "top10_knowledge_share": sum(1 for i in ranked if i in near) / len(ranked),
        "overlap_fast_ranked_top10": len(set(wide[:10]) & set(ranked)) / 10,
        "ranked_position_of_fast_top": ranked.index(wide[0]) if wide[0] in ranked else 10,
        "ranked_spread_top10": ranked_scores[0] - ranked_scores[-1],
        "POST_thought_outside_pool": math.log1p(sum(1 for i in thought if i not in pool)),
        "POST_thought_top10_overlap_ranked": len(set(thought[:10]) & set(ranked)) / 10,
    }
    gain = ndcg10([x[0] for x in lists[THOUGHT_RANKED]], row["target"]) - ndcg10(ranked, row["target"])
    return f, gain


def pearson(x, y):
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    sxy = sum((a - mx) * (b - my) for a, b in zip(x, y))
    sxx = sum((a - mx) ** 2 for a in x)
    syy = sum((b - my) ** 2 for b in y)
    return sxy / math.sqrt(sxx * syy) if sxx > 0 and syy > 0 else 0.0


def solve(a, b):
    """Gauss-Jordan with partial pivoting on the (ridge-regularised, so well-posed) normal equations."""
    n = len(a)
    m = [row[:] + [b[i]] for i, row in enumerate(a)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(m[r][c]))
        m[c], m[p] = m[p], m[c]
        for r in range(n):
            if r != c and m[c][c] != 0:
                f = m[r][c] / m[c][c]
                for k in range(c, n + 1):
                    m[r][k] -= f * m[c][k]
    return [m[i][n] / m[i][i] if m[i][i] != 0 else 0.0 for i in range(n)]


def ridge(x, y, lam=1.0):
    d = len(x[0])
    a = [[lam if i == j else 0.0 for j in range(d)] for i in range(d)]
    b = [0.0] * d
    for row, t in zip(x, y):
        for i in range(d):
            b[i] += row[i] * t
            for j in range(d):
                a[i][j] += row[i] * row[j]
    return solve(a, b)


def scaling(columns, names):
    out = []
    for name in names:
        x = columns[name]
        mean = sum(x) / len(x)
        out.append((mean, math.sqrt(sum((v - mean) ** 2 for v in x) / len(x)) or 1.0))
    return out


def standardised(columns, names, scale=None):
    """Rows [1, standardised observations...], with `scale` (mean, sd) per name (default: columns' own)."""
    scale = scale or scaling(columns, names)
    n = len(columns[names[0]])
    out = [[1.0] for _ in range(n)]
    for name, (mean, sd) in zip(names, scale):
        x = columns[name]
        for i in range(n):
            out[i].append((x[i] - mean) / sd)
    return out


def cross_fitted_pick(columns, gain, names, share, seed):
    """Mean gain of the `share` of each fold's users with the highest gain predicted by the other fold."""
    x = standardised(columns, names)
    rng = random.Random(seed)
    fold = [rng.random() < 0.5 for _ in gain]
    total, count = 0.0, 0
    for held in (True, False):
        train = [i for i in range(len(gain)) if fold[i] != held]
        test = [i for i in range(len(gain)) if fold[i] == held]
        w = ridge([x[i] for i in train], [gain[i] for i in train])
        test.sort(key=lambda i: -sum(a * b for a, b in zip(w, x[i])))
        q = max(1, int(share * len(test)))
        total += sum(gain[i] for i in test[:q])
        count += q
    return total / count


FUSION_WEIGHTS = [0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5]
ABSENT = 60


def fusion_rows(row):
    """(rank in fast_rank_slow, rank in slow) of each candidate and the target's index; None when
    neither list holds the target (every fusion scores such a user 0)."""
    lists, target = row["lists"], row["target"]
    ranks = [{item: p for p, (item, _) in enumerate(lists[s])} for s in (THOUGHT_RANKED, THOUGHT)]
    items = sorted(set(ranks[0]) | set(ranks[1]))
    if target not in items:
        return None
    return [(ranks[0].get(i, ABSENT), ranks[1].get(i, ABSENT)) for i in items], items.index(target)


def fusion_ndcg10(users, w):
    """Mean NDCG@10 of the fusion with weight w on the thought's rank."""
    total = 0.0
    for u in users:
        if u is None:
            continue
        rows, t = u
        # Ties go to the better rank in fast_rank_slow, then in slow (as ThinkAndRec's fusion breaks them).
        key = [(math.log(2 + a) + w * math.log(2 + b), a, b) for a, b in rows]
        position = sum(1 for v in key if v < key[t])
        if position < 10:
            total += 1.0 / math.log2(position + 2)
    return total / len(users)


def fusion_report(users, seed, test_users=None):
    """Cross-fitted: the weight chosen on each fold, scored on the other. With test_users: the weight
    chosen on all of users, scored once on them."""
    rng = random.Random(seed)
    fold = [rng.random() < 0.5 for _ in users]
    total, chosen = 0.0, []
    for held in (True, False):
        fit = [u for u, f in zip(users, fold) if f != held]
        score = [u for u, f in zip(users, fold) if f == held]
        w = max(FUSION_WEIGHTS, key=lambda v: fusion_ndcg10(fit, v))
        chosen.append(w)
        total += fusion_ndcg10(score, w) * len(score)
    base = fusion_ndcg10(users, 0)
    print(f"\nA fusion of the thought's list with the joined ranking (weight on the thought's rank chosen on one "
          f"fold from {FUSION_WEIGHTS}, scored on the other; chosen {chosen[0]} and {chosen[1]}): NDCG@10 "
          f"{total / len(users):.5f} against fast_rank_slow's {base:.5f} ({total / len(users) - base:+.5f})")
    if test_users is not None:
        w = max(FUSION_WEIGHTS, key=lambda v: fusion_ndcg10(users, v))
        tb, tf = fusion_ndcg10(test_users, 0), fusion_ndcg10(test_users, w)
        print(f"\nThe fusion's weight chosen on all these users ({w}) and applied once to the test users: NDCG@10 "
              f"{tf:.5f} against fast_rank_slow's {tb:.5f} ({tf - tb:+.5f})")


def read_lists(path, neighbours):
    columns, gain, fusion = collections.defaultdict(list), [], []
    with open(path) as f:
        for n, line in enumerate(f, start=1):
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{n}: not JSON ({e.msg})")
            missing = [s for s in (WIDE, RANKED, THOUGHT, THOUGHT_RANKED) if s not in row["lists"]]
            if missing:
                sys.exit(f"{path}:{n}: no list of {', '.join(missing)} (run eval with those systems)")
            short = [s for s in (WIDE, RANKED, THOUGHT, THOUGHT_RANKED) if len(row["lists"][s]) < 2]
            if short:
                sys.exit(f"{path}:{n}: the lists of {', '.join(short)} hold fewer than 2 items")
            if not row["history"]:
                sys.exit(f"{path}:{n}: empty history")
            feats, g = features(row, neighbours)
            for k, v in feats.items():
                columns[k].append(v)
            gain.append(g)
            fusion.append(fusion_rows(row))
    if not gain:
        sys.exit(f"{path}: no users")
    return columns, gain, fusion


def applied_pick(columns, gain, test_columns, test_gain, names, share):
    """Fits on all of (columns, gain) and returns the mean test gain of the `share` of test users it picks."""
    scale = scaling(columns, names)
    w = ridge(standardised(columns, names, scale), gain)
    x = standardised(test_columns, names, scale)
    order = sorted(range(len(test_gain)), key=lambda i: -sum(a * b for a, b in zip(w, x[i])))
    q = max(1, int(share * len(test_gain)))
    return sum(test_gain[i] for i in order[:q]) / q


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("lists")
    ap.add_argument("knowledge")
    ap.add_argument("--share", type=float, default=0.12, help="share of users a router thinks for")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--apply", metavar="TEST_LISTS", help="also score the regression fitted on LISTS on these users")
    args = ap.parse_args()
    neighbours = load_knowledge(args.knowledge)
    columns, gain, fusion = read_lists(args.lists, neighbours)
    n = len(gain)
    mean = sum(gain) / n
    print(f"{n} users; mean gain of thinking after ranking {mean:+.5f} (NDCG@10); raised "
          f"{sum(g > 0 for g in gain) / n:.2%}, lowered {sum(g < 0 for g in gain) / n:.2%}; "
          f"|r| below {2 / math.sqrt(n):.4f} (2/sqrt(n)) is noise\n")
    q = int(args.share * n)
    print(f"| observation | r with the gain | mean gain, lowest {args.share:.0%} | highest {args.share:.0%} |")
    print("|---|---|---|---|")
    for name in PLANNER + NEW + POST:
        x = columns[name]
        order = sorted(range(n), key=lambda i: x[i])
        low = sum(gain[i] for i in order[:q]) / q
        high = sum(gain[i] for i in order[-q:]) / q
        print(f"| {name} | {pearson(x, gain):+.4f} | {low:+.5f} | {high:+.5f} |")
    print(f"\nCross-fitted ridge regression of the gain, mean gain of the {args.share:.0%} of users it picks "
          f"(a random pick: {mean:+.5f}):\n")
    for label, names in (("five of the planner's observations", PLANNER), ("those and the new candidates", PLANNER + NEW)):
        print(f"- {label}: {cross_fitted_pick(columns, gain, names, args.share, args.seed):+.5f}")
    if args.apply:
        test_columns, test_gain, test_fusion = read_lists(args.apply, neighbours)
        test_mean = sum(test_gain) / len(test_gain)
        print(f"\nFitted on these {n} users and applied once to {len(test_gain)} test users: mean test gain of "
              f"the {args.share:.0%} it picks (a random pick: {test_mean:+.5f}; raised "
              f"{sum(g > 0 for g in test_gain) / len(test_gain):.2%}, lowered "
              f"{sum(g < 0 for g in test_gain) / len(test_gain):.2%}):\n")
        for label, names in (("five of the planner's observations", PLANNER),
                             ("those and the new candidates", PLANNER + NEW)):
            pick = applied_pick(columns, gain, test_columns, test_gain, names, args.share)
            print(f"- {label}: {pick:+.5f}, {args.share * (pick - test_mean):+.5f} NDCG@10 over all test "
                  f"users against the random router")
    fusion_report(fusion, args.seed, test_fusion if args.apply else None)


if __name__ == "__main__":
    try:
        main()
    except OSError as e:
        sys.exit(f"{e.filename}: {e.strerror}")
