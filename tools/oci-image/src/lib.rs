//! The filter as an OCI image layout in Istio's Wasm image "compat" format,
//! built without Docker and byte-for-byte reproducible.
//!
//! What Istio accepts is decided by its image fetcher, istio/istio
//! `pkg/wasm/imagefetcher.go` (Envoy Gateway's `internal/wasm/imagefetcher.go`
//! is the same code): an OCI manifest whose LAST layer has the media type
//! `application/vnd.oci.image.layer.v1.tar+gzip` and is a gzip'd tar holding
//! a file whose base name is `plugin.wasm` (`extractOCIStandardImage` and
//! `extractWasmPluginBinary`). The config blob is not read, so any config
//! media type would do; we write a standard OCI image config
//! (`application/vnd.oci.image.config.v1+json`) so that registries and tools
//! treat the image as an ordinary one. For `oci://` URLs Istio compares
//! `WasmPlugin.spec.sha256` with the digest of the MANIFEST (`img.Digest()`),
//! not the module's, which is why the manifest must be reproducible.
//!
//! Reproducible: the same module gives the same bytes everywhere. The tar
//! has one ustar entry with mtime 0, uid/gid 0, mode 0644 and no user or
//! group names; the gzip header has mtime 0, no file name and OS byte 255
//! ("unknown"), compressed at level 9 by miniz_oxide (pinned by Cargo.lock);
//! the config has no timestamps or history; JSON is serialised compactly in
//! field order, with at most one annotation per map.

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::str::FromStr;

use flate2::{Compression, GzBuilder};
use oci_spec::OciSpecError;
use oci_spec::image::{
    ANNOTATION_REF_NAME, Arch, Descriptor, Digest, ImageConfigurationBuilder, ImageIndexBuilder,
    ImageManifestBuilder, MediaType, OciLayoutBuilder, Os, RootFsBuilder, Sha256Digest,
};
use sha2::{Digest as _, Sha256};

/// The file name Istio's fetcher looks for in the layer.
pub const WASM_FILE_NAME: &str = "plugin.wasm";
/// `imageLayoutVersion` of the `oci-layout` file.
pub const IMAGE_LAYOUT_VERSION: &str = "1.0.0";
/// The tar entry's permissions.
const FILE_MODE: u32 = 0o644;
/// RFC 1952 OS byte for "unknown" (also what Go's gzip writer puts there).
const GZIP_OS_UNKNOWN: u8 = 255;

/// The media types of the image, as Istio's fetcher accepts them.
pub mod media_type {
    pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
}

/// Something that stopped the build, in words for the command line.
#[derive(Debug)]
pub struct Error(String);

impl Error {
    pub fn new(message: impl Into<String>) -> Error {
        Error(message.into())
    }

    fn context(what: &str, error: impl fmt::Display) -> Error {
        Error(format!("{what}: {error}"))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<OciSpecError> for Error {
    fn from(e: OciSpecError) -> Error {
        Error::context("OCI structure", e)
    }
}

/// A blob: its bytes and their `sha256:<hex>` digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub bytes: Vec<u8>,
    pub digest: String,
}

impl Blob {
    fn new(bytes: Vec<u8>) -> Blob {
        let digest = sha256_digest(&bytes);
        Blob { bytes, digest }
    }

    /// The hex part of the digest (the file name under `blobs/sha256/`).
    pub fn hex(&self) -> &str {
        self.digest.trim_start_matches("sha256:")
    }

    fn descriptor(&self, media_type: MediaType) -> Result<Descriptor, Error> {
        let hex = Sha256Digest::from_str(self.hex())?;
        Ok(Descriptor::new(
            media_type,
            self.bytes.len() as u64,
            Digest::from(hex),
        ))
    }
}

/// The image: its three blobs and the index naming the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    pub layer: Blob,
    pub config: Blob,
    pub manifest: Blob,
    pub index: Vec<u8>,
    pub tag: String,
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in hash {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The uncompressed layer: a tar with the module as `plugin.wasm`.
pub fn layer_tar(wasm: &[u8]) -> Result<Vec<u8>, Error> {
    let mut header = tar::Header::new_ustar();
    header
        .set_path(WASM_FILE_NAME)
        .map_err(|e| Error::context("tar header", e))?;
    header.set_size(wasm.len() as u64);
    header.set_mode(FILE_MODE);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    // ustar leaves uname/gname empty unless set; keep them empty.
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder
        .append(&header, wasm)
        .map_err(|e| Error::context("tar", e))?;
    builder.into_inner().map_err(|e| Error::context("tar", e))
}

/// gzip with a fixed header (mtime 0, no name, OS "unknown") at level 9.
pub fn gzip(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .operating_system(GZIP_OS_UNKNOWN)
        .write(Vec::new(), Compression::best());
    encoder
        .write_all(bytes)
        .map_err(|e| Error::context("gzip", e))?;
    encoder.finish().map_err(|e| Error::context("gzip", e))
}

/// Builds the image of `wasm`, tagged `tag`, in memory.
pub fn build(wasm: &[u8], tag: &str) -> Result<Image, Error> {
    if !wasm.starts_with(b"\0asm") {
        return Err(Error::new(
            "the module does not start with the wasm magic number (\\0asm)",
        ));
    }
    if tag.is_empty() {
        return Err(Error::new("the tag is empty"));
    }
    let tar = layer_tar(wasm)?;
    let diff_id = sha256_digest(&tar);
    let layer = Blob::new(gzip(&tar)?);

    let config = ImageConfigurationBuilder::default()
        .architecture(Arch::Wasm)
        .os(Os::from("wasip1"))
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![diff_id])
                .build()?,
        )
        .build()?;
    let config = Blob::new(config.to_string()?.into_bytes());

    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config.descriptor(MediaType::ImageConfig)?)
        .layers(vec![layer.descriptor(MediaType::ImageLayerGzip)?])
        .build()?;
    let manifest = Blob::new(manifest.to_string()?.into_bytes());

    let mut tagged = manifest.descriptor(MediaType::ImageManifest)?;
    tagged.set_annotations(Some(
        [(ANNOTATION_REF_NAME.to_owned(), tag.to_owned())].into(),
    ));
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![tagged])
        .build()?;

    Ok(Image {
        layer,
        config,
        manifest,
        index: index.to_string()?.into_bytes(),
        tag: tag.to_owned(),
    })
}

