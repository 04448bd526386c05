use clap::Parser;

fn main() -> anyhow::Result<()> {
    one_malloc_arena();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(smecredit::cli::run(smecredit::cli::Cli::parse()))
}

/// glibc gives each thread that allocates under contention its own arena, up to eight per
/// core, and memory freed in one arena is reused only by the threads of that arena. The service
/// allocates from some twenty threads (Tokio's and actix's workers, and one thread per SQLite
/// connection, which does SQLite's own allocations), so freed memory was spread over a dozen
/// arenas. In the soak (`benches/soak.sh`) one arena measured 36 MB of own memory instead of
/// 56 MB at minute 2, at the same throughput on this machine's two cores. Set before any thread
/// starts; `MALLOC_ARENA_MAX` in the environment still overrides it.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets a tunable of glibc's allocator; called before any other
        // thread exists.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}
