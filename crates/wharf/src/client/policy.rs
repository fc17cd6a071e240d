//! `wharf policy show|set|remove|export|import`: the server-side signature policy
//! (`/api/v1/signature-policy`, owner only), which decides per scope whether the registry
//! serves a manifest to every client.
//!
//! The API replaces the whole document and guards it with its `version`: `set` and
//! `remove` read it, change the one rule they name and write it back with the version
//! read; when someone changed it in between (409 `CONFLICT`) they read it again and apply
//! their change once more, then give up with the server's message. Rules are handled as
//! the JSON the server sent, so the rules a command does not touch — cosign keys, Notation
//! certificates, fields a newer server adds — go back byte for byte as they came.

use std::path::Path;

use serde_json::{Map, Value, json};

use super::report::{INVALID_INPUT, INVALID_RESPONSE, Report, fail, table};
use super::rules_document::{Applied, RuleChange, RulesApi, RulesDocument, scope_of};
use super::session::admin_session;
use crate::cli::{AdminArgs, PolicyCommand, PolicySetArgs};

const POLICY: RulesDocument = RulesDocument {
    path: "/api/v1/signature-policy",
    noun: "policy",
    rule: "rule",
};

/// The names in a list of `{name, …}` objects.
fn names(items: &Value) -> Vec<&str> {
    items
        .as_array()
        .map(|a| a.iter().filter_map(|i| i["name"].as_str()).collect())
        .unwrap_or_default()
}

