#!/usr/bin/env python3
"""Measure usersvc's throughput, latency and memory on this machine.

Starts the release binary on free loopback ports with a fresh SQLite database
(or a fresh database on the server named by BENCH_MYSQL_URL or
BENCH_POSTGRES_URL), then with wrk:

1. creates users for CREATE_SECONDS over CONNECTIONS connections,
2. lists the first page and a page past every created user but the last
   page (keyset pagination should make both cost the same),
3. reads the process's peak resident memory.

It prints each figure next to its target and exits 1 when a target is missed.
Standard library only; needs wrk (Debian package) and a release build.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CREATE_SECONDS = int(os.environ.get("BENCH_CREATE_SECONDS", "20"))
READ_SECONDS = int(os.environ.get("BENCH_READ_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))

# Targets for a 2-core machine; see docs/benchmarks.md.
MIN_CREATES_PER_SECOND = 1500
MAX_LIST_P99_MS = 50.0
MAX_DEEP_TO_FIRST_P50_RATIO = 2.0
MAX_PEAK_RSS_MIB = 100.0

POST_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, nil, nil, '{"name":"bench user ' .. counter .. '","type":' .. (counter % 2 + 1) .. '}')
end
"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def wait_ready(base, process, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"usersvc exited with {process.returncode} before it was ready")
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("usersvc was not ready within 60 s")


def run_wrk(url, seconds, script=None):
    """Run wrk and return (requests per second, p50 ms, p99 ms, non-2xx count)."""
    command = ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", url]
    script_path = None
    if script:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as file:
            file.write(script)
            script_path = file.name
        command[4:4] = ["-s", script_path]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    if script_path:
        os.unlink(script_path)

    def latency_ms(label):
        match = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
        value, unit = float(match.group(1)), match.group(2)
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
        return value * scale

    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return rate, latency_ms("50%"), latency_ms("99%"), int(errors.group(1)) if errors else 0


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def server_database(admin_url):
    """Create a database on the server at admin_url; return (url, drop function)."""
    name = f"usersvc_bench_{uuid.uuid4().hex[:12]}"
    if admin_url.startswith("mysql"):
        subprocess.run(["mysql", "-h127.0.0.1", "-uroot", "-e", f"CREATE DATABASE {name}"], check=True)
        drop = ["mysql", "-h127.0.0.1", "-uroot", "-e", f"DROP DATABASE {name}"]
    else:
        subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"CREATE DATABASE {name}"], check=True)
        drop = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-qc", f"DROP DATABASE {name} WITH (FORCE)"]
    url = f"{admin_url.rstrip('/')}/{name}"
    migration = os.path.join(ROOT, "target/release/usersvc-migration")
    subprocess.run([migration], env={**os.environ, "DATABASE_URL": url, "LOG_FORMAT": "json"}, check=True,
                   stderr=subprocess.DEVNULL)
    return url, lambda: subprocess.run(drop, check=False)


def main():
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")
    binary = os.path.join(ROOT, "target/release/usersvc")
    if not os.path.exists(binary):
        sys.exit("build first: cargo build --release -p usersvc -p migration")

    workdir = tempfile.mkdtemp(prefix="usersvc-bench-")
    admin_url = os.environ.get("BENCH_MYSQL_URL") or os.environ.get("BENCH_POSTGRES_URL")
    if admin_url:
        database_url, drop = server_database(admin_url)
        backend = admin_url.split(":")[0]
    else:
        database_url, drop = f"sqlite://{workdir}/bench.db?mode=rwc", lambda: None
        backend = "sqlite"

    http_port, grpc_port = free_port(), free_port()
    base = f"http://127.0.0.1:{http_port}"
    env = {**os.environ, "DATABASE_URL": database_url, "HTTP_ADDR": f"127.0.0.1:{http_port}",
           "GRPC_ADDR": f"127.0.0.1:{grpc_port}", "LOG_FORMAT": "json", "RUST_LOG": "warn",
           "SHUTDOWN_DELAY": "0s"}
    process = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(base, process)
        print(f"backend: {backend}; {os.cpu_count()} CPUs; wrk -t2 -c{CONNECTIONS}")

        create_rate, create_p50, create_p99, create_errors = run_wrk(base + "/v1/users", CREATE_SECONDS, POST_SCRIPT)
        print(f"create: {create_rate:.0f} req/s, p50 {create_p50:.2f} ms, p99 {create_p99:.2f} ms, "
              f"{create_errors} non-2xx")

        # Walk to the last page with large pages to find a token deep into the table.
        token, users, deep_token = "", 0, ""
        while True:
            page = get_json(f"{base}/v1/users?pageSize=1000&pageToken={token}")
            users += len(page["users"])
            if not page["nextPageToken"]:
                break
            deep_token, token = token, page["nextPageToken"]
        print(f"users in the table: {users}")

        first_rate, first_p50, first_p99, first_errors = run_wrk(base + "/v1/users?pageSize=50", READ_SECONDS)
        deep_rate, deep_p50, deep_p99, deep_errors = run_wrk(
            f"{base}/v1/users?pageSize=50&pageToken={deep_token}", READ_SECONDS)
        print(f"list first page: {first_rate:.0f} req/s, p50 {first_p50:.2f} ms, p99 {first_p99:.2f} ms, "
              f"{first_errors} non-2xx")
        print(f"list page after {max(users - 2000, 0)} users: {deep_rate:.0f} req/s, p50 {deep_p50:.2f} ms, "
              f"p99 {deep_p99:.2f} ms, {deep_errors} non-2xx")

        rss = peak_rss_mib(process.pid)
        print(f"peak resident memory: {rss:.1f} MiB")
    finally:
        process.terminate()
        process.wait(timeout=30)
        drop()
        shutil.rmtree(workdir, ignore_errors=True)

    ratio = deep_p50 / first_p50 if first_p50 else float("inf")
    checks = [
        (f"create rate >= {MIN_CREATES_PER_SECOND} req/s", create_rate >= MIN_CREATES_PER_SECOND),
        ("no failed requests", create_errors + first_errors + deep_errors == 0),
        (f"list p99 <= {MAX_LIST_P99_MS} ms on both pages", max(first_p99, deep_p99) <= MAX_LIST_P99_MS),
        (f"deep/first page p50 ratio {ratio:.2f} <= {MAX_DEEP_TO_FIRST_P50_RATIO}", ratio <= MAX_DEEP_TO_FIRST_P50_RATIO),
        (f"peak RSS <= {MAX_PEAK_RSS_MIB} MiB", rss <= MAX_PEAK_RSS_MIB),
    ]
    for label, met in checks:
        print(f"{'met' if met else 'MISSED'}: {label}")
    sys.exit(0 if all(met for _, met in checks) else 1)


if __name__ == "__main__":
    main()
