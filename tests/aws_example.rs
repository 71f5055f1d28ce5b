//! examples/envoy-aws-cognito.yaml works as written, short of reaching AWS:
//! Envoy runs that file with only addresses changed (the `cognito_idp`
//! cluster pointed at a local HTTPS server standing in for
//! cognito-idp.us-east-1.amazonaws.com, its CA trusted instead of the system
//! bundle, the upstream at an echo server). Its TLS settings (SNI, the SAN
//! check) and the filter's https `uri` are kept, so the JWKS fetch must
//! present the right SNI and Host and verify the server's name, and tokens
//! of the example's pool and client are then decided by its rules.
//!
//! The stand-in is a Python HTTPS server (`.venv`, with the `cryptography`
//! package that `make setup` installs for the demo) with a throwaway CA.

#![allow(clippy::restriction)] // tests panic by design

mod support;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use support::{
    Alg, EchoServer, EnvoyConfig, Request, TestKey, cognito_access_claims, eventually, jwks, now,
};

const HOST: &str = "cognito-idp.us-east-1.amazonaws.com";
const POOL: &str = "us-east-1_pO0zNXTot";
const CLIENT: &str = "14aq5ll5b1it6f62uefem6aqhn";

/// Makes a CA and a server certificate for `--name`, then serves
/// `--jwks` over HTTPS on 127.0.0.1 (any port, printed first), logging each
/// request's SNI, Host and path as a JSON line to `--log`.
const SERVER: &str = r#"
import argparse, datetime, http.server, json, ssl, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

p = argparse.ArgumentParser()
for a in ("--dir", "--name", "--jwks", "--log"):
    p.add_argument(a, required=True)
args = p.parse_args()

def pem(path, data):
    with open(path, "wb") as f:
        f.write(data)

now = datetime.datetime.now(datetime.timezone.utc)
def cert(subject, issuer, key, sign_key, ca, san=None):
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(minutes=5))
         .not_valid_after(now + datetime.timedelta(days=1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if san:
        b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
    return b.sign(sign_key, hashes.SHA256())

ca_key = ec.generate_private_key(ec.SECP256R1())
ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jwt-policy test CA")])
ca = cert(ca_name, ca_name, ca_key, ca_key, True)
key = ec.generate_private_key(ec.SECP256R1())
leaf = cert(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, args.name)]), ca_name, key, ca_key,
            False, args.name)
pem(args.dir + "/ca.pem", ca.public_bytes(serialization.Encoding.PEM))
pem(args.dir + "/server.pem", leaf.public_bytes(serialization.Encoding.PEM))
pem(args.dir + "/server.key", key.private_bytes(serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))

sni = {}
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(args.dir + "/server.pem", args.dir + "/server.key")
def on_sni(sock, name, _ctx):
    sni[id(sock)] = name
ctx.sni_callback = on_sni

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        with open(args.log, "a") as f:
            f.write(json.dumps({"sni": sni.get(id(self.connection)), "host": self.headers.get("host"),
                                "path": self.path}) + "\n")
        body = open(args.jwks, "rb").read()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;

