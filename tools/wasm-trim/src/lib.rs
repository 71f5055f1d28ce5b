//! Trims a WebAssembly module's exports to the proxy-wasm callbacks it
//! declares.
//!
//! A proxy-wasm host calls a callback only when the module exports it
//! (proxy-wasm-cpp-host checks each export once at load, then enters the VM
//! for it on every event). The Rust SDK exports every callback of the ABI
//! and answers the ones a filter does not override with a default, so
//! Envoy enters the VM for response headers, response body, `on_log` and
//! `on_done` on every request of a filter that only looks at request
//! headers. What is not exported is not called; the host then applies the
//! same default (continue; done).
//!
//! The module says which callbacks it implements in a custom section,
//! [`DECLARATION`]: their export names, separated by whitespace. [`trim`]
//! removes every export whose name starts with `proxy_on_` and is not
//! declared, and refuses a module without the section or one that declares
//! a callback it does not export (a typo would otherwise remove the real
//! one). Everything else (memory, `proxy_abi_version_*`, `_initialize`,
//! custom sections, code) is copied byte for byte. Trimming a trimmed
//! module changes nothing.

use std::fmt;

/// The custom section naming the callbacks a module implements.
pub const DECLARATION: &str = "wasm_trim.callbacks";

/// The prefix of every proxy-wasm callback export.
pub const CALLBACK_PREFIX: &str = "proxy_on_";

const MAGIC: &[u8; 4] = b"\0asm";
const VERSION: &[u8; 4] = &[1, 0, 0, 0];
const CUSTOM: u8 = 0;
const EXPORT: u8 = 7;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Not a WebAssembly 1.0 binary module.
    NotWasm,
    /// A section, name or number runs past its end.
    Truncated(&'static str),
    /// An export or section name that is not UTF-8.
    BadName,
    /// No [`DECLARATION`] section: nothing says what to keep.
    Undeclared,
    /// Declared callbacks the module does not export.
    NotExported(Vec<String>),
    /// More than one export section.
    TwoExportSections,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotWasm => write!(f, "not a WebAssembly 1.0 module"),
            Error::Truncated(what) => write!(f, "malformed module: {what} runs past its end"),
            Error::BadName => write!(f, "malformed module: a name is not UTF-8"),
            Error::Undeclared => write!(
                f,
                "the module has no `{DECLARATION}` custom section naming the callbacks it implements"
            ),
            Error::NotExported(names) => write!(
                f,
                "declared in `{DECLARATION}` but not exported: {}",
                names.join(", ")
            ),
            Error::TwoExportSections => write!(f, "malformed module: two export sections"),
        }
    }
}

impl std::error::Error for Error {}

/// One export: its name, kind byte and the rest of the entry as encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub name: String,
    /// The entry's bytes in the export section (name, kind, index).
    raw: Vec<u8>,
}

/// A section: its id and payload, as in the module.
struct Section<'m> {
    id: u8,
    payload: &'m [u8],
}

/// Reads an unsigned LEB128 `u32` at `*at`, advancing it.
fn read_u32(buf: &[u8], at: &mut usize, what: &'static str) -> Result<u32, Error> {
    let mut value: u32 = 0;
    for shift in [0u32, 7, 14, 21, 28] {
        let byte = *buf.get(*at).ok_or(Error::Truncated(what))?;
        *at = at.checked_add(1).ok_or(Error::Truncated(what))?;
        // The fifth byte holds the top four bits; more is not a u32.
        if shift == 28 && byte > 0x0f {
            return Err(Error::Truncated(what));
        }
        value |= u32::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(Error::Truncated(what))
}

/// Encodes `value` as unsigned LEB128.
pub fn write_u32(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// `len` bytes at `*at`, advancing it.
fn take<'b>(
    buf: &'b [u8],
    at: &mut usize,
    len: usize,
    what: &'static str,
) -> Result<&'b [u8], Error> {
    let end = at.checked_add(len).ok_or(Error::Truncated(what))?;
    let bytes = buf.get(*at..end).ok_or(Error::Truncated(what))?;
    *at = end;
    Ok(bytes)
}

fn read_name(buf: &[u8], at: &mut usize, what: &'static str) -> Result<String, Error> {
    let len = read_u32(buf, at, what)? as usize;
    let bytes = take(buf, at, len, what)?;
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::BadName)
}

