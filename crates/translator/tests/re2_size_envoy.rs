//! The RE2 program-size estimate against the real thing: a real Envoy, told to refuse every
//! regular expression (`re2.max_program_size.error_level: 1`), prints the size RE2 computed
//! for each. For expressions of the shapes routes use the estimate must be exact; for the
//! rest it must at least agree with Envoy's default limit (100) on accept or refuse.

use std::process::Command;

use ferrogate_translator::re2_size::program_size;

/// The program size Envoy reports for `regex` (as a route's `safe_regex`).
fn envoy_size(dir: &std::path::Path, regex: &str) -> usize {
    let bootstrap = serde_json::json!({
        "static_resources": {"listeners": [{
            "name": "l",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 1}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "x",
                    "route_config": {"virtual_hosts": [{"name": "v", "domains": ["*"], "routes": [
                        {"match": {"safe_regex": {"regex": regex}}, "direct_response": {"status": 200}}
                    ]}]},
                    "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]
                }
            }]}]
        }]},
        "layered_runtime": {"layers": [{"name": "s", "static_layer": {"re2.max_program_size.error_level": 1}}]}
    });
    let file = dir.join("bootstrap.json");
    std::fs::write(&file, bootstrap.to_string()).unwrap();
    let out = Command::new(ferrogate_testkit::envoy_path())
        .args([
            "--mode",
            "validate",
            "--disable-hot-restart",
            "-l",
            "critical",
            "-c",
        ])
        .arg(&file)
        .output()
        .expect("run envoy");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let at = text
        .find("program size of ")
        .unwrap_or_else(|| panic!("{regex:?}: no size in Envoy's output: {text}"));
    text[at + "program size of ".len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn the_re2_program_size_estimate_agrees_with_envoy() {
    let dir = tempfile::tempdir().unwrap();
    // Shapes routes use: the estimate must be exact.
    let exact = [
        "/api/.*",
        "/v[0-9]+/users/[^/]+",
        "^/api/v[0-9]+/[a-z]+$",
        "[a-zA-Z0-9_-]+",
        "(foo|bar)+",
        "x{3,}y",
        "/r/[a-z]{200}",
        "/files/.*\\.(png|jpg)",
        "(?i)/Admin",
    ];
    // Anything else: the same side of the default limit of 100.
    let limit_only = [
        "(a|bc|def){20}",
        "\\w{30}",
        ".{50}",
        "[^/]{40}/x",
        "(a*)*b",
        "(\\d{1,3}\\.){3}\\d{1,3}",
        "foo|foobar",
    ];
    let mut wrong = Vec::new();
    for regex in exact {
        let (ours, envoy) = (program_size(regex).unwrap(), envoy_size(dir.path(), regex));
        eprintln!("{regex:?}: estimate {ours}, Envoy {envoy}");
        if ours != envoy {
            wrong.push(format!("{regex:?}: estimated {ours}, Envoy {envoy}"));
        }
    }
    for regex in limit_only {
        let (ours, envoy) = (program_size(regex).unwrap(), envoy_size(dir.path(), regex));
        eprintln!("{regex:?}: estimate {ours}, Envoy {envoy}");
        if (ours > 100) != (envoy > 100) {
            wrong.push(format!(
                "{regex:?}: estimated {ours}, Envoy {envoy}: opposite sides of 100"
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
