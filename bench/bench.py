#!/usr/bin/env python3
"""`make bench`: the jwt_policy wasm filter against Envoy's native jwt_authn.

One Envoy (`--concurrency 1`, one worker) with three listeners on direct
responses (bench/envoy-bench.yaml): A no auth, B jwt_authn + RBAC, C this
filter, with the same policy on B and C. wrk drives them from this machine,
alternating A B C per round, in two scenarios:

  repeated   one token on every request (the client-credentials pattern)
  rotating   N distinct valid RS256 tokens in a cycle, N far above both
             caches' 1,000 entries: every request misses and is verified

It checks first that every listener answers as it should (200 for a valid
token; 401/403 for bad ones on B and C), and afterwards that the filter's
counters agree with the scenario (hits vs misses, host verification).
Results: bench/RESULTS.md (a full run), or target/bench/RESULTS-quick.md.

Environment:
  BENCH_QUICK=1          1 round of 2 s, 3,000 tokens (for iterating)
  BENCH_MAX_OTHER_CORES  a round in which other processes took more CPU than
                         this (default 0.15 cores) is repeated and left out
                         of the medians (up to ROUNDS extra rounds)
  BENCH_ROUNDS, BENCH_SECONDS, BENCH_WARMUP, BENCH_TOKEN_COUNT,
  BENCH_CONNECTIONS      override the defaults (7, 8, 5, 30000, 32)
  BENCH_PIN=0            do not pin Envoy and wrk to separate cores
  BENCH_BASELINE_WASM=<file>   adds listener D: the same policy in another
                         build of the filter (e.g. before a change), in the
                         same Envoy run; its VM has its own vm_id, but custom
                         metrics are process-wide, so the filter's counters
                         then add up C and D
  BENCH_RESULTS=<path>   where to write the report
  ENVOY_BIN, JWT_POLICY_WASM   (the Makefile exports both)
"""

import ctypes
import datetime
import hashlib
import http.client
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the work tree
sys.path.insert(0, os.path.join(ROOT, "testkit"))
import kit  # noqa: E402  (the test kit's Envoy launcher and minting)

OUT = os.path.join(ROOT, "target", "bench")
QUICK = os.environ.get("BENCH_QUICK") == "1"


def env_int(name, full, quick):
    return int(os.environ.get(name) or (quick if QUICK else full))


ROUNDS = env_int("BENCH_ROUNDS", 7, 1)
SECONDS = env_int("BENCH_SECONDS", 8, 2)
WARMUP = env_int("BENCH_WARMUP", 5, 1)
TOKEN_COUNT = env_int("BENCH_TOKEN_COUNT", 30000, 3000)
CONNECTIONS = env_int("BENCH_CONNECTIONS", 32, 32)
# A round during which other processes took more than this much CPU is
# repeated (up to ROUNDS extra rounds) and left out of the medians.
MAX_OTHER_CORES = float(os.environ.get("BENCH_MAX_OTHER_CORES") or 0.15)
PIN = os.environ.get("BENCH_PIN", "1") != "0" and (os.cpu_count() or 1) >= 2
RESULTS = os.environ.get("BENCH_RESULTS") or (
    os.path.join(OUT, "RESULTS-quick.md") if QUICK else os.path.join(HERE, "RESULTS.md")
)
ENVOY = os.environ.get("ENVOY_BIN") or os.path.join(ROOT, ".venv", "envoy")
WASM = os.environ.get("JWT_POLICY_WASM") or os.path.join(
    ROOT, "target", "wasm32-wasip1", "release", "jwt_policy.wasm"
)
BASELINE = os.environ.get("BENCH_BASELINE_WASM") or None
PATH = "/api/v1/order"
LISTENERS = ["a_plain", "b_native", "c_wasm"] + (["d_base"] if BASELINE else [])
LABEL = {
    "a_plain": "A no auth",
    "b_native": "B native jwt_authn+RBAC",
    "c_wasm": "C jwt_policy wasm",
    "d_base": "D baseline wasm",
}
ENVOY_CPU, WRK_CPU = "0", "1"
GAUGE = "wasmcustom.jwt_policy.vm_memory_bytes"
MIB = 1024 * 1024


def log(msg):
    print(f"bench: {msg}", flush=True)


