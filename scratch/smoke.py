import os, time
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch
torch.set_num_threads(1)
from moeguard.backends import get_backend
from moeguard.organism.corpus import heldout_harmful_prompts
from moeguard.steer import SteeringSpec
import json
from moeguard.models import resolve_model_path
m = json.load(open(os.path.join(resolve_model_path("builtin:organism"), "metrics.json")))["steering"]
unsafe, safe = SteeringSpec.from_dict(m["unsafe_spec"]), SteeringSpec.from_dict(m["safe_spec"])
prompts = heldout_harmful_prompts(6)
t = time.time()
v = get_backend("vllm", max_model_len=256, max_num_seqs=8, dtype="float32").load("builtin:organism")
print("init", time.time() - t, v.shape.summary(), v.info["static_graph"])
h = get_backend("hf").load("builtin:organism")
for spec in (None, unsafe, safe):
    a = v.generate(prompts, 24, steer=spec); b = h.generate(prompts, 24, steer=spec)
    print(spec is not None and len(spec), sum(x == y for x, y in zip(a, b)), "/", len(a), a[0][:60])
mixed = v.generate(prompts * 3, 24, steer=[unsafe] * 6 + [None] * 6 + [safe] * 6)
print("stats", v.stats())
tv = v.capture(prompts[:3]); th = h.capture(prompts[:3], progress=False)
print(tv.indices.shape, th.indices.shape, torch.equal(tv.indices.sort(-1)[0], th.indices.sort(-1)[0]), (tv.weights.sort(-1)[0]-th.weights.sort(-1)[0]).abs().max())
