//! HTML building blocks: escaping, the page shell with navigation, forms and tables.
//! Every value from a user or the database goes through `esc` (or `attr`) on its way in.

use std::fmt::Write as _;

/// Escape text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encode a query or path value (everything but unreserved characters; `/` is
/// kept when `keep_slash`, for repository names in paths).
pub fn url_part(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Which top-level section a page belongs to (highlighted in the navigation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Repositories,
    Policies,
    Access,
    Storage,
    Audit,
    Account,
    SignIn,
}

/// The signed-in user as the page shell shows them.
pub struct Viewer<'a> {
    pub name: &'a str,
    pub csrf: &'a str,
    /// Owners see the administration sections.
    pub admin: bool,
}

/// A notice at the top of the page: the outcome of the last action.
pub enum Notice {
    Success(String),
    Error(String),
}

pub fn notice_html(notice: &Option<Notice>) -> String {
    match notice {
        None => String::new(),
        Some(Notice::Success(m)) => format!(r#"<p class="notice ok" role="status">{}</p>"#, esc(m)),
        Some(Notice::Error(m)) => format!(r#"<p class="notice error" role="alert">{}</p>"#, esc(m)),
    }
}

/// The whole document around a page body.
pub fn page(
    title: &str,
    section: Section,
    viewer: Option<&Viewer>,
    notice: &Option<Notice>,
    body: &str,
) -> String {
    let mut nav = String::new();
    if let Some(v) = viewer {
        let mut links = vec![(Section::Repositories, "/portal/repositories", "Repositories")];
        if v.admin {
            links.push((Section::Policies, "/portal/policies/content-trust", "Policies"));
            links.push((Section::Access, "/portal/access", "Access control"));
            links.push((Section::Storage, "/portal/storage/gc", "Storage"));
            links.push((Section::Audit, "/portal/audit", "Audit"));
        }
        links.push((Section::Account, "/portal/account", "Account"));
        nav.push_str(r#"<nav aria-label="Main"><ul>"#);
        for (s, href, label) in links {
            let current = if s == section {
                r#" aria-current="page""#
            } else {
                ""
            };
            let _ = write!(nav, r#"<li><a href="{href}"{current}>{label}</a></li>"#);
        }
        nav.push_str("</ul></nav>");
        let _ = write!(
            nav,
            r#"<form class="signout" method="post" action="/portal/sign-out">{}<span class="who">{}</span> <button type="submit">Sign out</button></form>"#,
            csrf_field(v.csrf),
            esc(v.name)
        );
    }
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Wharf</title>
<link rel="stylesheet" href="/portal/static/wharf.css">
</head>
<body>
<header class="top"><a class="brand" href="/portal/">Wharf</a>{nav}</header>
<main id="main">
<h1>{title}</h1>
{notice}
{body}
</main>
</body>
</html>
"#,
        title = esc(title),
        notice = notice_html(notice),
    )
}

pub fn csrf_field(csrf: &str) -> String {
    format!(r#"<input type="hidden" name="csrf" value="{}">"#, esc(csrf))
}

/// A labelled input. `kind` is the input type; values are escaped.
pub fn input(id: &str, label: &str, kind: &str, value: &str, hint: &str) -> String {
    let described = if hint.is_empty() {
        String::new()
    } else {
        format!(r#" aria-describedby="{id}-hint""#)
    };
    let hint_html = if hint.is_empty() {
        String::new()
    } else {
        format!(r#"<small id="{id}-hint">{}</small>"#, esc(hint))
    };
    format!(
        r#"<p class="field"><label for="{id}">{label}</label><input id="{id}" name="{name}" type="{kind}" value="{value}"{described}>{hint_html}</p>"#,
        label = esc(label),
        name = field_name(id),
        value = esc(value),
    )
}

/// Form field names are the element ids without the form prefix (`assign-role` → `role`).
fn field_name(id: &str) -> &str {
    id.split_once('-').map_or(id, |(_, n)| n)
}

/// A labelled `<select>` of `(value, text)` options.
pub fn select(id: &str, label: &str, options: &[(String, String)], selected: &str) -> String {
    let mut opts = String::new();
    for (v, t) in options {
        let sel = if v == selected { " selected" } else { "" };
        let _ = write!(opts, r#"<option value="{}"{sel}>{}</option>"#, esc(v), esc(t));
    }
    format!(
        r#"<p class="field"><label for="{id}">{}</label><select id="{id}" name="{}">{opts}</select></p>"#,
        esc(label),
        field_name(id)
    )
}

/// A POST form with the CSRF field; `inner` is already HTML.
pub fn form(action: &str, csrf: &str, class: &str, inner: &str) -> String {
    format!(
        r#"<form method="post" action="{}" class="{class}">{}{inner}</form>"#,
        esc(action),
        csrf_field(csrf)
    )
}

/// A one-button form posting hidden fields (row actions such as Remove).
pub fn button_form(action: &str, csrf: &str, hidden: &[(&str, &str)], label: &str, danger: bool) -> String {
    let mut inner = String::new();
    for (k, v) in hidden {
        let _ = write!(inner, r#"<input type="hidden" name="{k}" value="{}">"#, esc(v));
    }
    let class = if danger { "danger" } else { "" };
    let _ = write!(
        inner,
        r#"<button type="submit" class="{class}">{}</button>"#,
        esc(label)
    );
    form(action, csrf, "inline", &inner)
}

/// A table whose cells are already HTML. On a phone each row becomes a stacked card
/// (see wharf.css); the wrapper scrolls sideways if something is still too wide.
pub fn table(caption: &str, headers: &[&str], rows: &[(String, Vec<String>)], empty: &str) -> String {
    if rows.is_empty() {
        return format!(r#"<p class="empty">{}</p>"#, esc(empty));
    }
    let mut out = format!(
        r#"<div class="scroll"><table><caption>{}</caption><thead><tr>"#,
        esc(caption)
    );
    for h in headers {
        let _ = write!(out, r#"<th scope="col">{}</th>"#, esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    for (row_attrs, cells) in rows {
        let _ = write!(out, "<tr{row_attrs}>");
        // `data-label` lets the phone layout show each cell under its column name.
        for (c, h) in cells.iter().zip(headers.iter().chain(std::iter::repeat(&""))) {
            let _ = write!(out, r#"<td data-label="{}">{c}</td>"#, esc(h));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

/// `2026-11-24 22:14 UTC` from unix seconds.
pub fn time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| unix.to_string())
}

/// Human size with the exact byte count in a tooltip.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!(r#"<span title="{bytes} bytes">{v:.1} {}</span>"#, UNITS[unit])
}

/// The first 12 hex characters of a key ID (as docker shows them), the full ID on hover.
pub fn short_id(id: &str) -> String {
    let short: String = id.chars().take(12).collect();
    format!(r#"<code title="{}">{}</code>"#, esc(id), esc(&short))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn url_parts() {
        assert_eq!(url_part("team/app one&x", true), "team/app%20one%26x");
        assert_eq!(url_part("team/app", false), "team%2Fapp");
    }

    #[test]
    fn sizes() {
        assert_eq!(size(10), "10 B");
        assert!(size(1536).contains("1.5 KiB"));
        assert!(size(3 * 1024 * 1024).contains("3.0 MiB"));
    }

    #[test]
    fn hostile_values_stay_text_in_fields_and_tables() {
        let f = input("user-name", "Name", "text", r#""><script>x</script>"#, "");
        assert!(!f.contains("<script>"));
        let t = table("c", &["a"], &[(String::new(), vec![esc("<b>")])], "none");
        assert!(t.contains("&lt;b&gt;") && !t.contains("<b>"));
    }
}
