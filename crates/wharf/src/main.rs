//! `wharf`: the server (`wharf serve`) and the command-line client for administration.

mod cli;
mod client;
mod migrate;
mod serve;

use clap::Parser;

use client::report;

fn main() -> std::process::ExitCode {
    keep_large_allocations_out_of_the_heap();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let output = cli.output;
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            report::print_error(
                output,
                report::CLI_ERROR,
                &format!("cannot start the async runtime: {e}"),
            );
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(done) => {
            let Some(r) = done else {
                return std::process::ExitCode::SUCCESS;
            };
            r.print(output);
            match &r.refused {
                Some((code, message)) => {
                    report::print_error(output, code, message);
                    std::process::ExitCode::FAILURE
                }
                None => std::process::ExitCode::SUCCESS,
            }
        }
        Err(e) => {
            // One line, actionable: the chain of causes joined.
            let (code, message) = report::describe(&e);
            report::print_error(output, &code, &message);
            std::process::ExitCode::FAILURE
        }
    }
}

/// A command line clap cannot parse. With `--output json` (which clap could not hand us)
/// it is a JSON error object too, so a script never has to parse clap's text.
fn usage_error(e: clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    let wants_json = {
        let args: Vec<String> = std::env::args_os()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        args.iter().enumerate().any(|(i, a)| {
            matches!(a.as_str(), "--output=json" | "-ojson" | "-o=json")
                || (matches!(a.as_str(), "--output" | "-o") && args.get(i + 1).is_some_and(|v| v == "json"))
        })
    };
    if !wants_json || matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        e.exit();
    }
    let rendered = e.to_string();
    let first = rendered.lines().next().unwrap_or_default();
    let message = first.strip_prefix("error: ").unwrap_or(first);
    report::print_error(
        cli::Output::Json,
        report::USAGE,
        &format!("{message} (see `wharf --help`)"),
    );
    std::process::ExitCode::from(2)
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
