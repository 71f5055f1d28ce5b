//! A raw HTTP/1.1 client over `TcpStream` with full control of the bytes sent
//! (non-UTF-8 header values, duplicate headers, odd request targets), plus the
//! message readers the test servers share.

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Raw request-target bytes, sent as they are.
    pub path: Vec<u8>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn new(method: &str, path: impl AsRef<[u8]>) -> Self {
        Request {
            method: method.to_string(),
            path: path.as_ref().to_vec(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    pub fn get(path: impl AsRef<[u8]>) -> Self {
        Self::new("GET", path)
    }

    pub fn post(path: impl AsRef<[u8]>) -> Self {
        Self::new("POST", path)
    }

    /// Appends a header; calling it twice with one name sends it twice.
    pub fn header(mut self, name: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Self {
        self.headers
            .push((name.as_ref().to_vec(), value.as_ref().to_vec()));
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }

    pub fn body(mut self, body: impl AsRef<[u8]>) -> Self {
        self.body = body.as_ref().to_vec();
        self
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
    }

    /// The exact bytes `send` writes. `Host: localhost` and
    /// `Connection: close` are added unless the request sets them, and
    /// `Content-Length` when there is a body and no framing header.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(self.method.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&self.path);
        out.extend_from_slice(b" HTTP/1.1\r\n");
        if !self.has_header("host") {
            out.extend_from_slice(b"Host: localhost\r\n");
        }
        if !self.has_header("connection") {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        if !self.body.is_empty()
            && !self.has_header("content-length")
            && !self.has_header("transfer-encoding")
        {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
        }
        for (name, value) in &self.headers {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// First header with that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn body_str(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}); status {}, body: {}",
                self.status,
                self.body_str()
            )
        })
    }

    /// What the `EchoServer` behind Envoy received. Panics unless this is a
    /// 200 carrying the echo server's JSON (i.e. the request was let through).
    pub fn upstream(&self) -> UpstreamView {
        let parsed = (self.status == 200)
            .then(|| serde_json::from_slice::<Value>(&self.body).ok())
            .flatten()
            .and_then(|v| UpstreamView::from_json(&v));
        parsed.unwrap_or_else(|| {
            panic!(
                "expected the echo upstream's 200 JSON, got status {} headers {:?} body: {}",
                self.status,
                self.headers,
                self.body_str()
            )
        })
    }
}

/// The request as the echo upstream saw it.
#[derive(Clone, Debug)]
pub struct UpstreamView {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
}

impl UpstreamView {
    fn from_json(v: &Value) -> Option<Self> {
        let headers = v["headers"]
            .as_array()?
            .iter()
            .map(|pair| Some((pair[0].as_str()?.to_string(), pair[1].as_str()?.to_string())))
            .collect::<Option<Vec<_>>>()?;
        Some(UpstreamView {
            method: v["method"].as_str()?.to_string(),
            path: v["path"].as_str()?.to_string(),
            headers,
        })
    }

    pub fn header(&self, name: &str) -> Option<String> {
        find_header(&self.headers, name).map(str::to_string)
    }

    pub fn headers_named(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Sends `req` to 127.0.0.1:`port` and reads the whole response; panics on I/O errors.
pub fn send(port: u16, req: &Request) -> Response {
    try_send(port, req).unwrap_or_else(|e| {
        panic!(
            "HTTP {} {} to 127.0.0.1:{port} failed: {e}",
            req.method,
            String::from_utf8_lossy(&req.path)
        )
    })
}

pub fn try_send(port: u16, req: &Request) -> io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(&req.to_bytes())?;
    read_response(&mut BufReader::new(stream), req.method == "HEAD")
}

/// Sends `req`, waits `after` without reading, then closes the socket: a
/// client that goes away while its request is still being processed.
pub fn send_and_abort(port: u16, req: &Request, after: Duration) {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("connect to 127.0.0.1:{port}: {e}"));
    stream.write_all(&req.to_bytes()).expect("write request");
    std::thread::sleep(after);
    drop(stream);
}

/// Reads one response, skipping 1xx interim responses.
pub fn read_response(r: &mut impl BufRead, head_request: bool) -> io::Result<Response> {
    loop {
        let status_line =
            read_line(r)?.ok_or_else(|| eof("connection closed before a response"))?;
        let status = std::str::from_utf8(&status_line)
            .ok()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| {
                bad(format!(
                    "bad status line {:?}",
                    String::from_utf8_lossy(&status_line)
                ))
            })?;
        let raw_headers = read_headers(r)?;
        if (100..200).contains(&status) {
            continue;
        }
        let no_body = head_request || status == 204 || status == 304;
        let body = if no_body {
            Vec::new()
        } else {
            read_body(r, &raw_headers, true)?
        };
        let headers = raw_headers
            .into_iter()
            .map(|(n, v)| (lossy(&n), lossy(&v)))
            .collect();
        return Ok(Response {
            status,
            headers,
            body,
        });
    }
}

