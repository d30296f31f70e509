"""Pair-level statistics for detection (DESIGN §1.2): the pair, not the token, is the unit of replication.

Tokens of one answer share their context, so a token-level test counts one pair's evidence hundreds of
times. The helpers here work on one value per *cluster* of pairs instead:

* :func:`cluster_ids`: identical pairs (same canonical content) form one cluster, named by the index of its
  first occurrence, so a set without duplicates has ``cluster_ids == range(P)``;
* :func:`cluster_sums`: per-cluster sums of per-pair counts (a cluster of ``k`` identical copies has ``k``
  times one copy's counts and lengths, hence exactly one copy's rates);
* :func:`sign_flip_p_values`: the two-sided sign-flip permutation test of "the mean per-cluster difference
  is 0" (under H0 the labels A/B of each pair are exchangeable, so each difference is as likely to have
  either sign): exact over all ``2^C`` sign vectors for ``C <= EXACT_MAX_CLUSTERS`` clusters, Monte Carlo
  with the ``(b + 1) / (R + 1)`` correction otherwise;
* :func:`percentile_interval`: percentile intervals from bootstrap resamples, ignoring undefined (NaN) ones.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from moeguard.errors import MoeguardError, parameter_error

__all__ = [
    "EXACT_MAX_CLUSTERS",
    "cluster_ids",
    "cluster_sums",
    "percentile_interval",
    "sign_flip_p_values",
]

#: Up to this many clusters the sign-flip test enumerates every sign vector (2^16 = 65,536).
EXACT_MAX_CLUSTERS = 16
#: Spawn key of the Monte Carlo sign stream (the Poisson bootstrap uses ``[seed, pair]`` seeds, never this).
SIGN_FLIP_STREAM = 1
#: Relative tolerance for "|T*| >= |T|": sums of the same differences in another order differ in the last bits.
TIE_TOLERANCE = 1e-9
_CHUNK_ENTRIES = 1 << 22  # sign vectors x entries evaluated at once (32 MiB of float64)


def cluster_ids(keys: Iterable[str]) -> list[int]:
    """For each key, the index of its first occurrence (duplicates share their first copy's index)."""
    first: dict[str, int] = {}
    return [first.setdefault(key, i) for i, key in enumerate(keys)]


def cluster_sums(values: torch.Tensor, clusters: torch.Tensor) -> torch.Tensor:
    """``[C, ...]`` int64 sums of ``values [P, ...]`` over the pairs of each cluster, clusters in ascending id."""
    _, inverse = torch.unique(clusters, sorted=True, return_inverse=True)
    out = torch.zeros((int(inverse.max()) + 1 if inverse.numel() else 0, *values.shape[1:]), dtype=torch.long)
    return out.index_add_(0, inverse, values.long())


def sign_flip_p_values(
    differences: torch.Tensor,
    permutations: int = 10_000,
    seed: int = 0,
    exact_max: int = EXACT_MAX_CLUSTERS,
) -> tuple[torch.Tensor, bool]:
    """Two-sided sign-flip p-values of ``mean_c d_c = 0`` for every entry of ``differences [C, ...]``.

    The statistic is ``T = sum_c d_c`` (the mean up to the constant ``C``); a sign vector ``s`` gives
    ``T_s = sum_c s_c d_c``; the same sign vectors are used for every entry. With ``C <= exact_max`` every
    one of the ``2^C`` sign vectors is evaluated and ``p = #{s : |T_s| >= |T|} / 2^C`` (so at least
    ``2 / 2^C``: ``s`` and ``-s`` always count); otherwise ``permutations`` random sign vectors (seeded by
    ``seed``) give ``p = (b + 1) / (permutations + 1)`` with ``b = #{s : |T_s| >= |T|}``. Entries whose
    differences are all 0 get ``p = 1``. ``|T_s| >= |T|`` allows a relative tolerance of ``TIE_TOLERANCE``
    so that exact ties are not lost to rounding. Returns ``(p, exact)``.
    """
    if permutations < 1:
        raise parameter_error("permutations", f"must be at least 1, got {permutations}")
    if differences.shape[0] == 0:
        raise MoeguardError("the sign-flip test needs at least one pair")
    d = differences.double().reshape(differences.shape[0], -1)
    n_clusters, n_entries = d.shape
    threshold = d.sum(0).abs() - TIE_TOLERANCE * d.abs().sum(0)
    chunk = max(1, _CHUNK_ENTRIES // max(n_entries, 1))
    hits = torch.zeros(n_entries, dtype=torch.long)
    exact = n_clusters <= exact_max
    if exact:
        total = 1 << n_clusters
        bits = torch.arange(n_clusters)
        for start in range(0, total, chunk):
            codes = torch.arange(start, min(total, start + chunk))
            signs = 1.0 - 2.0 * ((codes.unsqueeze(1) >> bits) & 1).double()
            hits += ((signs @ d).abs() >= threshold).sum(0)
        p = hits.double() / total
    else:
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(SIGN_FLIP_STREAM,)))
        for start in range(0, permutations, chunk):
            rows = min(chunk, permutations - start)
            signs = torch.from_numpy(np.where(rng.random((rows, n_clusters)) < 0.5, 1.0, -1.0))
            hits += ((signs @ d).abs() >= threshold).sum(0)
        p = (hits.double() + 1.0) / (permutations + 1.0)
    return p.reshape(differences.shape[1:]), exact


def percentile_interval(samples: torch.Tensor, level: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """``(low, high)`` percentile interval over the resample axis 0 of ``samples [R, ...]``.

    The ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles with linear interpolation between order
    statistics; NaN resamples (a side without tokens) are left out, and an entry with no defined resample
    gets NaN bounds.
    """
    if not 0.0 < level < 1.0:
        raise parameter_error("ci_level", f"must be in (0, 1), got {level}")
    if samples.shape[0] == 0:
        raise MoeguardError("a percentile interval needs at least one bootstrap resample")
    quantiles = torch.tensor([(1.0 - level) / 2.0, (1.0 + level) / 2.0], dtype=torch.float64)
    bounds = torch.nanquantile(samples.double(), quantiles, dim=0)
    return bounds[0], bounds[1]
