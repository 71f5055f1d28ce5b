//! Test servers on 127.0.0.1 (thread per connection, keep-alive aware),
//! stopped on drop: an echo upstream and a switchable JWKS endpoint.

use std::collections::HashMap;
use std::io::{BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::http::{RawRequest, read_request};
use crate::venv_python;

/// What a handler does with one request.
enum Reply {
    Respond {
        status: u16,
        content_type: &'static str,
        body: Vec<u8>,
    },
    /// Close the connection without answering.
    Close,
}

type Handler = Arc<dyn Fn(&RawRequest) -> Reply + Send + Sync>;

/// An accept loop; dropping it closes the listening socket and every open
/// connection (so pooled keep-alive connections from Envoy die too).
struct Listener {
    port: u16,
    stopping: Arc<AtomicBool>,
    conns: Arc<Mutex<HashMap<usize, TcpStream>>>,
    accept_thread: Option<JoinHandle<()>>,
}

impl Listener {
    fn bind(port: u16, handler: Handler) -> Listener {
        // Re-binding a just-closed port can briefly fail; std sets SO_REUSEADDR.
        let deadline = Instant::now() + Duration::from_secs(5);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(l) => break l,
                Err(_) if port != 0 && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(50))
                }
                Err(e) => panic!("bind 127.0.0.1:{port}: {e}"),
            }
        };
        let port = listener.local_addr().unwrap().port();
        let stopping = Arc::new(AtomicBool::new(false));
        let conns = Arc::new(Mutex::new(HashMap::new()));
        let (stop, open) = (stopping.clone(), conns.clone());
        let accept_thread = thread::spawn(move || {
            for (id, stream) in listener.incoming().enumerate() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let _ = stream.set_nodelay(true);
                open.lock().unwrap().insert(id, stream.try_clone().unwrap());
                let (handler, open) = (handler.clone(), open.clone());
                thread::spawn(move || {
                    serve_connection(&stream, &*handler);
                    let _ = stream.shutdown(Shutdown::Both);
                    open.lock().unwrap().remove(&id);
                });
            }
        });
        Listener {
            port,
            stopping,
            conns,
            accept_thread: Some(accept_thread),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept() so the thread sees the flag and drops the socket.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
        for conn in self.conns.lock().unwrap().values() {
            let _ = conn.shutdown(Shutdown::Both);
        }
    }
}

fn serve_connection(stream: &TcpStream, handler: &dyn Fn(&RawRequest) -> Reply) {
    let mut reader = BufReader::new(stream);
    while let Ok(Some(req)) = read_request(&mut reader) {
        let Reply::Respond {
            status,
            content_type,
            body,
        } = handler(&req)
        else {
            return;
        };
        let head = format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
            if status < 400 { "OK" } else { "Error" },
            body.len()
        );
        // One write, without Nagle: head and body in two writes on a
        // kept-alive connection wait for Envoy's delayed ACK (40 ms a
        // request).
        let mut message = head.into_bytes();
        message.extend_from_slice(&body);
        let mut out = stream;
        if out.write_all(&message).is_err() {
            return;
        }
        let close = req
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case(b"close"));
        if close {
            return;
        }
    }
}

/// One request as the echo server received it (names lowercased, values lossy UTF-8).
#[derive(Clone, Debug)]
pub struct EchoedRequest {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl EchoedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Answers every request 200 with `{"method","path","headers":[[name,value],..]}`.
pub struct EchoServer {
    listener: Listener,
    requests: Arc<Mutex<Vec<EchoedRequest>>>,
}

impl EchoServer {
    pub fn start() -> EchoServer {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let listener = Listener::bind(
            0,
            Arc::new(move |req: &RawRequest| {
                let echoed = EchoedRequest {
                    method: req.method.clone(),
                    path: String::from_utf8_lossy(&req.path).into_owned(),
                    headers: req
                        .headers
                        .iter()
                        .map(|(n, v)| {
                            let name = String::from_utf8_lossy(n).to_ascii_lowercase();
                            (name, String::from_utf8_lossy(v).into_owned())
                        })
                        .collect(),
                    body: req.body.clone(),
                };
                let body = json!({
                    "method": echoed.method,
                    "path": echoed.path,
                    "headers": echoed.headers.iter().map(|(n, v)| [n, v]).collect::<Vec<_>>(),
                });
                seen.lock().unwrap().push(echoed);
                Reply::Respond {
                    status: 200,
                    content_type: "application/json",
                    body: body.to_string().into_bytes(),
                }
            }),
        );
        EchoServer { listener, requests }
    }

    pub fn port(&self) -> u16 {
        self.listener.port
    }

