//! What `ferrogate version` prints and `ferrogate_build_info` exports (set by `build.rs`).

/// Build information of this binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildInfo {
    /// The crate version.
    pub version: &'static str,
    /// The git commit it was built from (`unknown` outside a checkout without
    /// `FERROGATE_GIT_COMMIT`).
    pub git_commit: &'static str,
    /// The target triple.
    pub target: &'static str,
    /// `debug` or `release`.
    pub profile: &'static str,
    /// `rustc --version` of the compiler.
    pub rustc: &'static str,
}

/// This binary's build information.
pub fn build_info() -> BuildInfo {
    BuildInfo {
        version: env!("CARGO_PKG_VERSION"),
        git_commit: env!("FERROGATE_BUILD_COMMIT"),
        target: env!("FERROGATE_BUILD_TARGET"),
        profile: env!("FERROGATE_BUILD_PROFILE"),
        rustc: env!("FERROGATE_BUILD_RUSTC"),
    }
}

impl std::fmt::Display for BuildInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "ferrogate {}", self.version)?;
        writeln!(f, "commit:  {}", self.git_commit)?;
        writeln!(f, "target:  {}", self.target)?;
        writeln!(f, "profile: {}", self.profile)?;
        write!(f, "rustc:   {}", self.rustc)
    }
}
