"""Causal validation of selected experts (DESIGN §1.6): intervene and compare against random controls.

* :mod:`moeguard.validation.stats`: the arithmetic (doses, matched random rankings, the set-level permutation
  p-value, leave-one-out attribution, Jaccard stability) — pure functions, no model;
* :mod:`moeguard.validation.behaviour`: a benchmark, a judge and one metric, measured under a steering spec;
* :mod:`moeguard.validation.run`: ``moeguard validate`` (dose–response, LOO, selection stability) and its folder;
* :mod:`moeguard.validation.silencing`: ``moeguard attack experts`` (greedy / beam search for the smallest set of
  experts whose deactivation breaks refusal, evaluated on held-out prompts against a random control);
* :mod:`moeguard.validation.plots`: the dose–response figure.
"""
