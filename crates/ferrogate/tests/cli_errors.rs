//! What a user sees when the command line or an input is wrong: one line naming the
//! problem, a non-zero exit, and no backtrace, even with RUST_BACKTRACE set.

use std::process::Command;

fn ferrogate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferrogate"))
        .args(args)
        .env("RUST_BACKTRACE", "1")
        .env("RUST_LIB_BACKTRACE", "1")
        .output()
        .expect("run ferrogate")
}

#[test]
fn translate_of_a_missing_file_prints_the_error_without_a_backtrace() {
    let out = ferrogate(&["translate", "-f", "does/not/exist.yaml"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("error: reading does/not/exist.yaml"),
        "{stderr}"
    );
    assert!(stderr.contains("No such file"), "{stderr}");
    assert!(
        !stderr.contains("Stack backtrace") && !stderr.contains("0: "),
        "{stderr}"
    );
    assert!(stderr.lines().count() <= 2, "{stderr}");
}

#[test]
fn an_envoy_base_port_without_room_for_one_gateway_is_refused_when_parsed() {
    for (port, why) in [
        ("65534", "no room below port 65535"),
        ("80", "privileged"),
        ("70000", "not a port"),
    ] {
        let out = ferrogate(&[
            "standalone",
            "--config-dir",
            "nowhere",
            "--envoy-base-port",
            port,
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "clap's usage error for {port}: {stderr}"
        );
        assert!(
            stderr.contains("--envoy-base-port") && stderr.contains(why),
            "{port}: {stderr}"
        );
    }
}

#[test]
fn plaintext_xds_on_a_non_loopback_address_is_refused_without_the_insecure_flag() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::create_dir(&config).unwrap();
    let status = dir.path().join("status");
    let out = ferrogate(&[
        "standalone",
        "--config-dir",
        config.to_str().unwrap(),
        "--status-dir",
        status.to_str().unwrap(),
        "--work-dir",
        dir.path().join("work").to_str().unwrap(),
        "--envoy",
        env!("CARGO_BIN_EXE_ferrogate"), // any existing file: it is never started
        "--xds-addr",
        "0.0.0.0:0",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("refusing plaintext xDS on non-loopback address 0.0.0.0:0"),
        "{stderr}"
    );
    assert!(stderr.contains("--xds-insecure-plaintext"), "{stderr}");
}
