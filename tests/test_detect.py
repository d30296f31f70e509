"""SteerMoE scoring: hand-computed statistics and selection, streaming/batching invariance, bootstrap."""

from __future__ import annotations

import math

import pytest
import torch

from moeguard import MoeguardError, RoutingRecorder, inspect_moe
from moeguard.data import encode_side, pair_from_record, pairs_sha256
from moeguard.detect import (
    DetectionResult,
    benjamini_hochberg,
    detect_experts,
    detect_from_trace,
    poisson_weights,
    select_experts,
    two_proportion_p_values,
)


def result_from(counts_a, counts_b, tokens_a, tokens_b, top_k=2, layers=None, **extra) -> DetectionResult:
    counts_a, counts_b = torch.tensor(counts_a), torch.tensor(counts_b)
    return DetectionResult(
        layers=layers if layers is not None else list(range(counts_a.shape[0])),
        num_experts=counts_a.shape[1],
        top_k=top_k,
        counts_a=counts_a,
        counts_b=counts_b,
        tokens_a=tokens_a,
        tokens_b=tokens_b,
        **extra,
    )


# ------------------------------------------------------------------------------------------ statistics
def test_rates_and_risk_difference_by_hand():
    r = result_from([[3, 1, 0, 4]], [[1, 1, 2, 0]], tokens_a=4, tokens_b=2)
    assert r.rate_a.tolist() == [[0.75, 0.25, 0.0, 1.0]]
    assert r.rate_b.tolist() == [[0.5, 0.5, 1.0, 0.0]]
    assert r.risk_diff.tolist() == [[0.25, -0.25, -1.0, 1.0]]
    # ranking by |diff|, ties in (layer, expert) order
    assert r.ranking() == [(0, 2), (0, 3), (0, 0), (0, 1)]


def test_equal_differences_tie_exactly():
    # 0.3 - 0.1 and 0.5 - 0.3 differ in the last bit when subtracted as floats; the integer form ties them
    r = result_from([[3, 5]], [[1, 3]], tokens_a=10, tokens_b=10)
    assert (0.3 - 0.1) != (0.5 - 0.3)
    assert r.risk_diff[0, 0] == r.risk_diff[0, 1] == 0.2
    assert r.ranking() == [(0, 0), (0, 1)]


def test_two_proportion_p_value_by_hand():
    # 30/100 vs 10/100: pooled p = 0.2, se = sqrt(0.2 * 0.8 * (1/100 + 1/100)) = sqrt(0.0032),
    # z = 0.2 / sqrt(0.0032) = 5 / sqrt(2), two-sided p = erfc(z / sqrt(2)) = erfc(2.5)
    p = two_proportion_p_values(torch.tensor([30]), 100, torch.tensor([10]), 100)
    assert p.item() == pytest.approx(4.069520174449590e-4, rel=1e-12)
    # 5/10 vs 5/20: pooled 1/3, se = sqrt(1/3 * 2/3 * (1/10 + 1/20)) = sqrt(1/30), z = 0.25 * sqrt(30)
    p = two_proportion_p_values(torch.tensor([5]), 10, torch.tensor([5]), 20)
    assert p.item() == pytest.approx(math.erfc(0.25 * math.sqrt(30) / math.sqrt(2)), rel=1e-12)
    assert p.item() == pytest.approx(0.17090, abs=1e-4)
    # symmetric in the sides; equal rates -> 1; no variance (never / always hit) -> 1
    assert two_proportion_p_values(torch.tensor([10]), 100, torch.tensor([30]), 100).item() == pytest.approx(
        4.069520174449590e-4, rel=1e-12
    )
    assert two_proportion_p_values(torch.tensor([[2, 0, 7]]), 4, torch.tensor([[4, 0, 14]]), 8).tolist() == [
        [1.0, 1.0, 1.0]
    ]


