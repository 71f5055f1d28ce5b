#!/usr/bin/env python3
"""The jwt-policy demo: the Cognito client-credentials walkthrough, end to end,
through Envoy and the jwt_policy wasm filter.

    make demo                          # = .venv/bin/python scripts/demo.py run

`run` starts, on 127.0.0.1 only, a Cognito emulator (PyPI `ministack`), an
echo upstream (scripts/demo_upstream.py) and Envoy with the repository's
envoy.yaml, replays the walkthrough with explained steps, checks every answer,
and stops everything it started on exit, Ctrl-C or failure. Exit status 0 means
every step behaved as described. State and logs go to .demo/ (gitignored).

The same steps serve docker-compose.yml, one container each:
  `setup`        step 1 (pool, resource server, app client, domain) and the
                 copy of envoy.yaml with the demo placeholders filled in;
  `walkthrough`  steps 2-7 against an Envoy that is already running.

envoy.yaml is the one source of truth for the policy: this script only fills
in the pool and client ids Cognito assigns at run time (the two placeholders
below) and, for `run`, rewrites addresses to 127.0.0.1.
"""

import argparse
import base64
import ctypes
import http.client
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_DIR = os.path.join(ROOT, ".demo")
REGION = "us-east-1"

# The two values envoy.yaml cannot know in advance (see its header comment).
POOL_PLACEHOLDER = "__DEMO_USER_POOL_ID__"
CLIENT_PLACEHOLDER = "__DEMO_APP_CLIENT_ID__"

# The walkthrough's names, as in the reference articles.
POOL_NAME = "jwt-policy-demo"
RESOURCE_SERVER = "order"
SCOPES = [("post.order", "Lets you post orders"), ("get.order", "Lets you read orders")]
CLIENT_NAME = "orders-client"
CLIENT_SCOPES = ["order/post.order"]
ORDER_PATH = "/api/v1/order"


class DemoFailure(Exception):
    """A step did not behave as described."""


