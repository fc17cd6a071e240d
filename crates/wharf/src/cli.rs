//! Command-line grammar. Names are fixed by the product contract.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "wharf",
    version,
    about = "A container registry with content trust built in"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server (registry, trust, token service) on one HTTPS listener.
    Serve {
        /// TOML configuration file; every key can also be set as WHARF_<SECTION>_<KEY>.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Print the effective configuration (secrets redacted) and exit.
        #[arg(long)]
        print_config: bool,
    },
    /// Log in to a registry and store a refresh token in the Docker config file.
    Login(LoginArgs),
    /// Show or change the registry-level content-trust policy (owner only).
    ContentTrust(ContentTrustArgs),
}

#[derive(Args)]
pub struct ContentTrustArgs {
    #[command(subcommand)]
    pub command: ContentTrustCommand,
    /// Registry host[:port]; defaults to the one `wharf login` used.
    #[arg(long, env = "WHARF_REGISTRY", global = true)]
    pub registry: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Subcommand)]
pub enum ContentTrustCommand {
    /// Print whether content trust is enabled.
    Show,
    /// Enable content trust (signed pushes become possible).
    Enable,
    /// Disable content trust: deletes ALL trust data of every repository, irreversibly.
    Disable {
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Delete the trust data of one repository (e.g. after losing its root key).
    Reset {
        repository: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Args)]
pub struct ServerArgs {
    /// CA certificate (PEM) to trust for the server, e.g. <data>/tls/ca.crt.
    #[arg(long, env = "WHARF_CA_FILE", global = true)]
    pub ca_file: Option<PathBuf>,
}

#[derive(Args)]
pub struct LoginArgs {
    /// Registry host[:port], e.g. localhost:5000.
    pub registry: String,
    #[arg(short, long)]
    pub username: String,
    /// Read the password from standard input.
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve { config, print_config } => crate::serve::serve(config, print_config).await,
        Command::Login(args) => crate::client::login::login(args).await,
        Command::ContentTrust(args) => crate::client::content_trust::run(args).await,
    }
}
