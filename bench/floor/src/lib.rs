//! The proxy-wasm floor for `make bench` (see Cargo.toml): listener F0 is
//! this filter with the configuration `nop`; the probe listeners
//! (`BENCH_PROBES=1`) configure `<kind>:<n>` and make exactly `n` hostcalls
//! of that kind in each request's `on_http_request_headers`. The hostcalls
//! are declared raw, as the filter's `src/filter/abi.rs` declares them, so a
//! probe pays what the filter pays and nothing of the SDK's own wrapping.
//!
//! Kinds (what the filter does per request with each, bench/PROFILE.md):
//!
//! | kind | hostcall |
//! |---|---|
//! | `nop` | none |
//! | `clock` | `proxy_get_current_time_nanoseconds` |
//! | `header_pairs` | `proxy_get_header_map_pairs` (request headers, the whole map copied in) |
//! | `header` | `proxy_get_header_map_value` of `authorization` |
//! | `header_absent` | `proxy_get_header_map_value` of a header the request lacks |
//! | `replace` | `proxy_replace_header_map_value` (`x-floor-probe: 1`) |
//! | `remove` | `proxy_remove_header_map_value` of a header the request lacks |
//! | `remove_add` | `proxy_remove_header_map_value` then `proxy_add_header_map_value` (two calls, counted as one probe) |
//! | `shared_get` | `proxy_get_shared_data` of a 40-byte value (the size of a remote JWKS version record) |
//! | `property` | `proxy_get_property` of `xds.route_name` |
//! | `set_property` | `proxy_set_property` (filter state `wasm.floor_probe`) |
//! | `metric` | `proxy_increment_metric` of a counter |
//! | `log_level` | `proxy_get_log_level` |

#![allow(clippy::missing_safety_doc)]

use std::ptr::null_mut;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel};

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    fn proxy_get_header_map_pairs(map: u32, data: *mut *mut u8, size: *mut usize) -> u32;
    fn proxy_get_header_map_value(
        map: u32,
        key: *const u8,
        key_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map: u32,
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_add_header_map_value(
        map: u32,
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map: u32, key: *const u8, key_size: usize) -> u32;
    fn proxy_get_shared_data(
        key: *const u8,
        key_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
        cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key: *const u8,
        key_size: usize,
        value: *const u8,
        value_size: usize,
        cas: u32,
    ) -> u32;
    fn proxy_get_property(
        path: *const u8,
        path_size: usize,
        data: *mut *mut u8,
        size: *mut usize,
    ) -> u32;
    fn proxy_set_property(
        path: *const u8,
        path_size: usize,
        value: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_define_metric(kind: u32, name: *const u8, name_size: usize, id: *mut u32) -> u32;
    fn proxy_increment_metric(id: u32, offset: i64) -> u32;
    fn proxy_get_log_level(level: *mut u32) -> u32;
}

const REQUEST_HEADERS: u32 = 0;
const SHARED_KEY: &str = "bench-floor/probe";
const ROUTE_NAME: &[u8] = b"xds\0route_name";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Nop,
    Clock,
    HeaderPairs,
    Header,
    HeaderAbsent,
    Replace,
    Remove,
    RemoveAdd,
    SharedGet,
    Property,
    SetProperty,
    Metric,
    LogLevel,
}

impl Kind {
    fn parse(name: &str) -> Option<Kind> {
        Some(match name {
            "nop" => Kind::Nop,
            "clock" => Kind::Clock,
            "header_pairs" => Kind::HeaderPairs,
            "header" => Kind::Header,
            "header_absent" => Kind::HeaderAbsent,
            "replace" => Kind::Replace,
            "remove" => Kind::Remove,
            "remove_add" => Kind::RemoveAdd,
            "shared_get" => Kind::SharedGet,
            "property" => Kind::Property,
            "set_property" => Kind::SetProperty,
            "metric" => Kind::Metric,
            "log_level" => Kind::LogLevel,
            _ => return None,
        })
    }
}

#[derive(Clone, Copy)]
struct Probe {
    kind: Kind,
    n: u32,
    metric: u32,
}

/// Frees a buffer the host allocated through the SDK's allocator.
unsafe fn free(data: *mut u8, size: usize) {
    if !data.is_null() {
        drop(unsafe { Vec::from_raw_parts(data, size, size) });
    }
}