class Stopped(BaseException):
    """Ctrl-C or a termination signal."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


# --------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------

def out(text=""):
    print(text, flush=True)


def step(number, title):
    out()
    out("=" * 78)
    out(f"Step {number}: {title}")
    out("=" * 78)


def explain(text):
    for paragraph in textwrap.dedent(text).strip().split("\n\n"):
        out(textwrap.fill(" ".join(paragraph.split()), width=78))
        out()


def command(text):
    """An equivalent shell command, for the reader to try against real AWS."""
    lines = text.strip().splitlines()
    out("  $ " + lines[0])
    for line in lines[1:]:
        out("      " + line.strip())


def show(label, value):
    if isinstance(value, (dict, list)):
        body = json.dumps(value, indent=2, sort_keys=False)
        out(f"  {label}:")
        for line in body.splitlines():
            out("    " + line)
    else:
        out(f"  {label}: {value}")


def check(condition, what):
    if not condition:
        raise DemoFailure(what)
    out(f"  [ok] {what}")


# --------------------------------------------------------------------------
# HTTP (standard library; no proxies, no redirects)
# --------------------------------------------------------------------------

class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> value (repeats joined by ", ")
        self.body = body

    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise DemoFailure(f"expected a JSON body, got {self.text()[:200]!r}") from e


def request(method, url, headers=None, body=None, timeout=15):
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if isinstance(body, str):
        body = body.encode()
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        merged = {}
        for name, value in resp.getheaders():
            name = name.lower()
            merged[name] = f"{merged[name]}, {value}" if name in merged else value
        return Reply(resp.status, merged, data)
    finally:
        conn.close()


def wait_until(what, probe, timeout, alive=None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if alive is not None:
            alive()
        try:
            result = probe()
            if result:
                return result
        except (OSError, http.client.HTTPException) as e:
            last = e
        time.sleep(0.1)
    raise DemoFailure(f"{what} not ready after {timeout}s" + (f" ({last})" if last else ""))


# --------------------------------------------------------------------------
# JWT helpers (display only: the filter does the verifying)
# --------------------------------------------------------------------------

def b64url_decode(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def b64url_encode(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def decode_jwt(token):
    try:
        header, payload, _ = token.split(".")
        return json.loads(b64url_decode(header)), json.loads(b64url_decode(payload))
    except ValueError as e:
        raise DemoFailure(f"the access token is not a JWT: {e}") from e


# --------------------------------------------------------------------------
# Step 1: Cognito set-up (the aws cognito-idp calls, through boto3)
# --------------------------------------------------------------------------

def cognito_client(endpoint):
    try:
        import boto3
    except ImportError:
        raise DemoFailure("boto3 is missing: run scripts/setup-demo.sh (make demo does)")
    return boto3.client(
        "cognito-idp",
        endpoint_url=endpoint,
        region_name=REGION,
        # The emulator accepts any credentials; real AWS needs yours.
        aws_access_key_id="demo",
        aws_secret_access_key="demo",
    )


def cognito_setup(endpoint):
    """Step 1. Returns the ids Cognito assigned (and the client secret)."""
    step(1, "Cognito: user pool, resource server, app client, domain")
    explain(f"""
        The same calls as the AWS CLI walkthrough, made with boto3 against the
        Cognito emulator at {endpoint} (point the CLI at it with
        --endpoint-url, or drop that to run them against AWS).
    """)
    idp = cognito_client(endpoint)

    out("1a. A user pool: the token issuer. Its id names the issuer and the JWKS URL.")
    command(f"aws cognito-idp create-user-pool --pool-name {POOL_NAME}")
    pool = idp.create_user_pool(PoolName=POOL_NAME)["UserPool"]
    pool_id = pool["Id"]
    show("UserPool.Id", pool_id)
    check(pool_id.startswith(REGION + "_"), f"the pool id has the form {REGION}_xxxxxxxxx")
    out()

    out("1b. A resource server `order` declaring the scopes order/post.order and order/get.order.")
    scopes_cli = " ".join(f"ScopeName={n},ScopeDescription={shlex.quote(d)}" for n, d in SCOPES)
    command(f"""aws cognito-idp create-resource-server --user-pool-id {pool_id}
        --identifier {RESOURCE_SERVER} --name {RESOURCE_SERVER}
        --scopes {scopes_cli}""")
    rs = idp.create_resource_server(
        UserPoolId=pool_id,
        Identifier=RESOURCE_SERVER,
        Name=RESOURCE_SERVER,
        Scopes=[{"ScopeName": n, "ScopeDescription": d} for n, d in SCOPES],
    )["ResourceServer"]
    show("ResourceServer.Scopes", [f"{rs['Identifier']}/{s['ScopeName']}" for s in rs["Scopes"]])
    out()

    out("1c. An app client with a generated secret, allowed only client_credentials")
    out("    and only order/post.order (not order/get.order).")
    command(f"""aws cognito-idp create-user-pool-client --user-pool-id {pool_id}
        --client-name {CLIENT_NAME} --generate-secret
        --allowed-o-auth-flows client_credentials
        --allowed-o-auth-scopes {' '.join(CLIENT_SCOPES)}
        --allowed-o-auth-flows-user-pool-client""")
    client = idp.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName=CLIENT_NAME,
        GenerateSecret=True,
        AllowedOAuthFlows=["client_credentials"],
        AllowedOAuthScopes=CLIENT_SCOPES,
        AllowedOAuthFlowsUserPoolClient=True,
    )["UserPoolClient"]
    show("UserPoolClient.ClientId", client["ClientId"])
    show("UserPoolClient.ClientSecret", client["ClientSecret"][:6] + "... (generated)")
    show("UserPoolClient.AllowedOAuthScopes", client["AllowedOAuthScopes"])
    check(client.get("ClientSecret"), "the client has a generated secret")
    out()

    domain = f"jwt-policy-demo-{secrets.token_hex(3)}"
    out("1d. A domain: it hosts the /oauth2/token endpoint.")
    command(f"aws cognito-idp create-user-pool-domain --domain {domain} --user-pool-id {pool_id}")
    idp.create_user_pool_domain(Domain=domain, UserPoolId=pool_id)
    show("token endpoint on AWS", f"https://{domain}.auth.{REGION}.amazoncognito.com/oauth2/token")
    show("token endpoint here", f"{endpoint}/oauth2/token")
    return {
        "region": REGION,
        "user_pool_id": pool_id,
        "client_id": client["ClientId"],
        "client_secret": client["ClientSecret"],
        "domain": domain,
        "issuer": f"https://cognito-idp.{REGION}.amazonaws.com/{pool_id}",
    }


def fill_placeholders(envoy_yaml, ids):
    """envoy.yaml's text with the two demo placeholders replaced; nothing else changes."""
    for placeholder in (POOL_PLACEHOLDER, CLIENT_PLACEHOLDER):
        if placeholder not in envoy_yaml:
            raise DemoFailure(f"envoy.yaml has no {placeholder} placeholder")
    return envoy_yaml.replace(POOL_PLACEHOLDER, ids["user_pool_id"]).replace(
        CLIENT_PLACEHOLDER, ids["client_id"]
    )


