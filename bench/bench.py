#!/usr/bin/env python3
"""`make bench`: the jwt_policy wasm filter against Envoy's native jwt_authn,
and against the proxy-wasm floors.

One Envoy (`--concurrency 1`, one worker) with listeners on direct responses
(bench/envoy-bench.yaml): A no auth, B jwt_authn + RBAC, C this filter, with
the same policy on B and C (keys fetched from a JWKS URL the same Envoy
serves), F1 the filter with one allow_anonymous rule (our floor) and F0
bench/floor, an empty proxy-wasm filter (the runtime's floor). wrk drives
them from this machine, alternating listeners per round, in two scenarios:

  repeated   one token on every request (the client-credentials pattern)
  rotating   N distinct valid RS256 tokens in a cycle, N far above both
             caches' 1,000 entries: every request misses and is verified

then the same on a second Envoy with `--concurrency 2`, nothing pinned and
wrk with two threads (both cores busy: per-worker caches, one shared JWKS
record).

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
  BENCH_CONNECTIONS      override the defaults (6, 8, 4, 30000, 32)
  BENCH_SCALE=0          skip the two-worker run; BENCH_SCALE_ROUNDS (4),
                         BENCH_SCALE_CONNECTIONS (64) tune it
  BENCH_PROBES=1         price each kind of hostcall instead (repeated token
                         only): a floor listener per kind making
                         BENCH_PROBE_N (20) calls per request, against F0;
                         writes target/bench/PROBES.md (bench/PROFILE.md)
  BENCH_PIN=0            do not pin Envoy and wrk to separate cores
  BENCH_BASELINE_WASM=<file>   adds listener D: the same policy in another
                         build of the filter (e.g. before a change), in the
                         same Envoy run; its VM has its own vm_id, but custom
                         metrics are process-wide, so the filter's counters
                         then add up C and D
  BENCH_FLOOR_WASM=<file>      the floor module (default: what `make
                         bench-floor` builds in target/floor)
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
import socket
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


ROUNDS = env_int("BENCH_ROUNDS", 6, 1)
SECONDS = env_int("BENCH_SECONDS", 8, 2)
WARMUP = env_int("BENCH_WARMUP", 4, 1)
TOKEN_COUNT = env_int("BENCH_TOKEN_COUNT", 30000, 3000)
CONNECTIONS = env_int("BENCH_CONNECTIONS", 32, 32)
# The scale scenarios: a second Envoy with two workers, unpinned, wrk with
# two threads: both cores busy.
SCALE = os.environ.get("BENCH_SCALE", "1") != "0"
SCALE_ROUNDS = env_int("BENCH_SCALE_ROUNDS", 4, 1)
SCALE_CONNECTIONS = env_int("BENCH_SCALE_CONNECTIONS", 64, 64)
# Probe mode (bench/PROFILE.md): the floor filter making N hostcalls of one
# kind per request, one listener per kind, against F0 (repeated token only).
PROBES = os.environ.get("BENCH_PROBES") == "1"
PROBE_N = env_int("BENCH_PROBE_N", 20, 20)
PROBE_KINDS = [
    "clock", "header_pairs", "header", "header_absent", "replace", "remove", "remove_add",
    "shared_get", "property", "set_property", "metric", "log_level",
]
# A round during which other processes took more than this much CPU is
# repeated (up to ROUNDS extra rounds) and left out of the medians.
MAX_OTHER_CORES = float(os.environ.get("BENCH_MAX_OTHER_CORES") or 0.15)
PIN = os.environ.get("BENCH_PIN", "1") != "0" and (os.cpu_count() or 1) >= 2
RESULTS = os.environ.get("BENCH_RESULTS") or (
    os.path.join(OUT, "PROBES.md") if PROBES
    else os.path.join(OUT, "RESULTS-quick.md") if QUICK else os.path.join(HERE, "RESULTS.md")
)
ENVOY = os.environ.get("ENVOY_BIN") or os.path.join(ROOT, ".venv", "envoy")
WASM = os.environ.get("JWT_POLICY_WASM") or os.path.join(
    ROOT, "target", "wasm32-wasip1", "release", "jwt_policy.wasm"
)
# The runtime's floor: bench/floor, built by `make bench`.
FLOOR_WASM = os.environ.get("BENCH_FLOOR_WASM") or os.path.join(
    ROOT, "target", "floor", "wasm32-wasip1", "release", "bench_floor.wasm"
)
BASELINE = os.environ.get("BENCH_BASELINE_WASM") or None
PATH = "/api/v1/order"
SCENARIOS = ("repeated",) if PROBES else ("repeated", "rotating")
LISTENERS = (
    ["a_plain", "b_native", "c_wasm", "f1_anon", "f0_floor"]
    + (["d_base"] if BASELINE else [])
    + ([f"p_{k}" for k in PROBE_KINDS] if PROBES else [])
)
SCALE_LISTENERS = ["a_plain", "b_native", "c_wasm", "f1_anon"]
# Listeners that let every request through (no auth, or anonymous).
OPEN = {"a_plain", "f1_anon", "f0_floor"} | {f"p_{k}" for k in PROBE_KINDS}
LABEL = {
    "a_plain": "A no auth",
    "b_native": "B native jwt_authn+RBAC",
    "c_wasm": "C jwt_policy wasm",
    "f1_anon": "F1 jwt_policy, one allow_anonymous rule",
    "f0_floor": "F0 empty proxy-wasm filter",
    "d_base": "D baseline wasm",
    **{f"p_{k}": f"probe {k} x{PROBE_N}" for k in PROBE_KINDS},
}
SHORT = {"a_plain": "A", "b_native": "B", "c_wasm": "C", "f1_anon": "F1", "f0_floor": "F0", "d_base": "D",
         **{f"p_{k}": k for k in PROBE_KINDS}}
# The target the wasm may not outgrow (also tests/wasm_size.rs).
MAX_WASM_BYTES = 1024 * 1024
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


def wrk(port, scenario, seconds, files, threads=1, connections=None, pin=None):
    connections = connections or CONNECTIONS
    pin = PIN if pin is None else pin
    env = dict(os.environ)
    env.pop("BENCH_TOKEN", None)
    env.pop("BENCH_TOKENS", None)
    if scenario == "repeated":
        env["BENCH_TOKEN"] = files["token"]
    else:
        env["BENCH_TOKENS"] = files["tokens_path"]
    env["BENCH_PATH"] = PATH
    cmd = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
        "-s", os.path.join(HERE, "wrk.lua"), f"http://127.0.0.1:{port}{PATH}",
    ]
    if pin:
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
    if not os.path.exists(FLOOR_WASM):
        fail(f"floor filter not found at {FLOOR_WASM} (make bench-floor)")

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

    # The Envoy configuration. B and C get their keys the way they are
    # deployed against Cognito: fetched from a JWKS URL (served by a
    # listener of the same Envoy), so C pays what remote keys cost per
    # request, whatever that is.
    jwks_port = free_port()
    jwks_uri = f"http://127.0.0.1:{jwks_port}/.well-known/jwks.json"
    plugin = {
        "token_cache": {"max_entries": 1000},
        "providers": {
            "cognito": {
                "issuer": tokgen.ISSUER,
                "audiences": [tokgen.CLIENT_ID],
                "token_use": "access",
                "algorithms": ["RS256"],
                "remote_jwks": {"cluster": "jwks", "uri": jwks_uri},
                "clock_skew_s": 60,
            }
        },
        "rules": [
            {"name": "orders", "match": {"prefix": "/"}, "requires": {"provider": "cognito", "scopes": [tokgen.SCOPE]}}
        ],
        "unmatched": "deny",
    }
    anonymous = {"providers": {}, "rules": [{"name": "open", "match": {"prefix": "/"}, "allow_anonymous": True}]}
    scope_regex = "(^|.* )" + re.escape(tokgen.SCOPE) + "( .*|$)"
    template = open(os.path.join(HERE, "envoy-bench.yaml")).read()
    # The other wasm listeners are copies of C with another name, VM, module
    # or plugin configuration.
    start, end = template.index("  - name: c_wasm"), template.index("  # end of c_wasm")
    c_block = template[start:end]

    def wasm_listener(name, vm, wasm, plugin_config):
        return (
            c_block.replace("c_wasm", name)
            .replace("name: jwt_policy\n", f"name: {vm}\n")
            .replace("vm_id: jwt_policy\n", f"vm_id: {vm}\n")
            .replace("{{WASM}}", json.dumps(os.path.abspath(wasm)))
            .replace("{{PLUGIN_CONFIG}}", json.dumps(plugin_config))
        )

    extra = [
        wasm_listener("f1_anon", "jwt_policy_anon", WASM, json.dumps(anonymous)),
        wasm_listener("f0_floor", "bench_floor", FLOOR_WASM, "nop"),
    ]
    if BASELINE:
        extra.append(wasm_listener("d_base", "jwt_policy_base", BASELINE, json.dumps(plugin)))
    if PROBES:
        for kind in PROBE_KINDS:
            extra.append(wasm_listener(f"p_{kind}", f"bench_floor_{kind}", FLOOR_WASM, f"{kind}:{PROBE_N}"))
    template = template[:end] + "".join(extra) + template[end:]
    config = (
        template.replace("{{ISSUER}}", json.dumps(tokgen.ISSUER))
        .replace("{{JWKS}}", json.dumps(json.dumps(info["jwks"])))
        .replace("{{JWKS_URI}}", json.dumps(jwks_uri))
        .replace("{{JWKS_PORT}}", str(jwks_port))
        .replace("{{CLIENT_ID}}", json.dumps(tokgen.CLIENT_ID))
        .replace("{{SCOPE_REGEX}}", json.dumps(scope_regex))
        .replace("{{WASM}}", json.dumps(os.path.abspath(WASM)))
        .replace("{{PLUGIN_CONFIG}}", json.dumps(json.dumps(plugin)))
    )
    if re.search(r"\{\{[A-Z_]+\}\}", config):
        fail("unfilled placeholder in envoy-bench.yaml")
    config_path = os.path.join(OUT, "envoy-bench.yaml")
    with open(config_path, "w") as f:
        f.write(config)

    envoy = Envoy(config_path, OUT)
    try:
        main_run = run(envoy, info, files, rotating, bad)
    finally:
        envoy.stop()
    scale = None
    if SCALE and not PROBES:
        # Both cores: two Envoy workers (each with its own VMs and token
        # caches, one shared JWKS record), wrk with two threads, nothing
        # pinned.
        scale_dir = os.path.join(OUT, "scale")
        os.makedirs(scale_dir, exist_ok=True)
        envoy = Envoy(config_path, scale_dir, concurrency=2, pin=False)
        try:
            scale = run_scale(envoy, files)
        finally:
            envoy.stop()
    load_end = os.getloadavg()
    others_end = busy_others()
    report(info, main_run, scale, started, load_start, load_end, others_start, others_end)
    return 0


def free_port():
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def measured(envoy, port, scenario, seconds, files, **wrk_opts):
    """One wrk run, with the CPU Envoy and everything else used meanwhile."""
    b0, n0, s0 = proc_stat()
    e0, c0 = proc_cpu(envoy.worker_pid()), children_cpu()
    t0 = time.time()
    r = wrk(port, scenario, seconds, files, **wrk_opts)
    wall = time.time() - t0
    b1, n1, s1 = proc_stat()
    e1, c1 = proc_cpu(envoy.worker_pid()), children_cpu()
    hz = os.sysconf("SC_CLK_TCK")
    others = (b1 - b0) / hz - (e1 - e0) / hz - (c1 - c0)
    r["other_cores"] = max(0.0, others) / wall
    r["niced_cores"] = (n1 - n0) / hz / wall
    r["steal_cores"] = (s1 - s0) / hz / wall
    r["envoy_us"] = (e1 - e0) / hz / max(1, r["requests"]) * 1e6
    r["envoy_cores"] = (e1 - e0) / hz / wall
    return r


def measure_scenario(envoy, listeners, scenario, rounds, files, tag="", after_round=None, **wrk_opts):
    """Warm-up, then `rounds` undisturbed rounds of every listener in turn
    (up to `rounds` more when others disturb one). {listener: [runs]}."""
    ports = envoy.ports
    log(f"{tag}scenario {scenario}: warm-up {WARMUP} s per listener")
    for name in listeners:
        wrk(ports[name], scenario, WARMUP, files, **wrk_opts)
    results = {n: [] for n in listeners}
    rnd = good = 0
    while good < rounds and rnd < 2 * rounds:
        rnd += 1
        runs = []
        for name in listeners:
            r = measured(envoy, ports[name], scenario, SECONDS, files, **wrk_opts)
            r["round"] = rnd
            runs.append(r)
            results[name].append(r)
            bad_runs = {k: v for k, v in r["errors"].items() if v}
            log(
                f"{tag}{scenario} round {rnd} {name:8} {r['rps']:9.0f} req/s  "
                f"{r['envoy_us']:6.1f} µs/req  p99 {ms(r['latency_us']['p99'])} ms  "
                f"{('errors ' + str(bad_runs)) if bad_runs else ''}"
            )
            if r["errors"]["status"]:
                fail(f"{name} answered {r['errors']['status']} non-2xx responses in scenario {scenario}")
        disturbed = max(r["other_cores"] for r in runs) > MAX_OTHER_CORES
        for r in runs:
            r["disturbed"] = disturbed
        if disturbed:
            log(f"{tag}{scenario} round {rnd} disturbed: other processes took "
                f"{max(r['other_cores'] for r in runs):.2f} cores; measuring another round")
        else:
            good += 1
        if after_round:
            after_round(rnd)
    return results


def run(envoy, info, files, rotating, bad):
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
        check(case, token, {n: ok200 if n in OPEN else denied for n in LISTENERS})
    sample = [rotating[i] for i in range(0, len(rotating), max(1, len(rotating) // 20))]
    rot_ok = {n: sum(get(ports[n], t) == 200 for t in sample) for n in LISTENERS}
    for n in LISTENERS:
        if rot_ok[n] != len(sample):  # A answers 200 to anything
            problems.append(f"{n}: only {rot_ok[n]}/{len(sample)} rotating tokens accepted")
    if problems:
        for case, row in sanity:
            log(f"{case:28} " + " ".join(f"{n}={row[n]}" for n in LISTENERS))
        fail("sanity checks: " + "; ".join(problems))
    log(f"sanity: {len(sanity)} cases as expected; {len(sample)} rotating tokens accepted by all")

    # ------------------------------------------------------------ measure
    results = {}
    memory = []  # (when, c requests, gauge, envoy heap)
    scenario_stats = {}

    def snapshot(when):
        time.sleep(2.5)  # the gauge is raised on the filter's 1 s tick
        st = envoy.stats()
        memory.append(
            (when, st.get("http.c_wasm.downstream_rq_total", 0), st.get(GAUGE, 0),
             st.get("server.memory_allocated", 0))
        )
        log(f"memory {when}: vm {st.get(GAUGE, 0)} B after {memory[-1][1]} requests to C")

    for scenario in SCENARIOS:
        before = envoy.stats()
        after_round = (
            (lambda rnd: rnd == 1 and snapshot("after rotating round 1 (cache full, churning)"))
            if scenario == "rotating" else None
        )
        results[scenario] = measure_scenario(envoy, LISTENERS, scenario, ROUNDS, files, after_round=after_round)
        after = envoy.stats()
        scenario_stats[scenario] = {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)}
        snapshot(f"after scenario {scenario}")

    # ------------------------------------------------------------ checks after
    final = envoy.stats()
    reloads = sum(v for k, v in final.items() if k.startswith("wasm.") and "vm_reload" in k)
    log_text = envoy.log_tail(100000)
    panics = [l for l in log_text.splitlines() if "panicked at" in l or "wasm trap" in l or "Uncaught" in l]
    return {
        "results": results, "memory": memory, "scenario_stats": scenario_stats, "sanity": sanity,
        "rot_ok": rot_ok, "nsample": len(sample), "reloads": reloads, "panics": panics,
    }


def run_scale(envoy, files):
    """The scale scenarios on a two-worker Envoy (see main)."""
    log(f"scale: Envoy --concurrency 2 up: admin {envoy.admin_port}")
    for name in SCALE_LISTENERS:
        if get(envoy.ports[name], None) != (200 if name in OPEN else 401):
            fail(f"scale: {name} does not answer as it should")
    opts = {"threads": 2, "connections": SCALE_CONNECTIONS, "pin": False}
    results, stats = {}, {}
    for scenario in SCENARIOS:
        before = envoy.stats()
        results[scenario] = measure_scenario(envoy, SCALE_LISTENERS, scenario, SCALE_ROUNDS, files,
                                             tag="scale ", **opts)
        after = envoy.stats()
        stats[scenario] = {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)}
    final = envoy.stats()
    log_text = envoy.log_tail(100000)
    panics = [l for l in log_text.splitlines() if "panicked at" in l or "wasm trap" in l or "Uncaught" in l]
    return {
        "results": results, "stats": stats, "panics": panics,
        "fetches": sum(v for k, v in final.items() if k.endswith(".fetch_succeeded") and "jwt_policy.jwks" in k),
    }


def summarize(results, listeners, rounds):
    """Medians per listener over the undisturbed rounds (all rounds when
    fewer than three were undisturbed), and the per-round runs used."""
    s = {}
    clean_idx = [i for i, r in enumerate(results["c_wasm"]) if not r["disturbed"]]
    use_all = len(clean_idx) < min(3, rounds)
    idx = list(range(len(results["c_wasm"]))) if use_all else clean_idx
    s["_note"] = (
        f"all {len(results['c_wasm'])} rounds (fewer than {min(3, rounds)} undisturbed)" if use_all
        else f"the {len(clean_idx)} undisturbed rounds of {len(results['c_wasm'])}"
    )
    s["_idx"] = idx
    for name in listeners:
        rs = [results[name][i] for i in idx]
        s[name] = {
            "rps": med([r["rps"] for r in rs]),
            "min": min(r["rps"] for r in rs),
            "max": max(r["rps"] for r in rs),
            "p50": med([r["latency_us"]["p50"] for r in rs]),
            "p99": med([r["latency_us"]["p99"] for r in rs]),
            "cpu": med([r["envoy_us"] for r in rs]),
            "cores": med([r["envoy_cores"] for r in rs]),
        }
    return s


def per_round(results, idx, a, b, key):
    """Per-round ratios a/b of `key` ('rps' or 'envoy_us')."""
    return [results[a][i][key] / results[b][i][key] for i in idx]


def report(info, main_run, scale, started, load_start, load_end, others_start, others_end):
    results, memory = main_run["results"], main_run["memory"]
    scenario_stats, sanity = main_run["scenario_stats"], main_run["sanity"]
    rot_ok, nsample = main_run["rot_ok"], main_run["nsample"]
    reloads, panics = main_run["reloads"], main_run["panics"] + (scale["panics"] if scale else [])
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
    all_runs = [r for sc in results for n in results[sc] for r in results[sc][n]]
    if scale:
        all_runs += [r for sc in scale["results"] for n in scale["results"][sc] for r in scale["results"][sc][n]]
    foreign = [r["other_cores"] for r in all_runs]

    lines = []
    w = lines.append
    title = "# `make bench` results"
    if PROBES:
        title = "# `make bench` hostcall probes (BENCH_PROBES=1)"
    w(title + (" (QUICK run: not for the record)" if QUICK else ""))
    w("")
    w(f"Run {started:%Y-%m-%d %H:%M} UTC. Written by `bench/bench.py`; regenerate with the command below.")
    w("")
    w("## Machine and versions")
    w("")
    w(f"- CPU: {cpu_model()}, {cores} cores (`nproc`), kernel {kernel}")
    w(f"- Envoy {envoy_version}, V8 runtime, `--concurrency 1`"
      + ("; the scale scenarios in a second Envoy with `--concurrency 2`" if scale else ""))
    w(f"- {wrk_version}; {rustc}")
    w(f"- jwt-policy git {git}{' with uncommitted changes to src/ or Cargo files' if dirty else ''}; "
      f"`jwt_policy.wasm` {wasm_size} bytes ({wasm_size / MIB:.3f} MiB), sha256 {wasm_sha}…; "
      f"floor `bench_floor.wasm` {os.path.getsize(FLOOR_WASM)} bytes")
    w(f"- Pinning: {'Envoy (all threads) on CPU ' + ENVOY_CPU + ', wrk on CPU ' + WRK_CPU + ' (`taskset`)' if PIN else 'none'}"
      + ("; the scale scenarios unpinned" if scale else ""))
    w(f"- Scheduler: autogroup nice {autogroup_note}")
    w(f"- Load average at start {load_start[0]:.2f} / {load_start[1]:.2f} / {load_start[2]:.2f}, "
      f"at end {load_end[0]:.2f} / {load_end[1]:.2f} / {load_end[2]:.2f}")
    fmed = med(foreign)
    fmax = max(foreign) if foreign else 0.0
    steal = [r["steal_cores"] for r in all_runs]
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
    disturbed_rounds = sum(1 for sc in results for r in results[sc]["c_wasm"] if r["disturbed"])
    if scale:
        disturbed_rounds += sum(1 for sc in scale["results"] for r in scale["results"][sc]["c_wasm"] if r["disturbed"])
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
    if PROBES:
        w("make bench-floor && BENCH_PROBES=1 bench/run.sh    # writes target/bench/PROBES.md")
    else:
        w("make bench    # = make wasm + the floor module, then bench/run.sh (installs wrk if missing) -> .venv/bin/python bench/bench.py")
    w("```")
    w("")
    order = " ".join(SHORT[n] for n in LISTENERS)
    w(f"{ROUNDS} undisturbed rounds x {SECONDS} s per listener per scenario (up to {ROUNDS} more when other "
      f"processes take over {MAX_OTHER_CORES} cores during a round), alternating {order} in each round, after a "
      f"{WARMUP} s warm-up of each listener per scenario; wrk `-t1 -c{CONNECTIONS}` (`bench/wrk.lua`), "
      f"GET {PATH}, HTTP/1.1 keep-alive on loopback. Scenario 2 cycles through {info['count']} distinct "
      f"valid RS256 (2048-bit) tokens of {info['token_bytes']} bytes; both caches hold 1,000 entries. "
      "B and C fetch their keys from a JWKS URL (a listener of the same Envoy), as deployed against Cognito. "
      "F1 is the same jwt_policy.wasm with one `allow_anonymous` rule (our floor: what any policy run costs); "
      "F0 is `bench/floor`, a proxy-wasm filter on the same SDK that does nothing (the runtime's floor). "
      "Medians over the rounds; ratios are of medians. Envoy CPU µs/req: CPU time of the whole "
      "Envoy process (all threads, from /proc) per request served, a cost measure less sensitive than "
      "req/s to waiting on a busy core.")
    if scale:
        w("")
        w(f"Scale scenarios: a second Envoy with `--concurrency 2` (two workers, each with its own VMs and "
          f"token caches; one shared JWKS record), nothing pinned, wrk `-t2 -c{SCALE_CONNECTIONS}`: Envoy and "
          f"wrk share both cores. {SCALE_ROUNDS} undisturbed rounds of {' '.join(SHORT[n] for n in SCALE_LISTENERS)}, "
          f"same durations.")
    w("")
    w("## Results")
    w("")
    w("| scenario | listener | req/s (median) | req/s min-max | p50 ms | p99 ms | Envoy CPU µs/req | C / B req/s |")
    w("|---|---|---:|---:|---:|---:|---:|---:|")
    summary = {}
    for scenario in SCENARIOS:
        s = summarize(results[scenario], LISTENERS, ROUNDS)
        summary[scenario] = s
        s["ratio"] = s["c_wasm"]["rps"] / s["b_native"]["rps"]
        title = "1 repeated token" if scenario == "repeated" else f"2 {info['count']} rotating tokens"
        for name in LISTENERS:
            x = s[name]
            cell = f"**{s['ratio']:.2f}x**" if name == "c_wasm" else ""
            if name == "d_base":
                cell = f"{x['rps'] / s['b_native']['rps']:.2f}x (C/D {s['c_wasm']['rps'] / x['rps']:.3f})"
            w(f"| {title} | {LABEL[name]} | {x['rps']:.0f} | {x['min']:.0f}-{x['max']:.0f} | "
              f"{ms(x['p50'])} | {ms(x['p99'])} | {x['cpu']:.1f} | {cell} |")
    w("")
    for scenario in SCENARIOS:
        s = summary[scenario]
        rr = per_round(results[scenario], s["_idx"], "c_wasm", "b_native", "rps")
        w(f"Medians for {scenario} over {s['_note']}. Per-round C/B req/s: "
          + ", ".join(f"{r:.2f}" for r in rr) + f" (min {min(rr):.2f}, max {max(rr):.2f}).  ")
    w("")
    w("### C against native and both floors")
    w("")
    w("Ratios of medians; µs are Envoy CPU per request. \"over A\": what the filter(s) add to a request "
      "without auth.")
    w("")
    w("| scenario | C/B req/s | C/B CPU µs | C/F1 CPU µs | C/F0 CPU µs | A | B over A | F0 over A | F1 over A | C over A | D over A |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for scenario in SCENARIOS:
        s = summary[scenario]
        a = s["a_plain"]["cpu"]
        over = lambda n: f"{s[n]['cpu'] - a:+.1f}" if n in s else "—"  # noqa: E731
        w(f"| {scenario} | {s['ratio']:.3f} | {s['c_wasm']['cpu'] / s['b_native']['cpu']:.3f} | "
          f"{s['c_wasm']['cpu'] / s['f1_anon']['cpu']:.3f} | {s['c_wasm']['cpu'] / s['f0_floor']['cpu']:.3f} | "
          f"{a:.1f} | {over('b_native')} | {over('f0_floor')} | {over('f1_anon')} | {over('c_wasm')} | {over('d_base')} |")
    w("")

    if PROBES:
        s = summary["repeated"]
        w("### Hostcall probes")
        w("")
        w(f"Each probe listener is F0 making {PROBE_N} hostcalls of one kind in every request's "
          "`on_http_request_headers` (bench/floor/src/lib.rs). Per call: the median over rounds of "
          f"(probe − F0 in the same round, Envoy CPU µs/req) / {PROBE_N}.")
        w("")
        w("| kind | Envoy CPU µs/req | over F0 µs/req | µs per call | per-round µs per call |")
        w("|---|---:|---:|---:|---|")
        for kind in PROBE_KINDS:
            n = f"p_{kind}"
            diffs = [(results["repeated"][n][i]["envoy_us"] - results["repeated"]["f0_floor"][i]["envoy_us"]) / PROBE_N
                     for i in s["_idx"]]
            w(f"| `{kind}` | {s[n]['cpu']:.1f} | {s[n]['cpu'] - s['f0_floor']['cpu']:+.1f} | **{med(diffs):.3f}** | "
              + ", ".join(f"{d:.3f}" for d in diffs) + " |")
        w("")

    scale_summary = {}
    if scale:
        w("### Scale: two workers, both cores busy")
        w("")
        w("| scenario | listener | req/s (median) | req/s min-max | p50 ms | p99 ms | Envoy CPU µs/req | Envoy cores | C / B req/s |")
        w("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for scenario in SCENARIOS:
            s = summarize(scale["results"][scenario], SCALE_LISTENERS, SCALE_ROUNDS)
            scale_summary[scenario] = s
            s["ratio"] = s["c_wasm"]["rps"] / s["b_native"]["rps"]
            for name in SCALE_LISTENERS:
                x = s[name]
                cell = f"**{s['ratio']:.2f}x**" if name == "c_wasm" else ""
                w(f"| {scenario} (x2) | {LABEL[name]} | {x['rps']:.0f} | {x['min']:.0f}-{x['max']:.0f} | "
                  f"{ms(x['p50'])} | {ms(x['p99'])} | {x['cpu']:.1f} | {x['cores']:.2f} | {cell} |")
        w("")
        for scenario in SCENARIOS:
            s = scale_summary[scenario]
            st = scale["stats"][scenario]
            rr = per_round(scale["results"][scenario], s["_idx"], "c_wasm", "b_native", "rps")
            w(f"Scale {scenario}: medians over {s['_note']}; per-round C/B req/s "
              + ", ".join(f"{r:.2f}" for r in rr)
              + f"; C/B CPU µs {s['c_wasm']['cpu'] / s['b_native']['cpu']:.3f}, C/F1 CPU µs "
              f"{s['c_wasm']['cpu'] / s['f1_anon']['cpu']:.3f}; filter cache hits "
              f"{st.get('wasmcustom.jwt_policy.token_cache.hit', 0)}, misses "
              f"{st.get('wasmcustom.jwt_policy.token_cache.miss', 0)}.  ")
        w(f"JWKS fetches by the scale Envoy's filter VMs (all workers together): {scale['fetches']}.")
        w("")

    w("### Every run")
    w("")
    w(f"Other CPU: cores used by other processes during the run; a round where any run exceeds "
      f"{MAX_OTHER_CORES} is marked disturbed, repeated, and left out of the medians.")
    w("")
    w("| scenario | round | listener | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | Envoy CPU µs/req | other CPU (cores) | niced CPU | stolen CPU | round used |")
    w("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    sets = [(sc, results[sc], LISTENERS) for sc in SCENARIOS]
    if scale:
        sets += [(f"{sc} (x2)", scale["results"][sc], SCALE_LISTENERS) for sc in SCENARIOS]
    for scenario, res, names in sets:
        for i in range(len(res["c_wasm"])):
            for name in names:
                r = res[name][i]
                l = r["latency_us"]
                w(f"| {scenario} | {r['round']} | {name} | {r['rps']:.0f} | {ms(l['p50'])} | {ms(l['p90'])} | "
                  f"{ms(l['p99'])} | {ms(l['p999'])} | {r['envoy_us']:.1f} | {r['other_cores']:.2f} | "
                  f"{r['niced_cores']:.2f} | {r['steal_cores']:.2f} | {'no (disturbed)' if r['disturbed'] else 'yes'} |")
    w("")

    # Targets.
    rep = summary["repeated"]
    rot = summary.get("rotating")
    mem_after_fill = next((m for m in memory if m[0].startswith("after rotating round 1")), memory[-1])
    mem_end = memory[-1]
    mem_100k = next((m for m in memory if m[1] >= 100_000), mem_end)
    flat = mem_end[2] == mem_after_fill[2]
    p99_c, p99_b = rep["c_wasm"]["p99"], rep["b_native"]["p99"]
    cpu_c, cpu_b, cpu_f1 = rep["c_wasm"]["cpu"], rep["b_native"]["cpu"], rep["f1_anon"]["cpu"]
    targets = [
        ("Repeated token: throughput >= 1.0x native", rep["ratio"] >= 1.0,
         f"{rep['ratio']:.2f}x ({pct(rep['ratio'] - 1.0)} against 1.0x)"),
        ("Repeated token: Envoy CPU µs/req no more than native", cpu_c <= cpu_b,
         f"C {cpu_c:.1f} µs vs B {cpu_b:.1f} µs ({pct(cpu_c / cpu_b - 1.0)})"),
        ("Repeated token: C within 1.15x of F1 (anonymous rule) in Envoy CPU µs/req", cpu_c <= 1.15 * cpu_f1,
         f"{cpu_c / cpu_f1:.3f}x (C {cpu_c:.1f} µs, F1 {cpu_f1:.1f} µs)"),
        ("Repeated token: p99 no worse than native's +5%", p99_c <= 1.05 * p99_b,
         f"C {ms(p99_c)} ms vs B {ms(p99_b)} ms ({pct(p99_c / p99_b - 1.0)})"),
    ]
    if rot:
        targets.append(("Rotating tokens (misses): throughput >= 1.0x native", rot["ratio"] >= 1.0,
                        f"{rot['ratio']:.2f}x ({pct(rot['ratio'] - 1.0)} against 1.0x)"))
    for scenario, s in scale_summary.items():
        targets.append((f"Scale ({scenario}, 2 workers): throughput >= 1.0x native (reported, no target set)",
                        s["ratio"] >= 1.0, f"{s['ratio']:.2f}x"))
    targets += [
        (".wasm <= 1 MiB", wasm_size <= MAX_WASM_BYTES,
         f"{wasm_size} bytes = {wasm_size / MIB:.3f} MiB ({MAX_WASM_BYTES - wasm_size} bytes to spare)"
         if wasm_size <= MAX_WASM_BYTES else f"{wasm_size} bytes, {wasm_size - MAX_WASM_BYTES} over"),
    ]
    if rot:
        targets.append(("Memory per VM bounded and flat", flat,
                        f"{mem_after_fill[2]} B once the cache was full, {mem_end[2]} B at the end"))
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
    w("| token | " + " | ".join(SHORT[n] for n in LISTENERS) + " |")
    w("|---|" + "---:|" * len(LISTENERS))
    for case, row in sanity:
        w(f"| {case} | " + " | ".join(str(row[n]) for n in LISTENERS) + " |")
    w("")
    w(f"And {nsample} of the rotating tokens, evenly spaced: accepted by "
      + ", ".join(f"{SHORT[n]} {rot_ok[n]}" for n in LISTENERS)
      + f" of {nsample}. Every measured run had 0 non-2xx answers (the run is refused otherwise).")
    if BASELINE:
        w("")
        w(f"Listener D runs {os.path.relpath(BASELINE, ROOT)}: the filter counters below add up C and D.")
    w("")
    w("Counters over the measured rounds of each scenario (deltas; warm-up excluded). The filter's counters "
      "are process-wide: F1 counts only under its own rule's name.")
    w("")
    keys = [
        ("c_wasm: wasmcustom.jwt_policy.token_cache.hit", "wasmcustom.jwt_policy.token_cache.hit"),
        ("c_wasm: wasmcustom.jwt_policy.token_cache.miss", "wasmcustom.jwt_policy.token_cache.miss"),
        ("c_wasm: wasmcustom.jwt_policy.verify.host", "wasmcustom.jwt_policy.verify.host"),
        ("c_wasm: wasmcustom.jwt_policy.verify.pure", "wasmcustom.jwt_policy.verify.pure"),
        ("c_wasm: wasmcustom.jwt_policy.provider.cognito.rule.orders.allowed",
         "wasmcustom.jwt_policy.provider.cognito.rule.orders.allowed"),
        ("f1_anon: wasmcustom.jwt_policy.provider.anonymous.rule.open.allowed",
         "wasmcustom.jwt_policy.provider.anonymous.rule.open.allowed"),
        ("c_wasm: http.c_wasm.downstream_rq_2xx", "http.c_wasm.downstream_rq_2xx"),
        ("c_wasm: http.c_wasm.downstream_rq_4xx", "http.c_wasm.downstream_rq_4xx"),
        ("b_native: http.b_native.jwt_authn.allowed", "http.b_native.jwt_authn.allowed"),
        ("b_native: http.b_native.jwt_authn.jwt_cache_hit", "http.b_native.jwt_authn.jwt_cache_hit"),
        ("b_native: http.b_native.jwt_authn.jwt_cache_miss", "http.b_native.jwt_authn.jwt_cache_miss"),
        ("b_native: http.b_native.rbac.allowed", "http.b_native.rbac.allowed"),
        ("b_native: http.b_native.downstream_rq_2xx", "http.b_native.downstream_rq_2xx"),
        ("b_native: http.b_native.downstream_rq_4xx", "http.b_native.downstream_rq_4xx"),
    ]
    w("| counter | " + " | ".join(SCENARIOS) + " |")
    w("|---|" + "---:|" * len(SCENARIOS))
    for label, key in keys:
        w(f"| `{label}` | " + " | ".join(str(scenario_stats[s].get(key, 0)) for s in SCENARIOS) + " |")
    denied = {
        s: sum(v for k, v in scenario_stats[s].items() if k.startswith("wasmcustom.jwt_policy.denied."))
        for s in scenario_stats
    }
    w("| `c_wasm: wasmcustom.jwt_policy.denied.*` (sum) | " + " | ".join(str(denied[s]) for s in SCENARIOS) + " |")
    w("")
    if rot:
        rs = scenario_stats["rotating"]
        hit, miss = rs.get("wasmcustom.jwt_policy.token_cache.hit", 0), rs.get("wasmcustom.jwt_policy.token_cache.miss", 0)
        w(f"Scenario 2 hit rate in the filter: {hit / max(1, hit + miss) * 100:.2f}% "
          f"({hit} hits, {miss} misses); every miss verified through the host: "
          f"{rs.get('wasmcustom.jwt_policy.verify.host', 0)} host, {rs.get('wasmcustom.jwt_policy.verify.pure', 0)} pure-Rust.")
    w(f"VM reloads after a wasm failure: {reloads}; wasm panics or traps in the Envoy logs: {len(panics)}.")
    w("")
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(RESULTS), exist_ok=True)
    with open(RESULTS, "w") as f:
        f.write(text)
    log(f"wrote {os.path.relpath(RESULTS, ROOT)}")
    print()
    for scenario in SCENARIOS:
        s = summary[scenario]
        for name in LISTENERS:
            print(f"{scenario:9} {LABEL[name]:40} {s[name]['rps']:9.0f} req/s {s[name]['cpu']:6.1f} µs/req  "
                  f"p50 {ms(s[name]['p50'])} ms  p99 {ms(s[name]['p99'])} ms")
        print(f"{scenario:9} C/B = {s['ratio']:.3f}x req/s, C/F1 CPU = {s['c_wasm']['cpu'] / s['f1_anon']['cpu']:.3f}")
    for scenario, s in scale_summary.items():
        for name in SCALE_LISTENERS:
            print(f"x2 {scenario:9} {LABEL[name]:40} {s[name]['rps']:9.0f} req/s {s[name]['cpu']:6.1f} µs/req  "
                  f"p99 {ms(s[name]['p99'])} ms")
        print(f"x2 {scenario:9} C/B = {s['ratio']:.3f}x")
    for name, ok, how in targets:
        print(f"{'met   ' if ok else 'MISSED'} {name}: {how}")


if __name__ == "__main__":
    sys.exit(main())