def test_benjamini_hochberg_by_hand():
    # m = 4, sorted p: 0.01, 0.03, 0.04, 0.5 -> p*m/rank: 0.04, 0.06, 0.0533, 0.5 -> running min from the top
    q = benjamini_hochberg(torch.tensor([[0.01, 0.04], [0.03, 0.5]], dtype=torch.float64))
    assert q.flatten().tolist() == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.5], rel=1e-12)
    assert q.shape == (2, 2)
    # 0.8 * 2 / 1 = 1.6 is capped by the larger p's 0.9 (monotone), never above 1
    assert benjamini_hochberg(torch.tensor([0.9, 0.8])).tolist() == pytest.approx([0.9, 0.9])
    assert benjamini_hochberg(torch.tensor([1.0, 1.0, 0.9])).tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_result_q_values_are_bh_of_p_values():
    r = result_from([[30, 5, 10], [0, 50, 20]], [[10, 5, 12], [3, 20, 20]], tokens_a=100, tokens_b=100)
    assert torch.equal(r.q_values, benjamini_hochberg(r.p_values))
    assert r.p_values[0, 0].item() == pytest.approx(math.erfc(2.5), rel=1e-12)


# ------------------------------------------------------------------------------------------ selection
# risk differences (tokens 100 per side): layer 0: .5 .4 .3 -.1 ; layer 1: .35 -.6 -.2 0
SELECTION = result_from([[50, 40, 30, 0], [35, 0, 0, 0]], [[0, 0, 0, 10], [0, 60, 20, 0]], 100, 100, model="tiny/model")


def test_selection_caps_activations_per_layer_at_top_k():
    spec = select_experts(SELECTION, n_activate=3, n_deactivate=0)
    assert spec.activate == [(0, 0), (0, 1), (1, 0)]  # (0, 2) = .3 would be a third expert in layer 0
    assert select_experts(SELECTION, n_activate=4).activate == [(0, 0), (0, 1), (1, 0)]  # no 4th positive
    assert select_experts(SELECTION, n_activate=3, top_k=1).activate == [(0, 0), (1, 0)]
    assert spec.model == "tiny/model" and spec.deactivate == []


def test_selection_deactivates_most_negative_leaving_top_k_per_layer():
    assert select_experts(SELECTION, 0, 2).deactivate == [(1, 1), (1, 2)]
    assert select_experts(SELECTION, 0, 5).deactivate == [(1, 1), (1, 2), (0, 3)]  # zero never qualifies
    # top_k = 3 of 4 experts: at most one deactivated per layer
    assert select_experts(SELECTION, 0, 3, top_k=3).deactivate == [(1, 1), (0, 3)]


def test_reverse_flips_the_signs_first():
    spec = select_experts(SELECTION, n_activate=2, n_deactivate=1, reverse=True)
    assert spec.activate == [(1, 1), (1, 2)]
    assert spec.deactivate == [(0, 0)]


def test_ties_are_broken_by_layer_then_expert():
    r = result_from([[5, 5], [5, 5]], [[0, 0], [0, 0]], 10, 10)
    assert select_experts(r, 3).activate == [(0, 0), (0, 1), (1, 0)]


def test_max_q_filter_skips_insignificant_experts():
    # e0: 60/100 vs 10/100 (q tiny); e1: 14/100 vs 10/100 -> pooled .12,
    # z = .04 / sqrt(.12 * .88 * .02) = .87, p = .384, q = .384 * 3 / 2 = .576; e2 never hit (p = q = 1)
    r = result_from([[60, 14, 0]], [[10, 10, 0]], 100, 100)
    q = r.q_values[0]
    assert q[0] < 1e-6 and q[1].item() == pytest.approx(0.576, abs=2e-3) and q[2] == 1.0
    assert select_experts(r, 2).activate == [(0, 0), (0, 1)]
    assert select_experts(r, 2, max_q=0.2, test="token").activate == [(0, 0)]
    assert select_experts(r, 2, max_q=1e-30, test="token").activate == []
    # pooled counts only: the pair test (the default) cannot filter and says so
    with pytest.raises(MoeguardError, match="test 'pair' needs per-pair counts"):
        select_experts(r, 2, max_q=0.2)