def plugin_config(bootstrap):
    """The jwt_policy plugin configuration (parsed) of a bootstrap (parsed)."""
    for listener in bootstrap["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for f in chain["filters"]:
                for hf in f.get("typed_config", {}).get("http_filters", []):
                    if hf["name"] == "envoy.filters.http.wasm":
                        cfg = hf["typed_config"]["config"]
                        return cfg, json.loads(cfg["configuration"]["value"])
    raise DemoFailure("no wasm filter in envoy.yaml")


# --------------------------------------------------------------------------
# Steps 2-7: the walkthrough through Envoy
# --------------------------------------------------------------------------

def walkthrough(envoy, admin, ministack, ids, log_hint):
    token_url = f"{ministack}/oauth2/token"
    basic = base64.b64encode(f"{ids['client_id']}:{ids['client_secret']}".encode()).decode()
    form = {"content-type": "application/x-www-form-urlencoded", "authorization": f"Basic {basic}"}

    # -- 2 ------------------------------------------------------------------
    step(2, "Get an access token: POST /oauth2/token (client credentials)")
    explain("""
        The client authenticates with HTTP Basic client_id:client_secret and
        asks for grant_type=client_credentials. Without a `scope` parameter
        Cognito grants every scope the client is allowed: order/post.order.
    """)
    command(f"""curl -X POST https://{ids['domain']}.auth.{REGION}.amazoncognito.com/oauth2/token
        -H "authorization: Basic $(printf '%s:%s' "$CLIENT_ID" "$CLIENT_SECRET" | base64 -w0)"
        -H 'content-type: application/x-www-form-urlencoded'
        -d 'grant_type=client_credentials'""")
    r = request("POST", token_url, form, "grant_type=client_credentials")
    check(r.status == 200, f"POST /oauth2/token -> {r.status} (expected 200)")
    grant = r.json()
    token = grant.get("access_token", "")
    show("token_type", grant.get("token_type"))
    show("expires_in", grant.get("expires_in"))
    show("access_token", token[:40] + "..." + token[-12:])
    out()
    out("  The client cannot simply ask for a scope it was not given:")
    command("curl ... -d 'grant_type=client_credentials&scope=order/get.order'")
    r = request("POST", token_url, form, "grant_type=client_credentials&scope=order%2Fget.order")
    show("answer", f"{r.status} {r.text().strip()}")
    refused = r.status == 400 and any(e in r.text() for e in ("invalid_grant", "invalid_scope"))
    check(refused, "a token for order/get.order is refused (400; Cognito says invalid_grant for a"
          " defined scope the client lacks)")

    # -- 3 ------------------------------------------------------------------
    step(3, "Look inside the token (decoded here only for display)")
    header, claims = decode_jwt(token)
    show("header", header)
    show("claims", claims)
    out()
    explain(f"""
        What the filter checks, from envoy.yaml: the RS256 signature with the
        key named by `kid` from the pool's JWKS ({ids['user_pool_id']}/.well-known/jwks.json,
        fetched by the filter through the Envoy cluster cognito_jwks); `exp`;
        `iss` equal to the pool's issuer; `token_use` = access; and, since a
        Cognito access token has no `aud`, `client_id` must be one of the
        `audiences` (API Gateway's rule). Then the route's scopes.
    """)
    check(header.get("alg") == "RS256" and header.get("kid"), "header: alg RS256 with a kid")
    check(claims.get("iss") == ids["issuer"], f"iss = {ids['issuer']}")
    check(claims.get("token_use") == "access", "token_use = access")
    check(claims.get("client_id") == ids["client_id"] and "aud" not in claims,
          "client_id = the app client, and no aud")
    check(claims.get("scope") == "order/post.order", "scope = order/post.order")

    bearer = {"authorization": f"Bearer {token}"}

    # -- 4 ------------------------------------------------------------------
    step(4, f"POST {ORDER_PATH} with the token: allowed")
    explain("""
        Rule post_order needs order/post.order, which the token has. The
        filter passes the request on, adds the claims the upstream needs as
        headers (x-client-id, x-scopes; copies sent by the client are always
        removed) and strips the token (forward_token: false).
    """)
    command(f"curl -X POST {envoy}{ORDER_PATH} -H \"authorization: Bearer $TOKEN\" -d '{{\"item\":\"coffee\"}}'")
    r = request("POST", envoy + ORDER_PATH, {**bearer, "content-type": "application/json"},
                '{"item": "coffee", "quantity": 2}')
    check(r.status == 200, f"POST {ORDER_PATH} -> {r.status} (expected 200 from the upstream)")
    echo = r.json()
    seen = echo.get("headers", {})
    show("the upstream received", {
        "method": echo.get("method"),
        "path": echo.get("path"),
        "x-client-id": seen.get("x-client-id"),
        "x-scopes": seen.get("x-scopes"),
        "authorization": seen.get("authorization", "(absent: the filter removed the token)"),
    })
    check(seen.get("x-client-id") == ids["client_id"], "x-client-id = the token's client_id")
    check(seen.get("x-scopes") == "order/post.order", "x-scopes = order/post.order")
    check("authorization" not in seen, "the token did not reach the upstream")

    # -- 5 ------------------------------------------------------------------
    step(5, f"GET {ORDER_PATH} with the same token: 403 insufficient_scope")
    explain("""
        Rule get_order needs order/get.order. The token is valid but lacks that
        scope: 403, and the challenge names the scope that is needed. The
        upstream never sees the request.
    """)
    command(f"curl -i {envoy}{ORDER_PATH} -H \"authorization: Bearer $TOKEN\"")
    r = request("GET", envoy + ORDER_PATH, bearer)
    show("status", r.status)
    show("www-authenticate", r.headers.get("www-authenticate"))
    show("body", r.json())
    challenge = r.headers.get("www-authenticate", "")
    check(r.status == 403, f"GET {ORDER_PATH} -> {r.status} (expected 403)")
    check('error="insufficient_scope"' in challenge and 'scope="order/get.order"' in challenge,
          'WWW-Authenticate: error="insufficient_scope", scope="order/get.order"')

    # -- 6 ------------------------------------------------------------------
    step(6, "No token: 401. A tampered token: 401 invalid_token")
    command(f"curl -i -X POST {envoy}{ORDER_PATH}")
    r = request("POST", envoy + ORDER_PATH)
    show("status", r.status)
    show("www-authenticate", r.headers.get("www-authenticate"))
    check(r.status == 401, f"no token -> {r.status} (expected 401)")
    check(r.headers.get("www-authenticate") == 'Bearer realm="api"',
          'WWW-Authenticate: Bearer realm="api" (no error code: nothing was presented)')
    out()
    explain("""
        Now an attacker edits the token's claims to add order/get.order and
        keeps the signature. The signature no longer matches the claims.
    """)
    forged_claims = dict(claims, scope="order/post.order order/get.order")
    h64, _, s64 = token.split(".")
    forged = ".".join([h64, b64url_encode(json.dumps(forged_claims, separators=(",", ":")).encode()), s64])
    show("tampered scope", forged_claims["scope"])
    command(f"curl -i {envoy}{ORDER_PATH} -H \"authorization: Bearer $TAMPERED\"")
    r = request("GET", envoy + ORDER_PATH, {"authorization": f"Bearer {forged}"})
    show("status", r.status)
    show("www-authenticate", r.headers.get("www-authenticate"))
    show("body", r.json())
    check(r.status == 401 and 'error="invalid_token"' in r.headers.get("www-authenticate", ""),
          f"tampered token -> {r.status} invalid_token (expected 401)")

    # -- 7 ------------------------------------------------------------------
    step(7, "Where to look: the filter's counters and the Envoy log")
    explain(f"""
        The filter counts every decision in Envoy's stats, under
        wasmcustom.jwt_policy.* (per rule and reason, and the JWKS fetches).
        envoy.yaml's stats_tags also turn them into labelled Prometheus series
        at /stats/prometheus. Admin interface here: {admin}
    """)
    command(f"curl -s '{admin}/stats?filter=^wasmcustom\\.jwt_policy\\.'")
    time.sleep(0.3)  # the filter hands its request counters to Envoy every 100 ms
    stats = {}
    r = request("GET", admin + "/stats?filter=" + urllib.parse.quote(r"^wasmcustom\.jwt_policy\."))
    for line in r.text().splitlines():
        name, _, value = line.rpartition(": ")
        if name and value.strip().isdigit():
            stats[name] = int(value)
            out("    " + line)
    out()
    prefix = "wasmcustom.jwt_policy."
    rule = prefix + "provider.cognito.rule."
    expected = [
        (prefix + "jwks.cognito.fetch_succeeded", "the JWKS was fetched through the cluster"),
        (rule + "post_order.allowed", "the POST was allowed by rule post_order"),
        (rule + "get_order.denied.scope", "the GET was denied by rule get_order for its scope"),
        (rule + "post_order.denied.missing", "the request without a token was denied"),
        (rule + "get_order.denied.signature", "the tampered token failed its signature"),
    ]
    for name, what in expected:
        check(stats.get(name, 0) >= 1, f"{name} >= 1 ({what})")
    r = request("GET", admin + "/stats/prometheus")
    series = [l for l in r.text().splitlines() if l.startswith(("jwt_policy_rule_", "jwt_policy_jwks_fetch"))]
    out()
    out(f"  $ curl -s {admin}/stats/prometheus | grep ^jwt_policy_")
    for line in series:
        out("    " + line)
    check(any(l.startswith('jwt_policy_rule_allowed{jwt_provider="cognito",jwt_rule="post_order"}')
              for l in series), "Prometheus series carry jwt_provider and jwt_rule labels")
    out()
    for line in log_hint:
        out(line)


# --------------------------------------------------------------------------
# `run`: everything natively on 127.0.0.1
# --------------------------------------------------------------------------

def _die_with_parent():
    """Child pre-exec: new process group; on Linux, SIGTERM when the demo dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class Processes:
    """The processes the demo started; stop() ends exactly those."""

    def __init__(self):
        self.procs = []  # (name, Popen)

    def start(self, name, argv, log_path, env=None, cwd=ROOT):
        log = open(log_path, "ab")
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=_die_with_parent,
        )
        log.close()
        self.procs.append((name, proc))
        return proc

    def start_envoy(self, bootstrap_path, envoy_bin):
        """Envoy on the bootstrap's ports 0, through `testkit envoy` (its
        log: envoy.log); returns the launcher's info (ports, argv, ...)."""
        sys.path.insert(0, os.path.join(ROOT, "testkit"))
        import kit

        with open(os.path.join(DEMO_DIR, "envoy.stdout.log"), "ab") as log:
            try:
                proc, info = kit.start_envoy(
                    bootstrap_path, dir=DEMO_DIR, concurrency=2, log_level="info",
                    component_log_level="wasm:debug", cwd=ROOT, stderr=log,
                    env=dict(os.environ, ENVOY_BIN=envoy_bin),
                    start_new_session=True, preexec_fn=_die_with_parent,
                )
            except RuntimeError as e:
                raise DemoFailure(f"{e}; see {shown(log.name)}") from e
        self.procs.append(("envoy", proc))
        return info

    def forget(self, proc):
        """Drops a process that has exited by itself."""
        self.procs = [(n, p) for n, p in self.procs if p is not proc]

    def check_alive(self):
        for name, proc in self.procs:
            if proc.poll() is not None:
                log = os.path.join(DEMO_DIR, f"{name}.log")
                try:
                    with open(log, errors="replace") as f:
                        tail = "".join(f.readlines()[-15:])
                except OSError:
                    tail = ""
                raise DemoFailure(f"{name} exited with status {proc.returncode}; the end of "
                                  f"{shown(log)}:\n{tail}")

    def stop(self):
        # A second Ctrl-C must not cut the clean-up short.
        saved = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            self._stop()
        finally:
            for sig, handler in saved.items():
                signal.signal(sig, handler)

    def _stop(self):
        for name, proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        for name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait()
        self.procs = []


