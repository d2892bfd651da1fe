//! Build information for `ferrogate version` and `ferrogate_build_info`: the git commit
//! (from `FERROGATE_GIT_COMMIT`, as the image build sets it, else from `git` when building
//! in a checkout), the target triple, the profile and the compiler.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=FERROGATE_GIT_COMMIT");
    let commit = std::env::var("FERROGATE_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=FERROGATE_BUILD_COMMIT={commit}");
    for (var, from) in [
        ("FERROGATE_BUILD_TARGET", "TARGET"),
        ("FERROGATE_BUILD_PROFILE", "PROFILE"),
    ] {
        println!(
            "cargo:rustc-env={var}={}",
            std::env::var(from).unwrap_or_default()
        );
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = run(&rustc, &["--version"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=FERROGATE_BUILD_RUSTC={version}");
}

/// The short commit of the checkout, and a rebuild whenever it moves (its HEAD and reflog,
/// which a commit, checkout or rebase touches; a worktree has its own).
fn git_commit() -> Option<String> {
    for file in ["HEAD", "logs/HEAD"] {
        if let Some(path) = run("git", &["rev-parse", "--git-path", file]) {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    run("git", &["rev-parse", "--short=12", "HEAD"])
}

fn run(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}
