"""Knowledge pipeline figures on a real corpus, through a release `hearth serve` with the
built-in embedder: ingest throughput (`hearth ingest`: pages/s and chunks/s), search latency
over HTTP (p50/p99 per mode, query embedding included), retrieval quality (`hearth eval
retrieval`: nDCG@10, recall@10, MRR@10 for BM25, vector and hybrid), and server RSS.

Usage: python3 bench/knowledge.py HEARTH_BIN MODELS_DIR CORPUS_DIR QUERIES_JSONL [MORE_JSONL…]
(bash bench/knowledge.sh builds and prepares everything, then runs this). Latency is timed on
the first query file; retrieval quality is printed for each.
"""
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HEARTH, MODELS, CORPUS, QUERIES = sys.argv[1:5]
MORE_QUERIES = sys.argv[5:]
EMBED = "all-MiniLM-L6-v2"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(method, url, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read() or b"null")


def rss_mib(pid, field="VmRSS:"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    tmp = tempfile.mkdtemp(prefix="hearth-knowledge-bench-")
    models = os.path.join(tmp, "models")
    os.makedirs(models)
    # Only the embedder: the chat model's KV cache would only add to the RSS figure.
    os.symlink(os.path.join(MODELS, EMBED), os.path.join(models, EMBED))
    port = free_port()
    env = dict(os.environ)
    env.update({
        "HEARTH_DATA_DIR": os.path.join(tmp, "data"),
        "HEARTH_LOCAL__MODELS_DIR": models,
        "HEARTH_AUTH__REGISTRATION": "open",
        "HEARTH_LOG__LEVEL": "warn",
    })
    proc = subprocess.Popen([HEARTH, "serve", "--listen", f"127.0.0.1:{port}"], env=env,
                            stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                request("GET", base + "/ready")
                break
            except Exception:
                if time.time() > deadline or proc.poll() is not None:
                    raise SystemExit("hearth did not start")
                time.sleep(0.2)
        auth = request("POST", base + "/api/v1/auth/register",
                       {"email": "bench@example.com", "password": "correct-horse-battery"})
        key = request("POST", base + "/api/v1/api-keys", {"name": "bench", "scopes": ["knowledge"],
                                                          "password": "correct-horse-battery"},
                      auth["access_token"])["key"]
        idle_rss = rss_mib(proc.pid)

        pages = len([f for f in os.listdir(CORPUS) if f.endswith(".html")])
        size_mb = sum(os.path.getsize(os.path.join(CORPUS, f)) for f in os.listdir(CORPUS)) / 1e6
        started = time.time()
        subprocess.run([HEARTH, "ingest", "--kb", "pgdocs", CORPUS, "--server", base,
                        "--api-key", key], check=True, stdout=subprocess.DEVNULL)
        took = time.time() - started
        kb = next(k for k in request("GET", base + "/api/v1/knowledge-bases", token=key)
                  if k["name"] == "pgdocs")
        chunks = kb["chunks"]
        print("| corpus | pages | MB | chunks | ingest time | pages/s | chunks/s | RSS idle → after ingest |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        print(f"| PostgreSQL 15 docs | {pages} | {size_mb:.1f} | {chunks} | {took:.1f} s | "
              f"{pages / took:.1f} | {chunks / took:.1f} | {idle_rss:.0f} → {rss_mib(proc.pid):.0f} MiB |")
        print()

        queries = [json.loads(l)["query"] for l in open(QUERIES) if l.strip()]
        print("| search over HTTP (query embedding included) | p50 | p99 |")
        print("|---|---:|---:|")
        for mode in ["bm25", "vector", "hybrid"]:
            times = []
            for q in queries:
                t = time.perf_counter()
                request("POST", f"{base}/api/v1/knowledge-bases/{kb['id']}/search",
                        {"query": q, "top_k": 10, "mode": mode}, key)
                times.append((time.perf_counter() - t) * 1000)
            times.sort()
            p99 = times[min(len(times) - 1, round(0.99 * (len(times) - 1)))]
            print(f"| {mode} ({len(times)} queries, {chunks} chunks) | "
                  f"{statistics.median(times):.1f} ms | {p99:.1f} ms |")
        print()
        sys.stdout.flush()
        files = [QUERIES, *MORE_QUERIES]
        if len(files) > 1:
            # The whole evaluation set: every query file at once.
            together = os.path.join(tmp, "all-queries.jsonl")
            with open(together, "w") as out:
                for f in files:
                    out.writelines(l if l.endswith("\n") else l + "\n" for l in open(f) if l.strip())
            files.append(together)
        for queries_file in files:
            print(f"Retrieval quality on {os.path.basename(queries_file)}:")
            sys.stdout.flush()
            subprocess.run([HEARTH, "eval", "retrieval", "--kb", "pgdocs", "--queries",
                            queries_file, "--server", base, "--api-key", key], check=True)
            print()
        peak = rss_mib(proc.pid, 'VmHWM:')
        # Stopping saves the vector index, so the sizes are what a restart loads.
        proc.terminate()
        proc.wait(timeout=60)
        data = os.path.join(tmp, "data")
        db = sum(os.path.getsize(os.path.join(data, f)) for f in os.listdir(data)
                 if f.startswith("hearth.db"))
        def tree_size(path):
            total = 0
            for root, _, files in os.walk(path):
                total += sum(os.path.getsize(os.path.join(root, f)) for f in files)
            return total
        hnsw = tree_size(os.path.join(data, "knowledge", "vectors"))
        text = tree_size(os.path.join(data, "knowledge", "text"))
        print()
        print(f"Disk: SQLite {db / 2**20:.0f} MiB (chunks with text and embeddings), full-text "
              f"{text / 2**20:.1f} MiB, HNSW {hnsw / 2**20:.1f} MiB; "
              f"peak RSS {peak:.0f} MiB.")
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
