//! Typed views of notary metadata files. An [`Envelope`] keeps the original
//! bytes (what is stored and served, byte for byte) next to the parsed
//! `signed` value (what signatures are checked over, after
//! re-canonicalisation) and the signatures.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, FixedOffset, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256, Sha512};

use crate::canonical::{go_html_escape, to_canonical};
use crate::error::Error;
use crate::keys::{PublicKey, de_b64_nullable};
use crate::signature::Signature;

pub const ROOT: &str = "root";
pub const TARGETS: &str = "targets";
pub const SNAPSHOT: &str = "snapshot";
pub const TIMESTAMP: &str = "timestamp";
/// Base roles in the order notary checks them in a root.
pub const BASE_ROLES: [&str; 4] = [ROOT, TARGETS, SNAPSHOT, TIMESTAMP];

/// notary `data.IsDelegation`: `targets/…`, `[-a-z0-9_/]` only, < 256 bytes,
/// path-clean (no `//`, no trailing `/`).
pub fn is_delegation(name: &str) -> bool {
    name.starts_with("targets/")
        && name.len() < 256
        && name
            .bytes()
            .all(|b| matches!(b, b'-' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'/'))
        && !name.ends_with('/')
        && !name.contains("//")
}

/// A role name the update endpoint accepts.
pub fn is_valid_role(name: &str) -> bool {
    BASE_ROLES.contains(&name) || is_delegation(name)
}

/// Parent of a delegation (`targets/a/b` -> `targets/a`), `targets` -> `root`.
pub fn parent_role(name: &str) -> &str {
    match name.rfind('/') {
        Some(i) => &name[..i],
        None => ROOT,
    }
}

/// `time.Time` as Go's JSON encoder writes it in UTC (RFC 3339, up to 9
/// fractional digits with trailing zeros trimmed, `Z`).
pub fn format_go_time(t: DateTime<Utc>) -> String {
    let base = t.format("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = t.timestamp_subsec_nanos();
    if nanos == 0 {
        return format!("{base}Z");
    }
    let frac = format!("{nanos:09}");
    format!("{base}.{}Z", frac.trim_end_matches('0'))
}

/// Go `Format("Mon Jan 2 15:04:05 MST 2006")`, used in `<role> expired at …`.
pub fn format_go_expiry(t: &DateTime<FixedOffset>) -> String {
    let off = t.offset().local_minus_utc();
    let zone = if off == 0 {
        "UTC".to_string()
    } else {
        let sign = if off < 0 { '-' } else { '+' };
        let a = off.unsigned_abs();
        format!("{sign}{:02}{:02}", a / 3600, (a % 3600) / 60)
    };
    format!("{} {} {}", t.format("%a %b %-d %H:%M:%S"), zone, t.format("%Y"))
}

/// notary `signed.VerifyExpiry`: expired if `expires` is before now. A missing
/// `expires` is Go's zero time, i.e. expired.
pub fn check_expiry(
    role: &str,
    expires: Option<&DateTime<FixedOffset>>,
    now: DateTime<Utc>,
) -> Result<(), String> {
    match expires {
        Some(e) if *e >= now => Ok(()),
        Some(e) => Err(format!("{role} expired at {}", format_go_expiry(e))),
        None => Err(format!("{role} expired at Mon Jan 1 00:00:00 UTC 1")),
    }
}

fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn de_expires<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<FixedOffset>>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(s) => parse_go_rfc3339(&s).map(Some).map_err(serde::de::Error::custom),
    }
}

/// Go's `time.RFC3339` layout, named in parse errors as Go names it.
const GO_RFC3339: &str = "2006-01-02T15:04:05Z07:00";