def stability_case() -> DetectionResult:
    """One layer, 4 experts, top-2; full diff .4 .2 0 -.2; four hand-made resamples (10 tokens/side):
    r0 diff .4 .2 0 -.2 -> act e0, deact e3      r1 diff .1 .3 0 -.2 -> act e1, deact e3
    r2 diff .4 .2 0 0   -> act e0, nothing off   r3 no A tokens (NaN)  -> nothing
    stability (n_activate=1, n_deactivate=1): e0 2/4, e1 1/4, e2 0, e3 2/4."""
    boot_a = torch.tensor([[[6, 4, 2, 0]], [[3, 5, 2, 0]], [[6, 4, 2, 2]], [[0, 0, 0, 0]]])
    boot_b = torch.tensor([[[2, 2, 2, 2]]] * 4)
    return result_from(
        [[6, 4, 2, 0]],
        [[2, 2, 2, 2]],
        10,
        10,
        boot_counts_a=boot_a,
        boot_counts_b=boot_b,
        boot_tokens_a=torch.tensor([10, 10, 10, 0]),
        boot_tokens_b=torch.tensor([10, 10, 10, 10]),
    )


def test_stability_by_hand():
    r = stability_case()
    assert r.bootstrap == 4
    assert r.stability(1, 1).tolist() == [[0.5, 0.25, 0.0, 0.5]]
    # reversed: r0 -.4 -.2 0 .2 (on e3, off e0); r1 -.1 -.3 0 .2 (on e3, off e1); r2 -.4 -.2 0 0 (off e0)
    # e0 and e1 are deactivation candidates now (full reversed diff < 0), e3 the activation one
    assert r.stability(1, 1, reverse=True).tolist() == [[0.5, 0.25, 0.0, 0.5]]
    assert r.stability(2, 0).tolist() == [[0.75, 0.75, 0.0, 0.0]]  # n_activate=2: e0, e1 in r0-r2


def test_min_stability_filter():
    r = stability_case()
    spec = select_experts(r, 1, 1, min_stability=0.5)
    assert spec.activate == [(0, 0)] and spec.deactivate == [(0, 3)]
    spec = select_experts(r, 1, 1, min_stability=0.6)
    assert spec.activate == [] and spec.deactivate == []
    no_boot = result_from([[6, 4, 2, 0]], [[2, 2, 2, 2]], 10, 10)
    assert no_boot.stability(1, 1) is None
    with pytest.raises(MoeguardError, match="bootstrap"):
        select_experts(no_boot, 1, min_stability=0.5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(n_activate=-1), "non-negative"),
        (dict(n_activate=1, max_q=0.0), "max_q"),
        (dict(n_activate=1, min_stability=1.5), "min_stability"),
        (dict(n_activate=1, top_k=9), "top_k"),
    ],
)
def test_selection_rejects_bad_arguments(kwargs, message):
    with pytest.raises(MoeguardError, match=message):
        select_experts(stability_case(), **kwargs)


# ------------------------------------------------------------------------------------------ pair-level statistics
def from_pairs(counts_a, tokens_a, counts_b, tokens_b, clusters=None, top_k=2, **extra) -> DetectionResult:
    """A result from per-pair counts ``[P, L, E]`` and span lengths ``[P]`` given as nested lists."""
    counts_a, counts_b = torch.tensor(counts_a), torch.tensor(counts_b)
    return DetectionResult.from_pairs(
        list(range(counts_a.shape[1])),
        counts_a.shape[2],
        top_k,
        counts_a,
        torch.tensor(tokens_a),
        counts_b,
        torch.tensor(tokens_b),
        clusters=clusters,
        **extra,
    )