fn sections(module: &[u8]) -> Result<Vec<Section<'_>>, Error> {
    if module.get(..4) != Some(MAGIC.as_slice()) || module.get(4..8) != Some(VERSION.as_slice()) {
        return Err(Error::NotWasm);
    }
    let mut at = 8;
    let mut out = Vec::new();
    while at < module.len() {
        let id = *module.get(at).ok_or(Error::Truncated("a section"))?;
        at = at.checked_add(1).ok_or(Error::Truncated("a section"))?;
        let size = read_u32(module, &mut at, "a section size")? as usize;
        let payload = take(module, &mut at, size, "a section")?;
        out.push(Section { id, payload });
    }
    Ok(out)
}

fn parse_exports(payload: &[u8]) -> Result<Vec<Export>, Error> {
    let mut at = 0;
    let count = read_u32(payload, &mut at, "the export count")?;
    let mut exports = Vec::new();
    for _ in 0..count {
        let start = at;
        let name = read_name(payload, &mut at, "an export name")?;
        take(payload, &mut at, 1, "an export kind")?;
        read_u32(payload, &mut at, "an export index")?;
        let raw = payload
            .get(start..at)
            .ok_or(Error::Truncated("an export"))?;
        exports.push(Export {
            name,
            raw: raw.to_vec(),
        });
    }
    if at != payload.len() {
        return Err(Error::Truncated("the export section"));
    }
    Ok(exports)
}

/// Every export of `module`, in order.
pub fn exports(module: &[u8]) -> Result<Vec<Export>, Error> {
    exports_in(&sections(module)?)
}