    pub fn requests(&self) -> Vec<EchoedRequest> {
        self.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

/// How the `JwksServer` answers; switch with `JwksServer::set_mode`.
#[derive(Clone, Debug)]
pub enum JwksMode {
    /// 200 `application/json` with this body.
    Ok(String),
    /// This status with a small text body.
    Status(u16),
    /// 200 `application/json` with a truncated, invalid JSON body.
    Malformed,
    /// Sleeps `delay`, then answers 200 with `body`.
    Slow { delay: Duration, body: String },
    /// Reads the request, then closes the connection without answering.
    Reset,
    /// 200 with a valid JSON document of exactly this many bytes (min 20):
    /// `{"keys":[],"pad":"xxx…"}`.
    Oversize(usize),
}

struct JwksState {
    mode: Mutex<JwksMode>,
    count: AtomicUsize,
    /// (path, host header) of every request.
    seen: Mutex<Vec<(String, String)>>,
}

pub struct JwksServer {
    port: u16,
    listener: Option<Listener>,
    state: Arc<JwksState>,
}

impl JwksServer {
    pub fn start(initial_body: String) -> JwksServer {
        let state = Arc::new(JwksState {
            mode: Mutex::new(JwksMode::Ok(initial_body)),
            count: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        });
        let listener = Self::listen(0, state.clone());
        JwksServer {
            port: listener.port,
            listener: Some(listener),
            state,
        }
    }

    fn listen(port: u16, state: Arc<JwksState>) -> Listener {
        Listener::bind(
            port,
            Arc::new(move |req: &RawRequest| {
                let host = String::from_utf8_lossy(req.header("host").unwrap_or_default());
                let path = String::from_utf8_lossy(&req.path).into_owned();
                state.seen.lock().unwrap().push((path, host.into_owned()));
                state.count.fetch_add(1, Ordering::SeqCst);
                let mode = state.mode.lock().unwrap().clone();
                let json = |body: String| Reply::Respond {
                    status: 200,
                    content_type: "application/json",
                    body: body.into_bytes(),
                };
                match mode {
                    JwksMode::Ok(body) => json(body),
                    JwksMode::Status(status) => Reply::Respond {
                        status,
                        content_type: "text/plain",
                        body: format!("jwks test server: status {status}").into_bytes(),
                    },
                    JwksMode::Malformed => json(r#"{"keys":[{"kty":"RSA","n":"#.to_string()),
                    JwksMode::Slow { delay, body } => {
                        thread::sleep(delay);
                        json(body)
                    }
                    JwksMode::Reset => Reply::Close,
                    JwksMode::Oversize(bytes) => {
                        let pad = "x".repeat(bytes.saturating_sub(20));
                        json(format!(r#"{{"keys":[],"pad":"{pad}"}}"#))
                    }
                }
            }),
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn set_mode(&self, mode: JwksMode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    /// Requests received (in every mode, `Reset` included).
    pub fn count(&self) -> usize {
        self.state.count.load(Ordering::SeqCst)
    }

    pub fn reset_count(&self) {
        self.state.count.store(0, Ordering::SeqCst);
    }

    pub fn paths(&self) -> Vec<String> {
        self.state
            .seen
            .lock()
            .unwrap()
            .iter()
            .map(|(p, _)| p.clone())
            .collect()
    }

    pub fn hosts(&self) -> Vec<String> {
        self.state
            .seen
            .lock()
            .unwrap()
            .iter()
            .map(|(_, h)| h.clone())
            .collect()
    }

    /// Closes the listening socket and open connections: connections are refused.
    pub fn stop(&mut self) {
        self.listener = None;
    }

    /// Listens again on the same port (same mode and counters).
    pub fn restart(&mut self) {
        if self.listener.is_none() {
            self.listener = Some(Self::listen(self.port, self.state.clone()));
        }
    }
}

/// What the WSGI upstream read (testkit/python/wsgi_upstream.py).
#[derive(Clone, Debug)]
pub struct WsgiView {
    pub method: String,
    /// The request target as it arrived.
    pub raw_path: String,
    /// The percent-decoded path, as WSGI hands it over.
    pub path_info: String,
    /// The resource a framework serves: `posixpath.normpath(PATH_INFO)`.
    pub served: String,
    /// `HTTP_*` variables (`x-client-id` and `x_client_id` are both
    /// `HTTP_X_CLIENT_ID`).
    pub headers: serde_json::Map<String, serde_json::Value>,
}

impl WsgiView {
    pub fn from_body(body: &[u8]) -> Option<WsgiView> {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        Some(WsgiView {
            method: v["method"].as_str()?.into(),
            raw_path: v["raw_path"].as_str()?.into(),
            path_info: v["path_info"].as_str()?.into(),
            served: v["served"].as_str()?.into(),
            headers: v["headers"].as_object()?.clone(),
        })
    }

    pub fn var(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.as_str())
    }
}

/// A Python WSGI upstream that reads paths and headers as a framework does;
/// killed on drop.
pub struct WsgiUpstream {
    child: std::process::Child,
    port: u16,
}

impl WsgiUpstream {
    pub fn start() -> WsgiUpstream {
        use std::io::BufRead;
        let script = crate::repo_path("testkit/python/wsgi_upstream.py");
        let mut child = std::process::Command::new(venv_python())
            .arg(&script)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start the WSGI upstream");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read the WSGI upstream's port");
        let port = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("WSGI upstream printed {line:?}"));
        WsgiUpstream { child, port }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl Drop for WsgiUpstream {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