/// Parses `expires` exactly as the Go clients do (`time.Time.UnmarshalJSON`,
/// i.e. `time.Parse(time.RFC3339, …)`), refusing everything any Go version
/// in use refuses. Why so strict: a value that only Wharf accepts (chrono
/// takes `t`/`z`, a space for `T`, leap second `60`) is stored, and then
/// every client that reads the repository fails to parse it, so one
/// delegate could break verification of the whole repository.
///
/// Accepted: `YYYY-MM-DDThh:mm:ss[.f…](Z|±hh:mm)`, all fields fixed width,
/// `T`/`Z` uppercase, month/day valid for the calendar (month lengths, leap
/// years), hour ≤ 23, minute and second ≤ 59, offset hour ≤ 23 and minute
/// ≤ 59. Fractional seconds (not in the layout) are accepted like Go does:
/// `.` and one or more digits, the first nine kept. Deliberately refused
/// although some Go `time.Parse` versions take them: a one-digit hour and a
/// `,` decimal separator (Go's own RFC 3339 fast path and strict check refuse
/// them, and no Go client writes them). Error texts follow Go's
/// (`parsing time "…" as "…": cannot parse "…" as "…"`, `…: second out of
/// range`).
pub fn parse_go_rfc3339(s: &str) -> Result<DateTime<FixedOffset>, String> {
    let b = s.as_bytes();
    let mut pos = 0;
    // Only ASCII is ever consumed, so `pos` is always a char boundary.
    let cannot = |pos: usize, elem: &str| {
        format!(
            "parsing time {s:?} as \"{GO_RFC3339}\": cannot parse {:?} as \"{elem}\"",
            &s[pos..]
        )
    };
    let range = |what: &str| format!("parsing time {s:?}: {what} out of range");
    let digits = |pos: &mut usize, n: usize, elem: &str| -> Result<u32, String> {
        let end = *pos + n;
        if end > b.len() || !b[*pos..end].iter().all(u8::is_ascii_digit) {
            return Err(cannot(*pos, elem));
        }
        let v = b[*pos..end]
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
        *pos = end;
        Ok(v)
    };
    let lit = |pos: &mut usize, c: u8| -> Result<(), String> {
        if b.get(*pos) != Some(&c) {
            return Err(cannot(*pos, &char::from(c).to_string()));
        }
        *pos += 1;
        Ok(())
    };
    let year = digits(&mut pos, 4, "2006")?;
    lit(&mut pos, b'-')?;
    let month = digits(&mut pos, 2, "01")?;
    if !(1..=12).contains(&month) {
        return Err(range("month"));
    }
    lit(&mut pos, b'-')?;
    let day = digits(&mut pos, 2, "02")?;
    lit(&mut pos, b'T')?;
    let hour = digits(&mut pos, 2, "15")?;
    if hour > 23 {
        return Err(range("hour"));
    }
    lit(&mut pos, b':')?;
    let minute = digits(&mut pos, 2, "04")?;
    if minute > 59 {
        return Err(range("minute"));
    }
    lit(&mut pos, b':')?;
    let second = digits(&mut pos, 2, "05")?;
    if second > 59 {
        return Err(range("second"));
    }
    let mut nanos = 0u32;
    if b.get(pos) == Some(&b'.') && b.get(pos + 1).is_some_and(u8::is_ascii_digit) {
        pos += 1;
        let start = pos;
        while b.get(pos).is_some_and(u8::is_ascii_digit) {
            pos += 1;
        }
        for i in 0..9 {
            let d = if start + i < pos { b[start + i] - b'0' } else { 0 };
            nanos = nanos * 10 + u32::from(d);
        }
    }
    let offset_secs = if b.get(pos) == Some(&b'Z') {
        pos += 1;
        0
    } else {
        let zone = &b[pos..];
        let sign = match zone.first() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err(cannot(pos, "Z07:00")),
        };
        let well_formed = zone.len() >= 6
            && zone[1..3].iter().all(u8::is_ascii_digit)
            && zone[3] == b':'
            && zone[4..6].iter().all(u8::is_ascii_digit);
        if !well_formed {
            return Err(cannot(pos, "Z07:00"));
        }
        let oh = i32::from(zone[1] - b'0') * 10 + i32::from(zone[2] - b'0');
        let om = i32::from(zone[4] - b'0') * 10 + i32::from(zone[5] - b'0');
        if oh > 23 {
            return Err(range("time zone offset hour"));
        }
        if om > 59 {
            return Err(range("time zone offset minute"));
        }
        pos += 6;
        sign * (oh * 3600 + om * 60)
    };
    if pos != b.len() {
        return Err(format!("parsing time {s:?}: extra text: {:?}", &s[pos..]));
    }
    // Go checks the day against the month's length last.
    let date = chrono::NaiveDate::from_ymd_opt(year as i32, month, day).ok_or_else(|| range("day"))?;
    let naive = date
        .and_hms_nano_opt(hour, minute, second, nanos)
        .ok_or_else(|| range("second"))?;
    let offset = FixedOffset::east_opt(offset_secs).ok_or_else(|| range("time zone offset hour"))?;
    naive
        .and_local_timezone(offset)
        .single()
        .ok_or_else(|| range("time zone offset hour"))
}

/// The members every role has; all notary parses at upload time.
#[derive(Debug, Clone, Deserialize)]
pub struct Common {
    #[serde(rename = "_type", default, deserialize_with = "nullable")]
    pub typ: String,
    #[serde(default, deserialize_with = "de_expires")]
    pub expires: Option<DateTime<FixedOffset>>,
    #[serde(default, deserialize_with = "nullable")]
    pub version: i64,
}

