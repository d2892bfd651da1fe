//! Compiles the `.proto` sources shipped inside the `envoy-types` crate into a
//! `FileDescriptorSet` (with `protox`, no `protoc` needed) and writes it to
//! `$OUT_DIR/envoy_descriptor_set.bin`, which the library embeds with `include_bytes!`.
//!
//! The `envoy-types` source directory is found by asking Cargo (`cargo metadata`, using the
//! `CARGO` binary that runs this build) which `envoy-types` package this crate depends on.
//! `FERROGATE_ENVOY_PROTO_DIR` overrides that: it must point at the `proto/` directory of an
//! `envoy-types` source tree of the same version as the one compiled in.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use protox::file::{
    ChainFileResolver, File, FileResolver, GoogleFileResolver, IncludeFileResolver,
};

/// Include roots inside `envoy-types/proto/`, the same ones `envoy-types` compiles with.
/// Every `.proto` file under them is compiled, so the descriptor pool holds every message
/// type `envoy-types` has a Rust type for (measured: ~1.5 s of build script, ~0.7 MB of
/// descriptors; compiling only the xDS resources and the common extensions saved ~0.5 s).
const INCLUDE_DIRS: &[&str] = &[
    "data-plane-api",
    "xds",
    "protoc-gen-validate",
    "googleapis",
    "cel-spec/proto",
    "opentelemetry-proto",
    "client_model",
    "ratelimit/api",
];

/// Package path segments that `protox` can resolve wrongly; see [`qualify_relative_names`].
const SHADOWED_SEGMENTS: &[&str] = &["common", "config"];

const PROTO_DIR_ENV: &str = "FERROGATE_ENVOY_PROTO_DIR";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed={PROTO_DIR_ENV}");

    let proto_dir = match env::var_os(PROTO_DIR_ENV) {
        Some(dir) => PathBuf::from(dir),
        None => envoy_types_dir().join("proto"),
    };
    assert!(
        proto_dir.join("data-plane-api").is_dir(),
        "ferrogate-xds-json: {} does not look like the envoy-types proto directory \
         (no data-plane-api/ inside)",
        proto_dir.display()
    );

    let includes: Vec<PathBuf> = INCLUDE_DIRS.iter().map(|d| proto_dir.join(d)).collect();
    let mut files = Vec::new();
    for include in &includes {
        collect_protos(include, include, &mut files);
    }
    files.sort();
    files.dedup();
    assert!(
        !files.is_empty(),
        "ferrogate-xds-json: no .proto files found"
    );

    let mut compiler = protox::Compiler::with_file_resolver(PatchingResolver::new(&includes));
    compiler.include_imports(true).include_source_info(false);
    compiler
        .open_files(&files)
        .unwrap_or_else(|e| panic!("ferrogate-xds-json: protox failed: {e:?}"));
    let bytes = compiler.encode_file_descriptor_set();

    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"))
        .join("envoy_descriptor_set.bin");
    fs::write(&out, bytes).expect("write descriptor set");
}

/// Resolves files from the include roots (then protox's built-in `google/protobuf/*`
/// files), rewriting Envoy sources with [`qualify_relative_names`].
struct PatchingResolver {
    inner: ChainFileResolver,
}

impl PatchingResolver {
    fn new(includes: &[PathBuf]) -> Self {
        let mut inner = ChainFileResolver::new();
        for include in includes {
            inner.add(IncludeFileResolver::new(include.clone()));
        }
        inner.add(GoogleFileResolver::new());
        Self { inner }
    }
}

impl FileResolver for PatchingResolver {
    fn resolve_path(&self, path: &Path) -> Option<String> {
        self.inner.resolve_path(path)
    }

    fn open_file(&self, name: &str) -> Result<File, protox::Error> {
        let file = self.inner.open_file(name)?;
        if !name.starts_with("envoy/") {
            return Ok(file);
        }
        match file.source().and_then(qualify_relative_names) {
            Some(patched) => File::from_source(name, &patched),
            None => Ok(file),
        }
    }
}

