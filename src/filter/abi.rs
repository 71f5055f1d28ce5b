//! The proxy-wasm hostcalls this filter uses, declared here with plain
//! integer types and wrapped so that every outcome is a `Result`.
//!
//! The Rust SDK's own wrappers `panic!` on any status they do not expect
//! (and their String getters on non-UTF-8 bytes); in Envoy a panic aborts the
//! VM. Host statuses are `u32` here, so an unknown status is a value, not
//! undefined behaviour. The SDK still provides the entry points, context
//! dispatch and the allocator (`proxy_on_memory_allocate`) whose buffers the
//! host returns to us.

use std::ptr::{null, null_mut};

/// A host status other than Ok.
pub type Status = u32;
pub const OK: Status = 0;
pub const NOT_FOUND: Status = 1;
pub const CAS_MISMATCH: Status = 8;

#[derive(Clone, Copy)]
#[repr(u32)]
pub enum Map {
    RequestHeaders = 0,
    HttpCallResponseHeaders = 6,
}

#[derive(Clone, Copy)]
#[repr(u32)]
pub enum Buffer {
    HttpCallResponseBody = 4,
    PluginConfiguration = 7,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum Level {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

#[derive(Clone, Copy)]
#[repr(u32)]
pub enum MetricKind {
    Counter = 0,
    Gauge = 1,
}

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_log_level(return_level: *mut u32) -> u32;
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map_type: u32, key_data: *const u8, key_size: usize) -> u32;
    fn proxy_get_property(
        path_data: *const u8,
        path_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_set_property(
        path_data: *const u8,
        path_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_map_data: *mut *mut u8,
        return_map_size: *mut usize,
    ) -> u32;
    fn proxy_get_shared_data(
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
        return_cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_continue_stream(stream_type: u32) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        status_code_details_data: *const u8,
        status_code_details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_call_foreign_function(
        function_name_data: *const u8,
        function_name_size: usize,
        arguments_data: *const u8,
        arguments_size: usize,
        results_data: *mut *mut u8,
        results_size: *mut usize,
    ) -> u32;
    fn proxy_define_metric(
        metric_type: u32,
        name_data: *const u8,
        name_size: usize,
        return_id: *mut u32,
    ) -> u32;
    fn proxy_increment_metric(metric_id: u32, offset: i64) -> u32;
    fn proxy_record_metric(metric_id: u32, value: u64) -> u32;
    fn proxy_get_metric(metric_id: u32, return_value: *mut u64) -> u32;
}

fn check(status: u32) -> Result<(), Status> {
    if status == OK { Ok(()) } else { Err(status) }
}

/// Takes ownership of a buffer the host allocated through the SDK's
/// `proxy_on_memory_allocate` (a boxed slice of exactly `size` bytes).
///
/// # Safety
/// `data` must be null or a pointer the host just returned with `size`.
unsafe fn take(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        Vec::new()
    } else {
        // SAFETY: the SDK allocates `size` bytes as a Vec<u8> with capacity
        // `size`, leaks it, and hands it over; we take it back exactly once.
        unsafe { Vec::from_raw_parts(data, size, size) }
    }
}

pub fn log(level: Level, message: &str) {
    // SAFETY: pointer and length of a live &str.
    unsafe {
        proxy_log(level as u32, message.as_ptr(), message.len());
    }
}

/// The host's log level for this plugin, to skip formatting debug lines
/// nobody will see.
pub fn log_level() -> Level {
    let mut level = 0u32;
    // SAFETY: out-pointer to a local.
    let status = unsafe { proxy_get_log_level(&mut level) };
    if status != OK {
        return Level::Info;
    }
    match level {
        0 => Level::Trace,
        1 => Level::Debug,
        2 => Level::Info,
        3 => Level::Warn,
        4 => Level::Error,
        _ => Level::Critical,
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    let mut nanos = 0u64;
    // SAFETY: out-pointer to a local.
    let status = unsafe { proxy_get_current_time_nanoseconds(&mut nanos) };
    if status == OK { nanos / 1_000_000 } else { 0 }
}

pub fn set_tick_period_ms(period: u32) -> Result<(), Status> {
    // SAFETY: plain value.
    check(unsafe { proxy_set_tick_period_milliseconds(period) })
}

pub fn buffer(kind: Buffer, max: usize) -> Result<Vec<u8>, Status> {
    let mut data = null_mut();
    let mut size = 0usize;
    // SAFETY: out-pointers to locals; the buffer is taken over below.
    let status = unsafe { proxy_get_buffer_bytes(kind as u32, 0, max, &mut data, &mut size) };
    match status {
        OK => Ok(unsafe { take(data, size) }),
        NOT_FOUND => Ok(Vec::new()),
        other => Err(other),
    }
}

/// First value of a header; `Ok(None)` when absent.
pub fn header(map: Map, name: &str) -> Result<Option<Vec<u8>>, Status> {
    let mut data = null_mut();
    let mut size = 0usize;
    // SAFETY: pointer/length of a live &str; out-pointers to locals.
    let status = unsafe {
        proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), &mut data, &mut size)
    };
    match status {
        OK => Ok(Some(unsafe { take(data, size) })),
        NOT_FOUND => Ok(None),
        other => Err(other),
    }
}

