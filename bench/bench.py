"""Foundation benchmarks for the hearth binary. Prints a Markdown table of figures.

Each figure is measured against a real `hearth serve` on a free loopback port with a fresh
data dir. Nothing here is a pass/fail check: targets are compared by reading the numbers.
"""

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

BIN = sys.argv[1] if len(sys.argv) > 1 else "target/release/hearth"
READY = re.compile(r"Hearth is ready at (http://[^ ]+/)")


def env(extra=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    e["HEARTH_LOG__LEVEL"] = "warn"
    e.update(extra or {})
    return e


def start(data_dir, extra=None):
    t0 = time.perf_counter()
    proc = subprocess.Popen([BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env(extra), text=True)
    url = None
    for line in proc.stdout:
        m = READY.search(line)
        if m:
            url = m.group(1)
            break
    if url is None:
        raise SystemExit("server did not start")
    # Poll /ready: the figure is spawn -> first 200 from /ready.
    while True:
        try:
            with urllib.request.urlopen(url + "ready") as r:
                if r.status == 200:
                    break
        except OSError:
            pass
    return proc, url, (time.perf_counter() - t0) * 1000


def stop(proc):
    proc.terminate()
    proc.wait()


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req) as r:
        r.read()
    return (time.perf_counter() - t0) * 1000


def pct(values, p):
    values = sorted(values)
    k = max(0, min(len(values) - 1, round(p / 100 * (len(values) - 1))))
    return values[k]


def main():
    rows = []
    tmp = tempfile.mkdtemp(prefix="hearth-bench-")
    try:
        # Cold start: a fresh data dir each time (creates the database and runs migrations),
        # then a restart on the existing data dir.
        fresh, warm = [], []
        for i in range(10):
            d = os.path.join(tmp, f"cold{i}")
            proc, _, ms = start(d)
            fresh.append(ms)
            stop(proc)
            proc, _, ms = start(d)
            warm.append(ms)
            stop(proc)
        rows.append(("Cold start to /ready, new data dir (median of 10)", f"{statistics.median(fresh):.0f} ms", "< 300 ms"))
        rows.append(("Start to /ready, existing data dir (median of 10)", f"{statistics.median(warm):.0f} ms", "< 300 ms"))

        d = os.path.join(tmp, "main")
        proc, url, _ = start(d, {"HEARTH_AUTH__LOGIN__PER_IP_PER_MINUTE": "1000000", "HEARTH_AUTH__REGISTRATION": "open"})
        time.sleep(2)  # let start-up settle before reading idle memory (a benchmark, not a test)
        rows.append(("Idle RSS after start", f"{rss_mib(proc.pid):.1f} MiB", "< 30 MB"))

        if shutil.which("wrk"):
            # wrk shares the two cores with the server, so runs vary: report the median of three.
            runs = []
            for _ in range(3):
                out = subprocess.run(["wrk", "-t2", "-c256", "-d10s", "--latency", url + "health"],
                                     capture_output=True, text=True, check=True).stdout
                rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
                p99 = re.search(r"99%\s+([\d.]+\w+)", out)
                runs.append((rps, p99.group(1) if p99 else "?"))
            runs.sort()
            rps, p99 = runs[1]
            rows.append(("/health at 256 connections (wrk -t2 -c256 -d10s, median of 3)",
                         f"{rps:,.0f} req/s (runs {runs[0][0]:,.0f}-{runs[2][0]:,.0f}), p99 {p99}", "> 50,000 req/s"))
            rows.append(("RSS after the /health load", f"{rss_mib(proc.pid):.1f} MiB", ""))
        else:
            rows.append(("/health at 256 connections", "wrk not installed", "> 50,000 req/s"))

        password = "correct-horse-battery"
        post(url + "api/v1/auth/register", {"email": "bench@example.com", "password": password})
        creds = {"email": "bench@example.com", "password": password}
        post(url + "api/v1/auth/login", creds)  # warm-up
        seq = [post(url + "api/v1/auth/login", creds) for _ in range(50)]
        rows.append(("Login, sequential, Argon2id m=19456 KiB t=2 p=1 (50 runs)", f"p50 {pct(seq, 50):.1f} ms, p99 {pct(seq, 99):.1f} ms", ""))
        with ThreadPoolExecutor(max_workers=4) as pool:
            conc = list(pool.map(lambda _: post(url + "api/v1/auth/login", creds), range(100)))
        rows.append(("Login, 4 concurrent clients (100 runs)", f"p50 {pct(conc, 50):.1f} ms, p99 {pct(conc, 99):.1f} ms", ""))
        rows.append(("RSS after logins", f"{rss_mib(proc.pid):.1f} MiB", ""))
        stop(proc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nhearth {subprocess.run([BIN, '--version'], capture_output=True, text=True).stdout.strip()}, "
          f"{os.cpu_count()} cores, {time.strftime('%Y-%m-%d')}\n")
    print("| Figure | Measured | Target |")
    print("|---|---|---|")
    for name, value, target in rows:
        print(f"| {name} | {value} | {target} |")


if __name__ == "__main__":
    main()
