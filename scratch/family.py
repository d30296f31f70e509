"""One family: tiny random model, vLLM vs HF greedy text and captured experts (plain and steered)."""
import json, os, sys, time, tempfile
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
os.environ.setdefault("OMP_NUM_THREADS", "1")
import torch
torch.set_num_threads(1)
from moeguard.testing import save_tiny_model
from moeguard.backends import get_backend
from moeguard.steer import SteeringSpec

family = sys.argv[1]
eager = sys.argv[2] != "compiled" if len(sys.argv) > 2 else True
over = dict(hidden_size=64, num_attention_heads=2, num_key_value_heads=2, head_dim=32)
if family in ("deepseek_v3", "glm4_moe"):
    over.update(scoring_func="sigmoid", topk_method="noaux_tc")
if family == "deepseek_v3":
    over.update(qk_nope_head_dim=32, qk_rope_head_dim=64, v_head_dim=32, qk_head_dim=96, kv_lora_rank=512, q_lora_rank=32, head_dim=64)
folder = save_tiny_model(family, tempfile.mkdtemp(prefix=f"tiny-{family}-"), **over)
prompts = ["Count to five.", "How do I bake bread?", "Tell me a story about a cat.", "What is two plus two?"]
result = {"family": family, "eager": eager}
try:
    t = time.time()
    v = get_backend("vllm", max_model_len=256, max_num_seqs=8, dtype="float32", enforce_eager=eager).load(str(folder))
    result["init_s"] = round(time.time() - t, 1)
    h = get_backend("hf").load(str(folder))
    layers = v.shape.layers
    spec = SteeringSpec(activate=[(layers[0], 3)], deactivate=[(layers[-1], 0), (layers[-1], 1)])
    for name, s in (("plain", None), ("steered", spec)):
        a = v.generate(prompts, 16, steer=s); b = h.generate(prompts, 16, steer=s)
        tv = v.capture(prompts, steer=s, progress=False); th = h.capture(prompts, steer=s, progress=False)
        same = torch.equal(tv.indices.sort(-1)[0], th.indices.sort(-1)[0])
        rows = (tv.indices.sort(-1)[0] == th.indices.sort(-1)[0]).all(-1).float().mean().item()
        wd = (tv.weights.float().sort(-1)[0] - th.weights.float().sort(-1)[0]).abs().max().item()
        result[name] = {"text_equal": sum(x == y for x, y in zip(a, b)), "of": len(a), "experts_equal": same,
                        "rows_equal": rows, "max_weight_diff": wd}
except Exception as err:
    import traceback; traceback.print_exc()
    result["error"] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:400]
print("RESULT", json.dumps(result))
