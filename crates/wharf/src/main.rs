//! `wharf`: the server (`wharf serve`) and the command-line client for administration.

mod cli;
mod client;
mod serve;

use clap::Parser;

fn main() -> std::process::ExitCode {
    keep_large_allocations_out_of_the_heap();
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("wharf: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line, actionable: the chain of causes joined.
            let msg = e.chain().map(ToString::to_string).collect::<Vec<_>>().join(": ");
            eprintln!("wharf: {msg}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// glibc raises its mmap threshold after the first large free; from then on Argon2's
/// ~19 MiB working buffers (one per login) stay in the heap and RSS only grows
/// (measured: +19.5 MiB per login). A fixed threshold returns them to the OS on free.
/// Fixing it also pins the trim threshold at 128 KiB, so the heap top was handed back
/// and faulted in again for every few hundred KiB hyper reads: 7,000–65,000 page faults
/// per 1 GiB upload. Up to 4 MiB of free heap top now stays: ~2,000 faults, RSS +1 MiB.
fn keep_large_allocations_out_of_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator tuning; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 4 << 20);
    }
}
