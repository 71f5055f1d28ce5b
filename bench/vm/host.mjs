// A minimal proxy-wasm host in JavaScript, for timing a filter's own code
// in V8 (Node's V8: the engine Envoy embeds) without Envoy around it.
//
// It implements the ABI 0.2.1 calls a filter makes on a request and at
// configuration: header maps, buffers, properties, shared data, metrics,
// time, logs, local responses, and WASI's clock/random/environ/fd_write.
// What it does not implement answers Unimplemented (12). Its own cost per
// call is a few JS operations, far below Envoy's; that is the point: what
// remains is the module's code. See bench/vm/run.mjs.

import { readFileSync } from "node:fs";
import { randomFillSync } from "node:crypto";

const OK = 0, NOT_FOUND = 1, BAD_ARGUMENT = 2, UNIMPLEMENTED = 12;
const enc = new TextEncoder();
const dec = new TextDecoder();

export class Host {
  constructor(wasmPath, { pluginConfig, log = () => {} }) {
    this.module = new WebAssembly.Module(readFileSync(wasmPath));
    this.pluginConfig = enc.encode(pluginConfig);
    this.log = log;
    this.shared = new Map(); // key -> { value: Uint8Array, cas }
    this.metrics = [];       // id -> { name, value }
    this.properties = new Map([["plugin_name", enc.encode("bench")], ["plugin_root_id", enc.encode("jwt_policy")]]);
    this.request = [];       // [[name, value: Uint8Array]]
    this.response = [];
    this.local = null;       // the last local response's status
    this.nowNs = BigInt(Date.now()) * 1000000n;
    const imports = { env: this.env(), wasi_snapshot_preview1: this.wasi() };
    this.instance = new WebAssembly.Instance(this.module, imports);
    this.x = this.instance.exports;
  }

  // Views of the VM's memory, made again only when it grows.
  mem() {
    const b = this.x.memory.buffer;
    if (this.viewed !== b) { this.viewed = b; this.dv = new DataView(b); this.u8 = new Uint8Array(b); }
    return this.dv;
  }
  bytes(ptr, len) { this.mem(); return this.u8.subarray(ptr, ptr + len); }
  str(ptr, len) { return dec.decode(this.bytes(ptr, len)); }

  // Hands `data` to the VM as Envoy does: memory the module allocates.
  give(data, retPtr, retSize) {
    if (data.length === 0) {
      this.mem().setUint32(retPtr, 0, true);
      this.mem().setUint32(retSize, 0, true);
      return OK;
    }
    const p = this.x.proxy_on_memory_allocate(data.length);
    this.bytes(p, data.length).set(data);
    const m = this.mem();
    m.setUint32(retPtr, p, true);
    m.setUint32(retSize, data.length, true);
    return OK;
  }

  map(type) {
    // 0 request headers, 2 response headers (trailers are empty here).
    if (type === 0) return this.request;
    if (type === 2) return this.response;
    return [];
  }

  // The map of `type` without entry `name`.
  drop(type, name) {
    const m = this.map(type).filter(([n]) => n !== name);
    if (type === 0) this.request = m; else if (type === 2) this.response = m;
    return m;
  }

  // A property path as the module encodes it (NUL-separated), dotted.
  path(ptr, len) { return this.str(ptr, len).split("\0").filter(Boolean).join("."); }

