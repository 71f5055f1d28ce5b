//! `oci-image --wasm FILE --out DIR --tag TAG [--repository REPO]`: writes
//! the module as an OCI image layout (Istio's Wasm "compat" image) and
//! prints the manifest digest to pin and the command to push it.
//! `make oci` runs it on the filter's release build.

use std::path::PathBuf;
use std::process::ExitCode;

use oci_image::{Error, build, write_layout};

const USAGE: &str = "usage: oci-image --wasm FILE --out DIR --tag TAG [--repository REPO]";
/// Where the push commands say the image goes unless told.
const DEFAULT_REPOSITORY: &str = "ghcr.io/<you>/jwt-policy";

struct Args {
    wasm: PathBuf,
    out: PathBuf,
    tag: String,
    repository: String,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut wasm, mut out, mut tag, mut repository) = (None, None, None, None);
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--wasm" => &mut wasm,
            "--out" => &mut out,
            "--tag" => &mut tag,
            "--repository" => &mut repository,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        };
        match args.next() {
            Some(value) => *slot = Some(value),
            None => return Err(format!("{flag} needs a value\n{USAGE}")),
        }
    }
    match (wasm, out, tag) {
        (Some(wasm), Some(out), Some(tag)) => Ok(Args {
            wasm: wasm.into(),
            out: out.into(),
            tag,
            repository: repository.unwrap_or_else(|| DEFAULT_REPOSITORY.to_owned()),
        }),
        _ => Err(format!("--wasm, --out and --tag are required\n{USAGE}")),
    }
}

fn run(args: &Args) -> Result<String, Error> {
    let wasm = std::fs::read(&args.wasm).map_err(|e| {
        Error::new(format!(
            "{}: {e} (build it first: `make wasm`)",
            args.wasm.display()
        ))
    })?;
    let image = build(&wasm, &args.tag)?;
    write_layout(&image, &args.out)?;
    let out = args.out.display();
    let (tag, repo) = (&args.tag, &args.repository);
    let manifest_hex = image.manifest.hex();
    Ok(format!(
        "OCI image layout {out} (tag {tag}): Istio's Wasm compat image, {WASM} = {wasm_path}\n\
         \x20 manifest {manifest} ({manifest_len} bytes)\n\
         \x20 config   {config}\n\
         \x20 layer    {layer} (tar+gzip, {wasm_len} bytes of wasm)\n\
         \n\
         Pin the MANIFEST digest (Istio and Envoy Gateway compare it for oci:// images):\n\
         \x20 WasmPlugin spec.sha256 / EnvoyExtensionPolicy code.image.sha256: {manifest_hex}\n\
         \n\
         Push the layout (the manifest itself, so the digest stays), with either:\n\
         \x20 oras cp --from-oci-layout {out}:{tag} {repo}:{tag}\n\
         \x20 skopeo copy --preserve-digests oci:{out}:{tag} docker://{repo}:{tag}\n\
         then: url: oci://{repo}:{tag} with sha256: {manifest_hex}\n",
        WASM = oci_image::WASM_FILE_NAME,
        wasm_path = args.wasm.display(),
        manifest = image.manifest.digest,
        manifest_len = image.manifest.bytes.len(),
        config = image.config.digest,
        layer = image.layer.digest,
        wasm_len = wasm.len(),
    ))
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("oci-image: {message}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("oci-image: {e}");
            ExitCode::FAILURE
        }
    }
}
