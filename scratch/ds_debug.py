import json, os, sys, tempfile
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1"); os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
import torch
torch.set_num_threads(1)
from moeguard.testing import save_tiny_model
from moeguard.backends import get_backend
over = dict(hidden_size=64, num_attention_heads=2, num_key_value_heads=2, scoring_func="sigmoid", topk_method="noaux_tc",
            qk_nope_head_dim=32, qk_rope_head_dim=64, v_head_dim=32, qk_head_dim=96, kv_lora_rank=512, q_lora_rank=32, head_dim=64, rope_interleave=bool(int(os.environ.get("RI", "1"))))
folder = save_tiny_model("deepseek_v3", tempfile.mkdtemp(), **over)
prompts = ["Count to five.", "How do I bake bread?", "Tell me a story about a cat.", "What is two plus two?"]
v = get_backend("vllm", max_model_len=256, max_num_seqs=8, dtype="float32", capture_logits=True).load(str(folder))
h = get_backend("hf").load(str(folder))
tv = v.capture(prompts, logits=True, progress=False); th = h.capture(prompts, logits=True, progress=False)
d = (tv.logits - th.logits).abs()
print("logit diff per layer max", d.amax(dim=(0, 2)), "mean", d.mean())
bad = ~(tv.indices.sort(-1)[0] == th.indices.sort(-1)[0]).all(-1)
print("bad rows per layer", bad.sum(0))
# is vLLM routing on HF logits equal to HF routing?
adapter = h.shape.adapter
r = h.shape.routers[1]
w, i = adapter.route(r, th.logits[:, 0], None)
print("adapter on HF logits == HF", torch.equal(i.sort(-1)[0], th.indices[:, 0].sort(-1)[0]))
w2, i2 = adapter.route(r, tv.logits[:, 0], None)
print("adapter on vLLM logits == vLLM", torch.equal(i2.sort(-1)[0], tv.indices[:, 0].sort(-1)[0]))
print(r.e_score_correction_bias, v.shape.routers[1].__dict__)
pos = th.positions
print("pos0 diff", d[pos == 0].max().item(), "pos1", d[pos == 1].max().item(), "pos>=5", d[pos >= 5].max().item())
