//! What the client reads from people: confirmations of destructive commands and
//! passwords on standard input.

use std::io::{BufRead, IsTerminal, Read, Write};

use super::report::{INVALID_INPUT, NOT_CONFIRMED, fail};
use crate::cli::Output;

/// Go ahead only with `--yes` or a "yes" on the terminal. People see the warning even
/// with `--yes`; in JSON mode it is shown only when a question follows, so that standard
/// error otherwise carries nothing but an error object.
pub fn confirmed(yes: bool, output: Output, warning: &str, question: &str) -> anyhow::Result<()> {
    let terminal = std::io::stdin().is_terminal();
    if output == Output::Table || (!yes && terminal) {
        eprintln!("{warning}");
    }
    if yes {
        return Ok(());
    }
    if !terminal {
        return Err(fail(
            NOT_CONFIRMED,
            "refusing without confirmation: standard input is not a terminal; pass --yes to confirm",
        ));
    }
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(fail(NOT_CONFIRMED, "aborted; nothing was changed"))
    }
}

/// Everything on standard input, or an `INVALID_INPUT` failure naming what was expected.
fn read_stdin(what: &str) -> anyhow::Result<String> {
    let mut buf = String::new();
    std::io::stdin().read_to_string(&mut buf).map_err(|e| {
        fail(
            INVALID_INPUT,
            format!("cannot read {what} from standard input: {e}"),
        )
    })?;
    Ok(buf)
}

/// One password on standard input (`--password-stdin`); the final line break is not part
/// of it.
pub fn password_from_stdin() -> anyhow::Result<String> {
    let p = read_stdin("the password")?
        .trim_end_matches(['\n', '\r'])
        .to_owned();
    if p.is_empty() {
        return Err(fail(INVALID_INPUT, "no password on standard input"));
    }
    Ok(p)
}
