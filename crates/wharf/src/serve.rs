//! `wharf serve`: load configuration, set up logging, run until SIGTERM or Ctrl-C.

use std::path::PathBuf;

use anyhow::Context;
use wharf_server::config::Config;

pub async fn serve(config_file: Option<PathBuf>, print_config: bool) -> anyhow::Result<()> {
    let mut config = Config::load(config_file.as_deref(), |k| std::env::var(k).ok())?;
    if print_config {
        // Secrets stay out of what is printed (it ends up in tickets and chat): the
        // key-encryption key, the S3 secret key and the database URL's password.
        let mut shown = config.clone();
        for secret in [
            &mut shown.security.key_encryption_key,
            &mut shown.storage.s3.secret_access_key,
        ] {
            if !secret.is_empty() {
                *secret = "<redacted>".into();
            }
        }
        shown.database.url = wharf_server::config::redacted_url(&shown.database.url);
        print!("{}", toml_text(&shown)?);
        return Ok(());
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("WHARF_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&config.log.level))
        .context("log.level is not a valid filter")?;
    // Colour only for a person at a terminal: redirected to a file or a journal, the
    // escape codes are noise around every level and field name.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    fit_connections_to_descriptors(&mut config);
    let admin_password = std::env::var("WHARF_ADMIN_PASSWORD").ok();
    wharf_server::run(
        config,
        admin_password,
        |s| {
            // Operator-facing start-up notes go to stdout once; logs go to stderr.
            println!("Wharf is listening on {}", s.url);
            if let Some(ca) = &s.generated_ca {
                println!("TLS: generated local CA at {}", ca.display());
                println!("  trust it for docker:  sudo mkdir -p /etc/docker/certs.d/<host:port> && sudo cp {} /etc/docker/certs.d/<host:port>/ca.crt", ca.display());
                println!("  trust it for wharf:   export WHARF_CA_FILE={}", ca.display());
            }
            if let Some(p) = &s.generated_admin_password {
                println!("Created owner 'admin' with generated password: {p}");
                println!("  (also stored once in {}, mode 0600)", s.admin_password_file.display());
            }
        },
        shutdown_signal(),
    )
    .await?;
    Ok(())
}

/// Descriptors kept for everything that is not a client connection: the database, blob
/// files being read or written, the listener, logs.
const RESERVED_DESCRIPTORS: usize = 256;

/// Raise the soft open-files limit to the hard one (the soft default, often 1024, is what
/// made a connection flood starve new requests), then lower `limits.max_connections` to
/// what it allows, so the connection cap trips before the process runs out.
fn fit_connections_to_descriptors(config: &mut Config) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim = raised;
            }
        }
    }
    let usable = usize::try_from(lim.rlim_cur)
        .unwrap_or(usize::MAX)
        .saturating_sub(RESERVED_DESCRIPTORS)
        .max(1);
    if config.limits.max_connections > usable {
        tracing::warn!(
            configured = config.limits.max_connections,
            allowed = usable,
            "limits.max_connections lowered to what the open-files limit allows"
        );
        config.limits.max_connections = usable;
    }
}

fn toml_text(config: &Config) -> anyhow::Result<String> {
    Ok(toml::to_string(config)?)
}

/// Registers the handlers now (not when first polled), so a SIGTERM that arrives right
/// after start-up is a graceful stop rather than the default kill.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut t), Ok(mut i)) => {
                tokio::select! {
                    _ = t.recv() => {},
                    _ = i.recv() => {},
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