def test_token_and_pair_tests_disagree():
    # expert 0: pair 0 has 1000 tokens per side, 900 vs 100 hits (rate .9 vs .1); pairs 1-9 have 10 tokens
    #   per side and 5 vs 5 hits. Token test: 945/1090 vs 145/1090, z ~ 34 -> p ~ 1e-250. Pair test: one
    #   difference .8 and nine 0s: every sign vector gives |T_s| = .8, so p = 1.
    # expert 1: every pair 2/10 vs 1/10 (pair 0: 200/1000 vs 100/1000). Token test: 218 vs 109 of 1090,
    #   z ~ 6.6; pair test: ten equal differences .1 -> p = 2 / 2^10, the smallest possible.
    counts_a = [[[900, 200]]] + [[[5, 2]]] * 9
    counts_b = [[[100, 100]]] + [[[5, 1]]] * 9
    tokens = [1000] + [10] * 9
    r = from_pairs(counts_a, tokens, counts_b, tokens)
    assert r.p_values[0, 0] < 1e-200 and r.p_values[0, 1] < 1e-9
    assert r.pair_p_values.tolist() == [[1.0, 2 / 1024]]
    assert r.permutations_exact and r.effective_pairs == 10
    assert r.pair_q_values.tolist() == [[1.0, 4 / 1024]]  # BH over 2 entries
    assert select_experts(r, 2, max_q=0.05, test="token").activate == [(0, 0), (0, 1)]
    assert select_experts(r, 2, max_q=0.05).activate == [(0, 1)]  # the pair test is the default


def test_pair_p_values_by_hand_three_pairs():
    # 10 tokens per pair and side. expert 0: rates A .3 .0 .1, B .0 .2 .0 -> d = .3, -.2, .1: T = .2, and
    # the 8 sums of +-.3 +-.2 +-.1 (+-.6, +-.4, +-.2, 0, 0) reach |.2| 6 times: p = 6/8.
    # expert 1: d = .5, .3, .1 -> only all-plus and all-minus reach .9: p = 2/8. BH: q = (.75, .5).
    r = from_pairs([[[3, 5]], [[0, 3]], [[1, 1]]], [10, 10, 10], [[[0, 0]], [[2, 0]], [[0, 0]]], [10, 10, 10])
    assert r.cluster_differences[:, 0, 0].tolist() == pytest.approx([0.3, -0.2, 0.1])
    assert r.pair_p_values.tolist() == [[0.75, 0.25]]
    assert r.pair_q_values.tolist() == [[0.75, 0.5]]
    assert r.risk_diff[0].tolist() == pytest.approx([0.2 / 3, 0.3])  # pooled: 4/30 - 2/30, 9/30 - 0


def duplicated(copies: int) -> DetectionResult:
    """6 distinct pairs (expert 0: every A rate above its B rate), each present ``copies`` times in a row
    of all six (pairs 0-5, 0-5, ...), with the clusters detection assigns to identical pairs."""
    base_a = [[[k + 2, 5]] for k in range(6)]
    base_b = [[[1, 5]] for _ in range(6)]
    lengths = [10, 12, 14, 16, 18, 20]
    return from_pairs(
        base_a * copies,
        lengths * copies,
        base_b * copies,
        lengths * copies,
        clusters=list(range(6)) * copies,
        bootstrap=40,
        seed=1,
    )


