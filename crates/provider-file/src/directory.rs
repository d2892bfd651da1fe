//! Reading a directory of YAML into a store snapshot.
//!
//! Files are read in path order. When the same object (kind, namespace, name) appears more
//! than once, the last one in that order wins (a later document of the same file, or a file
//! whose path sorts later), and every such duplicate is reported naming both places: one
//! object silently replacing another turned a working route into 404s.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ferrogate_store::{LoadError, Object, ObjectRef, Snapshot, load_documents};

/// Reads a config directory, remembering each file's last good content.
#[derive(Debug)]
pub struct DirectoryReader {
    dir: PathBuf,
    /// Per file: what its last read gave.
    files: BTreeMap<PathBuf, FileState>,
    /// Duplicate objects found by the last read, shared with whoever reports it (a metric).
    duplicates: Arc<AtomicU64>,
    /// The snapshot of the last read. A read of a few changed files patches it (a persistent
    /// map: the copy shares all but the changed paths) instead of building one from every
    /// file: at 100 000 objects the rebuild was half the CPU of an EndpointSlice change.
    snapshot: Snapshot,
    /// Whether `snapshot` may be patched: every object has one file (no duplicates), and
    /// every file has a sequence base (see [`FileState::base`]).
    patchable: bool,
    /// The files whose last read had problems, so a patched read reports them without a
    /// walk over every file (a twentieth of an edit's CPU at 100 000 files).
    troubled: BTreeSet<PathBuf>,
}

/// One file as last read.
#[derive(Debug)]
struct FileState {
    /// The file's objects at its last good read. A boxed slice: a one-document file (the
    /// usual route file) kept room for four objects in a vector.
    objects: Box<[Object]>,
    /// Metadata of the file when `objects` was parsed from it, when that parse had no
    /// problem: a file whose stamp is unchanged is neither read nor parsed again (reading and
    /// parsing dominated the cost of a re-read at thousands of files).
    stamp: Option<Stamp>,
    /// Problems found at its last read, reported at every read until the file is fixed.
    problems: Vec<String>,
    /// The sequence number of its first object in the snapshot (document `j` has `base +
    /// j`). Bases grow with the path, with room between files, so a patched snapshot orders
    /// objects exactly as a rebuild in path order would (the order settles Gateway API
    /// conflicts between objects of equal age).
    base: u64,
}

/// The room a whole rebuild leaves between two files' sequence bases.
const BASE_SPACING: u64 = 1 << 32;

/// What tells that a file changed without reading it: inode, size, and modification and
/// change times to the nanosecond (a rename of a new file over it changes the inode).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl Stamp {
    fn of(meta: &fs::Metadata) -> Self {
        use std::os::unix::fs::MetadataExt;
        Self {
            ino: meta.ino(),
            len: meta.len(),
            mtime: (meta.mtime(), meta.mtime_nsec()),
            ctime: (meta.ctime(), meta.ctime_nsec()),
        }
    }
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
    /// Objects that appeared more than once (each extra appearance counts once).
    pub duplicates: u64,
}

