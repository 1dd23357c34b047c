"""Built-in models, side by side with the reference engines in one run.

Chat: Hearth's built-in engine and llama-cpp-python's OpenAI-compatible server, both serving
SmolLM2-135M-Instruct Q4_1 on the same CPU threads, driven over HTTP by the same streaming
client with the same prompts: prompt tokens/s, decode tokens/s, time to first token, peak RSS,
and aggregate decode tokens/s with 1, 4 and 8 concurrent chats.
Embeddings: Hearth's /v1/embeddings against sentence-transformers in-process (sentences/s).

Usage: bash bench/local.sh  (builds, fetches models, sets up the reference virtualenv, runs this
with that virtualenv's python).
"""
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HEARTH = sys.argv[1]
MODELS = sys.argv[2]
CHAT = "SmolLM2-135M-Instruct.Q4_1"
EMBED = "all-MiniLM-L6-v2"
THREADS = int(os.environ.get("HEARTH_BENCH_THREADS", os.cpu_count() or 1))
DECODE_TOKENS = 128
ROUNDS = int(os.environ.get("HEARTH_BENCH_ROUNDS", "3"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except Exception:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer")


def post(url, body, token=None, timeout=600):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def start_hearth(tmp):
    port = free_port()
    env = dict(os.environ)
    env.update({
        "HEARTH_DATA_DIR": os.path.join(tmp, "data"),
        "HEARTH_LOCAL__MODELS_DIR": MODELS,
        "HEARTH_LOCAL__THREADS": str(THREADS),
        "HEARTH_LOCAL__PARALLEL": "8",
        "HEARTH_LOG__LEVEL": "warn",
    })
    proc = subprocess.Popen([HEARTH, "serve", "--listen", f"127.0.0.1:{port}"], env=env,
                            stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health", proc)
    auth = post(base + "/api/v1/auth/register", {"email": "bench@example.com", "password": "bench-password-123"})
    key = post(base + "/api/v1/api-keys", {"name": "bench", "scopes": ["chat"], "password": "bench-password-123"},
               token=auth["access_token"])["key"]
    return proc, base + "/v1", key


def start_llama_cpp_python(model_path):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", model_path, "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "4096", "--n_threads", str(THREADS),
         "--n_threads_batch", str(THREADS), "--model_alias", CHAT],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/v1/models", proc)
    return proc, base + "/v1", None


def stream_chat(base, key, prompt, max_tokens):
    """One streamed chat: (ttft s, decode tokens, decode seconds, prompt tokens or None)."""
    body = {"model": CHAT, "stream": True, "max_tokens": max_tokens, "temperature": 0,
            "messages": [{"role": "user", "content": prompt}]}
    req = urllib.request.Request(base + "/chat/completions", data=json.dumps(body).encode(), method="POST")
    req.add_header("content-type", "application/json")
    if key:
        req.add_header("authorization", f"Bearer {key}")
    start = time.perf_counter()
    first = None
    tokens = 0
    with urllib.request.urlopen(req, timeout=600) as r:
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith("data:") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[5:])
            choices = chunk.get("choices") or []
            if choices and (choices[0].get("delta") or {}).get("content"):
                tokens += 1
                if first is None:
                    first = time.perf_counter()
    end = time.perf_counter()
    first = first or end
    return first - start, tokens, end - first


PROMPT_SHORT = "Write a detailed story about a lighthouse keeper who finds a message in a bottle."
PROMPT_LONG = ("Summarise the following notes.\n" + "\n".join(
    f"Note {i}: the shipment of part {i * 7} arrived late because the road near kilometre {i * 3} was closed for repairs."
    for i in range(20)))


def measure(name, base, key, tokenize_count):
    out = {}
    # Warm-up (loads pages, fills caches).
    stream_chat(base, key, "Hello", 8)
    ttfts, decode_rates, prompt_rates = [], [], []
    for r in range(ROUNDS):
        # A different first line each round, so no engine can reuse a cached prompt.
        ttft, _, _ = stream_chat(base, key, f"Round {r} of {name}.\n" + PROMPT_LONG, 1)
        prompt_rates.append(tokenize_count / ttft)
        ttft, tokens, secs = stream_chat(base, key, f"({r}) " + PROMPT_SHORT, DECODE_TOKENS)
        ttfts.append(ttft)
        decode_rates.append((tokens - 1) / secs if secs > 0 else float("nan"))
    out["prompt_tps"] = sorted(prompt_rates)[len(prompt_rates) // 2]
    out["decode_tps"] = sorted(decode_rates)[len(decode_rates) // 2]
    out["ttft_ms"] = sorted(ttfts)[len(ttfts) // 2] * 1000
    for n in (1, 4, 8):
        results = [None] * n

        def run(i):
            results[i] = stream_chat(base, key, f"Chat {i}: " + PROMPT_SHORT, DECODE_TOKENS)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        out[f"aggregate_{n}"] = sum(r[1] for r in results) / wall
    return out


def embeddings(base, key, sentences):
    # 256 texts a request; the server embeds them 32 at a time (local.embedding_batch), as
    # sentence-transformers does by default.
    start = time.perf_counter()
    for i in range(0, len(sentences), 256):
        post(base + "/embeddings", {"model": EMBED, "input": sentences[i:i + 256]}, token=key)
    return len(sentences) / (time.perf_counter() - start)


def main():
    from llama_cpp import Llama
    from sentence_transformers import SentenceTransformer
    import torch
    torch.set_num_threads(THREADS)

    gguf = os.path.join(MODELS, CHAT + ".gguf")
    vocab = Llama(model_path=gguf, vocab_only=True, verbose=False)
    # Prompt tokens as the chat template renders them (system message included), approximately
    # the same for both engines: the user text plus ~30 template tokens.
    prompt_tokens = len(vocab.tokenize(PROMPT_LONG.encode(), add_bos=False)) + 30

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        proc, base, key = start_hearth(tmp)
        try:
            results["hearth"] = measure("hearth", base, key, prompt_tokens)
            sentences = [f"Sentence number {i} talks about topic {i % 17} in some detail." for i in range(2048)]
            embeddings(base, key, sentences[:64])
            results["hearth"]["embed_sps"] = embeddings(base, key, sentences)
            results["hearth"]["rss_mib"] = peak_rss_mib(proc.pid)
        finally:
            proc.terminate()
            proc.wait()
    proc, base, key = start_llama_cpp_python(gguf)
    try:
        results["llama-cpp-python"] = measure("llama-cpp-python", base, key, prompt_tokens)
        results["llama-cpp-python"]["rss_mib"] = peak_rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait()
    st = SentenceTransformer(os.path.join(MODELS, EMBED), device="cpu")
    st.encode(sentences[:64])
    start = time.perf_counter()
    st.encode(sentences, batch_size=32)
    st_sps = len(sentences) / (time.perf_counter() - start)

    h, l = results["hearth"], results["llama-cpp-python"]
    print(f"\nBuilt-in models, {THREADS} threads, SmolLM2-135M-Instruct Q4_1 (median of {ROUNDS})\n")
    print("| figure | Hearth | llama-cpp-python server | ratio |")
    print("|---|---|---|---|")
    rows = [
        ("prompt tokens/s", "prompt_tps", True),
        ("decode tokens/s, one chat", "decode_tps", True),
        ("time to first token (ms)", "ttft_ms", False),
        ("aggregate decode tokens/s, 1 chat", "aggregate_1", True),
        ("aggregate decode tokens/s, 4 chats", "aggregate_4", True),
        ("aggregate decode tokens/s, 8 chats", "aggregate_8", True),
        ("peak RSS (MiB)", "rss_mib", False),
    ]
    for label, k, higher in rows:
        ratio = h[k] / l[k] if higher else l[k] / h[k]
        print(f"| {label} | {h[k]:.1f} | {l[k]:.1f} | {ratio:.2f}x{'' if higher else ' (lower is better)'} |")
    print(f"\n| embeddings | Hearth /v1/embeddings | sentence-transformers | ratio |")
    print("|---|---|---|---|")
    print(f"| sentences/s (all-MiniLM-L6-v2, 2,048 sentences) | {h['embed_sps']:.0f} | {st_sps:.0f} | {h['embed_sps'] / st_sps:.2f}x |")
    print(f"\n8-chat aggregate vs llama-cpp-python's: {h['aggregate_8'] / l['aggregate_8']:.2f}x")


if __name__ == "__main__":
    main()