/// Works around a name-resolution difference between `protox` and `protoc`.
///
/// `protox` resolves the first component of a relative type name against every package in
/// the pool, where `protoc` only considers packages defined by the file's direct imports.
/// So in `clusters/dynamic_forward_proxy/v3/cluster.proto` (package
/// `envoy.extensions.clusters.dynamic_forward_proxy.v3`) the reference
/// `common.dynamic_forward_proxy.v3.DnsCacheConfig` meets the package
/// `envoy.extensions.clusters.common` (from a transitive import) and fails, where `protoc`
/// finds `envoy.extensions.common`. Envoy's package names follow its directory layout, so a
/// reference `common.<rest>.` matches the one direct import under `.../common/<rest>/`, and
/// is rewritten to that fully qualified package. The descriptors produced are the same as
/// `protoc`'s, whose type references are always fully qualified. Returns `None` if nothing
/// changed.
fn qualify_relative_names(source: &str) -> Option<String> {
    let mut out = source.to_owned();
    for segment in SHADOWED_SEGMENTS {
        let marker = format!("/{segment}/");
        // Relative prefix (`common.async_files.v3.`) -> qualified one, from the imports.
        let mut prefixes: Vec<(String, String)> = Vec::new();
        let mut ambiguous: Vec<String> = Vec::new();
        // Directories of the direct imports, and the file's own package as a directory (a
        // reference relative to its own package must not be redirected to an import).
        let dirs = source.lines().filter_map(|line| {
            let line = line.trim_start();
            if let Some(import) = line.strip_prefix("import ") {
                let path = import.split('"').nth(1)?;
                Some(format!("{}/", path.rsplit_once('/')?.0))
            } else {
                let package = line
                    .strip_prefix("package ")?
                    .trim_end()
                    .strip_suffix(';')?;
                Some(format!("{}/", package.trim().replace('.', "/")))
            }
        });
        for dir in dirs {
            let Some(at) = dir.find(&marker) else {
                continue;
            };
            let relative = dir[at + 1..].replace('/', ".");
            let qualified = format!(".{}", dir.replace('/', "."));
            match prefixes.iter().find(|(r, _)| *r == relative) {
                Some((_, q)) if *q != qualified => ambiguous.push(relative),
                Some(_) => {}
                None => prefixes.push((relative, qualified)),
            }
        }
        prefixes.retain(|(r, _)| !ambiguous.contains(r));
        for (relative, qualified) in prefixes {
            out = replace_references(&out, &relative, &qualified);
        }
    }
    (out != source).then_some(out)
}

/// Replaces `from` with `to` where it starts a type reference: preceded by whitespace, `(`,
/// `<` or `,` (so not inside a longer dotted name or a quoted string).
fn replace_references(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(from) {
        let before = rest[..at]
            .chars()
            .next_back()
            .or_else(|| out.chars().next_back());
        out.push_str(&rest[..at]);
        if before.is_some_and(|c| c.is_whitespace() || matches!(c, '(' | '<' | ',')) {
            out.push_str(to);
        } else {
            out.push_str(from);
        }
        rest = &rest[at + from.len()..];
    }
    out.push_str(rest);
    out
}

/// Adds every `.proto` file under `dir`, as a path relative to `base` with `/` separators.
fn collect_protos(base: &Path, dir: &Path, files: &mut Vec<String>) {
    let entries = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("ferrogate-xds-json: cannot read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("read_dir entry").path();
        if path.is_dir() {
            collect_protos(base, &path, files);
        } else if path.extension().is_some_and(|ext| ext == "proto") {
            let rel = path.strip_prefix(base).expect("path under base");
            let rel: Vec<_> = rel.iter().map(|c| c.to_string_lossy()).collect();
            files.push(rel.join("/"));
        }
    }
}

/// Finds the source directory of the `envoy-types` package this crate depends on.
fn envoy_types_dir() -> PathBuf {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let manifest = manifest_dir.join("Cargo.toml");
    let output = Command::new(&cargo)
        .arg("metadata")
        .arg("--format-version=1")
        .arg("--manifest-path")
        .arg(&manifest)
        .output()
        .unwrap_or_else(|e| panic!("ferrogate-xds-json: cannot run `cargo metadata`: {e}"));
    assert!(
        output.status.success(),
        "ferrogate-xds-json: `cargo metadata` failed (set {PROTO_DIR_ENV} to the envoy-types \
         proto directory to bypass): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let packages = meta["packages"].as_array().expect("metadata packages");

    // Our own package id, then the envoy-types package it resolves to.
    let manifest_str = manifest.to_string_lossy();
    let own_id = packages
        .iter()
        .find(|p| p["name"] == "ferrogate-xds-json" && p["manifest_path"] == *manifest_str)
        .and_then(|p| p["id"].as_str());
    let envoy_id = own_id.and_then(|own| {
        meta["resolve"]["nodes"]
            .as_array()?
            .iter()
            .find(|n| n["id"] == own)?["deps"]
            .as_array()?
            .iter()
            .find(|d| d["name"] == "envoy_types")?["pkg"]
            .as_str()
    });
    let package = match envoy_id {
        Some(id) => packages.iter().find(|p| p["id"] == id),
        None => {
            let mut all = packages.iter().filter(|p| p["name"] == "envoy-types");
            match (all.next(), all.next()) {
                (Some(only), None) => Some(only),
                _ => None,
            }
        }
    }
    .unwrap_or_else(|| {
        panic!("ferrogate-xds-json: envoy-types not found in `cargo metadata`; set {PROTO_DIR_ENV}")
    });
    let manifest_path = package["manifest_path"].as_str().expect("manifest_path");
    Path::new(manifest_path)
        .parent()
        .expect("manifest has a parent")
        .to_path_buf()
}
