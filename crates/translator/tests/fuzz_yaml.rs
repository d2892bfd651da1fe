//! A bounded fuzz run of the YAML loader and the translator (cargo-fuzz needs a nightly
//! toolchain and a libFuzzer runtime this workspace does not build; this is the same idea
//! with a fixed budget inside `cargo test`). Seeds: generated worlds from the testkit, plus
//! every `*.in.yaml` of the translator-cases corpus when it is there (`CORPUS_DIR`, default
//! `../shared/translator-cases` beside the repository). Each execution mutates a seed with
//! YAML-significant edits (brackets, quotes, block scalars, anchors, CR/LF, NUL, deep
//! nesting, cut and repeated ranges) and checks that loading and translating neither panic
//! nor take long. The run is deterministic (fixed PRNG seed); FERROGATE_FUZZ_EXECS sets the
//! budget (default 5000).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ferrogate_store::{Snapshot, load_documents};
use ferrogate_testkit::worlds;
use ferrogate_translator::{Options, translate};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    "'",
    "\"",
    ":",
    ": ",
    "- ",
    ",",
    "\n",
    "  ",
    "|\n",
    ">-\n",
    "&a ",
    "*a",
    "!!str ",
    "? ",
    "#",
    "\r\n",
    "\0",
    "é",
    "\u{feff}",
    "---\n",
    "...\n",
    "~",
    "null",
    "-1",
    "2147483648",
    "1e400",
    "\\",
    "%",
    "@",
    "`",
    "\t",
];

fn seeds() -> Vec<String> {
    let mut seeds: Vec<String> = (0..40).map(|s| worlds::world(s, false)).collect();
    let dir = std::env::var_os("CORPUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/translator-cases")
        });
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with(".in.yaml"))
            .collect();
        files.sort();
        seeds.extend(files.iter().filter_map(|f| std::fs::read_to_string(f).ok()));
    }
    seeds
}

fn mutate(rng: &mut Rng, seed: &str) -> String {
    let mut text: Vec<u8> = seed.as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(text.len() + 1);
        match rng.below(6) {
            0 | 1 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                text.splice(at..at, token.bytes());
            }
            2 => {
                let end = (at + rng.below(64)).min(text.len());
                text.drain(at..end);
            }
            3 => {
                let end = (at + rng.below(200)).min(text.len());
                let piece = text[at..end].to_vec();
                text.splice(end..end, piece.iter().copied().chain(piece.iter().copied()));
            }
            4 => {
                let open = ["[", "{a: "][rng.below(2)];
                let depth = 1 + rng.below(200);
                text.splice(at..at, open.repeat(depth).bytes());
            }
            _ => {
                if let Some(byte) = text.get_mut(at) {
                    *byte = rng.next() as u8;
                }
            }
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

#[test]
fn mutated_inputs_never_panic_or_stall_the_loader_and_translator() {
    let execs: usize = std::env::var("FERROGATE_FUZZ_EXECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let seeds = seeds();
    let mut rng = Rng(0x5eed_f00d_1234_5678);
    let (mut translated, mut refused, mut slowest) = (0usize, 0usize, Duration::ZERO);
    let started = Instant::now();
    for i in 0..execs {
        let seed = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, seed);
        let one = Instant::now();
        let (objects, errors) = load_documents("fuzz.yaml", &input);
        refused += usize::from(!errors.is_empty());
        if !objects.is_empty() {
            let snapshot: Snapshot = objects.into_iter().collect();
            let _ = translate(&snapshot, &Options::default());
            translated += 1;
        }
        let took = one.elapsed();
        slowest = slowest.max(took);
        assert!(
            took < Duration::from_secs(2),
            "execution {i} took {took:?}:\n{input}"
        );
    }
    eprintln!(
        "fuzz: {execs} executions from {} seeds in {:?}: {translated} translated, {refused} with load errors, slowest {slowest:?}",
        seeds.len(),
        started.elapsed()
    );
    assert!(
        translated > execs / 4,
        "the mutations must leave most inputs loadable ({translated} of {execs})"
    );
}