def shown(path):
    """A path as the reader best recognises it: relative inside the repository."""
    if os.path.isabs(path) and path.startswith(ROOT + os.sep):
        return os.path.relpath(path, ROOT)
    return path


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def native_bootstrap(text, hosts, wasm):
    """envoy.yaml (placeholders filled) -> the native bootstrap: listener and
    admin on 127.0.0.1 port 0, cluster hostnames -> 127.0.0.1:<port>."""
    try:
        import yaml
    except ImportError:
        raise DemoFailure("PyYAML is missing: run scripts/setup-demo.sh (make demo does)")
    boot = yaml.safe_load(text)
    changes = []

    def loopback(sa, what):
        changes.append(f"{what}: {sa['address']}:{sa['port_value']} -> 127.0.0.1:(free port)")
        sa["address"], sa["port_value"] = "127.0.0.1", 0

    loopback(boot["admin"]["address"]["socket_address"], "admin")
    for listener in boot["static_resources"]["listeners"]:
        loopback(listener["address"]["socket_address"], f"listener {listener['name']}")
    for cluster in boot["static_resources"]["clusters"]:
        for group in cluster["load_assignment"]["endpoints"]:
            for ep in group["lb_endpoints"]:
                sa = ep["endpoint"]["address"]["socket_address"]
                if sa["address"] not in hosts:
                    raise DemoFailure(f"cluster {cluster['name']}: unknown host {sa['address']}")
                port = hosts[sa["address"]]
                changes.append(f"cluster {cluster['name']}: {sa['address']}:{sa['port_value']} -> 127.0.0.1:{port}")
                sa["address"], sa["port_value"] = "127.0.0.1", port
    if wasm:
        cfg, _ = plugin_config(boot)
        cfg["vm_config"]["code"]["local"]["filename"] = wasm
        changes.append(f"wasm: {wasm}")
    return boot, changes