def test_duplicate_pairs_do_not_inflate_significance():
    once, four = duplicated(1), duplicated(4)
    assert four.pairs == 24 and four.effective_pairs == 6 and once.effective_pairs == 6
    # one cluster per distinct pair: same differences, same exact p-value 2/2^6 as the six pairs alone
    assert torch.equal(four.cluster_differences, once.cluster_differences)
    assert four.pair_p_values[0, 0].item() == once.pair_p_values[0, 0].item() == 2 / 64
    assert torch.equal(four.risk_diff, once.risk_diff)
    # the cluster bootstrap gives every copy its cluster's weight: same CI and stability as the six alone
    for a, b in zip(four.confidence_interval(), once.confidence_interval(), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(four.stability(1, 0), once.stability(1, 0))
    # the token test counts every copy: far smaller p-values from the same evidence
    assert four.p_values[0, 0] < once.p_values[0, 0] / 100
    # treating the copies as 24 independent pairs would claim p <= 1/(R+1) instead of 2/64
    naive = from_pairs(
        four.pair_counts_a.tolist(),
        four.pair_tokens_a.tolist(),
        four.pair_counts_b.tolist(),
        four.pair_tokens_b.tolist(),
        permutations=999,
    )
    assert naive.effective_pairs == 24 and naive.pair_p_values[0, 0].item() == 1 / 1000


def test_identical_pairs_collapse_the_interval_to_the_point_estimate():
    # five copies of one pair: one cluster; a resample either drops it (no tokens: left out) or scales it
    r = from_pairs([[[3, 1]]] * 5, [7] * 5, [[[1, 1]]] * 5, [4] * 5, clusters=[0] * 5, bootstrap=30, seed=2)
    low, high = r.confidence_interval()
    assert torch.equal(low, r.risk_diff) and torch.equal(high, r.risk_diff)
    assert r.risk_diff[0].tolist() == pytest.approx([3 / 7 - 1 / 4, 1 / 7 - 1 / 4])
    assert r.effective_pairs == 1 and r.pair_p_values.tolist() == [[1.0, 1.0]]  # one pair proves nothing


def test_confidence_interval_is_the_percentile_of_the_resampled_differences():
    # stability_case's resamples: e0 .4 .1 .4, e1 .2 .3 .2, e2 0 0 0, e3 -.2 -.2 0 (the 4th has no A tokens)
    low, high = stability_case().confidence_interval()
    assert low[0].tolist() == pytest.approx([0.115, 0.2, 0.0, -0.2])
    assert high[0].tolist() == pytest.approx([0.4, 0.295, 0.0, -0.01])
    assert result_from([[1]], [[0]], 2, 2).confidence_interval() is None  # no bootstrap, no interval


def test_bootstrap_weights_are_shared_within_a_cluster():
    r = duplicated(2)
    weights = poisson_weights(1, list(range(6)) * 2, 40)
    assert torch.equal(weights[:, :6], weights[:, 6:])
    expected = torch.einsum("rp,ple->rle", weights, r.pair_counts_a.long())
    assert torch.equal(r.boot_counts_a, expected)
    assert torch.equal(r.boot_tokens_b, weights @ r.pair_tokens_b)


def test_rows_carry_pair_statistics_and_interval():
    r = duplicated(1)
    rows = {(row["layer"], row["expert"]): row for row in r.rows()}
    low, high = r.confidence_interval()
    assert rows[(0, 0)]["pair_p_value"] == 2 / 64 and rows[(0, 0)]["pair_q_value"] == 2 * 2 / 64  # BH, m = 2
    assert rows[(0, 1)]["pair_p_value"] == 1.0  # A and B rates equal in every pair
    assert (rows[(0, 0)]["ci_low"], rows[(0, 0)]["ci_high"]) == (low[0, 0].item(), high[0, 0].item())
    assert rows[(0, 0)]["ci_low"] <= rows[(0, 0)]["risk_diff"] <= rows[(0, 0)]["ci_high"]
    pooled_only = result_from([[3]], [[1]], 5, 5).rows()[0]
    assert pooled_only["pair_p_value"] is None and pooled_only["ci_low"] is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(tokens_a=[10, 0]), "pair 1 has no counted token on side A"),
        (dict(clusters=[1, 1]), "first pair identical"),
        (dict(counts_b=[[[1, 1]]]), "side B must be"),
    ],
)
def test_from_pairs_rejects_inconsistent_input(kwargs, message):
    arguments = dict(counts_a=[[[1, 1]], [[2, 2]]], tokens_a=[10, 10], counts_b=[[[1, 1]], [[2, 2]]], tokens_b=[10, 10])
    with pytest.raises(MoeguardError, match=message):
        from_pairs(**{**arguments, **kwargs})


def test_unknown_test_is_refused():
    with pytest.raises(MoeguardError, match="test must be 'pair'"):
        select_experts(duplicated(1), 1, max_q=0.5, test="tokens")


