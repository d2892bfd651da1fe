//! Gateway `spec.tls.frontend`: client certificate validation on HTTPS listeners. The
//! per-port entry for a listener's port wins over the default. A CA reference that cannot be
//! used makes only the listeners it applies to `Accepted: False` / `NoValidCACertificate`.

use ferrogate_api::GATEWAY_GROUP;
use ferrogate_api::gateway::{
    Gateway, GatewayTlsFrontendDefaultValidationMode as DefaultMode,
    GatewayTlsFrontendPerPortTlsValidationMode as PerPortMode,
};
use ferrogate_ir::ClientValidation;
use ferrogate_store::Snapshot;

use crate::conditions::{Problem, reasons};
use crate::listener::{ListenerCtx, Protocol};
use crate::refs::{self, From, To};

/// A CA reference as written (default and per-port entries share the shape).
struct CaRef {
    group: String,
    kind: String,
    name: String,
    namespace: Option<String>,
}

/// The validation for one port: CA refs and whether clients without a valid certificate
/// are still let in. The per-port entry for the port wins over the default.
fn validation_for(gateway: &Gateway, port: u16) -> Option<(Vec<CaRef>, bool)> {
    let frontend = gateway.spec.tls.as_ref()?.frontend.as_ref()?;
    if let Some(per_port) = frontend
        .per_port
        .iter()
        .flatten()
        .find(|p| p.port == i32::from(port))
    {
        let v = per_port.tls.validation.as_ref()?;
        let refs = v
            .ca_certificate_refs
            .iter()
            .map(|r| CaRef::new(&r.group, &r.kind, &r.name, &r.namespace))
            .collect();
        return Some((
            refs,
            matches!(v.mode, Some(PerPortMode::AllowInsecureFallback)),
        ));
    }
    let v = frontend.default.validation.as_ref()?;
    let refs = v
        .ca_certificate_refs
        .iter()
        .map(|r| CaRef::new(&r.group, &r.kind, &r.name, &r.namespace))
        .collect();
    Some((
        refs,
        matches!(v.mode, Some(DefaultMode::AllowInsecureFallback)),
    ))
}

impl CaRef {
    fn new(group: &str, kind: &str, name: &str, namespace: &Option<String>) -> Self {
        Self {
            group: group.into(),
            kind: kind.into(),
            name: name.into(),
            namespace: namespace.clone(),
        }
    }
}

/// Applies frontend validation to a Gateway's own HTTPS listeners.
pub(crate) fn apply(
    snapshot: &Snapshot,
    gateway: &Gateway,
    gateway_ns: &str,
    listeners: &mut [ListenerCtx],
) {
    for l in listeners
        .iter_mut()
        .filter(|l| l.protocol == Some(Protocol::Https))
    {
        let Some((refs, allow_insecure_fallback)) = validation_for(gateway, l.port) else {
            continue;
        };
        match resolve(snapshot, gateway_ns, &refs) {
            Ok(ca_certificates) => {
                l.client_validation = Some(ClientValidation {
                    ca_certificates,
                    allow_insecure_fallback,
                })
            }
            Err(problem) => {
                l.not_accepted = Some(Problem::not_accepted(
                    reasons::NO_VALID_CA_CERTIFICATE,
                    problem.message.clone(),
                ));
                l.unresolved = Some(problem);
            }
        }
    }
}

fn resolve(snapshot: &Snapshot, gateway_ns: &str, refs: &[CaRef]) -> Result<String, Problem> {
    let mut bundle = String::new();
    for r in refs {
        let namespace = r.namespace.as_deref().unwrap_or(gateway_ns);
        let pem = match (r.group.as_str(), r.kind.as_str()) {
            ("" | "core", "ConfigMap") => {
                let from = From {
                    group: GATEWAY_GROUP,
                    kind: "Gateway",
                    namespace: gateway_ns,
                };
                let to = To {
                    group: "",
                    kind: "ConfigMap",
                    namespace,
                    name: &r.name,
                };
                if !refs::permitted(snapshot, &from, &to) {
                    return Err(Problem::unresolved(
                        reasons::REF_NOT_PERMITTED,
                        format!(
                            "ConfigMap {namespace}/{} is not permitted by any ReferenceGrant",
                            r.name
                        ),
                    ));
                }
                let cm = snapshot
                    .config_maps
                    .get(namespace, &r.name)
                    .ok_or_else(|| {
                        Problem::unresolved(
                            reasons::INVALID_CA_CERTIFICATE_REF,
                            format!("ConfigMap {namespace}/{} not found", r.name),
                        )
                    })?;
                let data = cm.data.clone().unwrap_or_default();
                data.get("ca.crt")
                    .or_else(|| data.values().next())
                    .filter(|v| v.contains("BEGIN CERTIFICATE"))
                    .cloned()
                    .ok_or_else(|| {
                        Problem::unresolved(
                            reasons::INVALID_CA_CERTIFICATE_REF,
                            format!("ConfigMap {namespace}/{} holds no CA certificate", r.name),
                        )
                    })?
            }
            (g, k) => {
                return Err(Problem::unresolved(
                    reasons::INVALID_CA_CERTIFICATE_KIND,
                    format!("caCertificateRef {g}/{k} {} is not a ConfigMap", r.name),
                ));
            }
        };
        bundle.push_str(&pem);
        if !bundle.ends_with('\n') {
            bundle.push('\n');
        }
    }
    if bundle.is_empty() {
        return Err(Problem::unresolved(
            reasons::INVALID_CA_CERTIFICATE_REF,
            "no caCertificateRefs",
        ));
    }
    Ok(bundle)
}
