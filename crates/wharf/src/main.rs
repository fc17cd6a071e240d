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
            eprintln!("wharf: {}", one_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// One line, actionable: the chain of causes joined. A cause its predecessor already
/// shows is left out: errors that print their source inside their own message and also
/// return it as `source()` (an io error in a field named `source`, `#[from]` with `{0}`)
/// would otherwise repeat it, e.g. a missing config file's OS error twice.
fn one_line(e: &anyhow::Error) -> String {
    let mut msg = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if msg.ends_with(&text) {
            continue;
        }
        if !msg.is_empty() {
            msg.push_str(": ");
        }
        msg.push_str(&text);
    }
    msg
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