# ------------------------------------------------------------------------------------------ bootstrap weights
def test_poisson_weights_depend_only_on_seed_and_pair_index():
    together = poisson_weights(3, [0, 1, 2, 3], 50)
    assert together.shape == (50, 4) and together.dtype == torch.long
    assert torch.equal(together[:, 2:], poisson_weights(3, [2, 3], 50))
    assert torch.equal(together[:, 1], poisson_weights(3, [1], 50)[:, 0])
    assert not torch.equal(together, poisson_weights(4, [0, 1, 2, 3], 50))
    many = poisson_weights(0, range(200), 100).double()
    assert many.mean().item() == pytest.approx(1.0, abs=0.03)  # Poisson(1): mean 1, variance 1
    assert many.var().item() == pytest.approx(1.0, abs=0.05)
    with pytest.raises(MoeguardError, match="seed"):
        poisson_weights(-1, [0], 5)


# ------------------------------------------------------------------------------------------ on a tiny model
def pair_records(n: int) -> list[dict]:
    records = []
    for i in range(n):
        user = [{"role": "user", "content": f"Count to five{'!' * (i % 3)} please."}]
        reply_a = "1, 2, 3, 4, 5." if i % 2 == 0 else "1, 2, 3."
        reply_b = "one, two, three, four, five." if i % 4 else "one, two."
        records.append(
            {
                "messages_a": user + [{"role": "assistant", "content": reply_a}],
                "messages_b": user + [{"role": "assistant", "content": reply_b}],
            }
        )
    return records


@pytest.fixture(scope="module")
def olmoe(load_tiny):
    return load_tiny("olmoe")


def test_counts_match_the_recorder_on_each_span(olmoe):
    model, tokenizer = olmoe
    records = pair_records(5)
    result = detect_experts(model, tokenizer, records, batch_size=3, bootstrap=0)
    moe = inspect_moe(model)
    sides = (("a", result.counts_a, result.tokens_a), ("b", result.counts_b, result.tokens_b))
    for side, counts, tokens in sides:
        recorder = RoutingRecorder(model)
        with recorder:
            for i, record in enumerate(records):
                encoded = encode_side(tokenizer, pair_from_record(record, "x"), side, i)
                ids = torch.tensor([encoded.input_ids])
                recorder.run(ids, count_mask=torch.tensor([encoded.span_mask]))
        assert torch.equal(counts, recorder.counts)
        assert tokens == recorder.tokens
        assert (counts.sum(1) == tokens * moe.top_k).all()  # every counted token hits top_k experts per layer
    assert result.pairs == 5 and result.bootstrap == 0 and result.stability(1, 1) is None
    assert result.tokens_a == sum(
        encode_side(tokenizer, pair_from_record(r, "x"), "a", i).span_tokens for i, r in enumerate(records)
    )


def test_batch_size_and_streaming_do_not_change_results(olmoe):
    model, tokenizer = olmoe
    records = pair_records(11)
    one = detect_experts(model, tokenizer, records, batch_size=1, bootstrap=30, seed=5)
    eight = detect_experts(model, tokenizer, iter(records), batch_size=8, bootstrap=30, seed=5)  # a stream
    again = detect_experts(model, tokenizer, records, batch_size=8, bootstrap=30, seed=5)
    for name in (
        "counts_a",
        "counts_b",
        "boot_counts_a",
        "boot_counts_b",
        "boot_tokens_a",
        "boot_tokens_b",
        "pair_counts_a",
        "pair_counts_b",
        "pair_tokens_a",
        "pair_tokens_b",
        "clusters",
        "pair_p_values",
    ):
        assert torch.equal(getattr(one, name), getattr(eight, name)), name
        assert torch.equal(getattr(eight, name), getattr(again, name)), name
    assert (one.tokens_a, one.tokens_b) == (eight.tokens_a, eight.tokens_b)
    assert one.data_sha256 == eight.data_sha256
    assert torch.equal(one.stability(2, 2), eight.stability(2, 2))
    assert select_experts(one, 2, 2) == select_experts(eight, 2, 2)
    other_seed = detect_experts(model, tokenizer, records, batch_size=8, bootstrap=30, seed=6)
    assert torch.equal(other_seed.counts_a, one.counts_a)
    assert not torch.equal(other_seed.boot_counts_a, one.boot_counts_a)


