//! `ferrogate status`: every Gateway and route with its conditions, as a table, read from a
//! standalone status directory or from a cluster (kubeconfig or in-cluster credentials).
//!
//! Both sources become a [`StatusSet`] first, so the table is one pure function
//! ([`render_table`]) whichever way the statuses were read.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ferrogate_status::{
    Condition, ConditionStatus, GatewayClassStatus, GatewayStatus, ListenerStatus, ParentRef,
    RouteParentStatus, RouteStatus, StatusSet,
};

/// Where `ferrogate status` reads statuses from.
#[derive(Clone, Debug)]
pub enum StatusSource {
    /// A standalone status directory (`--status-dir` of `ferrogate standalone`).
    Dir(PathBuf),
    /// The cluster of the current kubeconfig context (or the in-cluster service account).
    Cluster,
}

/// Why statuses could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The status directory or one of its files could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A status file is not a status Ferrogate writes.
    #[error("{path} is not a Ferrogate status file: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// No Kubernetes client could be built or a list failed.
    #[error("Kubernetes: {0}")]
    Kube(#[from] kube::Error),
    /// No kubeconfig and not in a cluster.
    #[error("no Kubernetes credentials: {0}")]
    Config(String),
}

/// The status table of `source`.
pub async fn status_table(source: &StatusSource) -> Result<String, StatusError> {
    let set = match source {
        StatusSource::Dir(dir) => read_status_dir(dir)?,
        StatusSource::Cluster => {
            let client = kube::Client::try_default()
                .await
                .map_err(|e| StatusError::Config(e.to_string()))?;
            crate::status_cluster::read_cluster(client).await?
        }
    };
    Ok(render_table(&set))
}

/// Route kinds whose status files sit in `<kind lowercase>s/`.
const ROUTE_KINDS: [&str; 5] = ["HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute", "UDPRoute"];

/// Reads the statuses a standalone instance wrote under `dir` (see
/// `ferrogate_provider_file::StatusFileWriter` for the layout).
pub fn read_status_dir(dir: &Path) -> Result<StatusSet, StatusError> {
    if !dir.is_dir() {
        return Err(StatusError::Read {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
        });
    }
    let mut set = StatusSet::default();
    for path in yaml_files(&dir.join("gatewayclasses"))? {
        set.gateway_classes.push(parse(&path)?);
    }
    for path in yaml_files(&dir.join("gateways"))? {
        set.gateways.push(parse(&path)?);
    }
    for kind in ROUTE_KINDS {
        for path in yaml_files(&dir.join(format!("{}s", kind.to_ascii_lowercase())))? {
            set.routes.push_back(parse(&path)?);
        }
    }
    Ok(set)
}

