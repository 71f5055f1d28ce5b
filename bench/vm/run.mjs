// `make bench-vm`: what one request costs inside the VM, without Envoy.
//
// Runs the filter's request callbacks (context create, request headers,
// response headers, log, done, delete: Envoy's order) in Node's V8 against
// bench/vm/host.mjs, a host whose own calls cost next to nothing, and
// prints nanoseconds per request, median of interleaved rounds. What it
// measures is the module's code as TurboFan compiles it: the part of
// `make bench`'s Envoy CPU per request that is ours, resolved to a few
// nanoseconds where `make bench` resolves a few hundred. It does not
// measure Envoy's side of the hostcalls (bench/PROFILE.md prices those).
//
//   node bench/vm/run.mjs [--rounds 7] [--requests 200000] [--tokens DIR] \
//        [--floor target/floor/wasm32-wasip1/release/bench_floor.wasm] \
//        NAME=module.wasm ...
//
// Scenarios, each on every module:
//   anonymous  one allow_anonymous rule, no token (make bench's F1)
//   hit        the bench policy, one valid token on every request (C,
//              repeated token; keys configured locally: no callout here)
//   deny       the bench policy, no token: 401
// (`--scenario NAME` runs one of them: for a profiler.)
// DIR holds jwks.json and token.txt (bench/vm/run.sh mints them with
// bench/bench.py's minter; default target/bench/vm-tokens).

import { readFileSync } from "node:fs";
import { Host, enc } from "./host.mjs";

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = args[i + 1];
  args.splice(i, 2);
  return v;
};
const rounds = Number(opt("rounds", 7));
const perRound = Number(opt("requests", 200000));
const tokens = opt("tokens", "target/bench/vm-tokens");
const only = opt("scenario", null);
const floor = opt("floor", null);
const modules = args.map((a) => {
  const [name, path] = a.includes("=") ? a.split("=", 2) : [a, a];
  return { name, path };
});
// The floor (bench/floor, configured `nop`: it does nothing) runs every
// scenario too: the host's and the SDK's share, to subtract.
if (floor) modules.unshift({ name: "floor", path: floor, nop: true });
if (modules.length === 0) {
  console.error("usage: node bench/vm/run.mjs [--rounds N] [--requests N] [--tokens DIR] NAME=module.wasm ...");
  process.exit(2);
}

const ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_BenchPool1";
const CLIENT_ID = "4bench0client0id0000000000";
const SCOPE = "order/post.order";
const jwks = JSON.parse(readFileSync(`${tokens}/jwks.json`, "utf8"));
const token = readFileSync(`${tokens}/token.txt`, "utf8").trim();

const policy = JSON.stringify({
  token_cache: { max_entries: 1000 },
  providers: {
    cognito: {
      issuer: ISSUER, audiences: [CLIENT_ID], token_use: "access", algorithms: ["RS256"],
      local_jwks: jwks, clock_skew_s: 60,
    },
  },
  rules: [{ name: "orders", match: { prefix: "/" }, requires: { provider: "cognito", scopes: [SCOPE] } }],
  unmatched: "deny",
});
const anonymous = JSON.stringify({
  providers: {}, rules: [{ name: "open", match: { prefix: "/" }, allow_anonymous: true }],
});

// What Envoy hands a filter for wrk's request (HTTP/1.1, after the HCM
// added its own headers).
const headers = (auth) => {
  const h = [
    [":authority", "127.0.0.1:10000"], [":path", "/api/v1/order"], [":method", "GET"],
    [":scheme", "http"], ["x-forwarded-proto", "http"],
    ["x-request-id", "6f1c2a0e-8d8b-4b9e-9a51-0c1d2e3f4a5b"],
  ];
  if (auth) h.push(["authorization", `Bearer ${auth}`]);
  return h.map(([n, v]) => [n, enc.encode(v)]);
};

const scenarios = [
  { name: "anonymous", config: anonymous, headers: headers(null), status: 200 },
  { name: "hit", config: policy, headers: headers(token), status: 200 },
  { name: "deny", config: policy, headers: headers(null), status: 401 },
];

if (only) scenarios.splice(0, scenarios.length, ...scenarios.filter((s) => s.name === only));

const logs = [];
const runs = [];
for (const m of modules) {
  for (const s of scenarios) {
    const host = new Host(m.path, {
      pluginConfig: m.nop ? "nop" : s.config,
      log: (level, text) => { if (level >= 3) logs.push(`${m.name} ${s.name}: ${text}`); },
    });
    if (!host.start()) {
      console.error(`${m.name}: configuration refused\n${logs.join("\n")}`);
      process.exit(1);
    }
    runs.push({ module: m.name, scenario: s, expect: m.nop ? 200 : s.status, host, ctx: 2, ns: [] });
  }
}

const once = (r) => {
  const status = r.host.request_(r.ctx++, 1, r.scenario.headers);
  if (status !== r.expect) {
    throw new Error(`${r.module} ${r.scenario.name}: status ${status}, expected ${r.expect}\n${logs.join("\n")}`);
  }
};

// Warm-up: the caches fill (bench/vm/run.sh passes --no-liftoff, as Envoy
// does, so TurboFan has compiled every function at load).
for (const r of runs) for (let i = 0; i < 50000; i++) once(r);

for (let round = 0; round < rounds; round++) {
  for (const r of runs) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < perRound; i++) once(r);
    r.ns.push(Number(process.hrtime.bigint() - t0) / perRound);
  }
}

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
console.log(`node ${process.version} (V8 ${process.versions.v8}), ${rounds} rounds of ${perRound} requests, ns per request (median; min-max)`);
const cell = (r) => `${median(r.ns).toFixed(0)} (${Math.min(...r.ns).toFixed(0)}-${Math.max(...r.ns).toFixed(0)})`;
const head = ["scenario", ...modules.map((m) => m.name)];
if (floor) head.push(...modules.filter((m) => !m.nop).map((m) => `${m.name}-floor`));
console.log(head.join("\t"));
for (const s of scenarios) {
  const of = (m) => runs.find((x) => x.module === m.name && x.scenario === s);
  const row = [s.name, ...modules.map((m) => cell(of(m)))];
  if (floor) {
    const f = median(of(modules[0]).ns);
    row.push(...modules.filter((m) => !m.nop).map((m) => (median(of(m).ns) - f).toFixed(0)));
  }
  console.log(row.join("\t"));
}