  static pairs(entries) {
    let size = 4;
    for (const [n, v] of entries) size += 8 + n.length + 1 + v.length + 1;
    const out = new Uint8Array(size);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, entries.length, true);
    let at = 4;
    for (const [n, v] of entries) {
      dv.setUint32(at, n.length, true);
      dv.setUint32(at + 4, v.length, true);
      at += 8;
    }
    for (const [n, v] of entries) {
      out.set(enc.encode(n), at); at += n.length + 1;
      out.set(v, at); at += v.length + 1;
    }
    return out;
  }

  env() {
    const h = this;
    const ok = () => OK;
    return {
      proxy_log(level, ptr, len) { h.log(level, h.str(ptr, len)); return OK; },
      proxy_get_log_level(ret) { h.mem().setUint32(ret, 2, true); return OK; }, // info
      proxy_set_effective_context: ok,
      proxy_set_tick_period_milliseconds: ok,
      proxy_get_current_time_nanoseconds(ret) { h.mem().setBigUint64(ret, h.nowNs, true); return OK; },
      proxy_get_buffer_bytes(type, start, max, retPtr, retSize) {
        // 6 VM configuration, 7 plugin configuration.
        const buf = type === 7 ? h.pluginConfig : new Uint8Array(0);
        return h.give(buf.subarray(start, start + max), retPtr, retSize);
      },
      proxy_set_buffer_bytes: () => UNIMPLEMENTED,
      proxy_get_header_map_pairs(type, retPtr, retSize) {
        // The request's encoding is made once per header set (the module
        // only reads it); Envoy's cost of this call is not what is measured.
        if (type === 0) {
          if (h.requestPairsOf !== h.request) { h.requestPairsOf = h.request; h.requestPairs = Host.pairs(h.request); }
          return h.give(h.requestPairs, retPtr, retSize);
        }
        return h.give(Host.pairs(h.map(type)), retPtr, retSize);
      },
      proxy_set_header_map_pairs: () => UNIMPLEMENTED,
      proxy_get_header_map_value(type, kp, kl, retPtr, retSize) {
        const k = h.str(kp, kl);
        const e = h.map(type).find(([n]) => n === k);
        return e ? h.give(e[1], retPtr, retSize) : NOT_FOUND;
      },
      proxy_replace_header_map_value(type, kp, kl, vp, vl) {
        const k = h.str(kp, kl);
        h.drop(type, k).push([k, h.bytes(vp, vl).slice()]);
        return OK;
      },
      proxy_add_header_map_value(type, kp, kl, vp, vl) {
        h.map(type).push([h.str(kp, kl), h.bytes(vp, vl).slice()]);
        return OK;
      },
      proxy_remove_header_map_value(type, kp, kl) {
        h.drop(type, h.str(kp, kl));
        return OK;
      },
      proxy_get_property(pp, pl, retPtr, retSize) {
        const v = h.properties.get(h.path(pp, pl));
        return v ? h.give(v, retPtr, retSize) : NOT_FOUND;
      },
      proxy_set_property(pp, pl, vp, vl) {
        h.properties.set(h.path(pp, pl), h.bytes(vp, vl).slice());
        return OK;
      },
      proxy_get_shared_data(kp, kl, retPtr, retSize, retCas) {
        const e = h.shared.get(h.str(kp, kl));
        if (!e) return NOT_FOUND;
        h.mem().setUint32(retCas, e.cas, true);
        return h.give(e.value, retPtr, retSize);
      },
      proxy_set_shared_data(kp, kl, vp, vl, cas) {
        const k = h.str(kp, kl);
        const e = h.shared.get(k);
        if (cas !== 0 && e && e.cas !== cas) return 8; // CasMismatch
        h.shared.set(k, { value: h.bytes(vp, vl).slice(), cas: (e ? e.cas : 0) + 1 });
        return OK;
      },
      proxy_define_metric(kind, np, nl, retId) {
        h.metrics.push({ name: h.str(np, nl), value: 0n });
        h.mem().setUint32(retId, h.metrics.length - 1, true);
        return OK;
      },
      proxy_increment_metric(id, by) { if (h.metrics[id]) h.metrics[id].value += BigInt(by); return OK; },
      proxy_record_metric(id, v) { if (h.metrics[id]) h.metrics[id].value = BigInt(v); return OK; },
      proxy_get_metric(id, ret) {
        if (!h.metrics[id]) return NOT_FOUND;
        h.mem().setBigUint64(ret, h.metrics[id].value, true);
        return OK;
      },
      proxy_send_local_response(status) { h.local = status; return OK; },
      proxy_continue_stream: ok,
      proxy_close_stream: ok,
      proxy_done: ok,
      proxy_get_status: () => NOT_FOUND,
      proxy_http_call: () => UNIMPLEMENTED,
      proxy_call_foreign_function: () => NOT_FOUND,
      proxy_grpc_call: () => UNIMPLEMENTED,
      proxy_grpc_stream: () => UNIMPLEMENTED,
      proxy_grpc_send: () => UNIMPLEMENTED,
      proxy_grpc_cancel: () => UNIMPLEMENTED,
      proxy_grpc_close: () => UNIMPLEMENTED,
      proxy_register_shared_queue: () => UNIMPLEMENTED,
      proxy_resolve_shared_queue: () => UNIMPLEMENTED,
      proxy_enqueue_shared_queue: () => UNIMPLEMENTED,
      proxy_dequeue_shared_queue: () => UNIMPLEMENTED,
    };
  }

  wasi() {
    const h = this;
    return {
      clock_time_get(id, precision, ret) { h.mem().setBigUint64(ret, h.nowNs, true); return 0; },
      random_get(ptr, len) { randomFillSync(h.bytes(ptr, len)); return 0; },
      environ_sizes_get(countPtr, sizePtr) {
        h.mem().setUint32(countPtr, 0, true);
        h.mem().setUint32(sizePtr, 0, true);
        return 0;
      },
      environ_get: () => 0,
      fd_write(fd, iovs, n, retWritten) {
        const m = h.mem();
        let total = 0;
        for (let i = 0; i < n; i++) {
          const p = m.getUint32(iovs + 8 * i, true), l = m.getUint32(iovs + 8 * i + 4, true);
          h.log(fd === 2 ? 4 : 2, h.str(p, l));
          total += l;
        }
        m.setUint32(retWritten, total, true);
        return 0;
      },
      proc_exit(code) { throw new Error(`proc_exit(${code})`); },
    };
  }

  // The root context's start, as Envoy runs it. False when refused.
  // A callback the module does not export is not called (as in Envoy),
  // and counts as the host's default answer.
  start(rootId = 1) {
    if (this.x._initialize) this.x._initialize();
    this.x.proxy_on_context_create(rootId, 0);
    if (this.x.proxy_on_vm_start && !this.x.proxy_on_vm_start(rootId, 0)) return false;
    return this.x.proxy_on_configure(rootId, this.pluginConfig.length) !== 0;
  }

  // One request's callbacks, in Envoy's order; the status it ends with
  // (200 when forwarded).
  request_(ctx, rootId, headers) {
    this.request = headers;
    this.response = [];
    this.local = null;
    const x = this.x;
    x.proxy_on_context_create(ctx, rootId);
    x.proxy_on_request_headers(ctx, headers.length, 1);
    if (this.local === null && x.proxy_on_response_headers) {
      this.response = [[":status", enc.encode("200")]];
      x.proxy_on_response_headers(ctx, 1, 0);
    }
    if (x.proxy_on_log) x.proxy_on_log(ctx);
    if (x.proxy_on_done) x.proxy_on_done(ctx);
    x.proxy_on_delete(ctx);
    return this.local ?? 200;
  }
}

export { enc };
