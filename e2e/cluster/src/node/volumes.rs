//! A Pod's volumes as files on the host, read once when the Pod starts: ConfigMap, Secret,
//! emptyDir, projected (serviceAccountToken, configMap, secret, downwardAPI) and
//! downwardAPI volumes. The container later sees each volume's folder at its mountPath
//! through a bind mount.
//!
//! Not done (the kubelet does): refreshing files when the source object changes, the
//! `..data` symlink swap, file ownership by fsGroup (containers run as root here).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use k8s_openapi::api::core::v1::{ConfigMap, KeyToPath, Pod, Secret, ServiceAccount, Volume};
use kube::api::{Api, PostParams};
use serde_json::json;

use super::fields;

/// Writes every volume of `pod` under `dir/<volume name>/`; returns the folder per volume.
pub async fn materialize(
    client: &kube::Client,
    pod: &Pod,
    pod_ip: &str,
    dir: &Path,
) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    let mut out = BTreeMap::new();
    for volume in pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
    {
        let target = dir.join(&volume.name);
        std::fs::create_dir_all(&target)?;
        write_volume(client, pod, namespace, pod_ip, volume, &target)
            .await
            .with_context(|| format!("volume {}", volume.name))?;
        out.insert(volume.name.clone(), target);
    }
    Ok(out)
}

async fn write_volume(
    client: &kube::Client,
    pod: &Pod,
    namespace: &str,
    pod_ip: &str,
    volume: &Volume,
    target: &Path,
) -> anyhow::Result<()> {
    if volume.empty_dir.is_some() {
        return Ok(());
    }
    if let Some(cm) = &volume.config_map {
        let data =
            config_map_data(client, namespace, &cm.name, cm.optional.unwrap_or(false)).await?;
        return write_keys(
            target,
            &data,
            cm.items.as_deref(),
            cm.default_mode.unwrap_or(0o644),
        );
    }
    if let Some(secret) = &volume.secret {
        let name = secret
            .secret_name
            .as_deref()
            .context("secret volume without secretName")?;
        let data = secret_data(client, namespace, name, secret.optional.unwrap_or(false)).await?;
        return write_keys(
            target,
            &data,
            secret.items.as_deref(),
            secret.default_mode.unwrap_or(0o644),
        );
    }
    if let Some(projected) = &volume.projected {
        let mode = projected.default_mode.unwrap_or(0o644);
        for source in projected.sources.iter().flatten() {
            if let Some(cm) = &source.config_map {
                let data =
                    config_map_data(client, namespace, &cm.name, cm.optional.unwrap_or(false))
                        .await?;
                write_keys(target, &data, cm.items.as_deref(), mode)?;
            }
            if let Some(secret) = &source.secret {
                let data = secret_data(
                    client,
                    namespace,
                    &secret.name,
                    secret.optional.unwrap_or(false),
                )
                .await?;
                write_keys(target, &data, secret.items.as_deref(), mode)?;
            }
            if let Some(token) = &source.service_account_token {
                let value = service_account_token(
                    client,
                    pod,
                    namespace,
                    token.audience.as_deref(),
                    token.expiration_seconds,
                )
                .await?;
                write_file(&target.join(&token.path), value.as_bytes(), mode)?;
            }
            if let Some(downward) = &source.downward_api {
                for item in downward.items.iter().flatten() {
                    let field = item.field_ref.as_ref().context(
                        "downwardAPI item without fieldRef (resourceFieldRef is not supported)",
                    )?;
                    let value = fields::resolve(pod, pod_ip, &field.field_path)?;
                    write_file(
                        &target.join(&item.path),
                        value.as_bytes(),
                        item.mode.unwrap_or(mode),
                    )?;
                }
            }
        }
        return Ok(());
    }
    if let Some(downward) = &volume.downward_api {
        for item in downward.items.iter().flatten() {
            let field = item
                .field_ref
                .as_ref()
                .context("downwardAPI item without fieldRef (resourceFieldRef is not supported)")?;
            let value = fields::resolve(pod, pod_ip, &field.field_path)?;
            write_file(
                &target.join(&item.path),
                value.as_bytes(),
                item.mode.unwrap_or(downward.default_mode.unwrap_or(0o644)),
            )?;
        }
        return Ok(());
    }
    anyhow::bail!(
        "this node supports configMap, secret, emptyDir, projected and downwardAPI volumes only"
    )
}

/// A ConfigMap's data and binaryData; empty when it is missing and `optional`.
pub async fn config_map_data(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    optional: bool,
) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let Some(cm) = Api::<ConfigMap>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await?
    else {
        anyhow::ensure!(optional, "ConfigMap {namespace}/{name} not found");
        return Ok(BTreeMap::new());
    };
    let mut data: BTreeMap<String, Vec<u8>> = cm
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.into_bytes()))
        .collect();
    data.extend(
        cm.binary_data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0)),
    );
    Ok(data)
}

/// A Secret's data (stringData is folded into data by the API server).
pub async fn secret_data(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    optional: bool,
) -> anyhow::Result<BTreeMap<String, Vec<u8>>> {
    let Some(secret) = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await?
    else {
        anyhow::ensure!(optional, "Secret {namespace}/{name} not found");
        return Ok(BTreeMap::new());
    };
    Ok(secret
        .data
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect())
}

/// A token of the Pod's ServiceAccount bound to the Pod (TokenRequest), as the kubelet
/// projects it.
async fn service_account_token(
    client: &kube::Client,
    pod: &Pod,
    namespace: &str,
    audience: Option<&str>,
    expiration: Option<i64>,
) -> anyhow::Result<String> {
    let sa = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .unwrap_or_else(|| "default".into());
    let request = json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "audiences": audience.map(|a| vec![a.to_string()]).unwrap_or_default(),
            "expirationSeconds": expiration.unwrap_or(3600),
            "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": pod.metadata.name, "uid": pod.metadata.uid},
        },
    });
    let api = Api::<ServiceAccount>::namespaced(client.clone(), namespace);
    let response: serde_json::Value = api
        .create_subresource("token", &sa, &PostParams::default(), &request)
        .await?;
    response["status"]["token"]
        .as_str()
        .map(str::to_string)
        .context("TokenRequest answered without a token")
}

fn write_keys(
    target: &Path,
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    mode: i32,
) -> anyhow::Result<()> {
    match items {
        Some(items) => {
            for item in items {
                let value = data
                    .get(&item.key)
                    .with_context(|| format!("key {} not found", item.key))?;
                write_file(&target.join(&item.path), value, item.mode.unwrap_or(mode))?;
            }
        }
        None => {
            for (key, value) in data {
                write_file(&target.join(key), value, mode)?;
            }
        }
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8], mode: i32) -> anyhow::Result<()> {
    anyhow::ensure!(
        path.components()
            .all(|c| !matches!(c, std::path::Component::ParentDir)),
        "path {} leaves its volume",
        path.display()
    );
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, bytes)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode as u32 & 0o777))?;
    Ok(())
}