struct TlsJwksServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl TlsJwksServer {
    fn start(dir: &Path, cert_name: &str, jwks: &Value) -> TlsJwksServer {
        let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
        assert!(python.exists(), "{} (run `make setup`)", python.display());
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("jwks.json"), jwks.to_string()).unwrap();
        let mut child = Command::new(python)
            .args(["-c", SERVER, "--dir"])
            .arg(dir)
            .args(["--name", cert_name, "--jwks"])
            .arg(dir.join("jwks.json"))
            .arg("--log")
            .arg(dir.join("requests.log"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the HTTPS JWKS server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("the HTTPS JWKS server did not start (printed {line:?}; is `cryptography` installed? run `make setup`)")
        });
        TlsJwksServer {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    fn requests(&self) -> Vec<Value> {
        fs::read_to_string(self.dir.join("requests.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for TlsJwksServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// examples/envoy-aws-cognito.yaml as JSON (read with the .venv YAML library).
fn aws_example() -> Value {
    support::files::yaml("examples/envoy-aws-cognito.yaml")
}

/// The example with only addresses (and the CA file and wasm path) changed.
fn localised(jwks_port: u16, upstream_port: u16, ca: &Path) -> Value {
    let mut boot = aws_example();
    let loopback = |sa: &mut Value, port: u16| {
        sa["address"] = json!("127.0.0.1");
        sa["port_value"] = json!(port);
    };
    loopback(&mut boot["admin"]["address"]["socket_address"], 0);
    loopback(
        &mut boot["static_resources"]["listeners"][0]["address"]["socket_address"],
        0,
    );
    for cluster in boot["static_resources"]["clusters"].as_array_mut().unwrap() {
        let name = cluster["name"].as_str().unwrap().to_string();
        let sa = &mut cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
            ["socket_address"];
        match name.as_str() {
            "cognito_idp" => {
                assert_eq!(sa["address"], HOST);
                loopback(sa, jwks_port);
                let validation = &mut cluster["transport_socket"]["typed_config"]["common_tls_context"]
                    ["validation_context"];
                validation["trusted_ca"]["filename"] = json!(ca.to_str().unwrap());
            }
            "upstream" => loopback(sa, upstream_port),
            other => panic!("unexpected cluster {other}"),
        }
    }
    let wasm = &mut boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        ["http_filters"][0]["typed_config"]["config"]["vm_config"]["code"]["local"];
    wasm["filename"] = json!(support::wasm_path().to_str().unwrap());
    boot
}

fn temp_dir(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("jwt-policy-aws-{tag}-{}", std::process::id()))
}

#[test]
fn the_aws_example_fetches_the_jwks_over_tls_and_enforces_its_rules() {
    let key = TestKey::rsa("cognito-key-1", 2048);
    let server = TlsJwksServer::start(&temp_dir("ok"), HOST, &jwks(&[key.jwk()]));
    let upstream = EchoServer::start();
    let boot = localised(server.port, upstream.port(), &server.dir.join("ca.pem"));
    let envoy = EnvoyConfig::raw(boot.to_string()).start();

    let issuer = format!("https://{HOST}/{POOL}");
    let token = key.token(
        Alg::RS256,
        cognito_access_claims(&issuer, CLIENT, "order/post.order", now()),
    );
    let post = support::send(envoy.port(), &Request::post("/api/v1/order").bearer(&token));
    assert_eq!(post.status, 200, "{}", post.body_str());
    assert_eq!(
        post.upstream().header("x-client-id").as_deref(),
        Some(CLIENT)
    );
    let get = support::send(envoy.port(), &Request::get("/api/v1/order").bearer(&token));
    assert_eq!(get.status, 403);

    // The fetch went out as it would to AWS.
    let seen = server.requests();
    assert_eq!(seen.len(), 1, "one fetch: {seen:?}");
    assert_eq!(
        seen[0]["sni"], HOST,
        "SNI from the cluster's UpstreamTlsContext"
    );
    assert_eq!(seen[0]["host"], HOST, ":authority from the uri");
    assert_eq!(seen[0]["path"], format!("/{POOL}/.well-known/jwks.json"));
    envoy.expect_stat("wasmcustom.jwt_policy.jwks.cognito.fetch_succeeded", 1);
    envoy.assert_no_wasm_panic();
}

#[test]
fn the_aws_example_refuses_a_server_with_another_name() {
    // Same CA, but the certificate names another host: the SAN check of the
    // example's cluster must fail the handshake, so no keys are fetched.
    let key = TestKey::rsa("cognito-key-1", 2048);
    let server = TlsJwksServer::start(
        &temp_dir("bad"),
        "attacker.example.com",
        &jwks(&[key.jwk()]),
    );
    let upstream = EchoServer::start();
    let boot = localised(server.port, upstream.port(), &server.dir.join("ca.pem"));
    let envoy = EnvoyConfig::raw(boot.to_string()).start();

    eventually("the fetch to fail", Duration::from_secs(10), || {
        envoy.stat("wasmcustom.jwt_policy.jwks.cognito.fetch_failed") > 0
    });
    envoy.expect_stat("wasmcustom.jwt_policy.jwks.cognito.fetch_succeeded", 0);
    assert!(
        server.requests().is_empty(),
        "no request may reach a server whose certificate names another host"
    );
    assert_eq!(upstream.count(), 0);
}
