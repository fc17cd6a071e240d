//! `wharf trust …`: Docker Content Trust from the command line without a Docker daemon.
//! The keys live where docker keeps them (`keystore`), so docker and wharf can take
//! turns signing the same repositories.

pub mod inspect;
pub mod key;
pub mod keystore;
pub mod revoke;
pub mod sign;

use super::report::Report;
use crate::cli::{Output, Trust};

pub async fn run(command: Trust, output: Output) -> anyhow::Result<Report> {
    match command {
        Trust::Key(k) => key::run(k),
        Trust::Sign { references, role } => sign::run(references, role).await,
        Trust::Revoke { reference, yes } => revoke::run(reference, yes, output).await,
        Trust::Inspect { references, pretty } => inspect::run(references, pretty).await,
    }
}
