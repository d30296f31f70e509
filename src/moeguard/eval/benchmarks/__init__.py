"""Public safety and faithfulness benchmarks, read in their published schemas (DESIGN §1.5).

>>> from moeguard.eval.benchmarks import load_benchmark
>>> items = load_benchmark("xstest:data/xstest_prompts.csv", split="safe")
>>> items[0].prompt, items[0].kind, items[0].category

Known benchmarks (one module each, registered on import): AdvBench, HarmBench, JailbreakBench
(JBB-Behaviors), StrongREJECT, XSTest, SORRY-Bench, BeaverTails, NQ-Swap, FaithEval counterfactual and
moeguard's own faithfulness layout. Sources: local files (CSV/JSON/JSONL/parquet as published), folders
of published files, the Hugging Face hub when it is reachable, and ``builtin:`` sets.
"""

from moeguard.eval.benchmarks import (  # noqa: F401  (importing registers each benchmark)
    advbench,
    beavertails,
    faithfulness,
    harmbench,
    jailbreakbench,
    sorrybench,
    strongreject,
    xstest,
)
from moeguard.eval.benchmarks.item import DOCUMENT_PROMPT, KINDS, BenchmarkItem, document_prompt
from moeguard.eval.benchmarks.loader import load_benchmark
from moeguard.eval.benchmarks.registry import Benchmark, benchmark_names, benchmarks, find_benchmark

__all__ = [
    "DOCUMENT_PROMPT",
    "KINDS",
    "Benchmark",
    "BenchmarkItem",
    "benchmark_names",
    "benchmarks",
    "document_prompt",
    "find_benchmark",
    "load_benchmark",
]
