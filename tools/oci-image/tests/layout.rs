//! The layout `make oci` writes, read back as Istio's image fetcher reads
//! the pushed image (istio/istio `pkg/wasm/imagefetcher.go`): `oci-layout`
//! version; index -> one manifest -> config + exactly one layer, with the
//! media types of the OCI "compat" variant; every blob's sha256 and size as
//! its descriptor says; the layer a gzip'd tar holding exactly `plugin.wasm`,
//! byte-equal to the filter's release build; and two builds into two
//! directories give the same manifest digest.
//!
//! Built from the real module: `$JWT_POLICY_WASM` (the Makefile sets it) or
//! `target/wasm32-wasip1/release/jwt_policy.wasm`; `make test` builds it
//! first. A missing module fails the test, never skips it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use oci_image::media_type;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn wasm_path() -> PathBuf {
    let path = std::env::var_os("JWT_POLICY_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("target/wasm32-wasip1/release/jwt_policy.wasm"));
    assert!(
        path.is_file(),
        "the filter's release build is missing at {} (run `make wasm`, or set \
         JWT_POLICY_WASM); this test needs the real module and does not skip",
        path.display()
    );
    path
}

/// The root crate's version (`version = "..."` in its [package]).
fn crate_version() -> String {
    let text = fs::read_to_string(project_root().join("Cargo.toml")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("version = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("version in the project's Cargo.toml")
        .to_owned()
}

/// A fresh directory under the test's scratch space.
fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("oci-layout-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    dir
}

/// Runs the `oci-image` binary as `make oci` does; returns what it printed.
fn make_oci(out: &Path, tag: &str) -> String {
    let run = Command::new(env!("CARGO_BIN_EXE_oci-image"))
        .arg("--wasm")
        .arg(wasm_path())
        .arg("--out")
        .arg(out)
        .args(["--tag", tag])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "oci-image failed:\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    String::from_utf8(run.stdout).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The blob a descriptor names, after checking its digest and size.
fn blob(layout: &Path, descriptor: &Value) -> Vec<u8> {
    let digest = descriptor["digest"].as_str().expect("digest");
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    let bytes = fs::read(layout.join("blobs/sha256").join(hex))
        .unwrap_or_else(|e| panic!("blob {digest}: {e}"));
    assert_eq!(sha256_hex(&bytes), hex, "blob {digest}: its sha256");
    assert_eq!(
        descriptor["size"].as_u64(),
        Some(bytes.len() as u64),
        "blob {digest}: its size"
    );
    bytes
}

/// Checks the layout against the rules; returns the manifest digest.
fn check_layout(layout: &Path, tag: &str, wasm: &[u8]) -> String {
    assert_eq!(
        json(&layout.join("oci-layout")),
        serde_json::json!({"imageLayoutVersion": "1.0.0"})
    );

    let index = json(&layout.join("index.json"));
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], media_type::INDEX);
    let manifests = index["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), 1, "one manifest: {index}");
    let entry = &manifests[0];
    assert_eq!(entry["mediaType"], media_type::MANIFEST);
    assert_eq!(
        entry["annotations"]["org.opencontainers.image.ref.name"], tag,
        "the manifest is tagged with the crate version"
    );

    let manifest_bytes = blob(layout, entry);
    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    // Istio takes anything but Docker's manifest type through the OCI path.
    assert_eq!(manifest["mediaType"], media_type::MANIFEST);
    assert!(manifest.get("annotations").is_none(), "nothing variable");

    let config_desc = &manifest["config"];
    assert_eq!(config_desc["mediaType"], media_type::CONFIG);
    let config: Value = serde_json::from_slice(&blob(layout, config_desc)).unwrap();
    for timestamped in ["created", "history"] {
        assert!(
            config.get(timestamped).is_none(),
            "config has {timestamped}"
        );
    }

    // The "compat" variant: exactly one layer, OCI tar+gzip.
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1, "exactly one layer: {manifest}");
    assert_eq!(layers[0]["mediaType"], media_type::LAYER);
    let layer = blob(layout, &layers[0]);

    // gzip header as fixed (RFC 1952): mtime 0, OS unknown, no file name.
    assert_eq!(&layer[..3], &[0x1f, 0x8b, 8], "gzip, deflate");
    assert_eq!(layer[3], 0, "no FNAME/FCOMMENT/FEXTRA flags");
    assert_eq!(&layer[4..8], &[0; 4], "gzip mtime 0");
    assert_eq!(layer[9], 255, "gzip OS byte");

    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&layer[..])
        .read_to_end(&mut tar)
        .unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!([format!("sha256:{}", sha256_hex(&tar))]),
        "the config names the uncompressed layer"
    );
    let mut archive = tar::Archive::new(&tar[..]);
    let mut names = Vec::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let header = entry.header().clone();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        assert_eq!(header.entry_type(), tar::EntryType::Regular, "{name}");
        assert_eq!(header.mtime().unwrap(), 0, "{name}: mtime");
        assert_eq!(
            (header.uid().unwrap(), header.gid().unwrap()),
            (0, 0),
            "{name}"
        );
        assert_eq!(header.mode().unwrap(), 0o644, "{name}: mode");
        assert_eq!(header.username_bytes(), Some(&b""[..]), "{name}: user");
        assert_eq!(header.groupname_bytes(), Some(&b""[..]), "{name}: group");
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap();
        assert!(content == wasm, "{name}: not the built module");
        names.push(name);
    }
    assert_eq!(names, ["plugin.wasm"], "exactly plugin.wasm in the layer");

    // Nothing else in the layout.
    let blobs: BTreeSet<String> = fs::read_dir(layout.join("blobs/sha256"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let named: BTreeSet<String> = [&manifest["config"], &layers[0], entry]
        .iter()
        .map(|d| d["digest"].as_str().unwrap()["sha256:".len()..].to_owned())
        .collect();
    assert_eq!(blobs, named, "only the three blobs");

    format!("sha256:{}", sha256_hex(&manifest_bytes))
}

#[test]
fn two_builds_give_one_valid_image() {
    let wasm = fs::read(wasm_path()).unwrap();
    let tag = crate_version();
    assert_eq!(tag, "0.1.0", "the tag follows the crate version");

    let (a, b) = (scratch("a"), scratch("b"));
    let report = make_oci(&a, &tag);
    let digest_a = check_layout(&a, &tag, &wasm);
    make_oci(&b, &tag);
    let digest_b = check_layout(&b, &tag, &wasm);
    assert_eq!(digest_a, digest_b, "the manifest digest is reproducible");
    for name in ["oci-layout", "index.json"] {
        assert_eq!(
            fs::read(a.join(name)).unwrap(),
            fs::read(b.join(name)).unwrap(),
            "{name}"
        );
    }

    // What it prints: the digest to pin and a push command for the layout.
    let hex = digest_a.trim_start_matches("sha256:");
    assert!(report.contains(&format!("sha256: {hex}")), "{report}");
    let out = a.display();
    assert!(
        report.contains(&format!(
            "oras cp --from-oci-layout {out}:{tag} ghcr.io/<you>/jwt-policy:{tag}"
        )),
        "{report}"
    );
    assert!(
        report.contains(&format!(
            "skopeo copy --preserve-digests oci:{out}:{tag} docker://"
        )),
        "{report}"
    );

    // A rebuild over an existing layout replaces it.
    make_oci(&a, &tag);
    assert_eq!(check_layout(&a, &tag, &wasm), digest_a);
    let _ = fs::remove_dir_all(&a);
    let _ = fs::remove_dir_all(&b);
}

#[test]
fn refuses_to_overwrite_what_is_not_a_layout() {
    let dir = scratch("not-a-layout");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("keep.txt"), "mine").unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_oci-image"))
        .arg("--wasm")
        .arg(wasm_path())
        .arg("--out")
        .arg(&dir)
        .args(["--tag", "0.1.0"])
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(
        String::from_utf8_lossy(&run.stderr).contains("not an OCI image layout"),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(fs::read_to_string(dir.join("keep.txt")).unwrap(), "mine");
    let _ = fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_module_is_an_error_naming_make_wasm() {
    let run = Command::new(env!("CARGO_BIN_EXE_oci-image"))
        .args(["--wasm", "/nonexistent/jwt_policy.wasm", "--tag", "0.1.0"])
        .arg("--out")
        .arg(scratch("missing"))
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("make wasm"));
}