impl DirectoryReader {
    /// A reader for `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            files: BTreeMap::new(),
            duplicates: Arc::default(),
            snapshot: Snapshot::default(),
            patchable: false,
            troubled: BTreeSet::new(),
        }
    }

    /// The number of duplicate objects the last read found, updated at every read (for a
    /// gauge read at scrape time).
    pub fn duplicate_counter(&self) -> Arc<AtomicU64> {
        self.duplicates.clone()
    }

    /// The directory read.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads every YAML file that changed since the last read (by its metadata, see
    /// [`Stamp`]). A file that cannot be read, or whose YAML is broken, keeps the objects it
    /// had at its last good read (and the problem is reported, at every read until fixed).
    pub fn read(&mut self) -> ReadReport {
        let mut problems = Vec::new();
        let mut paths = Vec::new();
        if let Err(e) = collect_yaml_files(&self.dir, &mut paths) {
            problems.push(format!(
                "{}: cannot list directory: {e}",
                self.dir.display()
            ));
        }
        let mut previous = std::mem::take(&mut self.files);
        for path in paths {
            let old = previous.remove(&path);
            if let Some(state) = self.refresh(&path, old) {
                self.files.insert(path, state);
            }
        }
        self.report(problems)
    }

    /// Like [`DirectoryReader::read`], but looks only at `changed` paths (from file events):
    /// no listing, and no `stat` of the other files. Falls back to a full read when a path
    /// is not a plain YAML file under the directory (a directory, a renamed folder...).
    pub fn read_changed<'a>(&mut self, changed: impl IntoIterator<Item = &'a Path>) -> ReadReport {
        let mut paths = Vec::new();
        for path in changed {
            let Ok(rel) = path.strip_prefix(&self.dir) else {
                return self.read();
            };
            if rel
                .components()
                .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
            {
                continue; // hidden: editor swap files, hidden directories
            }
            let name = rel.to_string_lossy();
            let yaml = name.ends_with(".yaml") || name.ends_with(".yml");
            match fs::symlink_metadata(path) {
                Ok(meta) if meta.is_file() && yaml => paths.push(path.to_path_buf()),
                Err(e)
                    if e.kind() == std::io::ErrorKind::NotFound
                        && (yaml || !self.has_files_under(path)) =>
                {
                    paths.push(path.to_path_buf());
                }
                Ok(meta) if meta.is_file() => {} // not YAML
                _ => return self.read(),
            }
        }
        let mut removed: Vec<Object> = Vec::new();
        let mut added: Vec<PathBuf> = Vec::new();
        for path in paths {
            let old = self.files.remove(&path);
            self.troubled.remove(&path);
            if let Some(old) = &old {
                removed.extend(old.objects.iter().cloned());
            }
            if path.exists()
                && let Some(mut state) = self.refresh(&path, old)
            {
                match self.base_for(&path, state.objects.len()) {
                    Some(base) => state.base = base,
                    None => self.patchable = false,
                }
                if !state.problems.is_empty() {
                    self.troubled.insert(path.clone());
                }
                self.files.insert(path.clone(), state);
                added.push(path);
            }
        }
        if self.patchable && self.patch(&removed, &added) {
            return self.patched_report();
        }
        self.report(Vec::new())
    }

    /// A sequence base for `objects` objects of the file at `path` (not in `files`) that
    /// keeps path order: between the previous file's last object and the next file's base.
    /// `None` when there is no room (the next whole rebuild spaces the bases again).
    fn base_for(&self, path: &Path, objects: usize) -> Option<u64> {
        let objects = objects as u64;
        let low = self
            .files
            .range(..path.to_path_buf())
            .next_back()
            .map_or(1, |(_, f)| f.base + f.objects.len() as u64);
        let base = match self.files.range(path.to_path_buf()..).next() {
            Some((_, next)) => {
                let base = low + (next.base.checked_sub(low)?) / 2;
                (next.base.checked_sub(base)? >= objects.max(1)).then_some(base)?
            }
            None => low.checked_add(BASE_SPACING)?,
        };
        (objects < BASE_SPACING).then_some(base)
    }

    /// Patches the last snapshot: drops `removed` (the changed files' old objects) and
    /// applies the objects of the `added` files at their bases. False, leaving the snapshot
    /// alone, when an object is already defined by another file (a duplicate: the whole
    /// read reports it).
    fn patch(&mut self, removed: &[Object], added: &[PathBuf]) -> bool {
        let mut next = self.snapshot.clone();
        for object in removed {
            next.delete(&object.object_ref());
        }
        for path in added {
            let Some(state) = self.files.get(path) else {
                continue;
            };
            for (j, object) in state.objects.iter().enumerate() {
                if next.contains(&object.object_ref()) {
                    return false;
                }
                next.apply_at(object.clone(), state.base + j as u64);
            }
        }
        self.snapshot = next;
        true
    }

    fn patched_report(&mut self) -> ReadReport {
        let mut problems = Vec::new();
        for path in &self.troubled {
            if let Some(state) = self.files.get(path) {
                problems.extend(state.problems.iter().cloned());
            }
        }
        self.duplicates.store(0, Ordering::Relaxed);
        ReadReport {
            snapshot: self.snapshot.clone(),
            problems,
            files: self.files.len(),
            duplicates: 0,
        }
    }

    fn has_files_under(&self, dir: &Path) -> bool {
        self.files
            .range(dir.to_path_buf()..)
            .next()
            .is_some_and(|(p, _)| p.starts_with(dir))
    }

    /// The new state of one file; `None` when it has none (it cannot be read and never could).
    fn refresh(&self, path: &Path, old: Option<FileState>) -> Option<FileState> {
        let stamp = fs::metadata(path).ok().map(|m| Stamp::of(&m));
        if old
            .as_ref()
            .is_some_and(|o| o.stamp.is_some() && o.stamp == stamp)
        {
            return old;
        }
        let label = path
            .strip_prefix(&self.dir)
            .unwrap_or(path)
            .display()
            .to_string();
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) => {
                // Reported for a new file too (no permission, not UTF-8): it stays listed,
                // with no objects, so its problem shows at every read until it is fixed.
                let problems = vec![format!("{label}: cannot read: {e}")];
                let objects = old.map(|old| old.objects).unwrap_or_default();
                return Some(FileState {
                    objects,
                    stamp: None,
                    problems,
                    base: 0,
                });
            }
        };
        let (objects, errors) = load_documents(&label, &text);
        let broken = errors.iter().any(LoadError::is_unparsable);
        let mut problems: Vec<String> = errors.iter().map(ToString::to_string).collect();
        Some(match (broken, old) {
            // Only a file that had objects has last good content to keep (a file broken
            // since it appeared has none, however often it is read again).
            (true, Some(old)) if !old.objects.is_empty() => {
                problems.push(format!(
                    "{label}: keeping its last good content until the YAML is fixed"
                ));
                FileState {
                    objects: old.objects,
                    stamp: None,
                    problems,
                    base: 0,
                }
            }
            // A file with problems has no stamp: it is parsed again at every full read.
            _ => FileState {
                objects: objects.into_boxed_slice(),
                stamp: if errors.is_empty() { stamp } else { None },
                problems,
                base: 0,
            },
        })
    }

    /// The snapshot of every file's objects, in path then document order, and every problem.
    fn report(&mut self, mut problems: Vec<String>) -> ReadReport {
        let mut snapshot = Snapshot::default();
        let mut objects = 0;
        self.troubled.clear();
        for (i, (path, state)) in self.files.iter_mut().enumerate() {
            if !state.problems.is_empty() {
                self.troubled.insert(path.clone());
            }
            objects += state.objects.len();
            state.base = (i as u64 + 1) * BASE_SPACING;
            for (j, object) in state.objects.iter().enumerate() {
                snapshot.apply_at(object.clone(), state.base + j as u64);
            }
        }
        // Each object holds its own place in the snapshot unless two share a kind, namespace
        // and name; only then are the files that define them looked for (per object that is
        // two keys and a hash insert: a fifth of an edit's CPU at 10 000 routes).
        let duplicates = if snapshot.len() == objects {
            for state in self.files.values() {
                problems.extend(state.problems.iter().cloned());
            }
            0
        } else {
            self.report_duplicates(&mut problems)
        };
        self.duplicates.store(duplicates, Ordering::Relaxed);
        self.patchable = duplicates == 0;
        self.snapshot = snapshot.clone();
        ReadReport {
            snapshot,
            problems,
            files: self.files.len(),
            duplicates,
        }
    }

    /// Adds every file's problems and one line per duplicate object, naming both files, in
    /// path order; returns the number of duplicates.
    fn report_duplicates(&self, problems: &mut Vec<String>) -> u64 {
        let mut seen: HashMap<ObjectRef, &Path> = HashMap::new();
        let mut duplicates = 0u64;
        for (path, state) in &self.files {
            problems.extend(state.problems.iter().cloned());
            for object in &state.objects {
                let id = object.object_ref();
                if let Some(first) = seen.insert(id.clone(), path) {
                    duplicates += 1;
                    let rel =
                        |p: &Path| p.strip_prefix(&self.dir).unwrap_or(p).display().to_string();
                    problems.push(format!(
                        "{id} is defined in both {} and {}; the one in {} is used (the last in path order)",
                        rel(first),
                        rel(path),
                        rel(path)
                    ));
                }
            }
        }
        duplicates
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
        fs::write(
            dir.path().join("b.yaml"),
            SERVICE.replace("name: a", "name: b"),
        )
        .unwrap();
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
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.contains("a.yaml: document 0: invalid YAML")),
            "{:?}",
            report.problems
        );
        fs::remove_file(&file).unwrap();
        assert_eq!(reader.read().snapshot.services.len(), 0);
    }

    #[test]
    fn read_changed_looks_only_at_the_named_files() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.yaml"), dir.path().join("b.yaml"));
        fs::write(&a, SERVICE).unwrap();
        fs::write(&b, SERVICE.replace("name: a", "name: b")).unwrap();
        let mut reader = DirectoryReader::new(dir.path());
        assert_eq!(reader.read().snapshot.services.len(), 2);
        // A file no event named is not looked at, even though it changed.
        fs::write(&b, SERVICE.replace("name: a", "name: c")).unwrap();
        fs::remove_file(&a).unwrap();
        let report = reader.read_changed([a.as_path()]);
        assert_eq!(
            report
                .snapshot
                .services
                .iter()
                .map(|(k, _)| k.name.as_str())
                .collect::<Vec<_>>(),
            ["b"]
        );
        let report = reader.read_changed([b.as_path()]);
        assert_eq!(
            report
                .snapshot
                .services
                .iter()
                .map(|(k, _)| k.name.as_str())
                .collect::<Vec<_>>(),
            ["c"]
        );
        // A new directory means a full read.
        fs::create_dir(dir.path().join("sub")).unwrap();
        fs::write(
            dir.path().join("sub/d.yaml"),
            SERVICE.replace("name: a", "name: d"),
        )
        .unwrap();
        assert_eq!(
            reader
                .read_changed([dir.path().join("sub").as_path()])
                .snapshot
                .services
                .len(),
            2
        );
        // Broken YAML keeps the last good objects and reports the problem until fixed.
        fs::write(&b, "kind: [broken\n").unwrap();
        let report = reader.read_changed([b.as_path()]);
        assert_eq!(report.snapshot.services.len(), 2);
        assert!(!report.problems.is_empty());
        assert!(!reader.read_changed([]).problems.is_empty());
    }

    #[test]
    fn a_duplicate_across_files_is_reported_naming_both_and_the_later_path_wins() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("a.yaml"),
            format!("{SERVICE}spec: {{ports: [{{port: 1}}]}}\n"),
        )
        .unwrap();
        fs::write(
            dir.path().join("b.yaml"),
            format!("{SERVICE}spec: {{ports: [{{port: 2}}]}}\n"),
        )
        .unwrap();
        let mut reader = DirectoryReader::new(dir.path());
        let counter = reader.duplicate_counter();
        let report = reader.read();
        assert_eq!(report.duplicates, 1);
        assert_eq!(counter.load(Ordering::Relaxed), 1);
        assert!(
            report.problems.iter().any(|p| p
                .contains("n/a is defined in both a.yaml and b.yaml; the one in b.yaml is used")),
            "{:?}",
            report.problems
        );
        let port = report
            .snapshot
            .services
            .iter()
            .next()
            .unwrap()
            .1
            .spec
            .as_ref()
            .unwrap()
            .ports
            .as_ref()
            .unwrap()[0]
            .port;
        assert_eq!(port, 2, "the later path wins");
        fs::remove_file(dir.path().join("b.yaml")).unwrap();
        assert_eq!(reader.read().duplicates, 0);
        assert_eq!(counter.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_new_file_that_cannot_be_read_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("latin1.yaml"),
            b"apiVersion: v1\nkind: Service\nmetadata: {name: caf\xe9}\n",
        )
        .unwrap();
        let report = DirectoryReader::new(dir.path()).read();
        assert!(
            report
                .problems
                .iter()
                .any(|p| p.starts_with("latin1.yaml: cannot read:") && p.contains("UTF-8")),
            "{:?}",
            report.problems
        );
        assert_eq!(report.files, 1);
    }
}
