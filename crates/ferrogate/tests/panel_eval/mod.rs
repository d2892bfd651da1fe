//! A tiny evaluator for the dashboard's "Rejected or unacknowledged config" panel: just the
//! PromQL it uses, `sum|count by (labels) (metric{matchers} [== N])`, over one scrape. Grafana
//! would run it against Prometheus; here it runs against the samples of a scrape, which is
//! enough to say whether the panel would draw anything.
//!
//! Dashboard variables are substituted as "All" (`$gateway` -> `.*`). A regex matcher
//! supports `.*` and `|`-separated literals, which is all the dashboard uses.

use std::collections::BTreeMap;

/// One sample: metric name, labels, value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses `name{a="x",b="y"}` (a series key of a text exposition) with its value.
pub fn sample(key: &str, value: f64) -> Sample {
    let (name, rest) = key.split_once('{').unwrap_or((key, "}"));
    let mut labels = BTreeMap::new();
    let mut rest = rest.trim_end_matches('}');
    while let Some((label, after)) = rest.split_once("=\"") {
        let end = after.find('"').expect("closed label value");
        labels.insert(
            label.trim_start_matches(',').to_string(),
            after[..end].to_string(),
        );
        rest = &after[end + 1..];
    }
    Sample {
        name: name.to_string(),
        labels,
        value,
    }
}

/// The series an expression yields: grouping labels -> value.
pub type Result = BTreeMap<Vec<(String, String)>, f64>;

/// Evaluates `expr` over `samples`. Panics on PromQL outside the supported subset, so a
/// dashboard edit that this evaluator cannot follow fails the test instead of passing it.
pub fn eval(expr: &str, samples: &[Sample]) -> Result {
    let expr = expr.replace("$gateway", ".*");
    let (agg, rest) = expr
        .split_once(" by (")
        .unwrap_or_else(|| panic!("unsupported: {expr}"));
    let (by, inner) = rest
        .split_once(") (")
        .unwrap_or_else(|| panic!("unsupported: {expr}"));
    let inner = inner
        .strip_suffix(')')
        .unwrap_or_else(|| panic!("unsupported: {expr}"));
    let by: Vec<&str> = by.split(',').map(str::trim).collect();
    let (selector, filter) = match inner.split_once(" == ") {
        Some((s, n)) => (
            s.trim(),
            Some(n.trim().parse::<f64>().expect("a number after ==")),
        ),
        None => (inner.trim(), None),
    };
    let (name, matchers) = match selector.split_once('{') {
        Some((n, m)) => (n, m.strip_suffix('}').expect("closed matchers")),
        None => (selector, ""),
    };
    let matchers: Vec<(&str, &str, &str)> = matchers
        .split(',')
        .filter(|m| !m.trim().is_empty())
        .map(|m| {
            let op = ["=~", "!=", "="]
                .into_iter()
                .find(|op| m.contains(op))
                .expect("a matcher operator");
            let (label, value) = m.split_once(op).unwrap();
            (label.trim(), op, value.trim().trim_matches('"'))
        })
        .collect();
    let mut out = Result::new();
    for s in samples.iter().filter(|s| s.name == name) {
        let value_of = |l: &str| s.labels.get(l).map(String::as_str).unwrap_or("");
        let matched = matchers.iter().all(|(label, op, want)| match *op {
            "=" => value_of(label) == *want,
            "!=" => value_of(label) != *want,
            _ => *want == ".*" || want.split('|').any(|w| w == value_of(label)),
        });
        if !matched || filter.is_some_and(|n| s.value != n) {
            continue;
        }
        let key: Vec<(String, String)> = by
            .iter()
            .map(|l| (l.to_string(), value_of(l).to_string()))
            .collect();
        let slot = out.entry(key).or_insert(0.0);
        match agg.trim() {
            "sum" => *slot += s.value,
            "count" => *slot += 1.0,
            other => panic!("unsupported aggregation {other}"),
        }
    }
    out
}

#[test]
fn counts_unacknowledged_types_and_ignores_acknowledged_ones() {
    let samples = vec![
        sample(
            "ferrogate_xds_config_acked{namespace=\"a\",gateway=\"g\",type_url=\"L\"}",
            1.0,
        ),
        sample(
            "ferrogate_xds_config_acked{namespace=\"a\",gateway=\"g\",type_url=\"R\"}",
            0.0,
        ),
        sample(
            "ferrogate_xds_config_acked{namespace=\"a\",gateway=\"h\",type_url=\"R\"}",
            1.0,
        ),
    ];
    let got = eval(
        "count by (namespace, gateway) (ferrogate_xds_config_acked{gateway=~\"$gateway\"} == 0)",
        &samples,
    );
    let key = vec![
        ("namespace".to_string(), "a".to_string()),
        ("gateway".to_string(), "g".to_string()),
    ];
    assert_eq!(got, Result::from([(key, 1.0)]));
    assert!(
        eval(
            "sum by (gateway) (ferrogate_xds_rejected_config{gateway=~\"$gateway\"})",
            &samples
        )
        .is_empty()
    );
}