/// One metadata file: original bytes + parsed parts.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// Exactly the bytes received / stored.
    pub bytes: Vec<u8>,
    /// The parsed `signed` object.
    pub signed: Value,
    pub signatures: Vec<Signature>,
    pub common: Common,
}

impl Envelope {
    /// Parses `{"signed":{…},"signatures":[…]}` with the leniency of notary's
    /// upload handler (any JSON layout, unknown members ignored, `null` ok).
    /// An error here is what the server reports as MALFORMED_JSON.
    pub fn parse(bytes: impl Into<Vec<u8>>) -> Result<Self, Error> {
        let bytes = bytes.into();
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| Error::Json(e.to_string()))?;
        // Before anything is read from it: refuse what Go would read
        // differently (case-insensitive member names, duplicates, escaped
        // times), see `gojson`.
        crate::gojson::check_document(&bytes).map_err(Error::Json)?;
        let Value::Object(mut top) = v else {
            return Err(Error::Json("metadata is not a JSON object".into()));
        };
        let signed = match top.remove("signed") {
            Some(s @ Value::Object(_)) => s,
            Some(Value::Null) | None => return Err(Error::Json("missing signed object".into())),
            Some(_) => return Err(Error::Json("signed is not an object".into())),
        };
        let signatures: Vec<Signature> = match top.remove("signatures") {
            None | Some(Value::Null) => Vec::new(),
            Some(s) => serde_json::from_value(s).map_err(|e| Error::Json(e.to_string()))?,
        };
        let common: Common =
            serde_json::from_value(signed.clone()).map_err(|e| Error::Json(e.to_string()))?;
        Ok(Envelope {
            bytes,
            signed,
            signatures,
            common,
        })
    }

    /// Canonical bytes of `signed` (the signed message).
    pub fn canonical_signed(&self) -> Result<Vec<u8>, Error> {
        to_canonical(&self.signed)
    }

    /// The file re-serialised the way notary writes files (§2.1). Equal to
    /// `bytes` for every file a real client or notary produced.
    pub fn to_go_layout(&self) -> Result<Vec<u8>, Error> {
        encode_file(&self.signed, &self.signatures)
    }

    /// Typed view of `signed`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_value(self.signed.clone()).map_err(|e| Error::Json(e.to_string()))
    }

    pub fn sha256_hex(&self) -> String {
        hex::encode(Sha256::digest(&self.bytes))
    }
}