/// Writes `image` as an OCI image layout into `dir`: `oci-layout`,
/// `index.json` and `blobs/sha256/<hex>`. `dir` must not exist, be empty,
/// or hold an earlier layout (which is replaced, so no stale blobs stay).
pub fn write_layout(image: &Image, dir: &Path) -> Result<(), Error> {
    let shown = dir.display();
    if dir.exists() {
        let empty = fs::read_dir(dir)
            .map_err(|e| Error::context(&format!("reading {shown}"), e))?
            .next()
            .is_none();
        if !empty {
            if !dir.join("oci-layout").is_file() {
                return Err(Error::new(format!(
                    "{shown} exists and is not an OCI image layout; not overwriting it"
                )));
            }
            fs::remove_dir_all(dir)
                .map_err(|e| Error::context(&format!("removing the old {shown}"), e))?;
        }
    }
    let blobs = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs).map_err(|e| Error::context(&format!("creating {shown}"), e))?;
    let write = |path: &Path, bytes: &[u8]| -> Result<(), Error> {
        fs::write(path, bytes)
            .map_err(|e: io::Error| Error::context(&path.display().to_string(), e))
    };
    for blob in [&image.layer, &image.config, &image.manifest] {
        write(&blobs.join(blob.hex()), &blob.bytes)?;
    }
    let layout = OciLayoutBuilder::default()
        .image_layout_version(IMAGE_LAYOUT_VERSION)
        .build()?;
    write(&dir.join("oci-layout"), layout.to_string()?.as_bytes())?;
    write(&dir.join("index.json"), &image.index)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULE: &[u8] = b"\0asm\x01\0\0\0";

    #[test]
    fn tar_header_is_fixed() {
        let tar = layer_tar(MODULE).unwrap();
        // One 512-byte header, the data padded to 512, two zero blocks.
        assert_eq!(tar.len(), 512 * 4);
        let h = &tar[..512];
        assert_eq!(&h[..WASM_FILE_NAME.len()], WASM_FILE_NAME.as_bytes());
        assert_eq!(&h[100..107], b"0000644", "mode");
        assert_eq!(&h[108..115], b"0000000", "uid");
        assert_eq!(&h[116..123], b"0000000", "gid");
        assert_eq!(&h[136..147], b"00000000000", "mtime");
        assert_eq!(h[156], b'0', "regular file");
        assert_eq!(&h[257..263], b"ustar\0");
        assert!(h[265..329].iter().all(|&b| b == 0), "no user or group name");
        assert_eq!(&tar[512..512 + MODULE.len()], MODULE);
    }

    #[test]
    fn gzip_header_is_fixed() {
        let gz = gzip(b"x").unwrap();
        assert_eq!(&gz[..4], &[0x1f, 0x8b, 8, 0], "no name, comment or extra");
        assert_eq!(&gz[4..8], &[0, 0, 0, 0], "mtime 0");
        assert_eq!(gz[8], 2, "XFL: maximum compression");
        assert_eq!(gz[9], 255, "OS unknown");
    }

    #[test]
    fn same_module_same_image() {
        let a = build(MODULE, "0.1.0").unwrap();
        let b = build(MODULE, "0.1.0").unwrap();
        assert_eq!(a, b);
        let other = build(b"\0asm\x01\0\0\0\0", "0.1.0").unwrap();
        assert_ne!(a.manifest.digest, other.manifest.digest);
    }

    #[test]
    fn refuses_what_is_not_wasm() {
        assert!(build(b"hello", "0.1.0").is_err());
        assert!(build(MODULE, "").is_err());
    }

    #[test]
    fn digest_format() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