def test_bootstrap_accumulators_are_poisson_weighted_pair_sums(olmoe):
    model, tokenizer = olmoe
    records = pair_records(6)
    result = detect_experts(model, tokenizer, records, batch_size=4, bootstrap=7, seed=2)
    lengths = {
        side: torch.tensor(
            [encode_side(tokenizer, pair_from_record(r, "x"), side, i).span_tokens for i, r in enumerate(records)]
        )
        for side in "ab"
    }
    weights = poisson_weights(2, range(6), 7)
    assert torch.equal(result.boot_tokens_a, weights @ lengths["a"])
    assert torch.equal(result.boot_tokens_b, weights @ lengths["b"])
    # one pair's counts: a resample with weights w equals sum_i w_i * counts_i
    singles = [detect_experts(model, tokenizer, [r], bootstrap=0).counts_a for r in records]
    expected = torch.einsum("ri,ile->rle", weights, torch.stack(singles))
    assert torch.equal(result.boot_counts_a, expected)


def test_memory_is_per_pair_counts_plus_fixed_accumulators(olmoe):
    model, tokenizer = olmoe
    small = detect_experts(model, tokenizer, pair_records(2), bootstrap=9)
    large = detect_experts(model, tokenizer, (r for r in pair_records(16)), bootstrap=9, max_pairs=12)
    assert large.pairs == 12
    tensors = ("counts_a", "counts_b", "boot_counts_a", "boot_counts_b", "boot_tokens_a", "boot_tokens_b")
    for name in tensors:
        assert getattr(small, name).shape == getattr(large, name).shape
    assert large.boot_counts_a.shape == (9, 3, 8)
    # what grows: one int32 [L, E] count table and one length per pair and side (O(P·L·E))
    assert large.pair_counts_a.shape == (12, 3, 8) and large.pair_counts_a.dtype == torch.int32
    assert large.pair_tokens_b.shape == (12,) and large.clusters.shape == (12,)
    assert torch.equal(large.pair_counts_a.long().sum(0), large.counts_a)
    assert torch.equal(large.pair_tokens_b.sum(), torch.tensor(large.tokens_b))


def test_identical_pairs_form_one_cluster_on_a_model(olmoe):
    model, tokenizer = olmoe
    records = pair_records(4)
    with_copies = records + [dict(records[1]), records[3], records[1]]
    # batch size 1: every conversation runs alone, so identical pairs get bit-identical routing
    result = detect_experts(model, tokenizer, with_copies, batch_size=1, bootstrap=20, seed=3)
    distinct = detect_experts(model, tokenizer, records, batch_size=1, bootstrap=20, seed=3)
    assert result.clusters.tolist() == [0, 1, 2, 3, 1, 3, 1]
    assert result.pairs == 7 and result.effective_pairs == 4 == distinct.effective_pairs
    assert torch.equal(result.pair_counts_a[4], result.pair_counts_a[1])
    assert torch.equal(result.cluster_differences, distinct.cluster_differences)
    assert torch.equal(result.pair_p_values, distinct.pair_p_values)
    assert result.permutations_exact
    # the copies share their cluster's bootstrap weight
    weights = poisson_weights(3, [0, 1, 2, 3, 1, 3, 1], 20)
    assert torch.equal(result.boot_tokens_a, weights @ result.pair_tokens_a)