fn strings(items: &Value) -> Vec<&str> {
    items
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// What counts as signed under a rule: `dct`, `dct[roles]`, `cosign[key names]`,
/// `notation[root names; identities]`, any one of which is enough.
fn accepts(rule: &Value) -> String {
    let mut kinds = Vec::new();
    if let Some(dct) = rule.get("dct") {
        let roles = strings(&dct["roles"]);
        kinds.push(if roles.is_empty() {
            "dct".to_owned()
        } else {
            format!("dct[{}]", roles.join(", "))
        });
    }
    if let Some(cosign) = rule.get("cosign") {
        kinds.push(format!("cosign[{}]", names(&cosign["keys"]).join(", ")));
    }
    if let Some(notation) = rule.get("notation") {
        kinds.push(format!(
            "notation[{}; {}]",
            names(&notation["trust_store"]).join(", "),
            strings(&notation["trusted_identities"]).join(", ")
        ));
    }
    kinds.join(" or ")
}

fn mode_of(rule: &Value) -> &str {
    rule["mode"].as_str().unwrap_or("?")
}

/// Publishers' push and signing sessions may read unsigned manifests unless the rule says
/// `false` (the server leaves the field out when it is true).
fn publishers_exempt(rule: &Value) -> bool {
    rule["publishers_read_unsigned"].as_bool() != Some(false)
}

const NOT_EXEMPT: &str = "publishers may read unsigned: no";

/// One line about a rule: `enforce, accepts dct`.
fn summary(rule: &Value) -> String {
    let mut s = mode_of(rule).to_owned();
    let kinds = accepts(rule);
    if !kinds.is_empty() {
        s.push_str(&format!(", accepts {kinds}"));
    }
    if !publishers_exempt(rule) {
        s.push_str(&format!(", {NOT_EXEMPT}"));
    }
    s
}

/// `show`: the version, then one line per rule.
fn show_text(document: &Value) -> anyhow::Result<String> {
    let version = POLICY.version_of(document)?;
    let rules = POLICY.rules_of(document)?;
    if rules.is_empty() {
        return Ok(format!(
            "Signature policy version {version}: no rules (every manifest is served, signed or not)"
        ));
    }
    let scope = |r: &Value| scope_of(r).to_owned();
    let mode = |r: &Value| mode_of(r).to_owned();
    let kinds = |r: &Value| {
        let k = accepts(r);
        if k.is_empty() { "-".to_owned() } else { k }
    };
    let note = |r: &Value| {
        if publishers_exempt(r) {
            String::new()
        } else {
            NOT_EXEMPT.to_owned()
        }
    };
    let mut columns: Vec<super::report::Column<'_>> =
        vec![("SCOPE", &scope), ("MODE", &mode), ("ACCEPTS", &kinds)];
    if rules.iter().any(|r| !publishers_exempt(r)) {
        columns.push(("NOTE", &note));
    }
    Ok(format!(
        "Signature policy version {version}\n{}",
        table(rules, &columns)
    ))
}

/// `NAME=PEM_FILE` of `flag`: the name and the file's text.
fn named_pem(flag: &str, what: &str, spec: &str) -> anyhow::Result<(String, String)> {
    let (name, file) = spec
        .split_once('=')
        .filter(|(n, f)| !n.trim().is_empty() && !f.is_empty())
        .ok_or_else(|| {
            fail(
                INVALID_INPUT,
                format!("{flag} expects NAME=PEM_FILE, got {spec:?}"),
            )
        })?;
    let pem = std::fs::read_to_string(file).map_err(|e| {
        fail(
            INVALID_INPUT,
            format!(
                "cannot read the {what} file {} ({flag} {spec}): {e}",
                Path::new(file).display()
            ),
        )
    })?;
    Ok((name.trim().to_owned(), pem))
}

/// The rule `set` writes, as the server stores it (defaults left out), so an unchanged
/// rule compares equal to the stored one. Key and certificate files are read here,
/// before anything is asked of the server.
fn rule_from(args: &PolicySetArgs) -> anyhow::Result<Value> {
    let mut rule = Map::new();
    rule.insert("scope".into(), json!(args.scope.trim()));
    rule.insert("mode".into(), json!(args.mode.as_str()));
    if args.dct || !args.dct_roles.is_empty() {
        let dct = if args.dct_roles.is_empty() {
            json!({})
        } else {
            json!({ "roles": args.dct_roles })
        };
        rule.insert("dct".into(), dct);
    }
    if !args.cosign_keys.is_empty() {
        let keys = args
            .cosign_keys
            .iter()
            .map(|spec| {
                let (name, pem) = named_pem("--cosign-key", "cosign key", spec)?;
                Ok(json!({ "name": name, "public_key": pem }))
            })
            .collect::<anyhow::Result<Vec<Value>>>()?;
        rule.insert("cosign".into(), json!({ "keys": keys }));
    }
    if !args.notation_roots.is_empty() || !args.notation_identities.is_empty() {
        let roots = args
            .notation_roots
            .iter()
            .map(|spec| {
                let (name, pem) = named_pem("--notation-root", "Notation root certificate", spec)?;
                Ok(json!({ "name": name, "certificate": pem }))
            })
            .collect::<anyhow::Result<Vec<Value>>>()?;
        rule.insert(
            "notation".into(),
            json!({ "trust_store": roots, "trusted_identities": args.notation_identities }),
        );
    }
    if args.no_publisher_exemption {
        rule.insert("publishers_read_unsigned".into(), json!(false));
    }
    Ok(Value::Object(rule))
}

/// `import`: the file's document with the version of the stored one, so nobody edits
/// versions by hand. It must list rules: a file without them would silently empty the
/// policy.
fn imported(file: &Path, version: u64) -> anyhow::Result<Value> {
    let shown = file.display();
    let text = std::fs::read_to_string(file)
        .map_err(|e| fail(INVALID_INPUT, format!("cannot read {shown}: {e}")))?;
    let mut document: Value =
        serde_json::from_str(&text).map_err(|e| fail(INVALID_INPUT, format!("{shown} is not JSON: {e}")))?;
    if !document.get("rules").is_some_and(Value::is_array) {
        return Err(fail(
            INVALID_INPUT,
            format!("{shown} has no \"rules\" list: expected a policy as `wharf policy export` writes it"),
        ));
    }
    document["version"] = json!(version);
    Ok(document)
}

async fn set(api: &impl RulesApi, args: &PolicySetArgs) -> anyhow::Result<Report> {
    let rule = rule_from(args)?;
    let (stored, applied) = POLICY.change(api, &RuleChange::Set(rule.clone())).await?;
    let scope = scope_of(&rule);
    let version = POLICY.shown_version(&stored);
    let text = match applied {
        Applied::Unchanged => format!(
            "The rule for {scope} is already {} (policy version {version}); nothing changed",
            summary(&rule)
        ),
        Applied::Replaced => format!(
            "Replaced the rule for {scope}: {} (policy version {version})",
            summary(&rule)
        ),
        _ => format!(
            "Added the rule for {scope}: {} (policy version {version})",
            summary(&rule)
        ),
    };
    Ok(Report::new(stored, text))
}

async fn remove(api: &impl RulesApi, scope: &str) -> anyhow::Result<Report> {
    let (stored, _) = POLICY.change(api, &RuleChange::Remove(scope.to_owned())).await?;
    let text = format!(
        "Removed the rule for {} (policy version {})",
        scope.trim(),
        POLICY.shown_version(&stored)
    );
    Ok(Report::new(stored, text))
}

/// `import` replaces everything, so a change made between its read and its write is
/// reported rather than overwritten on a second try.
async fn import(api: &impl RulesApi, file: &Path) -> anyhow::Result<Report> {
    let current = api.get().await?;
    let document = imported(file, POLICY.version_of(&current)?)?;
    let stored = api.put(&document).await?;
    let n = POLICY.rules_of(&stored)?.len();
    let text = format!(
        "Imported {n} rule{} from {} (policy version {})",
        if n == 1 { "" } else { "s" },
        file.display(),
        POLICY.shown_version(&stored)
    );
    Ok(Report::new(stored, text))
}

pub async fn run(a: AdminArgs<PolicyCommand>) -> anyhow::Result<Report> {
    // What can be refused without the server is refused before logging in.
    match &a.command {
        PolicyCommand::Set(args) => {
            rule_from(args)?;
        }
        PolicyCommand::Import { file } => {
            imported(file, 0)?;
        }
        _ => {}
    }
    let session = admin_session(a.registry.clone(), a.server.ca_file.clone()).await?;
    let api = POLICY.on(&session);
    match &a.command {
        PolicyCommand::Show => {
            let document = api.get().await?;
            let text = show_text(&document)?;
            Ok(Report::new(document, text))
        }
        PolicyCommand::Export => {
            let document = api.get().await?;
            POLICY.version_of(&document)?;
            let text = serde_json::to_string_pretty(&document)
                .map_err(|e| fail(INVALID_RESPONSE, format!("the policy is not printable: {e}")))?;
            Ok(Report::new(document, text))
        }
        PolicyCommand::Set(args) => set(&api, args).await,
        PolicyCommand::Remove { scope } => remove(&api, scope).await,
        PolicyCommand::Import { file } => import(&api, file).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::PolicyMode;
    use crate::client::report::describe;
    use crate::client::rules_document::tests::{Fake, block_on as run};
    use crate::client::rules_document::{CONFLICT, NOT_FOUND};

    fn set_args(scope: &str, mode: PolicyMode) -> PolicySetArgs {
        PolicySetArgs {
            scope: scope.into(),
            mode,
            dct: false,
            dct_roles: vec![],
            cosign_keys: vec![],
            notation_roots: vec![],
            notation_identities: vec![],
            no_publisher_exemption: false,
        }
    }

    const COSIGN_RULE: &str = r#"{"scope": "registry", "mode": "audit",
        "cosign": {"keys": [{"name": "ci", "public_key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}]},
        "notation": {"trust_store": [{"name": "root", "certificate": "PEM"}], "trusted_identities": ["x509.subject: CN=ci, O=Acme", "*"]},
        "future_field": {"kept": true}}"#;

    #[test]
    fn set_replaces_only_its_scope_and_passes_the_others_through() {
        let other: Value = serde_json::from_str(COSIGN_RULE).unwrap();
        let fake = Fake::new(
            json!({"version": 4, "rules": [other.clone(), {"scope": "repository:team/*", "mode": "off"}]}),
            0,
        );
        let mut args = set_args(" repository:team/* ", PolicyMode::Enforce);
        args.dct_roles = vec!["targets/releases".into()];
        args.no_publisher_exemption = true;
        let report = run(set(&fake, &args)).unwrap();
        let expected_rule = json!({"scope": "repository:team/*", "mode": "enforce",
            "dct": {"roles": ["targets/releases"]}, "publishers_read_unsigned": false});
        assert_eq!(
            report.json,
            json!({"version": 5, "rules": [other, expected_rule]})
        );
        assert_eq!(
            report.text,
            "Replaced the rule for repository:team/*: enforce, accepts dct[targets/releases], \
             publishers may read unsigned: no (policy version 5)"
        );

        // The same rule again writes nothing.
        let report = run(set(&fake, &args)).unwrap();
        assert_eq!(*fake.writes.borrow(), 1);
        assert_eq!(
            report.text,
            "The rule for repository:team/* is already enforce, accepts dct[targets/releases], \
             publishers may read unsigned: no (policy version 5); nothing changed"
        );
    }

    #[test]
    fn a_conflict_is_retried_once_on_the_new_version_then_reported() {
        let fake = Fake::new(json!({"version": 0, "rules": []}), 1);
        let mut args = set_args("registry", PolicyMode::Audit);
        args.dct = true;
        let report = run(set(&fake, &args)).unwrap();
        assert_eq!(*fake.writes.borrow(), 2);
        // The other owner's rule survives the retry.
        assert_eq!(
            report.json,
            json!({"version": 2, "rules": [
                {"scope": "repository:other0"},
                {"scope": "registry", "mode": "audit", "dct": {}},
            ]})
        );
        assert_eq!(
            report.text,
            "Added the rule for registry: audit, accepts dct (policy version 2)"
        );

        let fake = Fake::new(json!({"version": 0, "rules": []}), 2);
        let e = run(set(&fake, &args)).err().unwrap();
        assert_eq!(
            describe(&e),
            (
                CONFLICT.to_owned(),
                "the server answered 409 Conflict: changed".to_owned()
            )
        );
        assert_eq!(*fake.writes.borrow(), 2);
    }

    #[test]
    fn remove_needs_a_rule_for_exactly_that_scope() {
        let fake = Fake::new(
            json!({"version": 1, "rules": [{"scope": "repository:team/*", "mode": "audit", "dct": {}}]}),
            0,
        );
        let e = run(remove(&fake, "repository:team/app")).err().unwrap();
        assert_eq!(
            describe(&e),
            (
                NOT_FOUND.to_owned(),
                "no rule for scope repository:team/app".to_owned()
            )
        );
        let report = run(remove(&fake, "repository:team/*")).unwrap();
        assert_eq!(report.json, json!({"version": 2, "rules": []}));
        assert_eq!(
            report.text,
            "Removed the rule for repository:team/* (policy version 2)"
        );
    }

    #[test]
    fn show_names_what_counts_and_who_is_exempt() {
        let cosign: Value = serde_json::from_str(COSIGN_RULE).unwrap();
        let doc = json!({"version": 7, "rules": [
            cosign,
            {"scope": "repository:team/*", "mode": "enforce", "dct": {}, "publishers_read_unsigned": false},
            {"scope": "repository:lab/x", "mode": "off"},
        ]});
        assert_eq!(
            show_text(&doc).unwrap(),
            "Signature policy version 7\n\
             SCOPE              MODE     ACCEPTS                                                       NOTE\n\
             registry           audit    cosign[ci] or notation[root; x509.subject: CN=ci, O=Acme, *]\n\
             repository:team/*  enforce  dct                                                           publishers may read unsigned: no\n\
             repository:lab/x   off      -"
        );
        assert_eq!(
            show_text(&json!({"version": 0, "rules": []})).unwrap(),
            "Signature policy version 0: no rules (every manifest is served, signed or not)"
        );
    }

    #[test]
    fn key_files_are_read_and_named_when_they_are_not() {
        let dir = std::env::temp_dir().join(format!("wharf-policy-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("ci.pub");
        std::fs::write(
            &key,
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
        )
        .unwrap();
        let mut args = set_args("registry", PolicyMode::Enforce);
        args.cosign_keys = vec![format!("ci={}", key.display())];
        args.notation_identities = vec!["*".into()];
        assert_eq!(
            rule_from(&args).unwrap(),
            json!({"scope": "registry", "mode": "enforce",
                "cosign": {"keys": [{"name": "ci", "public_key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"}]},
                "notation": {"trust_store": [], "trusted_identities": ["*"]}})
        );
        args.cosign_keys = vec!["ci.pub".into()];
        assert_eq!(
            describe(&rule_from(&args).unwrap_err()),
            (
                INVALID_INPUT.to_owned(),
                "--cosign-key expects NAME=PEM_FILE, got \"ci.pub\"".to_owned()
            )
        );
        let missing = dir.join("missing.pem");
        args.cosign_keys = vec![];
        args.notation_roots = vec![format!("root={}", missing.display())];
        let (code, message) = describe(&rule_from(&args).unwrap_err());
        assert_eq!(code, INVALID_INPUT);
        assert_eq!(
            message,
            format!(
                "cannot read the Notation root certificate file {m} (--notation-root root={m}): \
                 No such file or directory (os error 2)",
                m = missing.display()
            )
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