fn exports_in(sections: &[Section<'_>]) -> Result<Vec<Export>, Error> {
    let mut found = None;
    for s in sections {
        if s.id == EXPORT {
            if found.is_some() {
                return Err(Error::TwoExportSections);
            }
            found = Some(parse_exports(s.payload)?);
        }
    }
    Ok(found.unwrap_or_default())
}

/// The callbacks `module` declares in its [`DECLARATION`] section; `None`
/// without one.
pub fn declared(module: &[u8]) -> Result<Option<Vec<String>>, Error> {
    declared_in(&sections(module)?)
}

fn declared_in(sections: &[Section<'_>]) -> Result<Option<Vec<String>>, Error> {
    for s in sections {
        if s.id != CUSTOM {
            continue;
        }
        let mut at = 0;
        if read_name(s.payload, &mut at, "a custom section name")? != DECLARATION {
            continue;
        }
        let body = s.payload.get(at..).unwrap_or_default();
        let text = std::str::from_utf8(body).map_err(|_| Error::BadName)?;
        return Ok(Some(text.split_whitespace().map(str::to_owned).collect()));
    }
    Ok(None)
}

/// What [`trim`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trimmed {
    /// The module with the undeclared callbacks no longer exported.
    pub module: Vec<u8>,
    /// The callback exports removed, in module order.
    pub removed: Vec<String>,
}

/// Removes every `proxy_on_*` export `module` does not declare.
pub fn trim(module: &[u8]) -> Result<Trimmed, Error> {
    let sections = sections(module)?;
    let keep = declared_in(&sections)?.ok_or(Error::Undeclared)?;
    let all = exports_in(&sections)?;
    let missing: Vec<String> = keep
        .iter()
        .filter(|k| !all.iter().any(|e| &e.name == *k))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(Error::NotExported(missing));
    }
    let is_dropped = |e: &Export| e.name.starts_with(CALLBACK_PREFIX) && !keep.contains(&e.name);
    let removed: Vec<String> = all
        .iter()
        .filter(|e| is_dropped(e))
        .map(|e| e.name.clone())
        .collect();
    let mut out = Vec::with_capacity(module.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(VERSION);
    for s in &sections {
        out.push(s.id);
        if s.id == EXPORT {
            let kept: Vec<&Export> = all.iter().filter(|e| !is_dropped(e)).collect();
            let mut payload = Vec::new();
            write_u32(&mut payload, len_u32(kept.len())?);
            for e in kept {
                payload.extend_from_slice(&e.raw);
            }
            write_u32(&mut out, len_u32(payload.len())?);
            out.extend_from_slice(&payload);
        } else {
            write_u32(&mut out, len_u32(s.payload.len())?);
            out.extend_from_slice(s.payload);
        }
    }
    Ok(Trimmed {
        module: out,
        removed,
    })
}

fn len_u32(n: usize) -> Result<u32, Error> {
    u32::try_from(n).map_err(|_| Error::Truncated("a section"))
}

#[cfg(test)]
#[allow(clippy::restriction)]
mod tests {
    use super::*;

    /// A module with one function exported under each name, and the
    /// declaration section when `declare` is given.
    fn module(names: &[&str], declare: Option<&str>) -> Vec<u8> {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        // type section: one type, () -> ()
        m.extend_from_slice(&[1, 4, 1, 0x60, 0, 0]);
        // function section: one function of type 0
        m.extend_from_slice(&[3, 2, 1, 0]);
        // memory section: one memory, min 1 page
        m.extend_from_slice(&[5, 3, 1, 0, 1]);
        let mut exports = Vec::new();
        write_u32(&mut exports, names.len() as u32 + 1);
        for name in names {
            write_u32(&mut exports, name.len() as u32);
            exports.extend_from_slice(name.as_bytes());
            exports.extend_from_slice(&[0, 0]);
        }
        write_u32(&mut exports, 6);
        exports.extend_from_slice(b"memory");
        exports.extend_from_slice(&[2, 0]);
        m.push(7);
        write_u32(&mut m, exports.len() as u32);
        m.extend_from_slice(&exports);
        // code section: one empty body
        m.extend_from_slice(&[10, 4, 1, 2, 0, 0x0b]);
        if let Some(text) = declare {
            let mut payload = Vec::new();
            write_u32(&mut payload, DECLARATION.len() as u32);
            payload.extend_from_slice(DECLARATION.as_bytes());
            payload.extend_from_slice(text.as_bytes());
            m.push(0);
            write_u32(&mut m, payload.len() as u32);
            m.extend_from_slice(&payload);
        }
        m
    }

    fn names(module: &[u8]) -> Vec<String> {
        exports(module)
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect()
    }

    const SDK: &[&str] = &[
        "proxy_abi_version_0_2_1",
        "proxy_on_memory_allocate",
        "proxy_on_context_create",
        "proxy_on_request_headers",
        "proxy_on_response_headers",
        "proxy_on_log",
        "proxy_on_done",
        "proxy_on_delete",
        "_initialize",
    ];

    #[test]
    fn undeclared_callbacks_go_and_everything_else_stays() {
        let m = module(
            SDK,
            Some(
                "proxy_on_memory_allocate proxy_on_context_create\nproxy_on_request_headers proxy_on_delete",
            ),
        );
        let t = trim(&m).unwrap();
        assert_eq!(
            t.removed,
            ["proxy_on_response_headers", "proxy_on_log", "proxy_on_done"]
        );
        assert_eq!(
            names(&t.module),
            [
                "proxy_abi_version_0_2_1",
                "proxy_on_memory_allocate",
                "proxy_on_context_create",
                "proxy_on_request_headers",
                "proxy_on_delete",
                "_initialize",
                "memory"
            ]
        );
        // The declaration stays: trimming again changes nothing.
        let again = trim(&t.module).unwrap();
        assert!(again.removed.is_empty());
        assert_eq!(again.module, t.module);
        // Nothing but the export section changed.
        let others = |m: &[u8]| -> Vec<(u8, Vec<u8>)> {
            sections(m)
                .unwrap()
                .into_iter()
                .filter(|s| s.id != EXPORT)
                .map(|s| (s.id, s.payload.to_vec()))
                .collect()
        };
        assert_eq!(others(&t.module), others(&m));
    }

    #[test]
    fn a_module_without_a_declaration_is_refused() {
        assert_eq!(trim(&module(SDK, None)), Err(Error::Undeclared));
    }

    #[test]
    fn a_declared_callback_that_is_not_exported_is_refused() {
        let m = module(SDK, Some("proxy_on_request_headers proxy_on_reqest_body"));
        assert_eq!(
            trim(&m),
            Err(Error::NotExported(vec!["proxy_on_reqest_body".into()]))
        );
    }

    #[test]
    fn malformed_modules_are_errors_not_panics() {
        let m = module(SDK, Some("proxy_on_delete"));
        assert_eq!(trim(b"not wasm"), Err(Error::NotWasm));
        for cut in 8..m.len() {
            // Every prefix either parses (cut at a section boundary) or is
            // refused; none panics.
            let _ = trim(&m[..cut]);
        }
        let mut long_leb = b"\0asm\x01\0\0\0\x07".to_vec();
        long_leb.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x7f]);
        assert!(matches!(trim(&long_leb), Err(Error::Truncated(_))));
    }

    #[test]
    fn leb128_round_trips() {
        for v in [0, 1, 127, 128, 300, 16_383, 16_384, u32::MAX] {
            let mut buf = Vec::new();
            write_u32(&mut buf, v);
            let mut at = 0;
            assert_eq!(read_u32(&buf, &mut at, "x"), Ok(v));
            assert_eq!(at, buf.len());
        }
    }
}
