//! Reading a directory of YAML into a store snapshot.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use ferrogate_store::{LoadError, Object, Snapshot, load_documents};

/// Reads a config directory, remembering each file's last good content.
#[derive(Debug)]
pub struct DirectoryReader {
    dir: PathBuf,
    last_good: BTreeMap<PathBuf, Vec<Object>>,
    /// The text each file had when its objects were parsed: an unchanged file is not parsed
    /// again (parsing dominates the cost of a re-read at thousands of files).
    texts: BTreeMap<PathBuf, String>,
}

/// The outcome of one read.
#[derive(Debug)]
pub struct ReadReport {
    /// Every object of every file, in path then document order.
    pub snapshot: Snapshot,
    /// One line per problem: file, document index and cause.
    pub problems: Vec<String>,
    /// Number of YAML files read.
    pub files: usize,
}

impl DirectoryReader {
    /// A reader for `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), last_good: BTreeMap::new(), texts: BTreeMap::new() }
    }

    /// The directory read.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads every YAML file. A file that cannot be read, or whose YAML is broken, keeps
    /// the objects it had at its last good read (and the problem is reported).
    pub fn read(&mut self) -> ReadReport {
        let mut problems = Vec::new();
        let mut paths = Vec::new();
        if let Err(e) = collect_yaml_files(&self.dir, &mut paths) {
            problems.push(format!("{}: cannot list directory: {e}", self.dir.display()));
        }
        paths.sort();
        let mut next = BTreeMap::new();
        for path in &paths {
            let label = path.strip_prefix(&self.dir).unwrap_or(path).display().to_string();
            let text = match fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) => {
                    problems.push(format!("{label}: cannot read: {e}"));
                    if let Some(old) = self.last_good.get(path) {
                        next.insert(path.clone(), old.clone());
                    }
                    continue;
                }
            };
            if self.texts.get(path) == Some(&text) {
                if let Some(old) = self.last_good.get(path) {
                    next.insert(path.clone(), old.clone());
                    continue;
                }
            }
            let (objects, errors) = load_documents(&label, &text);
            let broken = errors.iter().any(|e| matches!(e, LoadError::Yaml { .. }));
            problems.extend(errors.iter().map(ToString::to_string));
            match (broken, self.last_good.get(path)) {
                (true, Some(old)) => {
                    problems.push(format!("{label}: keeping its last good content until the YAML is fixed"));
                    next.insert(path.clone(), old.clone());
                }
                _ => {
                    next.insert(path.clone(), objects);
                    if errors.is_empty() {
                        self.texts.insert(path.clone(), text);
                    } else {
                        // Keep re-parsing a file with problems, so they are reported again.
                        self.texts.remove(path);
                    }
                }
            }
        }
        self.texts.retain(|p, _| next.contains_key(p));
        self.last_good = next;
        let mut snapshot = Snapshot::default();
        for objects in self.last_good.values() {
            for object in objects {
                snapshot.apply(object.clone());
            }
        }
        ReadReport { snapshot, problems, files: paths.len() }
    }
}

fn collect_yaml_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with('.') {
            continue; // editor swap files, hidden directories
        }
        if entry.file_type()?.is_dir() {
            collect_yaml_files(&path, out)?;
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: a, namespace: n}\n";

    #[test]
    fn reads_nested_yaml_files_and_ignores_others() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(dir.path().join("sub/a.yml"), SERVICE).unwrap();
        fs::write(dir.path().join("b.yaml"), SERVICE.replace("name: a", "name: b")).unwrap();
        fs::write(dir.path().join("notes.txt"), "not yaml").unwrap();
        let report = DirectoryReader::new(dir.path()).read();
        assert_eq!(report.files, 2);
        assert_eq!(report.snapshot.services.len(), 2);
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }

    #[test]
    fn a_broken_file_keeps_its_last_good_objects() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.yaml");
        fs::write(&file, SERVICE).unwrap();
        let mut reader = DirectoryReader::new(dir.path());
        assert_eq!(reader.read().snapshot.services.len(), 1);
        fs::write(&file, "kind: [broken\n").unwrap();
        let report = reader.read();
        assert_eq!(report.snapshot.services.len(), 1);
        assert!(report.problems.iter().any(|p| p.contains("a.yaml: document 0: invalid YAML")), "{:?}", report.problems);
        fs::remove_file(&file).unwrap();
        assert_eq!(reader.read().snapshot.services.len(), 0);
    }
}
