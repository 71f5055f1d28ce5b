"""The test kit's `testkit` binary, from Python (bench/bench.py and
scripts/demo.py): Envoy is started, and keys and tokens are minted, by the
same Rust code the tests use (testkit/src). Standard library only.

    sys.path.insert(0, os.path.join(ROOT, "testkit"))
    import kit
    proc, info = kit.start_envoy("bootstrap.yaml", concurrency=2)
    info["listeners"]["main"], info["admin_port"], info["pid"], info["log"]
    minted = kit.mint({"keys": {...}, "tokens": {...}})

`testkit --help`, `testkit envoy --help` and src/main.rs describe the two
commands.
"""

import json
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def binary():
    """$TESTKIT_BIN, else target/debug/testkit, built first (quietly: cargo
    does nothing when it is up to date)."""
    path = os.environ.get("TESTKIT_BIN")
    if path:
        return path
    subprocess.run(
        ["cargo", "build", "--quiet", "-p", "testkit", "--bin", "testkit"], cwd=ROOT, check=True
    )
    return os.path.join(ROOT, "target", "debug", "testkit")


def start_envoy(bootstrap, *, dir=None, concurrency=1, log_level="info",
                component_log_level="wasm:debug", envoy_args=(), prefix=(), **popen):
    """Starts `testkit envoy` (under the `prefix` command, e.g. taskset) and
    returns (process, info) once Envoy is LIVE; info has pid (Envoy's),
    admin_port, listeners ({name: port}), dir, log and argv (Envoy's command
    line). The process stays until Envoy exits; ending it ends Envoy.
    `popen` goes to subprocess.Popen (stderr, preexec_fn, ...): testkit
    writes why Envoy did not start to stderr. Raises RuntimeError then."""
    cmd = list(prefix) + [
        binary(), "envoy", "--bootstrap", bootstrap,
        "--concurrency", str(concurrency),
        "--log-level", log_level,
        "--component-log-level", component_log_level,
    ]
    if dir:
        cmd += ["--dir", dir]
    if envoy_args:
        cmd += ["--"] + list(envoy_args)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True, **popen)
    line = proc.stdout.readline()
    if not line:
        proc.wait()
        raise RuntimeError(f"testkit envoy exited ({proc.returncode}) before Envoy was LIVE")
    return proc, json.loads(line)


def mint(spec):
    """`testkit mint`: keys, JWKS and tokens from a spec (see src/main.rs)."""
    out = subprocess.run([binary(), "mint"], input=json.dumps(spec), capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"testkit mint failed: {out.stderr.strip()}")
    return json.loads(out.stdout)
