"""Runs schemathesis against a seeded Hearth server: every operation of /openapi.json, all checks.

Started by scripts/schemathesis.sh (which builds hearth and installs schemathesis). Prints the
operations, test cases and failures, and exits non-zero when there is a failure.
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HEARTH = os.environ["HEARTH_BIN"]
ST = os.environ["ST_BIN"]
MODELS = os.environ.get("HEARTH_TEST_MODELS_DIR", "")
EXAMPLES = os.environ.get("SCHEMATHESIS_EXAMPLES", "20")
PASSWORD = "schemathesis-password-1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(method, url, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=60) as r:
        text = r.read()
        return json.loads(text) if text else None


def main():
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        # The server's settings are this script's alone: HEARTH_* of the caller's shell (a
        # database URL, a registration mode) must not point the fuzzer at something real.
        env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
        env.update({
            "HEARTH_DATA_DIR": data,
            "HEARTH_LOG__LEVEL": "warn",
            # One long session for the whole run; logins of generated cases must not lock it.
            "HEARTH_AUTH__ACCESS_TOKEN_TTL_SECS": "86400",
            "HEARTH_AUTH__REFRESH_TOKEN_TTL_SECS": "172800",
        })
        if MODELS and os.path.isdir(MODELS) and os.listdir(MODELS):
            env["HEARTH_LOCAL__MODELS_DIR"] = MODELS
        proc = subprocess.Popen([HEARTH, "serve", "--listen", f"127.0.0.1:{port}"], env=env,
                                stdout=subprocess.DEVNULL)
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
            # Seed: the admin, and one of each resource so reads have something to find.
            auth = request("POST", base + "/api/v1/auth/register",
                           {"email": "admin@example.com", "password": PASSWORD})
            token = auth["access_token"]
            # Their ids go to the operations that take them (schemathesis.toml reads them from
            # the environment), so those are tested on real rows as well as on unknown ids.
            seeded = {
                "SEED_CONVERSATION": request("POST", base + "/api/v1/conversations",
                                             {"title": "seeded"}, token)["id"],
                "SEED_MEMORY": request("POST", base + "/api/v1/memories",
                                       {"text": "likes tea"}, token)["id"],
                "SEED_API_KEY": request("POST", base + "/api/v1/api-keys",
                                        {"name": "seeded", "scopes": ["read"],
                                         "password": PASSWORD}, token)["api_key"]["id"],
                # Another account for the user admin operations: the run's own admin must not
                # be disabled or demoted under it.
                "SEED_USER": request("POST", base + "/api/v1/admin/users",
                                     {"email": "user@example.com", "password": PASSWORD},
                                     token)["id"],
                "SEED_KNOWLEDGE_BASE": request("POST", base + "/api/v1/knowledge-bases",
                                               {"name": "seeded"}, token)["id"]
                if "HEARTH_LOCAL__MODELS_DIR" in env else "00000000-0000-7000-8000-000000000000",
            }
            report = os.path.join(data, "report.json")
            config = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schemathesis.toml")
            cmd = [
                ST, "--config-file", config, "run", base + "/openapi.json",
                "--checks", "all",
                "--header", f"Authorization: Bearer {token}",
                "--max-examples", EXAMPLES,
                "--phases", "examples,coverage,fuzzing",
                # One worker: hypothesis describing filters from several threads trips CPython
                # 3.11's "AST constructor recursion depth mismatch".
                "--workers", "1",
                "--seed", "1",
                # The same cases on every machine: no database of earlier runs' examples.
                "--generation-database", "none",
                "--no-color",
                "--suppress-health-check", "all",
                # Ending the run's own session would turn every later case into a 401.
                "--exclude-path", "/api/v1/auth/logout",
                # Syncing asks the provider for its models: the ones schemathesis makes point
                # nowhere, and an unreachable upstream is 502 by design (the API tests sync
                # against a fake provider).
                "--exclude-operation-id", "admin_sync",
                "--report", "ndjson", "--report-ndjson-path", report,
            ] + sys.argv[1:]
            run = subprocess.run(cmd, text=True, capture_output=True, env={**os.environ, **seeded})
            sys.stdout.write(run.stdout[-20000:])
            sys.stderr.write(run.stderr[-5000:])
            tested = re.search(r"Tested: (\d+)", run.stdout)
            cases = re.search(r"(\d+) generated", run.stdout)
            failures = re.search(r"(\d+) unique failure", run.stdout)
            errors = re.search(r"(\d+) errors?[, ]", run.stdout)
            print("\nschemathesis: {} operations, {} cases, {} failures, {} errors".format(
                tested.group(1) if tested else "?", cases.group(1) if cases else "?",
                failures.group(1) if failures else 0, errors.group(1) if errors else 0))
            return run.returncode
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    sys.exit(main())
