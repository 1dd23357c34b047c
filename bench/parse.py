#!/usr/bin/env python3
"""Parser figures: peak memory of a parser process on each bomb of the adversarial corpus, and
what running the parser in a process costs next to running it in the server.

    python3 bench/parse.py HEARTH_BIN PARSE_CORPUS_BIN [DOCS_DIR]

For each bomb, `HEARTH_BIN parse-worker` gets the request the server sends (the corpus budgets,
the default 1024 MiB address space and 60 s of CPU) and the file; its peak RSS comes from
wait4(2), and its answer must be the bomb's failure. With DOCS_DIR (bench/out/pgdocs, made by
bench/knowledge.sh), every document is read once in-process (PARSE_CORPUS_BIN inproc) and once
through a parser process, one after the other, and the totals are compared.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

MEMORY = 1024 * 1024 * 1024
CPU_SECS = 60
DEFAULT_LIMITS = {"max_unpacked_bytes": 134217728, "max_pages": 2000,
                  "max_text_bytes": 33554432, "max_blocks": 200000, "max_depth": 256}


def run_child(hearth, name, data, limits):
    request = {"format": name.rsplit(".", 1)[1], "limits": limits, "chunk_tokens": 200,
               "chunk_overlap": 32, "memory_bytes": MEMORY, "cpu_secs": CPU_SECS,
               "len": len(data)}
    with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as stdout:
        stdin.write(json.dumps(request).encode() + b"\n" + data)
        stdin.seek(0)
        started = time.perf_counter()
        proc = subprocess.Popen([hearth, "parse-worker"], stdin=stdin, stdout=stdout,
                                stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        secs = time.perf_counter() - started
        stdout.seek(0)
        answer = stdout.read()
    return secs, usage.ru_maxrss / 1024, proc.returncode, answer


def main():
    hearth, corpus_bin = sys.argv[1], sys.argv[2]
    docs = sys.argv[3] if len(sys.argv) > 3 else None
    with tempfile.TemporaryDirectory() as tmp:
        limits = json.loads(subprocess.check_output([corpus_bin, "dump", tmp]))
        print(f"Bombs through `hearth parse-worker` (address space {MEMORY >> 20} MiB, "
              f"budgets {limits}):\n")
        print("| bomb | file size | peak RSS | time | outcome |")
        print("|---|---:|---:|---:|---|")
        worst = 0.0
        for name in sorted(os.listdir(tmp)):
            data = open(os.path.join(tmp, name), "rb").read()
            secs, rss, code, answer = run_child(hearth, name, data, limits)
            worst = max(worst, rss)
            try:
                failed = json.loads(answer).get("failed")
                outcome = "failed: " + (next(iter(failed)) if isinstance(failed, dict) else str(failed))
            except (ValueError, AttributeError):
                outcome = f"exit {code}"
            print(f"| {name} | {len(data) / 1024:,.0f} KiB | {rss:,.1f} MiB | {secs * 1000:,.0f} ms | {outcome} |")
        print(f"\nlargest peak RSS: {worst:,.1f} MiB (budget {MEMORY >> 20} MiB)")
    if not docs:
        return
    names = sorted(n for n in os.listdir(docs) if "." in n)
    inproc = [json.loads(line) for line in
              subprocess.check_output([corpus_bin, "inproc", docs]).decode().splitlines()]
    in_total = sum(r["secs"] for r in inproc)
    child_total = 0.0
    for name in names:
        data = open(os.path.join(docs, name), "rb").read()
        secs, _, code, _ = run_child(hearth, name, data, DEFAULT_LIMITS)
        assert code == 0, name
        child_total += secs
    chunks = sum(r["chunks"] for r in inproc)
    print(f"\n{len(names)} documents ({chunks} chunks): parse + chunk in-process {in_total:.2f} s, "
          f"in parser processes {child_total:.2f} s: {child_total - in_total:+.2f} s "
          f"({(child_total - in_total) / len(names) * 1000:.1f} ms a document)")


if __name__ == "__main__":
    main()