def start_ministack(procs):
    """Starts the Cognito emulator on a free loopback port; returns its URL.
    The port is picked, freed and handed over, so another process may take it
    in between: then it refuses to start and the next port is tried."""
    for attempt in range(3):
        port = free_port()
        env = dict(os.environ)
        env.update({
            "BIND_HOST": "127.0.0.1",          # loopback only (its default is 0.0.0.0)
            "GATEWAY_PORT": str(port),
            "SERVICES": "cognito-idp",         # only the service the demo uses
            "IOT_MTLS_ENABLED": "0",           # no extra listeners (MQTT on 8883 ...)
            "SFTP_ENABLED": "0",
            "MINISTACK_REGION": REGION,
            "STATE_DIR": os.path.join(DEMO_DIR, "ministack/state"),  # its signing keys
            "TMPDIR": os.path.join(DEMO_DIR, "ministack/tmp"),       # its pid file
            "PERSIST_STATE": "0",
            "LOG_LEVEL": "INFO",
        })
        log = os.path.join(DEMO_DIR, "ministack.log")
        proc = procs.start("ministack", [sys.executable, "-m", "ministack"], log, env=env)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until("ministack", lambda: request("GET", url + "/_ministack/health", timeout=2).status == 200,
                       30, procs.check_alive)
            return url
        except DemoFailure:
            with open(log, errors="replace") as f:
                taken = "already in use" in f.read()
            if proc.poll() is None or not taken or attempt == 2:
                raise
            procs.forget(proc)
    raise DemoFailure("ministack did not start")