/// Writes a metadata file like notary: canonical `signed` with Go HTML
/// escaping, then the signatures in Go member order, no whitespace.
pub fn encode_file(signed: &Value, signatures: &[Signature]) -> Result<Vec<u8>, Error> {
    let mut out = b"{\"signed\":".to_vec();
    out.extend_from_slice(&go_html_escape(&to_canonical(signed)?));
    out.extend_from_slice(b",\"signatures\":[");
    for (i, s) in signatures.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(s.to_go_json().as_bytes());
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

/// A parsed file with its typed `signed` part.
#[derive(Debug, Clone)]
pub struct Signed<T> {
    pub envelope: Envelope,
    pub signed: T,
}

impl<T: DeserializeOwned> Signed<T> {
    pub fn parse(bytes: impl Into<Vec<u8>>) -> Result<Self, Error> {
        let envelope = Envelope::parse(bytes)?;
        let signed = envelope.decode()?;
        Ok(Signed { envelope, signed })
    }
}

/// `keyids` + `threshold` of a role.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RoleKeys {
    #[serde(default, deserialize_with = "nullable")]
    pub keyids: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub threshold: i64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Root {
    #[serde(rename = "_type", default, deserialize_with = "nullable")]
    pub typ: String,
    #[serde(default, deserialize_with = "nullable")]
    pub consistent_snapshot: bool,
    #[serde(default, deserialize_with = "de_expires")]
    pub expires: Option<DateTime<FixedOffset>>,
    #[serde(default, deserialize_with = "nullable")]
    pub keys: BTreeMap<String, PublicKey>,
    #[serde(default, deserialize_with = "nullable")]
    pub roles: BTreeMap<String, RoleKeys>,
    #[serde(default, deserialize_with = "nullable")]
    pub version: i64,
}

fn invalid(role: &str, msg: impl std::fmt::Display) -> String {
    format!("{role} type metadata invalid: {msg}")
}

/// notary `isValidRootRoleStructure` (also used for delegation entries).
fn check_role_keys(
    container: &str,
    role: &str,
    r: &RoleKeys,
    keys: &BTreeMap<String, PublicKey>,
) -> Result<(), String> {
    if r.threshold < 1 {
        return Err(invalid(
            container,
            format!("invalid threshold specified for {role}: {} ", r.threshold),
        ));
    }
    for id in &r.keyids {
        if !keys.contains_key(id) {
            return Err(invalid(
                container,
                format!("key ID {id} specified in {role} without corresponding key"),
            ));
        }
    }
    Ok(())
}

impl Root {
    /// notary `isValidRootStructure`; message = notary's.
    pub fn validate_structure(&self) -> Result<(), String> {
        if self.typ != "Root" {
            return Err(invalid(ROOT, format!("expected type Root, not {}", self.typ)));
        }
        if self.version < 1 {
            return Err(invalid(ROOT, "version cannot be less than 1"));
        }
        for role in BASE_ROLES {
            let Some(r) = self.roles.get(role) else {
                return Err(invalid(ROOT, format!("missing {role} role specification")));
            };
            check_role_keys(ROOT, role, r, &self.keys)?;
        }
        Ok(())
    }

    /// Keys (by ID) and threshold of a base role, `None` if not declared.
    pub fn role_keys(&self, role: &str) -> Option<(BTreeMap<String, PublicKey>, i64)> {
        let r = self.roles.get(role)?;
        let keys = r
            .keyids
            .iter()
            .filter_map(|id| Some((id.clone(), self.keys.get(id)?.clone())))
            .collect();
        Some((keys, r.threshold))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct DelegationRole {
    #[serde(default, deserialize_with = "nullable")]
    pub name: String,
    #[serde(default, deserialize_with = "nullable")]
    pub keyids: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub threshold: i64,
    /// Plain string prefixes; `[""]` = everything. Not enforced by the
    /// server (clients filter), kept for the policy enforcer.
    #[serde(default, deserialize_with = "nullable")]
    pub paths: Vec<String>,
}

impl DelegationRole {
    /// Whether this delegation may sign `target` (string-prefix match).
    pub fn allows_path(&self, target: &str) -> bool {
        self.paths.iter().any(|p| target.starts_with(p.as_str()))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct Delegations {
    #[serde(default, deserialize_with = "nullable")]
    pub keys: BTreeMap<String, PublicKey>,
    #[serde(default, deserialize_with = "nullable")]
    pub roles: Vec<DelegationRole>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Targets {
    #[serde(rename = "_type", default, deserialize_with = "nullable")]
    pub typ: String,
    #[serde(default, deserialize_with = "nullable")]
    pub delegations: Delegations,
    #[serde(default, deserialize_with = "de_expires")]
    pub expires: Option<DateTime<FixedOffset>>,
    #[serde(default, deserialize_with = "nullable")]
    pub targets: BTreeMap<String, FileMeta>,
    #[serde(default, deserialize_with = "nullable")]
    pub version: i64,
}

impl Targets {
    /// notary `isValidTargetsStructure` for a file of role `role`.
    pub fn validate_structure(&self, role: &str) -> Result<(), String> {
        if role != TARGETS && !is_delegation(role) {
            return Err(format!("tuf: invalid role {role}. not a valid targets role"));
        }
        if self.typ != "Targets" {
            return Err(invalid(role, format!("expected type Targets, not {}", self.typ)));
        }
        if self.version < 1 {
            return Err(invalid(role, "version cannot be less than one"));
        }
        for d in &self.delegations.roles {
            if !is_delegation(&d.name) || parent_role(&d.name) != role {
                return Err(invalid(role, format!("delegation role {} invalid", d.name)));
            }
            let rk = RoleKeys {
                keyids: d.keyids.clone(),
                threshold: d.threshold,
            };
            check_role_keys(role, &d.name, &rk, &self.delegations.keys)?;
        }
        Ok(())
    }

    /// The delegation entry `name` declared in this file.
    pub fn delegation(&self, name: &str) -> Option<&DelegationRole> {
        self.delegations.roles.iter().find(|d| d.name == name)
    }

    /// Keys (by ID) of a delegation entry.
    pub fn delegation_keys(&self, d: &DelegationRole) -> BTreeMap<String, PublicKey> {
        d.keyids
            .iter()
            .filter_map(|id| Some((id.clone(), self.delegations.keys.get(id)?.clone())))
            .collect()
    }
}

/// Snapshot and timestamp share this shape.
#[derive(Debug, Clone, Deserialize)]
pub struct MetaFile {
    #[serde(rename = "_type", default, deserialize_with = "nullable")]
    pub typ: String,
    #[serde(default, deserialize_with = "de_expires")]
    pub expires: Option<DateTime<FixedOffset>>,
    #[serde(default, deserialize_with = "nullable")]
    pub meta: BTreeMap<String, FileMeta>,
    #[serde(default, deserialize_with = "nullable")]
    pub version: i64,
}

pub type Snapshot = MetaFile;
pub type Timestamp = MetaFile;

impl MetaFile {
    /// notary `IsValidSnapshotStructure` / `IsValidTimestampStructure`.
    pub fn validate_structure(&self, role: &str) -> Result<(), String> {
        let (typ, required): (&str, &[&str]) = if role == TIMESTAMP {
            ("Timestamp", &[SNAPSHOT])
        } else {
            ("Snapshot", &[ROOT, TARGETS])
        };
        if self.typ != typ {
            return Err(invalid(role, format!("expected type {typ}, not {}", self.typ)));
        }
        if self.version < 1 {
            return Err(invalid(role, "version cannot be less than one"));
        }
        for file in required {
            let hashes = self.meta.get(*file).map(|m| &m.hashes);
            if !hashes.is_some_and(|h| h.contains_key("sha256")) {
                return Err(invalid(
                    role,
                    format!("missing {file} sha256 checksum information"),
                ));
            }
            if let Some(h) = hashes {
                check_hash_structure(h)
                    .map_err(|e| invalid(role, format!("invalid {file} checksum information, {e}")))?;
            }
        }
        Ok(())
    }

    /// The signed object (to sign / encode).
    pub fn to_value(&self, typ: &str, expires: &str) -> Value {
        let meta: Map<String, Value> = self.meta.iter().map(|(k, m)| (k.clone(), m.to_value())).collect();
        json!({"_type": typ, "expires": expires, "meta": meta, "version": self.version})
    }
}

/// notary `CheckValidHashStructures`.
fn check_hash_structure(h: &BTreeMap<String, Vec<u8>>) -> Result<(), String> {
    let mut known = 0;
    for (alg, v) in h {
        match alg.as_str() {
            "sha256" if v.len() != 32 => return Err("invalid sha256 checksum".into()),
            "sha512" if v.len() != 64 => return Err("invalid sha512 checksum".into()),
            "sha256" | "sha512" => known += 1,
            _ => {}
        }
    }
    if known == 0 {
        return Err("at least one supported hash needed".into());
    }
    Ok(())
}

/// `{"hashes":{alg: base64}, "length": n, "custom"?: …}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct FileMeta {
    #[serde(default, deserialize_with = "nullable")]
    pub length: i64,
    #[serde(default, deserialize_with = "de_hashes")]
    pub hashes: BTreeMap<String, Vec<u8>>,
    #[serde(default)]
    pub custom: Option<Value>,
}

fn de_hashes<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Vec<u8>>, D::Error> {
    #[derive(Deserialize)]
    struct B(#[serde(deserialize_with = "de_b64_nullable")] Vec<u8>);
    let m: Option<BTreeMap<String, B>> = Option::deserialize(d)?;
    Ok(m.unwrap_or_default()
        .into_iter()
        .map(|(k, B(v))| (k, v))
        .collect())
}

impl FileMeta {
    /// Meta of exactly these bytes, with sha256 and sha512 like notary writes.
    pub fn from_bytes(bytes: &[u8]) -> Self {
        let mut hashes = BTreeMap::new();
        hashes.insert("sha256".to_string(), Sha256::digest(bytes).to_vec());
        hashes.insert("sha512".to_string(), Sha512::digest(bytes).to_vec());
        FileMeta {
            length: bytes.len() as i64,
            hashes,
            custom: None,
        }
    }

    pub fn to_value(&self) -> Value {
        let hashes: Map<String, Value> = self
            .hashes
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(B64.encode(v))))
            .collect();
        let mut m = Map::new();
        m.insert("hashes".into(), Value::Object(hashes));
        m.insert("length".into(), json!(self.length));
        if let Some(c) = &self.custom {
            m.insert("custom".into(), c.clone());
        }
        Value::Object(m)
    }

    /// notary `data.CheckHashes`: every known hash must match, at least one
    /// known hash must be present. Length is not compared (as in notary).
    pub fn check_hashes(&self, payload: &[u8], name: &str) -> Result<(), String> {
        let mut count = 0;
        for (alg, expected) in &self.hashes {
            let actual = match alg.as_str() {
                "sha256" => Sha256::digest(payload).to_vec(),
                "sha512" => Sha512::digest(payload).to_vec(),
                _ => continue,
            };
            if &actual != expected {
                return Err(format!(
                    "{alg} checksum for {name} did not match: expected {}",
                    hex::encode(expected)
                ));
            }
            count += 1;
        }
        if count == 0 {
            return Err(format!("tuf: sha256 checksum required for {name}"));
        }
        Ok(())
    }

    /// Hashes and length both match (what clients check on download).
    pub fn matches(&self, payload: &[u8]) -> bool {
        self.length == payload.len() as i64 && self.check_hashes(payload, "").is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names() {
        for ok in [
            "root",
            "targets",
            "snapshot",
            "timestamp",
            "targets/releases",
            "targets/a/b-c_1",
        ] {
            assert!(is_valid_role(ok), "{ok}");
        }
        for bad in [
            "foo",
            "targets/Releases",
            "targets/",
            "targets//a",
            "targets/a/",
            "targets/a.b",
            "",
        ] {
            assert!(!is_valid_role(bad), "{bad}");
        }
        assert_eq!(parent_role("targets/a/b"), "targets/a");
        assert_eq!(parent_role("targets"), "root");
    }

    fn with_expires(raw: &str) -> Vec<u8> {
        format!(r#"{{"signed":{{"_type":"Targets","expires":{raw},"version":1}},"signatures":[]}}"#)
            .into_bytes()
    }

    #[test]
    fn expires_parsed_like_go_rfc3339() {
        let ok = |s: &str| {
            Envelope::parse(with_expires(&format!("\"{s}\"")))
                .unwrap()
                .common
                .expires
                .unwrap()
        };
        assert_eq!(
            ok("2030-01-01T00:00:00Z").to_rfc3339(),
            "2030-01-01T00:00:00+00:00"
        );
        assert_eq!(
            ok("2026-11-22T16:40:53.755942949Z").timestamp_subsec_nanos(),
            755_942_949
        );
        // Go keeps the first nine fractional digits and drops the rest.
        assert_eq!(
            ok("2030-01-01T00:00:00.1234567891Z").timestamp_subsec_nanos(),
            123_456_789
        );
        assert_eq!(
            ok("2030-01-01T01:00:00+01:00").with_timezone(&Utc).to_rfc3339(),
            "2030-01-01T00:00:00+00:00"
        );
        ok("2030-01-01T00:00:00-23:59");
        ok("2024-02-29T23:59:59Z");
        assert!(
            Envelope::parse(with_expires("null"))
                .unwrap()
                .common
                .expires
                .is_none()
        );

        const L: &str = "as \"2006-01-02T15:04:05Z07:00\": cannot parse";
        for (input, why) in [
            ("2030-01-01t00:00:00z", format!(r#"{L} "t00:00:00z" as "T""#)),
            ("2030-01-01T00:00:00z", format!(r#"{L} "z" as "Z07:00""#)),
            ("2030-01-01 00:00:00Z", format!(r#"{L} " 00:00:00Z" as "T""#)),
            ("2030-01-01T1:00:00Z", format!(r#"{L} "1:00:00Z" as "15""#)),
            ("2030-01-01T00:00:00,5Z", format!(r#"{L} ",5Z" as "Z07:00""#)),
            ("2030-01-01T00:00:00.Z", format!(r#"{L} ".Z" as "Z07:00""#)),
            ("2030-01-01T00:00:00", format!(r#"{L} "" as "Z07:00""#)),
            ("2030-01-01T00:00:00+0100", format!(r#"{L} "+0100" as "Z07:00""#)),
            (
                "+030-01-01T00:00:00Z",
                format!(r#"{L} "+030-01-01T00:00:00Z" as "2006""#),
            ),
            ("", format!(r#"{L} "" as "2006""#)),
            ("2030-01-01T00:00:00Zjunk", r#": extra text: "junk""#.to_string()),
            ("2030-12-31T23:59:60Z", ": second out of range".to_string()),
            ("2030-13-01T00:00:00Z", ": month out of range".to_string()),
            ("2030-00-01T00:00:00Z", ": month out of range".to_string()),
            ("2030-02-29T00:00:00Z", ": day out of range".to_string()),
            ("2030-04-31T00:00:00Z", ": day out of range".to_string()),
            ("2030-01-00T00:00:00Z", ": day out of range".to_string()),
            ("2030-01-01T24:00:00Z", ": hour out of range".to_string()),
            ("2030-01-01T00:60:00Z", ": minute out of range".to_string()),
            (
                "2030-01-01T00:00:00+24:00",
                ": time zone offset hour out of range".to_string(),
            ),
            (
                "2030-01-01T00:00:00-01:60",
                ": time zone offset minute out of range".to_string(),
            ),
        ] {
            let sep = if why.starts_with(':') { "" } else { " " };
            assert_eq!(
                Envelope::parse(with_expires(&format!("\"{input}\""))).unwrap_err(),
                Error::Json(format!("parsing time {input:?}{sep}{why}")),
                "{input}"
            );
        }
    }

    #[test]
    fn upload_with_lowercase_expires_is_malformed() {
        // What a delegate once uploaded: Go clients then failed on every read.
        let err =
            crate::update::parse_upload_part("targets/releases", with_expires(r#""2030-01-01t00:00:00z""#))
                .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"malformed json: parsing time "2030-01-01t00:00:00z" as "2006-01-02T15:04:05Z07:00": cannot parse "t00:00:00z" as "T""#
        );
        assert!(matches!(err, crate::UpdateError::MalformedJson(_)), "{err:?}");
    }

    const EXP: &str = r#""expires":"2030-01-01T00:00:00Z""#;

    fn refused(doc: &str) -> String {
        match Envelope::parse(doc.as_bytes().to_vec()) {
            Err(Error::Json(m)) => m,
            other => panic!("{doc}: expected a refusal, got {other:?}"),
        }
    }

    fn accepted(doc: &str) -> Envelope {
        Envelope::parse(doc.as_bytes().to_vec()).unwrap_or_else(|e| panic!("{doc}: {e}"))
    }

    #[test]
    fn struct_members_matched_like_go_encoding_json() {
        let targets = |extra: &str| {
            format!(r#"{{"signed":{{"_type":"Targets",{EXP},"version":5{extra}}},"signatures":[]}}"#)
        };
        // Go reads `Version` into `version` (last one wins: 1); we read 5.
        assert_eq!(
            refused(&targets(r#","Version":1"#)),
            r#"signed: member "Version" is a case variant of "version" (Go reads both into one field)"#
        );
        assert_eq!(
            refused(&targets(r#","Expires":"2001-01-01T00:00:00Z""#)),
            r#"signed: member "Expires" is a case variant of "expires" (Go reads both into one field)"#
        );
        let err =
            crate::update::parse_upload_part("targets", targets(r#","Version":1"#).into_bytes()).unwrap_err();
        assert_eq!(
            err,
            crate::UpdateError::MalformedJson(
                r#"signed: member "Version" is a case variant of "version" (Go reads both into one field)"#
                    .into()
            )
        );
        // serde_json keeps the last of exact duplicates silently.
        assert_eq!(
            refused(&targets(r#","version":1"#)),
            r#"signed: duplicate member "version""#
        );
        // Go's folding also matches the Kelvin sign and the long s.
        assert_eq!(
            refused(&format!(
                r#"{{"signed":{{"_type":"Root",{EXP},"version":1,"\u212aeys":{{}}}},"signatures":[]}}"#
            )),
            "signed: member \"\u{212a}eys\" is a case variant of \"keys\" (Go reads both into one field)"
        );
        assert_eq!(
            refused(&format!(
                r#"{{"signed":{{"_type":"Targets",{EXP},"version":1}},"ſignatures":[]}}"#
            )),
            r#"envelope: member "ſignatures" is a case variant of "signatures" (Go reads both into one field)"#
        );
        // A known member present only as a case variant.
        assert_eq!(
            refused(&format!(
                r#"{{"Signed":{{"_type":"Targets",{EXP},"version":1}},"signatures":[]}}"#
            )),
            r#"envelope: member "Signed" is a case variant of "signed" (Go reads both into one field)"#
        );
        assert_eq!(
            refused(&format!(
                r#"{{"signed":{{"_TYPE":"Targets",{EXP},"version":1}},"signatures":[]}}"#
            )),
            r#"signed: member "_TYPE" is a case variant of "_type" (Go reads both into one field)"#
        );
        // Two unknown members equal ignoring case: Go ignores both, refused anyway.
        assert_eq!(
            refused(&targets(r#","foo":1,"Foo":2"#)),
            r#"signed: members "foo" and "Foo" differ only in case"#
        );
        // Unknown members stay accepted, as in Go.
        accepted(&targets(r#","foo":1"#));
        accepted(&targets(r#","keys":{"a":1,"A":2}"#));
    }

    #[test]
    fn nested_struct_members_matched_like_go() {
        let sig = r#"{"keyid":"ab","method":"eddsa","sig":"AA=="}"#;
        let env = |signed: &str, sigs: &str| format!(r#"{{"signed":{signed},"signatures":[{sigs}]}}"#);
        let root = |keys: &str, roles: &str| {
            env(
                &format!(r#"{{"_type":"Root",{EXP},"keys":{keys},"roles":{roles},"version":1}}"#),
                sig,
            )
        };
        let targets = |body: &str| env(&format!(r#"{{"_type":"Targets",{EXP},{body},"version":1}}"#), sig);
        let meta = |body: &str| {
            env(
                &format!(r#"{{"_type":"Snapshot",{EXP},{body},"version":1}}"#),
                sig,
            )
        };
        let variant = |path: &str, name: &str, field: &str| {
            format!(
                r#"{path}: member "{name}" is a case variant of "{field}" (Go reads both into one field)"#
            )
        };
        let cases = [
            (
                env(
                    &format!(r#"{{"_type":"Targets",{EXP},"version":1}}"#),
                    r#"{"keyid":"ab","KeyID":"cd","method":"eddsa","sig":"AA=="}"#,
                ),
                variant("signatures[0]", "KeyID", "keyid"),
            ),
            (
                root(
                    r#"{"k1":{"keytype":"ed25519","keyval":{"public":"AA==","Public":"AQ=="}}}"#,
                    "{}",
                ),
                variant(r#"signed.keys["k1"].keyval"#, "Public", "public"),
            ),
            (
                root(
                    r#"{"k1":{"keytype":"ed25519","Keytype":"rsa","keyval":{"public":"AA=="}}}"#,
                    "{}",
                ),
                variant(r#"signed.keys["k1"]"#, "Keytype", "keytype"),
            ),
            (
                root("{}", r#"{"targets":{"keyids":[],"threshold":1,"Threshold":9}}"#),
                variant(r#"signed.roles["targets"]"#, "Threshold", "threshold"),
            ),
            (
                targets(
                    r#""delegations":{"keys":{},"roles":[{"keyids":[],"name":"targets/a","NAME":"targets/b","threshold":1}]}"#,
                ),
                variant("signed.delegations.roles[0]", "NAME", "name"),
            ),
            (
                targets(r#""delegations":{"keys":{},"Roles":[],"roles":[]}"#),
                variant("signed.delegations", "Roles", "roles"),
            ),
            (
                targets(r#""targets":{"v1":{"hashes":{},"length":1,"Length":2}}"#),
                variant(r#"signed.targets["v1"]"#, "Length", "length"),
            ),
            (
                meta(r#""meta":{"root":{"Hashes":{},"length":1}}"#),
                variant(r#"signed.meta["root"]"#, "Hashes", "hashes"),
            ),
            (
                targets(r#""targets":{"v1":{"length":1},"v1":{"length":2}}"#),
                r#"signed.targets: duplicate key "v1""#.to_string(),
            ),
        ];
        for (doc, want) in cases {
            assert_eq!(refused(&doc), want, "{doc}");
        }
        // Maps are matched exactly by Go: case variants are distinct entries.
        accepted(&targets(r#""targets":{"v1":{"length":1},"V1":{"length":2}}"#));
        accepted(&meta(
            r#""meta":{"root":{"length":1,"hashes":{"sha256":"AA==","SHA256":"AQ=="}},"Root":{"length":1}}"#,
        ));
        accepted(&root(
            r#"{"k1":{"keytype":"ed25519","keyval":{"public":"AA=="}},"K1":{"keytype":"ed25519","keyval":{"public":"AA=="}}}"#,
            r#"{"targets":{"keyids":[],"threshold":1},"Targets":{"keyids":[],"threshold":1}}"#,
        ));
        // `custom` is kept raw by Go (json.RawMessage): not inspected.
        accepted(&targets(
            r#""targets":{"v1":{"custom":{"a":1,"A":2},"length":1}}"#,
        ));
    }

    #[test]
    fn escaped_expires_refused_like_go() {
        // Go's time.Time.UnmarshalJSON parses the raw string without decoding
        // JSON escapes; serde_json decodes them.
        assert_eq!(
            refused(
                r#"{"signed":{"_type":"Targets","expires":"2030-01-01T00:00:00\u005a","version":1},"signatures":[]}"#
            ),
            "signed.expires: a JSON escape in a time is refused (Go parses the raw text)"
        );
    }

    #[test]
    fn go_time_formats() {
        let t = DateTime::parse_from_rfc3339("2026-11-22T16:40:53.123400Z").unwrap();
        assert_eq!(format_go_time(t.with_timezone(&Utc)), "2026-11-22T16:40:53.1234Z");
        assert_eq!(format_go_expiry(&t), "Sun Nov 22 16:40:53 UTC 2026");
        let t = DateTime::parse_from_rfc3339("2026-11-02T01:00:00+01:00").unwrap();
        assert_eq!(format_go_expiry(&t), "Mon Nov 2 01:00:00 +0100 2026");
    }
}