impl Probe {
    unsafe fn once(&self) {
        let (mut data, mut size) = (null_mut(), 0usize);
        unsafe {
            match self.kind {
                Kind::Nop => {}
                Kind::Clock => {
                    let mut t = 0u64;
                    proxy_get_current_time_nanoseconds(&mut t);
                }
                Kind::HeaderPairs => {
                    proxy_get_header_map_pairs(REQUEST_HEADERS, &mut data, &mut size);
                }
                Kind::Header | Kind::HeaderAbsent => {
                    let key: &[u8] = if self.kind == Kind::Header {
                        b"authorization"
                    } else {
                        b"x-floor-absent"
                    };
                    proxy_get_header_map_value(
                        REQUEST_HEADERS,
                        key.as_ptr(),
                        key.len(),
                        &mut data,
                        &mut size,
                    );
                }
                Kind::Replace => {
                    let (k, v) = (b"x-floor-probe", b"1");
                    proxy_replace_header_map_value(
                        REQUEST_HEADERS,
                        k.as_ptr(),
                        k.len(),
                        v.as_ptr(),
                        v.len(),
                    );
                }
                Kind::Remove => {
                    let k = b"x-floor-absent";
                    proxy_remove_header_map_value(REQUEST_HEADERS, k.as_ptr(), k.len());
                }
                Kind::RemoveAdd => {
                    let (k, v) = (b"x-floor-probe", b"1");
                    proxy_remove_header_map_value(REQUEST_HEADERS, k.as_ptr(), k.len());
                    proxy_add_header_map_value(
                        REQUEST_HEADERS,
                        k.as_ptr(),
                        k.len(),
                        v.as_ptr(),
                        v.len(),
                    );
                }
                Kind::SharedGet => {
                    let mut cas = 0u32;
                    proxy_get_shared_data(
                        SHARED_KEY.as_ptr(),
                        SHARED_KEY.len(),
                        &mut data,
                        &mut size,
                        &mut cas,
                    );
                }
                Kind::Property => {
                    proxy_get_property(ROUTE_NAME.as_ptr(), ROUTE_NAME.len(), &mut data, &mut size);
                }
                Kind::SetProperty => {
                    let (k, v) = (b"floor_probe", b"1");
                    proxy_set_property(k.as_ptr(), k.len(), v.as_ptr(), v.len());
                }
                Kind::Metric => {
                    proxy_increment_metric(self.metric, 1);
                }
                Kind::LogLevel => {
                    let mut level = 0u32;
                    proxy_get_log_level(&mut level);
                }
            }
            free(data, size);
        }
    }
}

struct Root {
    probe: Probe,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, size: usize) -> bool {
        let config = proxy_wasm::hostcalls::get_buffer(BufferType::PluginConfiguration, 0, size)
            .ok()
            .flatten()
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&config);
        let (kind, n) = text.trim().split_once(':').unwrap_or((text.trim(), "1"));
        let (Some(kind), Ok(n)) = (Kind::parse(kind), n.parse::<u32>()) else {
            proxy_wasm::hostcalls::log(LogLevel::Error, &format!("bench floor: bad configuration {text:?}"))
                .ok();
            return false;
        };
        let mut metric = 0u32;
        let name = b"bench_floor.probe";
        let value = [b'v'; 40];
        unsafe {
            proxy_define_metric(0, name.as_ptr(), name.len(), &mut metric);
            proxy_set_shared_data(SHARED_KEY.as_ptr(), SHARED_KEY.len(), value.as_ptr(), value.len(), 0);
        }
        self.probe = Probe { kind, n, metric };
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request { probe: self.probe }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Request {
    probe: Probe,
}

impl Context for Request {}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        for _ in 0..self.probe.n {
            // SAFETY: every hostcall gets pointers to live locals and slices.
            unsafe { self.probe.once() };
        }
        Action::Continue
    }
}

/// The callbacks this floor implements: `make bench-floor` trims the
/// SDK's other entry points (tools/wasm-trim), as `make wasm` does the
/// filter's, so F0 enters the VM per request only to create the context,
/// for the request headers, and to delete it: the fewest any proxy-wasm
/// filter can.
#[used]
#[unsafe(link_section = "wasm_trim.callbacks")]
static CALLBACKS: [u8; 108] = *b"proxy_on_memory_allocate proxy_on_context_create proxy_on_delete \
proxy_on_configure proxy_on_request_headers";

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root { probe: Probe { kind: Kind::Nop, n: 0, metric: 0 } })
    });
}}