/// Every entry of a header map in the proxy-wasm pairs encoding (parsed by
/// [`crate::request::RequestHead::from_pairs_buffer`]).
pub fn header_pairs(map: Map) -> Result<Vec<u8>, Status> {
    let mut data = null_mut();
    let mut size = 0usize;
    // SAFETY: out-pointers to locals; the buffer is taken over below.
    let status = unsafe { proxy_get_header_map_pairs(map as u32, &mut data, &mut size) };
    match status {
        OK => Ok(unsafe { take(data, size) }),
        NOT_FOUND => Ok(Vec::new()),
        other => Err(other),
    }
}

pub fn set_request_header(name: &str, value: &[u8]) -> Result<(), Status> {
    // SAFETY: pointers/lengths of live slices.
    check(unsafe {
        proxy_replace_header_map_value(
            Map::RequestHeaders as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

pub fn remove_request_header(name: &str) -> Result<(), Status> {
    // SAFETY: pointer/length of a live &str.
    check(unsafe {
        proxy_remove_header_map_value(Map::RequestHeaders as u32, name.as_ptr(), name.len())
    })
}

/// A property such as `["xds", "route_name"]`; `Ok(None)` when absent.
pub fn property(path: &[&str]) -> Result<Option<Vec<u8>>, Status> {
    let encoded = path.join("\0");
    let mut data = null_mut();
    let mut size = 0usize;
    // SAFETY: pointer/length of a live String; out-pointers to locals.
    let status =
        unsafe { proxy_get_property(encoded.as_ptr(), encoded.len(), &mut data, &mut size) };
    match status {
        OK => Ok(Some(unsafe { take(data, size) })),
        NOT_FOUND => Ok(None),
        other => Err(other),
    }
}

/// Sets a property of the current stream; Envoy keeps it as filter state
/// `wasm.<path>`, readable by later filters and access logs.
pub fn set_property(path: &[&str], value: &[u8]) -> Result<(), Status> {
    let encoded = path.join("\0");
    // SAFETY: pointers/lengths of live buffers.
    check(unsafe {
        proxy_set_property(encoded.as_ptr(), encoded.len(), value.as_ptr(), value.len())
    })
}

/// A shared-data value and its CAS token; `Ok(None)` when the key is absent.
pub fn shared_get(key: &str) -> Result<Option<(Vec<u8>, u32)>, Status> {
    let mut data = null_mut();
    let mut size = 0usize;
    let mut cas = 0u32;
    // SAFETY: pointer/length of a live &str; out-pointers to locals.
    let status =
        unsafe { proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut size, &mut cas) };
    match status {
        OK => Ok(Some((unsafe { take(data, size) }, cas))),
        NOT_FOUND => Ok(None),
        other => Err(other),
    }
}

/// Writes a shared-data value; with `cas` > 0 only if the key still has
/// that CAS token (else `Err(CAS_MISMATCH)`).
pub fn shared_set(key: &str, value: &[u8], cas: u32) -> Result<(), Status> {
    // SAFETY: pointers/lengths of live slices.
    check(unsafe {
        proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), cas)
    })
}

pub fn resume_request() -> Result<(), Status> {
    // SAFETY: plain value (stream type 0: HTTP request).
    check(unsafe { proxy_continue_stream(0) })
}

/// Answers the current request locally.
pub fn send_response(status: u16, headers: &[(&str, &[u8])], body: &[u8]) -> Result<(), Status> {
    let map = serialize_pairs(headers);
    // SAFETY: pointers/lengths of live buffers.
    check(unsafe {
        proxy_send_local_response(
            u32::from(status),
            null(),
            0,
            body.as_ptr(),
            body.len(),
            map.as_ptr(),
            map.len(),
            -1,
        )
    })
}

/// Starts an HTTP call to `cluster`; returns its token. This one goes
/// through the SDK, which must record which context made the call to route
/// the answer back to it (`on_http_call_response`). Envoy answers it only
/// with Ok, BadArgument (unknown cluster, missing pseudo-header) or
/// InternalFailure, all of which the SDK returns as values.
pub fn http_call(cluster: &str, headers: &[(&str, &str)], timeout_ms: u32) -> Result<u32, Status> {
    proxy_wasm::hostcalls::dispatch_http_call(
        cluster,
        headers.to_vec(),
        None,
        Vec::new(),
        std::time::Duration::from_millis(u64::from(timeout_ms)),
    )
    .map_err(|status| status as u32)
}

pub fn set_effective_context(context_id: u32) -> Result<(), Status> {
    // SAFETY: plain value.
    check(unsafe { proxy_set_effective_context(context_id) })
}

/// Calls a host extension function.
pub fn call_foreign(name: &str, args: &[u8]) -> Result<Vec<u8>, Status> {
    let mut data = null_mut();
    let mut size = 0usize;
    // SAFETY: pointers/lengths of live buffers; out-pointers to locals.
    let status = unsafe {
        proxy_call_foreign_function(
            name.as_ptr(),
            name.len(),
            args.as_ptr(),
            args.len(),
            &mut data,
            &mut size,
        )
    };
    let result = unsafe { take(data, size) };
    check(status).map(|()| result)
}

pub fn define_metric(kind: MetricKind, name: &str) -> Result<u32, Status> {
    let mut id = 0u32;
    // SAFETY: pointer/length of a live &str; out-pointer to a local.
    let status = unsafe { proxy_define_metric(kind as u32, name.as_ptr(), name.len(), &mut id) };
    check(status).map(|()| id)
}

pub fn increment_metric(id: u32, by: i64) {
    // SAFETY: plain values.
    unsafe {
        proxy_increment_metric(id, by);
    }
}

pub fn get_metric(id: u32) -> Option<u64> {
    let mut value = 0u64;
    // SAFETY: out-pointer to a local.
    let status = unsafe { proxy_get_metric(id, &mut value) };
    (status == OK).then_some(value)
}

/// Bytes of this VM's linear memory.
pub fn memory_bytes() -> u64 {
    let pages = core::arch::wasm32::memory_size(0);
    u64::try_from(pages).unwrap_or(0).saturating_mul(65536)
}

pub fn record_metric(id: u32, value: u64) {
    // SAFETY: plain values.
    unsafe {
        proxy_record_metric(id, value);
    }
}

/// The proxy-wasm header map encoding: count, then (name length, value
/// length) pairs, then each name and value NUL-terminated (u32 little-endian).
fn serialize_pairs(pairs: &[(&str, &[u8])]) -> Vec<u8> {
    let len32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    let total: usize = pairs
        .iter()
        .map(|(n, v)| n.len().saturating_add(v.len()).saturating_add(10))
        .sum();
    let mut out = Vec::with_capacity(total.saturating_add(4));
    out.extend_from_slice(&len32(pairs.len()));
    for (name, value) in pairs {
        out.extend_from_slice(&len32(name.len()));
        out.extend_from_slice(&len32(value.len()));
    }
    for (name, value) in pairs {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
    out
}