def run(args):
    envoy_bin = args.envoy or os.environ.get("ENVOY_BIN") or os.path.join(ROOT, ".venv", "envoy")
    # envoy.yaml names the wasm relative to the repository (Envoy runs there);
    # another build (--wasm, $JWT_POLICY_WASM) replaces that path in the copy.
    default_wasm = os.path.join(ROOT, "target/wasm32-wasip1/release/jwt_policy.wasm")
    wasm = args.wasm or os.environ.get("JWT_POLICY_WASM")
    if wasm and os.path.exists(wasm) and os.path.exists(default_wasm) \
            and os.path.samefile(wasm, default_wasm):
        wasm = None
    wasm_file = os.path.abspath(wasm) if wasm else default_wasm
    wasm = wasm and wasm_file
    for path, hint in ((envoy_bin, "make setup"), (wasm_file, "make wasm")):
        if not os.path.exists(path):
            raise DemoFailure(f"{path} not found (run `{hint}`, or `make demo` which does both)")
    try:
        import ministack  # noqa: F401  (only to fail early with a clear message)
    except ImportError:
        raise DemoFailure("ministack is missing: run scripts/setup-demo.sh (make demo does)")

    global DEMO_DIR
    DEMO_DIR = os.path.abspath(args.state_dir or DEMO_DIR)
    marker = os.path.join(DEMO_DIR, ".jwt-policy-demo")
    if os.path.isdir(DEMO_DIR) and os.listdir(DEMO_DIR) and not os.path.exists(marker):
        raise DemoFailure(f"{DEMO_DIR} exists and is not a demo state directory; not touching it")
    shutil.rmtree(DEMO_DIR, ignore_errors=True)  # the previous run's state and logs
    for sub in ("ministack/state", "ministack/tmp"):
        os.makedirs(os.path.join(DEMO_DIR, sub))
    open(marker, "w").close()
    procs = Processes()
    try:
        out("jwt-policy demo: AWS Cognito client-credentials tokens checked by the jwt_policy")
        out(f"wasm filter in Envoy. Everything runs on 127.0.0.1; state and logs in {shown(DEMO_DIR)}/.")

        # -- processes --------------------------------------------------------
        ministack_url = start_ministack(procs)
        port_file = os.path.join(DEMO_DIR, "upstream.port")
        procs.start("upstream", [sys.executable, os.path.join(ROOT, "scripts/demo_upstream.py"),
                                 "--host", "127.0.0.1", "--port", "0", "--port-file", port_file],
                    os.path.join(DEMO_DIR, "upstream.log"))
        up_port = int(wait_until("upstream", lambda: os.path.exists(port_file) and open(port_file).read(), 10,
                                 procs.check_alive))
        out()
        out(f"  Cognito emulator (ministack): {ministack_url}   log: {shown(DEMO_DIR)}/ministack.log")
        out(f"  upstream echo service:        http://127.0.0.1:{up_port}   log: {shown(DEMO_DIR)}/upstream.log")

        ids = cognito_setup(ministack_url)
        with open(os.path.join(DEMO_DIR, "cognito.json"), "w") as f:
            json.dump(ids, f, indent=2)

        # -- Envoy --------------------------------------------------------------
        step("1e", "Start Envoy with envoy.yaml")
        with open(os.path.join(ROOT, "envoy.yaml")) as f:
            text = fill_placeholders(f.read(), ids)
        boot, changes = native_bootstrap(text, {"ministack": int(ministack_url.rsplit(":", 1)[1]), "upstream": up_port}, wasm)
        bootstrap_path = os.path.join(DEMO_DIR, "envoy.json")
        with open(bootstrap_path, "w") as f:
            json.dump(boot, f, indent=2)
        _, policy = plugin_config(boot)
        explain(f"""
            envoy.yaml holds the policy. Cognito assigned the pool and client ids
            just now, so the demo fills in envoy.yaml's two placeholders and, to
            run without containers, points its addresses at 127.0.0.1. Nothing
            else differs ({shown(bootstrap_path)}):
        """)
        out(f"  {POOL_PLACEHOLDER} -> {ids['user_pool_id']}")
        out(f"  {CLIENT_PLACEHOLDER} -> {ids['client_id']}")
        for c in changes:
            out("  " + c)
        provider = policy["providers"]["cognito"]
        show("issuer", provider["issuer"])
        show("audiences", provider["audiences"])
        show("remote_jwks", {k: provider["remote_jwks"][k] for k in ("cluster", "uri")})

        # The test kit's launcher (testkit/kit.py), as the Rust tests start
        # Envoy: it waits for admin /ready and reads the ports Envoy bound.
        info = procs.start_envoy(bootstrap_path, envoy_bin)
        envoy_log = info["log"]
        command(" ".join(shlex.quote(shown(a)) for a in info["argv"]))
        admin = f"http://127.0.0.1:{info['admin_port']}"
        envoy_url = f"http://127.0.0.1:{info['listeners']['main']}"
        show("Envoy listener", envoy_url)
        show("Envoy admin", admin)

        walkthrough(envoy_url, admin, ministack_url, ids, [
            "  The Envoy log (the filter logs under [wasm]: its configuration, every JWKS",
            "  fetch, and at debug level why each request was denied):",
            f"    {shown(envoy_log)}",
        ])
        wanted = ["JWKS for provider cognito fetched", "deny reason=scope", "deny reason=missing",
                  "deny reason=signature"]

        def filter_log_lines():
            with open(envoy_log, errors="replace") as f:
                lines = [l.rstrip() for l in f if "wasm log" in l]
            found = [next((l for l in lines if w in l), None) for w in wanted]
            return found if all(found) else None

        # Envoy writes its log file every 100 ms (--file-flush-interval-msec).
        for line in wait_until("the filter's lines in the Envoy log", filter_log_lines, 5):
            level = line.split("][")[2] if line.count("][") >= 2 else "?"
            out(f"    [{level}] " + line.split(": ", 1)[-1][:170])
        check(True, "the log shows the JWKS fetch through the cluster and each denial's reason")
        out()
        if args.serve:
            out("Demo complete: every step behaved as described. Still serving (--serve):")
            out(f"  export CLIENT_ID={ids['client_id']} CLIENT_SECRET={ids['client_secret']}")
            out(f"  TOKEN=$(curl -s -u \"$CLIENT_ID:$CLIENT_SECRET\" -d grant_type=client_credentials"
                f" {ministack_url}/oauth2/token | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')")
            out(f"  curl -i -X POST {envoy_url}{ORDER_PATH} -H \"authorization: Bearer $TOKEN\"")
            out(f"  curl -s {admin}/stats?filter=jwt_policy")
            out("Press Ctrl-C to stop everything.")
            while True:
                procs.check_alive()
                time.sleep(1)
        out("Demo complete: every step behaved as described. Stopping what the demo started.")
        return 0
    finally:
        procs.stop()