pub(crate) type RawHeaders = Vec<(Vec<u8>, Vec<u8>)>;

/// A request as the test servers parse it.
pub(crate) struct RawRequest {
    pub method: String,
    pub path: Vec<u8>,
    pub headers: RawHeaders,
    pub body: Vec<u8>,
}

impl RawRequest {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        raw_header(&self.headers, name)
    }
}

/// Reads one request; `Ok(None)` on a clean close before its first byte.
pub(crate) fn read_request(r: &mut impl BufRead) -> io::Result<Option<RawRequest>> {
    let Some(line) = read_line(r)? else {
        return Ok(None);
    };
    let mut parts = line.splitn(3, |&b| b == b' ');
    let method = lossy(parts.next().unwrap_or_default());
    let path = parts.next().unwrap_or_default().to_vec();
    let headers = read_headers(r)?;
    let body = read_body(r, &headers, false)?;
    Ok(Some(RawRequest {
        method,
        path,
        headers,
        body,
    }))
}

fn raw_header<'a>(headers: &'a RawHeaders, name: &str) -> Option<&'a [u8]> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
        .map(|(_, v)| v.as_slice())
}

/// A line without its CRLF; `None` at EOF before any byte.
fn read_line(r: &mut impl BufRead) -> io::Result<Option<Vec<u8>>> {
    let mut line = Vec::new();
    if r.read_until(b'\n', &mut line)? == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(eof("connection closed mid-line"));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(Some(line))
}

fn read_headers(r: &mut impl BufRead) -> io::Result<RawHeaders> {
    let mut headers = Vec::new();
    loop {
        let line = read_line(r)?.ok_or_else(|| eof("connection closed in headers"))?;
        if line.is_empty() {
            return Ok(headers);
        }
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or_else(|| bad(format!("header line without colon: {:?}", lossy(&line))))?;
        let value = line[colon + 1..].trim_ascii().to_vec();
        headers.push((line[..colon].to_vec(), value));
    }
}

/// Body framed by chunked encoding, Content-Length, or (responses only) EOF.
fn read_body(r: &mut impl BufRead, headers: &RawHeaders, to_eof: bool) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    let chunked = raw_header(headers, "transfer-encoding")
        .is_some_and(|v| lossy(v).to_ascii_lowercase().contains("chunked"));
    if chunked {
        loop {
            let size_line = read_line(r)?.ok_or_else(|| eof("closed in chunked body"))?;
            let size_hex = lossy(&size_line);
            let size_hex = size_hex.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_hex, 16)
                .map_err(|_| bad(format!("bad chunk size {size_hex:?}")))?;
            if size == 0 {
                // Trailers, then the final empty line.
                while read_line(r)?.is_some_and(|l| !l.is_empty()) {}
                return Ok(body);
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            read_line(r)?;
        }
    }
    if let Some(len) = raw_header(headers, "content-length") {
        let len: usize = lossy(len)
            .trim()
            .parse()
            .map_err(|_| bad(format!("bad content-length {:?}", lossy(len))))?;
        body.resize(len, 0);
        r.read_exact(&mut body)?;
    } else if to_eof {
        r.read_to_end(&mut body)?;
    }
    Ok(body)
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn eof(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::UnexpectedEof, msg)
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Sends one request over HTTP/2 (h2c, prior knowledge) with
/// testkit/python/h2_request.py; repeated headers go as separate fields.
pub fn send_h2(port: u16, req: &Request) -> Response {
    let spec = serde_json::json!({
        "method": req.method,
        "path": String::from_utf8_lossy(&req.path),
        "headers": req.headers.iter().map(|(n, v)| {
            [String::from_utf8_lossy(n).to_ascii_lowercase(), String::from_utf8_lossy(v).into_owned()]
        }).collect::<Vec<_>>(),
    });
    let script = crate::repo_path("testkit/python/h2_request.py");
    let out = std::process::Command::new(crate::venv_python())
        .arg(script)
        .arg(port.to_string())
        .arg(spec.to_string())
        .output()
        .expect("run the HTTP/2 client");
    assert!(
        out.status.success(),
        "HTTP/2 client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("HTTP/2 client JSON");
    Response {
        status: v["status"].as_u64().expect("a status") as u16,
        headers: v["headers"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| {
                (
                    h[0].as_str().unwrap_or_default().to_string(),
                    h[1].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect(),
        body: v["body"].as_str().unwrap_or_default().as_bytes().to_vec(),
    }
}
