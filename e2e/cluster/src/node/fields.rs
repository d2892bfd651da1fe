//! The downward API: a Pod's own fields by `fieldPath`, for env `fieldRef` and downwardAPI
//! volume items, and `$(VAR)` expansion of command and args as the kubelet does it.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

/// The value of `field_path` (`metadata.name`, `metadata.labels['k']`, `status.podIP`, ...).
pub fn resolve(pod: &Pod, pod_ip: &str, field_path: &str) -> anyhow::Result<String> {
    let meta = &pod.metadata;
    let spec = pod.spec.as_ref();
    let map_entry = |map: Option<&BTreeMap<String, String>>, prefix: &str| {
        let key = field_path.strip_prefix(prefix)?.strip_suffix("']")?;
        Some(map.and_then(|m| m.get(key)).cloned().unwrap_or_default())
    };
    if let Some(v) = map_entry(meta.labels.as_ref(), "metadata.labels['") {
        return Ok(v);
    }
    if let Some(v) = map_entry(meta.annotations.as_ref(), "metadata.annotations['") {
        return Ok(v);
    }
    Ok(match field_path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "spec.nodeName" => spec.and_then(|s| s.node_name.clone()).unwrap_or_default(),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.podIP" | "status.podIPs" => pod_ip.to_string(),
        "status.hostIP" | "status.hostIPs" => pod
            .status
            .as_ref()
            .and_then(|s| s.host_ip.clone())
            .unwrap_or_default(),
        other => anyhow::bail!("fieldPath {other} is not supported by this node"),
    })
}

/// Expands `$(NAME)` with `env`; `$$(NAME)` stays a literal `$(NAME)`; unknown names stay as
/// written (Kubernetes' rules for command and args).
pub fn expand(s: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(end) = after.strip_prefix('(').and_then(|a| a.find(')')) {
            let name = &after[1..=end];
            match env.get(name) {
                Some(v) => out.push_str(v),
                None => out.push_str(&rest[i..i + 3 + end]),
            }
            rest = &after[end + 2..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_like_the_kubelet() {
        let env = BTreeMap::from([("POD_NAME".to_string(), "web-1".to_string())]);
        assert_eq!(expand("$(POD_NAME)", &env), "web-1");
        assert_eq!(expand("a-$(POD_NAME)-b", &env), "a-web-1-b");
        assert_eq!(expand("$$(POD_NAME)", &env), "$(POD_NAME)");
        assert_eq!(expand("$(OTHER) $", &env), "$(OTHER) $");
    }
}
