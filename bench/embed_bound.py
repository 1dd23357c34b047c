"""How fast sentence embeddings can get on this CPU, and what int8 arithmetic costs in accuracy.

Prints, for all-MiniLM-L6-v2 and the 2,048 sentences of bench/local.py:
- the work per sentence (multiply-adds of the six transformer layers, from the tokenized length),
- sentence-transformers' rate and the GFLOP/s it reaches, and the GFLOP/s that 3x that rate needs,
- the cosine between sentence-transformers' f32 vectors and the same model with int8 weights
  (symmetric, one scale per output channel: the most accurate int8 scheme), and with int8
  weights and activations (one scale per token), over those sentences and 64 passages of prose.
  The engine tests require cosine >= 0.9999 for every text.

Usage: ~/.cache/hearth/refvenv/bin/python bench/embed_bound.py MODELS_DIR
(the reference virtualenv of bench/reference/setup.sh).
"""
import os
import sys
import time
import types

import torch
from sentence_transformers import SentenceTransformer

MODELS = sys.argv[1]
THREADS = int(os.environ.get("HEARTH_BENCH_THREADS", os.cpu_count() or 1))
torch.set_num_threads(THREADS)

model = SentenceTransformer(os.path.join(MODELS, "all-MiniLM-L6-v2"), device="cpu")
sentences = [f"Sentence number {i} talks about topic {i % 17} in some detail." for i in range(2048)]
here = os.path.dirname(os.path.abspath(__file__))
prose = open(os.path.join(here, "..", "README.md")).read()
passages = [prose[i * 300:(i + 1) * 300] for i in range(64)]

# Work per token: every Linear layer's weights once (a multiply-add each); attention over ~14
# tokens adds under 1%.
macs_per_token = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
tokens = sum(len(model.tokenizer(s)["input_ids"]) for s in sentences) / len(sentences)
flop_per_sentence = 2 * macs_per_token * tokens

model.encode(sentences[:64])
best = 0.0
for _ in range(3):
    start = time.perf_counter()
    model.encode(sentences, batch_size=32)
    best = max(best, len(sentences) / (time.perf_counter() - start))
print(f"all-MiniLM-L6-v2: {macs_per_token / 1e6:.1f}M multiply-adds per token, {tokens:.1f} tokens "
      f"per sentence = {flop_per_sentence / 1e6:.0f} MFLOP per sentence")
print(f"sentence-transformers, {THREADS} threads: {best:.0f} sentences/s = "
      f"{best * flop_per_sentence / 1e9:.0f} GFLOP/s; 3x that needs {3 * best * flop_per_sentence / 1e9:.0f} GFLOP/s")

texts = sentences[:512] + passages
reference = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_tensor=True)


def int8(x, dim):
    scale = x.abs().amax(dim=dim, keepdim=True).clamp(min=1e-8) / 127
    return (x / scale).round().clamp(-127, 127) * scale


linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
originals = [m.weight.data.clone() for m in linears]


def quantized_forward(self, x):
    return torch.nn.functional.linear(int8(x, -1), self.weight, self.bias)


for label, activations in (("int8 weights (per channel), f32 activations", False),
                           ("int8 weights and activations (per token)", True)):
    for m, w in zip(linears, originals):
        m.weight.data = int8(w, 1)
        if activations:
            m.forward = types.MethodType(quantized_forward, m)
    vectors = model.encode(texts, batch_size=32, normalize_embeddings=True, convert_to_tensor=True)
    cosine = (reference * vectors).sum(1)
    print(f"{label}: cosine min {cosine.min():.6f}, mean {cosine.mean():.6f}; "
          f"{int((cosine < 0.9999).sum())} of {len(texts)} texts below 0.9999")
    for m, w in zip(linears, originals):
        m.weight.data = w.clone()
        m.__dict__.pop("forward", None)
