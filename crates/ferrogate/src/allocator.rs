//! glibc malloc tuning for a long-running control plane (issue 7's memory targets).
//!
//! Two calls into glibc, both unsafe FFI, which is why this module alone allows `unsafe`:
//!
//! - `mallopt(M_ARENA_MAX, 1)` before any other thread exists, unless `MALLOC_ARENA_MAX` is
//!   set (then glibc already applied it): by default glibc gives busy threads their own
//!   arenas (up to 8 per core), and each keeps the memory freed in it. The tokio workers
//!   and blocking threads each touch the translation's data, so measured at 1000 routes
//!   about 8 MiB of RSS was freed memory parked in extra arenas (`MALLOC_ARENA_MAX=1`:
//!   28.6/26.4 MiB peak/settled instead of 37.6/34.1); two arenas saved almost nothing
//!   (39.3/36.6 vs 40.5/36.9). One arena means one allocator lock, which costs nothing
//!   measurable here: the pipeline translates on one task, and per-edit CPU is compared in
//!   docs/benchmarks.md.
//! - `malloc_trim(0)` every [`TRIM_EVERY`] from a plain thread: glibc returns freed heap
//!   memory to the kernel only from the top of the main heap, so after a scale-down (10000
//!   routes back to 1000) the freed middle of the heap stayed resident. `malloc_trim` also
//!   releases free pages inside the heap (`MADV_DONTNEED`). It costs a walk over the free
//!   lists, negligible at this interval. The runtime crates forbid `unsafe`, so the trim
//!   cannot run inside the pipeline; instead the trimmer also trims once the pipeline has run
//!   and been quiet for [`POLL`] (it counts runs, [`ferrogate_runtime::pipeline_runs`]).
//!
//! Elsewhere than Linux with glibc both are no-ops.
#![allow(unsafe_code)]

use std::time::Duration;

/// Interval between `malloc_trim` calls.
pub const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Arenas glibc may create (its default is 8 per core).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const ARENA_MAX: libc::c_int = 1;

/// Limits glibc's arenas. Call first thing in `main`, before any thread is started.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes allocator parameters; it is called before any other
        // thread exists, as glibc recommends for M_ARENA_MAX.
        let ok = unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX) };
        if ok != 1 {
            eprintln!(
                "ferrogate: mallopt(M_ARENA_MAX, {ARENA_MAX}) failed; using glibc's default arenas"
            );
        }
    }
}

/// How often the trimmer looks at [`ferrogate_runtime::pipeline_runs`].
pub const POLL: Duration = Duration::from_millis(100);

/// Starts a thread that hands freed heap memory back to the kernel every `every`, and also
/// once the translate-and-publish pipeline has run and then been quiet for one [`POLL`]: a
/// translation frees tens of MiB of transient data at 10000 routes, and without a trim that
/// memory stayed resident until the next periodic trim (measured 2 s after the last edit,
/// 136 MiB at 10000 routes instead of the ~100 the live data and the trimmed heap need).
/// A burst of edits is trimmed once, after it.
pub fn spawn_trimmer(every: Duration) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let spawned = std::thread::Builder::new()
            .name("malloc-trim".into())
            .spawn(move || {
                let mut last_trim = std::time::Instant::now();
                let mut trimmed_runs = ferrogate_runtime::pipeline_runs();
                let mut seen_runs = trimmed_runs;
                loop {
                    std::thread::sleep(POLL.min(every));
                    let runs = ferrogate_runtime::pipeline_runs();
                    let after_runs = runs != trimmed_runs && runs == seen_runs;
                    seen_runs = runs;
                    if !after_runs && last_trim.elapsed() < every {
                        continue;
                    }
                    let started = std::time::Instant::now();
                    // SAFETY: malloc_trim takes the allocator's own locks; it is safe to call
                    // from any thread at any time.
                    let released = unsafe { libc::malloc_trim(0) };
                    tracing::trace!(released = released == 1, took = ?started.elapsed(), after_runs, "malloc_trim");
                    last_trim = std::time::Instant::now();
                    trimmed_runs = runs;
                }
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start the malloc_trim thread; freed memory stays resident");
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = every;
}
