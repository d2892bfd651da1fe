//! A read of changed files patches the last snapshot instead of rebuilding it from every
//! file. Over random edits of a directory (new, rewritten and removed files, several
//! documents per file, objects defined twice, broken YAML, nested folders), the patched
//! snapshot must equal the one a whole read of the same files gives: the same objects, in
//! the same apply order (which settles conflicts between objects of equal age), the same
//! problems and duplicate count.

use std::path::{Path, PathBuf};

use ferrogate_provider_file::{DirectoryReader, ReadReport};

/// xorshift64: a fixed sequence per seed, no dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

const FILES: [&str; 8] = [
    "a.yaml",
    "m.yaml",
    "z.yaml",
    "routes/b.yaml",
    "routes/c.yaml",
    "routes/deep/d.yaml",
    "services/e.yml",
    "services/f.yaml",
];

fn route(name: &str, path: u64) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: {name}, namespace: n}}\nspec:\n  parentRefs: [{{name: gw}}]\n  rules:\n  - matches: [{{path: {{type: PathPrefix, value: /p{path}}}}}]\n"
    )
}

fn service(name: &str, port: u64) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: n}}\nspec:\n  ports: [{{port: {port}}}]\n"
    )
}

/// A file of 1-3 documents; names come from a small pool, so files often define the
/// same object (a duplicate) and a rewrite often keeps a name with new content.
fn content(rng: &mut Rng) -> String {
    let docs = 1 + rng.below(3);
    (0..docs)
        .map(|_| {
            let name = format!("o{}", rng.below(40));
            if rng.below(2) == 0 {
                route(&name, rng.below(4))
            } else {
                service(&name, 80 + rng.below(3))
            }
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // Renamed into place, as editors and the benchmark write (a new inode every time).
    let tmp = dir.join(".tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

fn assert_same(patched: &ReadReport, whole: &ReadReport, step: usize) {
    let (p, w) = (&patched.snapshot, &whole.snapshot);
    assert!(
        p.diff(w).is_empty(),
        "step {step}: objects differ: {:?}",
        p.diff(w)
    );
    assert_eq!(p.len(), w.len(), "step {step}");
    let order = |s: &ferrogate_store::Snapshot| {
        let routes: Vec<_> = s
            .http_routes
            .in_order()
            .into_iter()
            .map(|(k, _)| k.clone())
            .collect();
        let services: Vec<_> = s
            .services
            .in_order()
            .into_iter()
            .map(|(k, _)| k.clone())
            .collect();
        (routes, services)
    };
    assert_eq!(order(p), order(w), "step {step}: apply order differs");
    assert_eq!(patched.problems, whole.problems, "step {step}");
    assert_eq!(patched.duplicates, whole.duplicates, "step {step}");
    assert_eq!(patched.files, whole.files, "step {step}");
}

#[test]
fn a_patched_read_equals_a_whole_read_through_random_edits() {
    for seed in 1..=6u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut patched = DirectoryReader::new(dir.path());
        // Reads the whole directory every time (no patching): the reference. It keeps
        // a broken file's last good content exactly as the patched reader does.
        let mut whole = DirectoryReader::new(dir.path());
        patched.read();
        let mut patches = 0;
        for step in 0..300 {
            let rel = FILES[rng.below(FILES.len() as u64) as usize];
            let path = match rng.below(10) {
                0..=5 => write(dir.path(), rel, &content(&mut rng)),
                6 => write(dir.path(), rel, "kind: [unclosed\n"),
                _ => {
                    let path = dir.path().join(rel);
                    let _ = std::fs::remove_file(&path);
                    path
                }
            };
            let p = patched.read_changed([path.as_path()]);
            let w = whole.read();
            if w.duplicates == 0 {
                patches += 1;
            }
            assert_same(&p, &w, step);
        }
        // The walk must exercise the patch, not only the whole-read fallback.
        assert!(
            patches > 50,
            "seed {seed}: only {patches} steps without duplicates"
        );
    }
}