# --------------------------------------------------------------------------
# docker-compose entry points
# --------------------------------------------------------------------------

def wait_http(url, what, timeout=120):
    wait_until(what, lambda: request("GET", url, timeout=2).status == 200, timeout)


def compose_setup(args):
    wait_http(args.ministack + "/_ministack/health", "ministack")
    ids = cognito_setup(args.ministack)
    with open(args.envoy_yaml) as f:
        text = fill_placeholders(f.read(), ids)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    with open(args.state, "w") as f:
        json.dump(ids, f, indent=2)
    out()
    out(f"Wrote {args.out} (envoy.yaml with {POOL_PLACEHOLDER} and {CLIENT_PLACEHOLDER} filled in)")
    out(f"and {args.state} (pool id, client id and secret, for the walkthrough).")
    return 0


def compose_walkthrough(args):
    with open(args.state) as f:
        ids = json.load(f)
    wait_http(args.admin + "/ready", "Envoy admin")
    walkthrough(args.envoy, args.admin, args.ministack, ids, [
        "  The Envoy log: `docker compose logs envoy` (the filter logs under [wasm]).",
    ])
    out()
    out("Walkthrough complete: every step behaved as described.")
    return 0


def main():
    # (__doc__ is None under `python -OO`, as in the ministack image.)
    parser = argparse.ArgumentParser(description=(__doc__ or "jwt-policy demo").split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd")
    p_run = sub.add_parser("run", help="the whole demo, natively on 127.0.0.1 (default)")
    p_run.add_argument("--envoy", help="Envoy binary (default: $ENVOY_BIN or .venv/envoy)")
    p_run.add_argument("--wasm", help="filter wasm (default: $JWT_POLICY_WASM or envoy.yaml's path)")
    p_run.add_argument("--state-dir", help="state and logs (default: .demo/, emptied first)")
    p_run.add_argument("--serve", action="store_true",
                       help="after the walkthrough, keep everything running until Ctrl-C")
    p_setup = sub.add_parser("setup", help="compose: step 1 and the filled-in envoy.yaml")
    p_setup.add_argument("--ministack", default="http://ministack:4566")
    p_setup.add_argument("--envoy-yaml", default="/jwt-policy/envoy.yaml")
    p_setup.add_argument("--out", default="/demo-state/envoy.yaml")
    p_setup.add_argument("--state", default="/demo-state/cognito.json")
    p_walk = sub.add_parser("walkthrough", help="compose: steps 2-7 against a running Envoy")
    p_walk.add_argument("--envoy", default="http://127.0.0.1:10000")
    p_walk.add_argument("--admin", default="http://127.0.0.1:9901")
    p_walk.add_argument("--ministack", default="http://ministack:4566")
    p_walk.add_argument("--state", default="/demo-state/cognito.json")
    argv = sys.argv[1:]
    if not argv or argv[0] not in ("run", "setup", "walkthrough", "-h", "--help"):
        argv = ["run"] + argv  # `demo.py [--serve]` is `demo.py run [--serve]`
    args = parser.parse_args(argv)

    # Ctrl-C, SIGTERM and SIGHUP all end the demo through `finally`, which
    # stops every process it started (Ctrl-C is re-enabled even when the
    # demo was started with SIGINT ignored, as background jobs are).
    def terminate(signum, _frame):
        raise Stopped(signum)

    signal.signal(signal.SIGINT, terminate)
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    try:
        if args.cmd == "setup":
            return compose_setup(args)
        if args.cmd == "walkthrough":
            return compose_walkthrough(args)
        return run(args)
    except DemoFailure as e:
        out()
        out(f"DEMO FAILED: {e}")
        return 1
    except Stopped as e:
        out()
        out(f"Stopped by {signal.Signals(e.signum).name}: stopped everything the demo started.")
        return 128 + e.signum


if __name__ == "__main__":
    sys.exit(main())
