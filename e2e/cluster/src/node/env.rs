//! A container's environment as the kubelet builds it: `envFrom` first, then `env` in order
//! (later entries see earlier ones through `$(NAME)`), values from the downward API,
//! ConfigMaps and Secrets.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod};

use super::{fields, volumes};

/// The variables of `container` in `pod` (whose address is `pod_ip`).
pub async fn resolve(
    client: &kube::Client,
    pod: &Pod,
    container: &Container,
    pod_ip: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut env = BTreeMap::new();
    for from in container.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        let data = if let Some(cm) = &from.config_map_ref {
            volumes::config_map_data(client, namespace, &cm.name, cm.optional.unwrap_or(false))
                .await?
        } else if let Some(secret) = &from.secret_ref {
            volumes::secret_data(
                client,
                namespace,
                &secret.name,
                secret.optional.unwrap_or(false),
            )
            .await?
        } else {
            BTreeMap::new()
        };
        for (k, v) in data {
            env.insert(
                format!("{prefix}{k}"),
                String::from_utf8_lossy(&v).into_owned(),
            );
        }
    }
    for var in container.env.iter().flatten() {
        let value = match &var.value_from {
            None => fields::expand(var.value.as_deref().unwrap_or(""), &env),
            Some(from) => {
                if let Some(field) = &from.field_ref {
                    fields::resolve(pod, pod_ip, &field.field_path)?
                } else if let Some(key) = &from.config_map_key_ref {
                    let data = volumes::config_map_data(
                        client,
                        namespace,
                        &key.name,
                        key.optional.unwrap_or(false),
                    )
                    .await?;
                    data.get(&key.key)
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_default()
                } else if let Some(key) = &from.secret_key_ref {
                    let data = volumes::secret_data(
                        client,
                        namespace,
                        &key.name,
                        key.optional.unwrap_or(false),
                    )
                    .await?;
                    data.get(&key.key)
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                        .unwrap_or_default()
                } else {
                    anyhow::bail!(
                        "env {}: only fieldRef, configMapKeyRef and secretKeyRef are supported",
                        var.name
                    );
                }
            }
        };
        env.insert(var.name.clone(), value);
    }
    Ok(env)
}