fn parse<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StatusError> {
    let text = std::fs::read_to_string(path).map_err(|source| StatusError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    yaml_serde::from_str(&text).map_err(|e| StatusError::Parse {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// `*.yaml` files under `dir` (recursively), sorted; none when `dir` does not exist.
fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, StatusError> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(source) => {
            return Err(StatusError::Read {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    for entry in entries {
        let path = entry
            .map_err(|source| StatusError::Read {
                path: dir.to_path_buf(),
                source,
            })?
            .path();
        if path.is_dir() {
            out.extend(yaml_files(&path)?);
        } else if path.extension().is_some_and(|e| e == "yaml") {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// The table: one row per GatewayClass, Gateway, Gateway listener and route parent, with
/// the conditions in the order the object carries them (`Type=Status`, and the reason when
/// a condition is not `True`, which is what needs reading).
pub fn render_table(set: &StatusSet) -> String {
    let mut rows: Vec<[String; 4]> = Vec::new();
    for c in &set.gateway_classes {
        let GatewayClassStatus {
            name, conditions, ..
        } = c;
        rows.push([
            "GatewayClass".into(),
            name.clone(),
            String::new(),
            conditions_text(conditions),
        ]);
    }
    for g in &set.gateways {
        let GatewayStatus {
            namespace,
            name,
            conditions,
            listeners,
            addresses,
            ..
        } = g;
        let addresses: Vec<&str> = addresses.iter().map(|a| a.value.as_str()).collect();
        let scope = if addresses.is_empty() {
            String::new()
        } else {
            format!("address {}", addresses.join(","))
        };
        rows.push([
            "Gateway".into(),
            format!("{namespace}/{name}"),
            scope,
            conditions_text(conditions),
        ]);
        for ListenerStatus {
            name: listener,
            attached_routes,
            conditions,
            ..
        } in listeners
        {
            rows.push([
                String::new(),
                String::new(),
                format!("listener {listener} ({attached_routes} routes)"),
                conditions_text(conditions),
            ]);
        }
    }
    for r in &set.routes {
        let RouteStatus {
            kind,
            namespace,
            name,
            parents,
        } = &**r;
        if parents.is_empty() {
            rows.push([
                kind.clone(),
                format!("{namespace}/{name}"),
                "no parent of ours".into(),
                String::new(),
            ]);
        }
        for (
            i,
            RouteParentStatus {
                parent_ref,
                conditions,
            },
        ) in parents.iter().enumerate()
        {
            let (kind, name) = if i == 0 {
                (kind.clone(), format!("{namespace}/{name}"))
            } else {
                (String::new(), String::new())
            };
            rows.push([
                kind,
                name,
                format!("parent {}", parent_text(parent_ref, namespace)),
                conditions_text(conditions),
            ]);
        }
    }
    let header = ["KIND", "NAME", "SCOPE", "CONDITIONS"].map(String::from);
    let mut widths = [0usize; 3];
    for row in std::iter::once(&header).chain(&rows) {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let line = format!(
            "{:w0$}  {:w1$}  {:w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

fn conditions_text(conditions: &[Condition]) -> String {
    conditions
        .iter()
        .map(|c| match c.status {
            ConditionStatus::True => format!("{}=True", c.type_),
            ConditionStatus::False => format!("{}=False({})", c.type_, c.reason),
            ConditionStatus::Unknown => format!("{}=Unknown({})", c.type_, c.reason),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn parent_text(p: &ParentRef, route_namespace: &str) -> String {
    let namespace = p.namespace.as_deref().unwrap_or(route_namespace);
    let mut text = format!("{namespace}/{}", p.name);
    if let Some(section) = &p.section_name {
        let _ = write!(text, "/{section}");
    }
    if let Some(port) = p.port {
        let _ = write!(text, ":{port}");
    }
    text
}

#[cfg(test)]
mod tests {
    use ferrogate_provider_file::StatusFileWriter;

    use super::*;

    fn set() -> StatusSet {
        let ok = |t: &'static str| Condition::ok(t, t, "fine");
        StatusSet {
            gateway_classes: vec![GatewayClassStatus {
                name: "ferrogate".into(),
                conditions: vec![ok("Accepted")],
                supported_features: vec![],
            }],
            gateways: vec![GatewayStatus {
                namespace: "apps".into(),
                name: "web".into(),
                conditions: vec![ok("Accepted"), ok("Programmed")],
                listeners: vec![ListenerStatus {
                    name: "http".into(),
                    attached_routes: 1,
                    supported_kinds: vec![],
                    conditions: vec![ok("Programmed")],
                }],
                ..Default::default()
            }],
            routes: imbl::vector![std::sync::Arc::new(RouteStatus {
                kind: "HTTPRoute".into(),
                namespace: "apps".into(),
                name: "echo".into(),
                parents: vec![RouteParentStatus {
                    parent_ref: ParentRef {
                        name: "web".into(),
                        section_name: Some("http".into()),
                        ..Default::default()
                    }
                    .into(),
                    conditions: [
                        ok("Accepted"),
                        Condition::not("ResolvedRefs", "BackendNotFound", "no Service"),
                    ]
                    .into(),
                }],
            })],
            ..Default::default()
        }
    }

    #[test]
    fn the_table_has_a_row_per_object_listener_and_parent_with_reasons_of_false_conditions() {
        let table = render_table(&set());
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 5, "{table}");
        assert!(lines[0].starts_with("KIND") && lines[0].ends_with("CONDITIONS"));
        assert!(
            lines[2].contains("apps/web") && lines[2].ends_with("Accepted=True Programmed=True"),
            "{table}"
        );
        assert!(lines[3].contains("listener http (1 routes)"), "{table}");
        assert!(
            lines[4].contains("parent apps/web/http")
                && lines[4].ends_with("ResolvedRefs=False(BackendNotFound)"),
            "{table}"
        );
    }

    #[test]
    fn a_status_directory_written_by_standalone_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        StatusFileWriter::new(dir.path()).write(&set()).unwrap();
        let read = read_status_dir(dir.path()).unwrap();
        assert_eq!(render_table(&read), render_table(&set()));
    }

    #[test]
    fn a_missing_directory_is_an_error_not_an_empty_table() {
        assert!(matches!(
            read_status_dir(Path::new("does/not/exist")),
            Err(StatusError::Read { .. })
        ));
    }
}
