//! Small building blocks shared by the feature modules: `Any` packing, the ADS config source,
//! string and regex matchers.

use envoy_types::pb::envoy::config::core::v3::{
    AggregatedConfigSource, ApiVersion, ConfigSource, config_source::ConfigSourceSpecifier,
};
use envoy_types::pb::envoy::r#type::matcher::v3::{
    RegexMatchAndSubstitute, RegexMatcher, StringMatcher, string_matcher::MatchPattern,
};
use envoy_types::pb::google::protobuf::{Any, Duration};
use ferrogate_ir::StringMatch;
use prost::Message;

/// Packs `msg` into an `Any` with an explicit type URL (we do not rely on the generated
/// `prost::Name` impls, a few of which carry wrong names).
pub(crate) fn pack(type_url: &str, msg: &impl Message) -> Any {
    Any {
        type_url: type_url.to_string(),
        value: msg.encode_to_vec(),
    }
}

/// `{ ads: {}, resource_api_version: V3 }`: fetch over the aggregated stream.
pub(crate) fn ads_config_source() -> ConfigSource {
    ConfigSource {
        resource_api_version: ApiVersion::V3 as i32,
        config_source_specifier: Some(ConfigSourceSpecifier::Ads(AggregatedConfigSource {})),
        ..Default::default()
    }
}

/// A duration of whole seconds.
pub(crate) fn seconds(s: i64) -> Duration {
    Duration {
        seconds: s,
        nanos: 0,
    }
}

/// A RE2 regex matcher. The engine is left unset: `GoogleRE2` is deprecated in the API and
/// RE2 is Envoy's default engine.
pub(crate) fn regex(re: &str) -> RegexMatcher {
    RegexMatcher {
        regex: re.to_string(),
        engine_type: None,
    }
}

/// A regex rewrite: every match of `pattern` is replaced by `substitution` (RE2 syntax,
/// `\1` for groups).
pub(crate) fn regex_rewrite(pattern: &str, substitution: &str) -> RegexMatchAndSubstitute {
    RegexMatchAndSubstitute {
        pattern: Some(regex(pattern)),
        substitution: substitution.to_string(),
    }
}

/// An exact or whole-value regex string matcher (case-sensitive).
pub(crate) fn string_matcher(m: &StringMatch) -> StringMatcher {
    let pattern = match m {
        StringMatch::Exact(v) => MatchPattern::Exact(v.clone()),
        StringMatch::Regex(re) => MatchPattern::SafeRegex(regex(re)),
    };
    StringMatcher {
        ignore_case: false,
        match_pattern: Some(pattern),
    }
}

/// Escapes RE2 metacharacters so that `s` matches literally.
pub(crate) fn re2_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_metacharacters() {
        assert_eq!(re2_escape("/a.b/c+d"), "/a\\.b/c\\+d");
        assert_eq!(re2_escape("/plain/path"), "/plain/path");
    }
}