def test_detection_from_a_capture_equals_detection_from_the_model(olmoe, tmp_path):
    from moeguard.capture_run import capture_pairs
    from moeguard.routing.trace import RoutingTrace

    model, tokenizer = olmoe
    records = pair_records(5) + [pair_records(5)[2]]
    direct = detect_experts(model, tokenizer, records, batch_size=3, bootstrap=15, seed=2, permutations=50)
    capture_pairs(model, tokenizer, records, tmp_path / "cap", batch_size=3, progress=False)
    trace = RoutingTrace.load(tmp_path / "cap")
    assert trace.labels["cluster"][trace.labels["side"] == 0].tolist() == [0, 1, 2, 3, 4, 2]
    replay = detect_from_trace(trace, bootstrap=15, seed=2, permutations=50)
    for name in (
        "counts_a",
        "counts_b",
        "boot_counts_a",
        "boot_counts_b",
        "boot_tokens_a",
        "boot_tokens_b",
        "pair_counts_a",
        "pair_counts_b",
        "pair_tokens_a",
        "pair_tokens_b",
        "clusters",
        "cluster_differences",
        "pair_p_values",
        "pair_q_values",
        "p_values",
        "q_values",
    ):
        assert torch.equal(getattr(direct, name), getattr(replay, name)), name
    for a, b in zip(direct.confidence_interval(), replay.confidence_interval(), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(direct.stability(2, 1), replay.stability(2, 1))
    assert (direct.effective_pairs, direct.permutations, direct.data_sha256) == (
        replay.effective_pairs,
        replay.permutations,
        replay.data_sha256,
    )
    assert direct.rows(direct.stability(2, 1)) == replay.rows(replay.stability(2, 1))
    del trace.labels["cluster"]  # a capture from before pair clusters existed
    with pytest.raises(MoeguardError, match="does not mark identical pairs"):
        detect_from_trace(trace)


def test_dense_first_layer_keeps_decoder_indices(load_tiny):
    model, tokenizer = load_tiny("deepseek_v3")  # first_k_dense_replace=1: layer 0 has no router
    result = detect_experts(model, tokenizer, pair_records(4), bootstrap=5)
    assert result.layers == [1, 2]
    spec = select_experts(result, 2, 2)
    assert spec.activate and all(layer in (1, 2) for layer, _ in spec.activate + spec.deactivate)
    spec.validate(inspect_moe(model))


def test_hash_model_name_and_bad_input(olmoe):
    model, tokenizer = olmoe
    records = pair_records(3)
    result = detect_experts(model, tokenizer, records, bootstrap=0, model_name="my/model")
    assert result.data_sha256 == pairs_sha256([pair_from_record(r, "x") for r in records])
    assert select_experts(result, 1).model == "my/model"
    with pytest.raises(MoeguardError, match="no pairs"):
        detect_experts(model, tokenizer, [], bootstrap=0)
    with pytest.raises(MoeguardError, match="pair 1.*side A"):
        detect_experts(model, tokenizer, [records[0], {**records[1], "target_a": "absent"}], bootstrap=0)
    with pytest.raises(MoeguardError, match="pair 0: missing field"):
        detect_experts(model, tokenizer, [{"messages_a": records[0]["messages_a"]}], bootstrap=0)
    with pytest.raises(MoeguardError, match="batch_size"):
        detect_experts(model, tokenizer, records, batch_size=0)


def test_heatmap_is_written(olmoe, tmp_path):
    from moeguard.report import plot_risk_heatmap, top_experts_table

    model, tokenizer = olmoe
    result = detect_experts(model, tokenizer, pair_records(4), bootstrap=5)
    spec = select_experts(result, 2, 1)
    path = plot_risk_heatmap(result, tmp_path / "h.png", spec=spec)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = top_experts_table(result, spec, result.stability(2, 1), n=5)
    assert table.row_count == 5


def test_training_mode_model_is_scored_in_eval_mode_and_restored(olmoe):
    model, tokenizer = olmoe
    records = pair_records(3)
    reference = detect_experts(model, tokenizer, records, bootstrap=0)
    model.train()
    try:
        result = detect_experts(model, tokenizer, records, bootstrap=0)
        assert model.training
    finally:
        model.eval()
    assert torch.equal(result.counts_a, reference.counts_a)
    assert torch.equal(result.counts_b, reference.counts_b)
