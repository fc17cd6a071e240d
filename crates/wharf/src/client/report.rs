//! What client commands print, in one place: each command returns a [`Report`] (the same
//! facts as JSON and as text for people) or an error carrying a [`CliError`] code, and
//! `main` prints it in the format `--output` chose. Commands never print results
//! themselves, so `--output json` cannot miss one.

use serde_json::{Value, json};

use crate::cli::Output;

/// A command's result.
pub struct Report {
    /// `--output json`: the documented fields (README, "JSON output").
    pub json: Value,
    /// `--output table` (the default): lines for people.
    pub text: String,
    /// A next step for people (the table output's standard error only: in JSON mode
    /// standard error carries nothing but an error object).
    pub hint: Option<String>,
    /// Part of the work was refused (code, message): the report still goes to standard
    /// output, the refusal to standard error as an error, and the exit status is non-zero,
    /// so a script sees both what was done and that not everything was.
    pub refused: Option<(String, String)>,
}

impl Report {
    pub fn new(json: Value, text: impl Into<String>) -> Self {
        Self {
            json,
            text: text.into(),
            hint: None,
            refused: None,
        }
    }

    /// The same report, marked as partly refused with `code` and `message`.
    pub fn with_refusal(mut self, code: &str, message: impl Into<String>) -> Self {
        self.refused = Some((code.to_owned(), message.into()));
        self
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Print to standard output. A closed pipe (`wharf audit list | head`) is not an
    /// error worth a panic: whoever reads has what they wanted.
    pub fn print(&self, output: Output) {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        match output {
            Output::Json => {
                let text = serde_json::to_string_pretty(&self.json).unwrap_or_else(|_| "null".into());
                let _ = writeln!(out, "{text}");
            }
            Output::Table => {
                if !self.text.is_empty() {
                    let _ = writeln!(out, "{}", self.text.trim_end());
                }
                let _ = out.flush();
                if let Some(h) = &self.hint {
                    eprintln!("{h}");
                }
            }
        }
    }
}

/// A failure with a code a script can branch on: the API's own `errors[0].code` for an
/// answer of the server, or one of the CLI's codes below.
#[derive(Debug)]
pub struct CliError {
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for CliError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// The server could not be reached (DNS, refused connection, TLS).
pub const CONNECTION_FAILED: &str = "CONNECTION_FAILED";
/// No registry selected, or no stored login for it.
pub const NOT_LOGGED_IN: &str = "NOT_LOGGED_IN";
/// The host answered, but not as a Wharf registry does.
pub const NOT_A_REGISTRY: &str = "NOT_A_REGISTRY";
/// The server's answer could not be read.
pub const INVALID_RESPONSE: &str = "INVALID_RESPONSE";
/// Bad input on standard input or the command line.
pub const INVALID_INPUT: &str = "INVALID_INPUT";
/// The command line could not be parsed (clap's error).
pub const USAGE: &str = "USAGE";
/// A destructive command without `--yes` and without a terminal, or answered "no".
pub const NOT_CONFIRMED: &str = "NOT_CONFIRMED";
/// The local Docker config could not be read or written.
pub const CONFIG_FILE: &str = "CONFIG_FILE";
/// Anything else that failed on this side.
pub const CLI_ERROR: &str = "CLI_ERROR";

pub fn fail(code: &str, message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(CliError {
        code: code.to_owned(),
        message: message.into(),
    })
}

/// "cannot reach …" with the transport's causes (reqwest's own message names only the URL).
pub fn connection_failed(what: &str, e: &reqwest::Error, advice: &str) -> anyhow::Error {
    let mut msg = format!("cannot reach {what}");
    let mut cause: Option<&dyn std::error::Error> = Some(e);
    while let Some(c) = cause {
        msg.push_str(": ");
        msg.push_str(&c.to_string());
        cause = c.source();
    }
    if !advice.is_empty() {
        msg.push_str(&format!(" ({advice})"));
    }
    fail(CONNECTION_FAILED, msg)
}

/// The code and message of a non-2xx answer of the token service or the admin API (both
/// answer `{"errors":[{"code","message"}]}`); `None` when the body has none.
pub fn server_error(body: &Value) -> Option<(String, String)> {
    let e = &body["errors"][0];
    Some((e["code"].as_str()?.to_owned(), e["message"].as_str()?.to_owned()))
}

/// Status and JSON body of an answer (`Null` when the body is empty or not JSON).
pub async fn read_answer(resp: reqwest::Response) -> (reqwest::StatusCode, Value) {
    let status = resp.status();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Code and one-line message of a failed command, as `main` prints it.
pub fn describe(e: &anyhow::Error) -> (String, String) {
    let code = e
        .downcast_ref::<CliError>()
        .or_else(|| e.chain().find_map(|c| c.downcast_ref::<CliError>()))
        .map_or(CLI_ERROR, |c| c.code.as_str())
        .to_owned();
    (code, one_line(e))
}

/// The chain of causes joined. A cause its predecessor already shows is left out: errors
/// that print their source inside their own message and also return it as `source()`
/// (an io error in a field named `source`, `#[from]` with `{0}`) would otherwise repeat
/// it, e.g. a missing config file's OS error twice.
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

/// Print a failure: `wharf: <message>` for people, one JSON object for `--output json`.
pub fn print_error(output: Output, code: &str, message: &str) {
    match output {
        Output::Json => eprintln!("{}", json!({ "error": { "code": code, "message": message } })),
        Output::Table => eprintln!("wharf: {message}"),
    }
}

/// A byte count for people: `512 B`, `12.3 MiB` (binary units, one decimal).
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A column: header and how to render a cell.
pub type Column<'a> = (&'a str, &'a dyn Fn(&Value) -> String);

/// `items` as an aligned table of `columns`.
pub fn table(items: &[Value], columns: &[Column<'_>]) -> String {
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|i| columns.iter().map(|(_, f)| f(i)).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(c, (h, _))| {
            rows.iter()
                .map(|r| r[c].len())
                .chain([h.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        parts.join("  ").trim_end().to_owned()
    };
    let header: Vec<String> = columns.iter().map(|(h, _)| (*h).to_owned()).collect();
    std::iter::once(line(&header))
        .chain(rows.iter().map(|r| line(r)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_of_a_wrapped_failure_is_found() {
        let e = fail(NOT_LOGGED_IN, "no stored login").context("listing users");
        let (code, message) = describe(&e);
        assert_eq!(code, NOT_LOGGED_IN);
        assert_eq!(message, "listing users: no stored login");
        assert_eq!(describe(&anyhow::anyhow!("plain")).0, CLI_ERROR);
    }

    #[test]
    fn byte_counts_for_people() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1024), "1.0 KiB");
        assert_eq!(human_bytes(12_897_485), "12.3 MiB");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }

    #[test]
    fn tables_align_and_trim() {
        let items = vec![json!({"a": "x", "b": "long value"}), json!({"a": "yyy", "b": ""})];
        let t = table(
            &items,
            &[
                ("A", &|i| i["a"].as_str().unwrap_or("").to_owned()),
                ("B", &|i| i["b"].as_str().unwrap_or("").to_owned()),
            ],
        );
        assert_eq!(t, "A    B\nx    long value\nyyy");
    }
}
