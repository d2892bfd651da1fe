//! The heap: mimalloc instead of glibc malloc, with two defaults changed so freed memory goes
//! back to the kernel at once.
//!
//! Why not glibc malloc: every edit builds a whole translation (tens of MiB at 10000 routes)
//! next to long-lived data. With glibc (one arena, `malloc_trim` after each run) the live
//! heap at 10000 routes was about 57 MiB (heaptrack) but RSS settled at 137 MiB: the freed
//! translation stayed resident between long-lived objects, and the trim had to guess when
//! the pipeline and its sinks were done. Same run, the two binaries alternating twice
//! (`ferrogate-bench --steps 1000,10000 --at 1 --samples 10 --big-samples 5 --no-wrk
//! --no-sotw --no-faults`, load average about 1.2), glibc -> mimalloc:
//! - 10000 routes: RSS settled 136-137 -> 92-94 MiB, peak 192-195 -> 173-175 MiB, CPU per
//!   one-route edit 333-389 -> 198-224 ms, convergence p99 785-847 -> 520-550 ms;
//! - 1000 routes: RSS settled 33 -> 37-41 MiB, peak 37 -> 41-43 MiB (mimalloc's per-thread
//!   pages cost a few MiB at small sizes); back at 1000 after 10000: 35 -> 41 MiB.
//!
//! Two defaults changed (a `MIMALLOC_<NAME>` environment variable still wins):
//! - `purge_delay` 0: free pages go back to the kernel at once instead of a second later
//!   (v3's default), so RSS shows what the control plane holds;
//! - `arena_eager_commit` 0: arena memory is committed as it is used, not a whole arena up
//!   front (with it on, 1000 routes settled at 57-68 MiB instead of about 40).
//!
//! mimalloc reads its options when it initializes, in a constructor that runs before `main`
//! (priority 101), so the defaults are set by a constructor of ours that runs before it
//! (priority 100); from `main` the first arena would already be committed.
//!
//! This module alone allows `unsafe` (FFI calls that set and read option values, and the
//! constructor).
#![allow(unsafe_code)]

use libmimalloc_sys::{mi_option_set_default, mi_option_t};

/// The global allocator of the binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Indexes in mimalloc v3's `mi_option_e` (the bindings name no constants for these).
const MI_OPTION_ARENA_EAGER_COMMIT: mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: mi_option_t = 15;

/// The defaults set: (option, value).
const DEFAULTS: [(mi_option_t, std::ffi::c_long); 2] = [
    (MI_OPTION_PURGE_DELAY, 0),
    (MI_OPTION_ARENA_EAGER_COMMIT, 0),
];

/// Runs before mimalloc's own constructor (`.init_array` entries run in priority order).
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array.00100")]
static SET_DEFAULTS_BEFORE_MIMALLOC_STARTS: extern "C" fn() = set_defaults;

extern "C" fn set_defaults() {
    for (option, value) in DEFAULTS {
        // SAFETY: stores a default into mimalloc's option table; it allocates nothing and
        // takes effect unless the option was set already (or its environment variable is).
        unsafe { mi_option_set_default(option, value) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(option: mi_option_t) -> std::ffi::c_long {
        // SAFETY: reads an option value.
        unsafe { libmimalloc_sys::mi_option_get(option) }
    }

    #[test]
    fn the_defaults_are_in_effect_at_the_indexes_mimalloc_v3_has_them() {
        // The test binary links this module, so the constructor ran before mimalloc started.
        // Both options at these indexes are 0 only because of it: v3's defaults are 1000
        // (purge_delay, ms) and 2 (arena_eager_commit).
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(get(MI_OPTION_PURGE_DELAY), 0);
        }
        if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_none() {
            assert_eq!(get(MI_OPTION_ARENA_EAGER_COMMIT), 0);
        }
    }
}
