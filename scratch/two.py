import os, tempfile, time
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1"); os.environ.setdefault("VLLM_CPU_OMP_THREADS_BIND", "nobind")
import torch
torch.set_num_threads(1)
from moeguard.testing import save_tiny_model
from moeguard.backends import get_backend
b = get_backend("vllm", max_model_len=128, max_num_seqs=4, dtype="float32")
for f in ("olmoe", "mixtral", "olmoe"):
    folder = save_tiny_model(f, tempfile.mkdtemp(), hidden_size=64, num_attention_heads=2, num_key_value_heads=2, head_dim=32)
    t = time.time(); m = b.load(str(folder)); print(f, "init", round(time.time() - t, 1), m.generate(["Count to five."], 8))
b.close()
