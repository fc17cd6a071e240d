//! What the client reads from people: confirmations of destructive commands and
//! passwords, from standard input or typed on the terminal without echo.

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

/// Two passwords on standard input, one per line (`--password-stdin` of a change: the
/// current one, then the new one). Nothing else may follow, so that a file with one line
/// too many is refused instead of read differently than its author meant.
pub fn two_passwords_from_stdin(first: &str, second: &str) -> anyhow::Result<(String, String)> {
    let text = read_stdin("the passwords")?;
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    match lines.as_slice() {
        [a, b] if !a.is_empty() && !b.is_empty() => Ok(((*a).to_owned(), (*b).to_owned())),
        _ => Err(fail(
            INVALID_INPUT,
            format!(
                "expected two lines on standard input: {first}, then {second} (got {} line(s))",
                lines.len()
            ),
        )),
    }
}

/// Whether people can be asked on this terminal.
pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// Ask for a secret on the terminal (prompt on standard error), with echo off while it
/// is typed. Only for a standard input that is a terminal (see [`stdin_is_terminal`]).
pub fn secret_from_terminal(prompt: &str) -> anyhow::Result<String> {
    eprint!("{prompt}: ");
    std::io::stderr().flush().ok();
    let mut line = String::new();
    let read = {
        let _quiet = EchoOff::new();
        std::io::stdin().lock().read_line(&mut line)
    };
    read.map_err(|e| {
        fail(
            INVALID_INPUT,
            format!("cannot read the password from the terminal: {e}"),
        )
    })?;
    if line.is_empty() {
        // End of input (Ctrl-D): the line break echo would have printed is missing.
        eprintln!();
    }
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// Terminal echo switched off on standard input until dropped (restored also when the
/// read fails). `ECHONL` keeps the Enter visible, so the next prompt starts on its own line.
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn new() -> Self {
        let mut saved = std::mem::MaybeUninit::<libc::termios>::uninit();
        // SAFETY: tcgetattr fills the termios struct it is given, or fails and leaves it
        // unread (we only assume it initialised on success).
        let saved = unsafe {
            if libc::tcgetattr(libc::STDIN_FILENO, saved.as_mut_ptr()) != 0 {
                return Self(None);
            }
            saved.assume_init()
        };
        let mut quiet = saved;
        quiet.c_lflag &= !libc::ECHO;
        quiet.c_lflag |= libc::ECHONL;
        // SAFETY: a valid termios derived from the terminal's own settings.
        if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &quiet) } != 0 {
            return Self(None);
        }
        Self(Some(saved))
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            // SAFETY: restores the settings tcgetattr returned for the same descriptor.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, saved);
            }
        }
    }
}