def fail(msg):
    print(f"bench: FAILED: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def die_with_parent():
    """SIGTERM when the parent goes (bench/run.sh runs this driver in a
    session of its own, out of reach of the terminal's Ctrl-C)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# ---------------------------------------------------------------- machine


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def busy_others(n=6, exclude=()):
    """The processes using CPU now, other than this bench's own."""
    out = sh(["ps", "-eo", "pid,ni,pcpu,etime,args", "--sort=-pcpu"]).splitlines()
    mine = {str(os.getpid())} | {str(p) for p in exclude}
    rows = []
    for line in out[1:]:
        parts = line.split(None, 4)
        if len(parts) < 5 or parts[0] in mine:
            continue
        if float(parts[2]) < 5.0:
            continue
        rows.append(f"pid {parts[0]} nice {parts[1]} {parts[2]}% cpu (up {parts[3]}): {parts[4][:110]}")
        if len(rows) >= n:
            break
    return rows


def proc_stat():
    """(process time, niced, stolen) jiffies of all CPUs: user + nice +
    system is what processes ran (interrupts and steal are apart); steal is
    time the hypervisor gave this VM's CPUs to someone else."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (v + [0] * 8)[:8]
    return user + nice + system, nice, steal


def proc_cpu(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    s = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime + s.ru_utime + s.ru_stime


# ---------------------------------------------------------------- envoy


class tokgen:
    """Keys and tokens, minted fresh on every run by the test kit
    (`testkit mint`). One RSA-2048 key (kid `bench-rsa-1`) signs
    Cognito-shaped client-credentials access tokens (RS256, header exactly
    {"kid","alg"} as Cognito writes it), in `out_dir`:

      tokens.txt      N distinct valid tokens, one a line (scenario 2:
                      rotating; each has its own `jti`, so both caches key
                      them apart)
      bad.json        tokens each listener must refuse (sanity checks)
    """

    KID = "bench-rsa-1"
    ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_BenchPool1"
    CLIENT_ID = "4bench0client0id0000000000"
    SCOPE = "order/post.order"

    @staticmethod
    def claims(now, **over):
        c = {
            "sub": tokgen.CLIENT_ID, "token_use": "access", "scope": tokgen.SCOPE, "auth_time": now,
            "iss": tokgen.ISSUER, "exp": now + 6 * 3600, "iat": now, "version": 2,
            "jti": str(uuid.uuid4()), "client_id": tokgen.CLIENT_ID,
        }
        c.update(over)
        return c

    @staticmethod
    def generate(out_dir, count):
        os.makedirs(out_dir, exist_ok=True)
        started = time.time()
        now = int(started)
        claims = tokgen.claims
        main = {"key": "main", "claims": claims(now)}
        bad = {
            # name: (token spec, what it tests)
            "bad signature": dict(main, corrupt_signature=True),
            "other key, same kid": {"key": "other", "claims": claims(now)},
            "expired": {"key": "main", "claims": claims(now, exp=now - 3600, iat=now - 7200)},
            "wrong issuer": {"key": "main", "claims": claims(now, iss=tokgen.ISSUER + "x")},
            "wrong client_id": {"key": "main", "claims": claims(now, client_id="other-client", sub="other-client")},
            "wrong token_use (id)": {"key": "main", "claims": claims(now, token_use="id")},
            "missing scope": {"key": "main", "claims": claims(now, scope="order/get.order")},
            "scope prefix only": {"key": "main", "claims": claims(now, scope="order/post.orders")},
        }
        tokens_path = os.path.join(out_dir, "tokens.txt")
        minted = kit.mint({
            "keys": {
                "main": {"alg": "RS256", "kid": tokgen.KID},
                "other": {"alg": "RS256", "kid": tokgen.KID, "publish": False},
            },
            "tokens": dict(bad, valid=main),
            "batches": [{"key": "main", "claims": claims(now), "count": count, "out": tokens_path}],
        })
        tokens = minted["tokens"]
        with open(tokens_path) as f:
            assert len(set(f.read().split())) == count, "tokens must be distinct"
        with open(os.path.join(out_dir, "bad.json"), "w") as f:
            json.dump(dict({"no token": None}, **{name: tokens[name] for name in bad}), f, indent=1)
        return {
            "jwks": minted["jwks"],
            "token": tokens["valid"],
            "count": count,
            "token_bytes": len(tokens["valid"]),
            "seconds": time.time() - started,
        }


class Envoy:
    """Envoy started by the test kit (`testkit envoy`: ports and readiness
    as in the Rust tests); its log, stdout and files go to `workdir`."""

    def __init__(self, config_path, workdir, concurrency=1, pin=None):
        self.dir = workdir
        pin = PIN if pin is None else pin
        self.out = open(os.path.join(workdir, "envoy.stdout"), "w")
        try:
            self.proc, info = kit.start_envoy(
                config_path, dir=workdir, concurrency=concurrency, log_level="warning", component_log_level="",
                prefix=["taskset", "-c", ENVOY_CPU] if pin else [],
                stderr=self.out, preexec_fn=die_with_parent,
            )
        except RuntimeError as e:
            fail(f"{e}:\n{self.log_tail()}")
        self.pid = info["pid"]
        self.admin_port = info["admin_port"]
        self.ports = info["listeners"]
        self.cmd = info["argv"]

    def log_tail(self, n=40):
        text = ""
        for name in ("envoy.log", "stdout.log", "envoy.stdout"):
            p = os.path.join(self.dir, name)
            if os.path.exists(p):
                text += open(p, errors="replace").read()
        return "\n".join(text.splitlines()[-n:])

    def admin(self, path, method="GET"):
        c = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=10)
        try:
            c.request(method, path)
            r = c.getresponse()
            return r.status, r.read().decode(errors="replace")
        finally:
            c.close()

    def stats(self):
        time.sleep(0.3)  # the filter hands its request counters to Envoy every 100 ms
        out = {}
        for line in self.admin("/stats")[1].splitlines():
            name, sep, value = line.rpartition(": ")
            if sep and value.strip().isdigit():
                out[name] = int(value)
        return out

    def worker_pid(self):
        return self.pid

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()


def get(port, token=None, path=PATH):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


# ---------------------------------------------------------------- wrk


def wrk(port, scenario, seconds, files):
    env = dict(os.environ)
    env.pop("BENCH_TOKEN", None)
    env.pop("BENCH_TOKENS", None)
    if scenario == "repeated":
        env["BENCH_TOKEN"] = files["token"]
    else:
        env["BENCH_TOKENS"] = files["tokens_path"]
    env["BENCH_PATH"] = PATH
    cmd = [
        "wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "5s",
        "-s", os.path.join(HERE, "wrk.lua"), f"http://127.0.0.1:{port}{PATH}",
    ]
    if PIN:
        cmd = ["taskset", "-c", WRK_CPU] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, preexec_fn=die_with_parent)
    line = next((l for l in p.stdout.splitlines() if l.startswith("BENCH_JSON ")), None)
    if p.returncode != 0 or line is None:
        fail(f"wrk failed ({p.returncode}): {p.stdout}\n{p.stderr}")
    r = json.loads(line[len("BENCH_JSON "):])
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


# ---------------------------------------------------------------- report helpers


def ms(us):
    return f"{us / 1000:.2f}"


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def pct(x):
    return f"{x * 100:+.1f}%"


AUTOGROUP_NICE = os.environ.get("BENCH_AUTOGROUP_NICE", "-15")
autogroup_note = "not changed"


def raise_autogroup():
    """Give this bench's session priority over other sessions' CPU hogs.

    With sched_autogroup_enabled, CFS first shares a core between sessions
    and only then applies nice inside each: a job under `nice -n 19` in
    another session still gets half a core against Envoy's worker. bench/run.sh
    starts this driver in a session of its own (setsid), so lowering the
    session's autogroup nice affects only the bench's processes. A no-op on a
    quiet machine.
    """
    global autogroup_note
    path = "/proc/self/autogroup"
    if AUTOGROUP_NICE in ("", "0") or not os.path.exists(path):
        return
    try:
        if os.getsid(0) != os.getpid():
            autogroup_note = "not changed (not a session leader: run through bench/run.sh)"
            return
        with open(path, "w") as f:
            f.write(AUTOGROUP_NICE)
        autogroup_note = open(path).read().strip() + " (this bench's session; BENCH_AUTOGROUP_NICE)"
    except OSError as e:
        autogroup_note = f"not changed ({e.strerror})"


def main():
    die_with_parent()
    # SIGTERM (parent gone, or kill) unwinds like Ctrl-C, so Envoy is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    os.makedirs(OUT, exist_ok=True)
    raise_autogroup()
    for tool in (["wrk"] + (["taskset"] if PIN else [])):
        if not shutil.which(tool):
            fail(f"{tool} not found (bench/run.sh installs it)")
    if not os.path.exists(ENVOY):
        fail(f"Envoy not found at {ENVOY} (make setup)")
    if not os.path.exists(WASM):
        fail(f"filter not found at {WASM} (make wasm)")

    started = datetime.datetime.now(datetime.timezone.utc)
    load_start = os.getloadavg()
    others_start = busy_others()
    log(f"load average {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}")
    for row in others_start:
        log(f"busy: {row}")
    if others_start:
        log("WARNING: the machine is not quiet; the numbers will be low and noisy (see RESULTS.md)")
    log(
        f"{'QUICK ' if QUICK else ''}{ROUNDS} round(s) x {SECONDS} s, warm-up {WARMUP} s, "
        f"{TOKEN_COUNT} rotating tokens, {CONNECTIONS} connections, "
        f"{'Envoy on CPU ' + ENVOY_CPU + ', wrk on CPU ' + WRK_CPU if PIN else 'not pinned'}"
    )

    # Tokens and keys, fresh.
    tokdir = os.path.join(OUT, "tokens")
    info = tokgen.generate(tokdir, TOKEN_COUNT)
    log(f"minted {info['count']} RS256 tokens ({info['token_bytes']} bytes each) in {info['seconds']:.1f} s")
    files = {
        "token": info["token"],
        "tokens_path": os.path.join(tokdir, "tokens.txt"),
    }
    rotating = open(files["tokens_path"]).read().split()
    bad = json.load(open(os.path.join(tokdir, "bad.json")))

    # The Envoy configuration.
    plugin = {
        "token_cache": {"max_entries": 1000},
        "providers": {
            "cognito": {
                "issuer": tokgen.ISSUER,
                "audiences": [tokgen.CLIENT_ID],
                "token_use": "access",
                "algorithms": ["RS256"],
                "local_jwks": info["jwks"],
                "clock_skew_s": 60,
            }
        },
        "rules": [
            {"name": "orders", "match": {"prefix": "/"}, "requires": {"provider": "cognito", "scopes": [tokgen.SCOPE]}}
        ],
        "unmatched": "deny",
    }
    scope_regex = "(^|.* )" + re.escape(tokgen.SCOPE) + "( .*|$)"
    template = open(os.path.join(HERE, "envoy-bench.yaml")).read()
    config = (
        template.replace("{{ISSUER}}", json.dumps(tokgen.ISSUER))
        .replace("{{JWKS}}", json.dumps(json.dumps(info["jwks"])))
        .replace("{{CLIENT_ID}}", json.dumps(tokgen.CLIENT_ID))
        .replace("{{SCOPE_REGEX}}", json.dumps(scope_regex))
        .replace("{{WASM}}", json.dumps(os.path.abspath(WASM)))
        .replace("{{PLUGIN_CONFIG}}", json.dumps(json.dumps(plugin)))
    )
    if BASELINE:
        # Listener D: a copy of C (the last listener) with another build.
        block = config[config.index("  - name: c_wasm"):]
        config += "\n" + (
            block.replace("c_wasm", "d_base")
            .replace("name: jwt_policy\n", "name: jwt_policy_base\n")
            .replace("vm_id: jwt_policy\n", "vm_id: jwt_policy_base\n")
            .replace(json.dumps(os.path.abspath(WASM)), json.dumps(os.path.abspath(BASELINE)))
        )
    if re.search(r"\{\{[A-Z_]+\}\}", config):
        fail("unfilled placeholder in envoy-bench.yaml")
    config_path = os.path.join(OUT, "envoy-bench.yaml")
    with open(config_path, "w") as f:
        f.write(config)

    envoy = Envoy(config_path, OUT)
    try:
        return run(envoy, info, files, rotating, bad, started, load_start, others_start)
    finally:
        envoy.stop()


def run(envoy, info, files, rotating, bad, started, load_start, others_start):
    ports = envoy.ports
    log(f"Envoy up: {ports}, admin {envoy.admin_port}")

    # ------------------------------------------------------------ sanity
    sanity = []  # (case, {listener: status})
    problems = []

    def check(case, token, want):
        row = {}
        for name in LISTENERS:
            status = get(ports[name], token)
            row[name] = status
            ok = want[name](status)
            if not ok:
                problems.append(f"{name} answered {status} to '{case}'")
        sanity.append((case, row))

    ok200 = lambda s: s == 200  # noqa: E731
    denied = lambda s: s in (401, 403)  # noqa: E731
    check("valid token (scenario 1)", info["token"], {n: ok200 for n in LISTENERS})
    for case, token in bad.items():
        check(case, token, {n: ok200 if n == "a_plain" else denied for n in LISTENERS})
    sample = [rotating[i] for i in range(0, len(rotating), max(1, len(rotating) // 20))]
    rot_ok = {n: sum(get(ports[n], t) == 200 for t in sample) for n in LISTENERS}
    for n in LISTENERS:
        if rot_ok[n] != len(sample):  # A answers 200 to anything
            problems.append(f"{n}: only {rot_ok[n]}/{len(sample)} rotating tokens accepted")
    if problems:
        for case, row in sanity:
            log(f"{case:28} " + " ".join(f"{n}={row[n]}" for n in LISTENERS))
        fail("sanity checks: " + "; ".join(problems))
    log(f"sanity: {len(sanity)} cases as expected; {len(sample)} rotating tokens accepted by all three")

    # ------------------------------------------------------------ measure
    results = {s: {n: [] for n in LISTENERS} for s in ("repeated", "rotating")}
    memory = []  # (when, c requests, gauge, envoy heap)
    scenario_stats = {}
    foreign = []  # per run: CPU seconds used by others

    def snapshot(when):
        time.sleep(2.5)  # the gauge is raised on the filter's 1 s tick
        st = envoy.stats()
        memory.append(
            (when, st.get("http.c_wasm.downstream_rq_total", 0), st.get(GAUGE, 0),
             st.get("server.memory_allocated", 0))
        )
        log(f"memory {when}: vm {st.get(GAUGE, 0)} B after {memory[-1][1]} requests to C")

    def measured(port, scenario, seconds):
        b0, n0, s0 = proc_stat()
        e0, c0 = proc_cpu(envoy.worker_pid()), children_cpu()
        t0 = time.time()
        r = wrk(port, scenario, seconds, files)
        wall = time.time() - t0
        b1, n1, s1 = proc_stat()
        e1, c1 = proc_cpu(envoy.worker_pid()), children_cpu()
        hz = os.sysconf("SC_CLK_TCK")
        others = (b1 - b0) / hz - (e1 - e0) / hz - (c1 - c0)
        foreign.append(max(0.0, others) / wall)
        r["other_cores"] = foreign[-1]
        r["niced_cores"] = (n1 - n0) / hz / wall
        r["steal_cores"] = (s1 - s0) / hz / wall
        r["envoy_us"] = (e1 - e0) / hz / max(1, r["requests"]) * 1e6
        return r

    for scenario in ("repeated", "rotating"):
        log(f"scenario {scenario}: warm-up {WARMUP} s per listener")
        for name in LISTENERS:
            wrk(ports[name], scenario, WARMUP, files)
        if scenario == "repeated":
            snapshot("after warm-up (repeated token)")
        before = envoy.stats()
        rnd = good = 0
        while good < ROUNDS and rnd < 2 * ROUNDS:
            rnd += 1
            runs = []
            for name in LISTENERS:
                r = measured(ports[name], scenario, SECONDS)
                r["round"] = rnd
                runs.append(r)
                results[scenario][name].append(r)
                bad_runs = {k: v for k, v in r["errors"].items() if v}
                log(
                    f"{scenario} round {rnd} {name:8} {r['rps']:9.0f} req/s  p50 {ms(r['latency_us']['p50'])} ms  "
                    f"p99 {ms(r['latency_us']['p99'])} ms  {('errors ' + str(bad_runs)) if bad_runs else ''}"
                )
                if r["errors"]["status"]:
                    fail(f"{name} answered {r['errors']['status']} non-2xx responses in scenario {scenario}")
            disturbed = max(r["other_cores"] for r in runs) > MAX_OTHER_CORES
            for r in runs:
                r["disturbed"] = disturbed
            if disturbed:
                log(f"{scenario} round {rnd} disturbed: other processes took "
                    f"{max(r['other_cores'] for r in runs):.2f} cores; measuring another round")
            else:
                good += 1
            if scenario == "rotating" and rnd == 1:
                snapshot("after rotating round 1 (cache full, churning)")
        after = envoy.stats()
        scenario_stats[scenario] = {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)}
        snapshot(f"after scenario {scenario}")

    # ------------------------------------------------------------ checks after
    final = envoy.stats()
    reloads = sum(v for k, v in final.items() if k.startswith("wasm.") and "vm_reload" in k)
    log_text = envoy.log_tail(100000)
    panics = [l for l in log_text.splitlines() if "panicked at" in l or "wasm trap" in l or "Uncaught" in l]
    load_end = os.getloadavg()
    others_end = busy_others(exclude=[envoy.proc.pid, envoy.pid])

    report(info, results, memory, scenario_stats, sanity, rot_ok, len(sample), foreign, reloads, panics,
           started, load_start, load_end, others_start, others_end)
    return 0


def report(info, results, memory, scenario_stats, sanity, rot_ok, nsample, foreign, reloads, panics,
           started, load_start, load_end, others_start, others_end):
    wasm_size = os.path.getsize(WASM)
    wasm_sha = hashlib.sha256(open(WASM, "rb").read()).hexdigest()[:16]
    git = sh(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", ROOT, "diff", "--quiet", "HEAD", "--", "src", "Cargo.toml", "Cargo.lock"]).returncode != 0
    envoy_version = sh([ENVOY, "--version"]).split("version:")[-1].strip()
    wrk_version = (sh(["wrk", "-v"]) or subprocess.run(["wrk", "-v"], capture_output=True, text=True).stderr).splitlines()
    wrk_version = next((l.split("Copyright")[0].strip() for l in wrk_version if l.startswith("wrk")), "wrk ?")
    rustc = sh(["rustc", "--version"])
    kernel = platform.release()
    cores = os.cpu_count()

    lines = []
    w = lines.append
    w("# `make bench` results" + (" (QUICK run: not for the record)" if QUICK else ""))
    w("")
    w(f"Run {started:%Y-%m-%d %H:%M} UTC. Written by `bench/bench.py`; regenerate with the command below.")
    w("")
    w("## Machine and versions")
    w("")
    w(f"- CPU: {cpu_model()}, {cores} cores (`nproc`), kernel {kernel}")
    w(f"- Envoy {envoy_version}, V8 runtime, `--concurrency 1`")
    w(f"- {wrk_version}; {rustc}")
    w(f"- jwt-policy git {git}{' with uncommitted changes to src/ or Cargo files' if dirty else ''}; "
      f"`jwt_policy.wasm` {wasm_size} bytes ({wasm_size / MIB:.3f} MiB), sha256 {wasm_sha}…")
    w(f"- Pinning: {'Envoy (all threads) on CPU ' + ENVOY_CPU + ', wrk on CPU ' + WRK_CPU + ' (`taskset`)' if PIN else 'none'}")
    w(f"- Scheduler: autogroup nice {autogroup_note}")
    w(f"- Load average at start {load_start[0]:.2f} / {load_start[1]:.2f} / {load_start[2]:.2f}, "
      f"at end {load_end[0]:.2f} / {load_end[1]:.2f} / {load_end[2]:.2f}")
    fmed = med(foreign)
    fmax = max(foreign) if foreign else 0.0
    steal = [r["steal_cores"] for sc in results for n in LISTENERS for r in results[sc][n]]
    w(f"- CPU used by other processes during the measured runs (user+nice+system time in /proc/stat less "
      f"Envoy's, wrk's and the driver's): median {fmed:.2f} cores, max {fmax:.2f} cores")
    w(f"- CPU time stolen by the hypervisor (/proc/stat `steal`, both vCPUs) during the measured runs: "
      f"median {med(steal):.2f} cores, max {max(steal):.2f} cores"
      + (" — this VM shares its host: while loaded it gets noticeably less than two full cores, and how much "
         "varies from run to run, which is most of the spread between rounds below" if med(steal) > 0.1 else ""))
    if others_start or others_end:
        w("- Other busy processes seen (ps, >5% CPU):")
        for row in dict.fromkeys(others_start + others_end):
            w(f"  - {row}")
    disturbed_rounds = sum(
        1 for sc in results for r in results[sc]["c_wasm"] if r["disturbed"]
    )
    if fmed > 0.05 or disturbed_rounds:
        autogroup = open("/proc/sys/kernel/sched_autogroup_enabled").read().strip() == "1" \
            if os.path.exists("/proc/sys/kernel/sched_autogroup_enabled") else False
        w("")
        w(f"> **Not a quiet machine**: other processes used a median {fmed:.2f} cores during the measured runs, "
          f"and {disturbed_rounds} round(s) were disturbed (over {MAX_OTHER_CORES} cores) and left out of the medians. "
          "Envoy's worker and wrk each need a whole core, so disturbed runs understate every listener; "
          "compare ratios within this run only."
          + (" The kernel groups processes by session (`sched_autogroup_enabled=1`), so a background job "
             "under `nice -n 19` in another session still gets an equal share of a core." if autogroup else ""))
        w("")
    w("")
    w("## Command")
    w("")
    w("```")
    w("make bench    # = make wasm, then bench/run.sh (installs wrk if missing) -> .venv/bin/python bench/bench.py")
    w("```")
    w("")
    w(f"{ROUNDS} undisturbed rounds x {SECONDS} s per listener per scenario (up to {ROUNDS} more when other "
      f"processes take over {MAX_OTHER_CORES} cores during a round), alternating A B C in each round, after a "
      f"{WARMUP} s warm-up of each listener per scenario; wrk `-t1 -c{CONNECTIONS}` (`bench/wrk.lua`), "
      f"GET {PATH}, HTTP/1.1 keep-alive on loopback. Scenario 2 cycles through {info['count']} distinct "
      f"valid RS256 (2048-bit) tokens of {info['token_bytes']} bytes; both caches hold 1,000 entries. "
      "Medians over the rounds; the ratio is C's median over B's. Envoy CPU µs/req: CPU time of the whole "
      "Envoy process (all threads, from /proc) per request served, a cost measure less sensitive than "
      "req/s to waiting on a busy core.")
    w("")
    w("## Results")
    w("")
    w("| scenario | listener | req/s (median) | req/s min-max | p50 ms | p99 ms | Envoy CPU µs/req | C / B req/s |")
    w("|---|---|---:|---:|---:|---:|---:|---:|")
    summary = {}
    used_note = {}
    for scenario in ("repeated", "rotating"):
        s = {}
        clean = [r for r in results[scenario]["c_wasm"] if not r["disturbed"]]
        use_all = len(clean) < min(3, ROUNDS)
        total = len(results[scenario]["c_wasm"])
        used_note[scenario] = (
            f"all {total} rounds (fewer than {min(3, ROUNDS)} undisturbed)" if use_all
            else f"the {len(clean)} undisturbed rounds of {total}"
        )
        for name in LISTENERS:
            rs = [r for r in results[scenario][name] if use_all or not r["disturbed"]]
            s[name] = {
                "rps": med([r["rps"] for r in rs]),
                "min": min(r["rps"] for r in rs),
                "max": max(r["rps"] for r in rs),
                "p50": med([r["latency_us"]["p50"] for r in rs]),
                "p99": med([r["latency_us"]["p99"] for r in rs]),
                "cpu": med([r["envoy_us"] for r in rs]),
            }
        summary[scenario] = s
        ratio = s["c_wasm"]["rps"] / s["b_native"]["rps"]
        s["ratio"] = ratio
        per_round = [
            c["rps"] / b["rps"]
            for c, b in zip(results[scenario]["c_wasm"], results[scenario]["b_native"])
            if use_all or not c["disturbed"]
        ]
        s["round_ratios"] = per_round
        title = "1 repeated token" if scenario == "repeated" else f"2 {info['count']} rotating tokens"
        for name in LISTENERS:
            x = s[name]
            cell = f"**{ratio:.2f}x**" if name == "c_wasm" else ""
            if name == "d_base":
                cell = f"{x['rps'] / s['b_native']['rps']:.2f}x (C/D {s['c_wasm']['rps'] / x['rps']:.3f})"
            w(f"| {title} | {LABEL[name]} | {x['rps']:.0f} | {x['min']:.0f}-{x['max']:.0f} | "
              f"{ms(x['p50'])} | {ms(x['p99'])} | {x['cpu']:.1f} | {cell} |")
    w("")
    for scenario in ("repeated", "rotating"):
        rr = summary[scenario]["round_ratios"]
        w(f"Medians for {scenario} over {used_note[scenario]}. Per-round C/B ratios: "
          + ", ".join(f"{r:.2f}" for r in rr) + f" (min {min(rr):.2f}, max {max(rr):.2f}).  ")
    w("")
    w("### Every run")
    w("")
    w(f"Other CPU: cores used by other processes during the run; a round where any run exceeds "
      f"{MAX_OTHER_CORES} is marked disturbed, repeated, and left out of the medians.")
    w("")
    w("| scenario | round | listener | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | Envoy CPU µs/req | other CPU (cores) | niced CPU | stolen CPU | round used |")
    w("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for scenario in ("repeated", "rotating"):
        for i in range(len(results[scenario]["c_wasm"])):
            for name in LISTENERS:
                r = results[scenario][name][i]
                l = r["latency_us"]
                w(f"| {scenario} | {r['round']} | {name} | {r['rps']:.0f} | {ms(l['p50'])} | {ms(l['p90'])} | "
                  f"{ms(l['p99'])} | {ms(l['p999'])} | {r['envoy_us']:.1f} | {r['other_cores']:.2f} | "
                  f"{r['niced_cores']:.2f} | {r['steal_cores']:.2f} | {'no (disturbed)' if r['disturbed'] else 'yes'} |")
    w("")

    # Targets.
    rep, rot = summary["repeated"], summary["rotating"]
    mem_after_fill = next((m for m in memory if m[0].startswith("after rotating round 1")), memory[-1])
    mem_end = memory[-1]
    mem_100k = next((m for m in memory if m[1] >= 100_000), mem_end)
    flat = mem_end[2] == mem_after_fill[2]
    p99_c, p99_b = rep["c_wasm"]["p99"], rep["b_native"]["p99"]
    targets = [
        ("Repeated token: throughput >= 1.0x native", rep["ratio"] >= 1.0,
         f"{rep['ratio']:.2f}x ({pct(rep['ratio'] - 1.0)} against 1.0x)"),
        ("Repeated token: p99 no worse than native", p99_c <= p99_b,
         f"C {ms(p99_c)} ms vs B {ms(p99_b)} ms ({pct(p99_c / p99_b - 1.0)})"),
        ("Rotating tokens (misses): throughput >= 0.9x native", rot["ratio"] >= 0.9,
         f"{rot['ratio']:.2f}x ({pct(rot['ratio'] / 0.9 - 1.0)} against 0.9x)"),
        (".wasm <= 1 MiB", wasm_size <= MIB,
         f"{wasm_size} bytes = {wasm_size / MIB:.3f} MiB ({MIB - wasm_size} bytes to spare)"
         if wasm_size <= MIB else f"{wasm_size} bytes, {wasm_size - MIB} over"),
        ("Memory per VM bounded and flat", flat,
         f"{mem_after_fill[2]} B once the cache was full, {mem_end[2]} B at the end"),
    ]
    w("## Targets")
    w("")
    w("| target | met? | by how much |")
    w("|---|---|---|")
    for name, ok, how in targets:
        w(f"| {name} | {'met' if ok else '**missed**'} | {how} |")
    w("")

    w("## Memory (the filter's gauge `wasmcustom.jwt_policy.vm_memory_bytes`: largest VM's linear memory)")
    w("")
    w("| when | requests to C so far | VM linear memory | Envoy heap (`server.memory_allocated`) |")
    w("|---|---:|---:|---:|")
    for when, reqs, vm, heap in memory:
        w(f"| {when} | {reqs} | {vm} B ({vm / MIB:.2f} MiB) | {heap / MIB:.1f} MiB |")
    w("")
    w(f"After warm-up {memory[0][2]} B; after 100k requests ({mem_100k[1]} at that snapshot) {mem_100k[2]} B; "
      f"at the end {mem_end[2]} B.")
    w("")

    w("## Sanity checks")
    w("")
    w("Before measuring, each listener got each token once (status codes):")
    w("")
    w("| token | " + " | ".join(n[0].upper() for n in LISTENERS) + " |")
    w("|---|" + "---:|" * len(LISTENERS))
    for case, row in sanity:
        w(f"| {case} | " + " | ".join(str(row[n]) for n in LISTENERS) + " |")
    w("")
    w(f"And {nsample} of the rotating tokens, evenly spaced: accepted by "
      + ", ".join(f"{n[0].upper()} {rot_ok[n]}" for n in LISTENERS)
      + f" of {nsample}. Every measured run had 0 non-2xx answers (the run is refused otherwise).")
    if BASELINE:
        w("")
        w(f"Listener D runs {os.path.relpath(BASELINE, ROOT)}: the filter counters below add up C and D.")
    w("")
    w("Counters over the measured rounds of each scenario (deltas; warm-up excluded):")
    w("")
    keys = [
        ("c_wasm: wasmcustom.jwt_policy.token_cache.hit", "wasmcustom.jwt_policy.token_cache.hit"),
        ("c_wasm: wasmcustom.jwt_policy.token_cache.miss", "wasmcustom.jwt_policy.token_cache.miss"),
        ("c_wasm: wasmcustom.jwt_policy.verify.host", "wasmcustom.jwt_policy.verify.host"),
        ("c_wasm: wasmcustom.jwt_policy.verify.pure", "wasmcustom.jwt_policy.verify.pure"),
        ("c_wasm: wasmcustom.jwt_policy.allowed", "wasmcustom.jwt_policy.allowed"),
        ("c_wasm: http.c_wasm.downstream_rq_2xx", "http.c_wasm.downstream_rq_2xx"),
        ("c_wasm: http.c_wasm.downstream_rq_4xx", "http.c_wasm.downstream_rq_4xx"),
        ("b_native: http.b_native.jwt_authn.allowed", "http.b_native.jwt_authn.allowed"),
        ("b_native: http.b_native.jwt_authn.jwt_cache_hit", "http.b_native.jwt_authn.jwt_cache_hit"),
        ("b_native: http.b_native.jwt_authn.jwt_cache_miss", "http.b_native.jwt_authn.jwt_cache_miss"),
        ("b_native: http.b_native.rbac.allowed", "http.b_native.rbac.allowed"),
        ("b_native: http.b_native.downstream_rq_2xx", "http.b_native.downstream_rq_2xx"),
        ("b_native: http.b_native.downstream_rq_4xx", "http.b_native.downstream_rq_4xx"),
    ]
    w("| counter | repeated | rotating |")
    w("|---|---:|---:|")
    for label, key in keys:
        w(f"| `{label}` | {scenario_stats['repeated'].get(key, 0)} | {scenario_stats['rotating'].get(key, 0)} |")
    denied = {
        s: sum(v for k, v in scenario_stats[s].items() if k.startswith("wasmcustom.jwt_policy.denied."))
        for s in scenario_stats
    }
    w(f"| `c_wasm: wasmcustom.jwt_policy.denied.*` (sum) | {denied['repeated']} | {denied['rotating']} |")
    w("")
    rs = scenario_stats["rotating"]
    hit, miss = rs.get("wasmcustom.jwt_policy.token_cache.hit", 0), rs.get("wasmcustom.jwt_policy.token_cache.miss", 0)
    w(f"Scenario 2 hit rate in the filter: {hit / max(1, hit + miss) * 100:.2f}% "
      f"({hit} hits, {miss} misses); every miss verified through the host: "
      f"{rs.get('wasmcustom.jwt_policy.verify.host', 0)} host, {rs.get('wasmcustom.jwt_policy.verify.pure', 0)} pure-Rust.")
    w(f"VM reloads after a wasm failure: {reloads}; wasm panics or traps in the Envoy log: {len(panics)}.")
    w("")
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        f.write(text)
    log(f"wrote {os.path.relpath(RESULTS, ROOT)}")
    print()
    for scenario in ("repeated", "rotating"):
        s = summary[scenario]
        for name in LISTENERS:
            print(f"{scenario:9} {LABEL[name]:26} {s[name]['rps']:9.0f} req/s  p50 {ms(s[name]['p50'])} ms  p99 {ms(s[name]['p99'])} ms")
        print(f"{scenario:9} C/B = {s['ratio']:.2f}x")
    for name, ok, how in targets:
        print(f"{'met   ' if ok else 'MISSED'} {name}: {how}")


if __name__ == "__main__":
    sys.exit(main())
