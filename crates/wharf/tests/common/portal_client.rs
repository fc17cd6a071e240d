//! A browser-less client of the web portal over HTTPS, for tests that read pages and
//! post forms without Chromium.

use super::Server;

/// A browser-less client of the portal: follows no redirects, keeps cookies by hand.
pub struct PortalClient {
    pub http: reqwest::blocking::Client,
    pub base: String,
    pub cookies: std::collections::BTreeMap<String, String>,
}

impl PortalClient {
    pub fn new(server: &Server) -> Self {
        let pem = std::fs::read(&server.ca).expect("ca");
        let http = reqwest::blocking::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("pem"))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            http,
            base: server.url(""),
            cookies: Default::default(),
        }
    }

    pub fn keep_cookies(&mut self, r: &reqwest::blocking::Response) {
        for v in r.headers().get_all("set-cookie") {
            let v = v.to_str().unwrap_or_default();
            if let Some((k, rest)) = v.split(';').next().and_then(|kv| kv.split_once('=')) {
                self.cookies.insert(k.to_owned(), rest.to_owned());
            }
        }
    }

    pub fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub fn get(&mut self, path: &str) -> (u16, String) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .expect("get");
        self.keep_cookies(&r);
        (r.status().as_u16(), r.text().unwrap_or_default())
    }

    pub fn post(&mut self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(form))
            .send()
            .expect("post");
        self.keep_cookies(&r);
        (r.status().as_u16(), r.text().unwrap_or_default())
    }

    /// Sign in through the form as a browser does (double-submit CSRF cookie); the
    /// status of the post (303 on success).
    pub fn sign_in(&mut self, user: &str, password: &str) -> u16 {
        let (_, page) = self.get("/portal/sign-in");
        let csrf = csrf_of(&page);
        self.post(
            "/portal/sign-in",
            &[("csrf", &csrf), ("name", user), ("password", password)],
        )
        .0
    }
}

/// `application/x-www-form-urlencoded`, as a browser encodes a form.
pub fn form_body(fields: &[(&str, &str)]) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => {
                    (b as char).to_string()
                }
                b' ' => "+".to_string(),
                b => format!("%{b:02X}"),
            })
            .collect()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The value of the first `name="csrf"` hidden field in a page.
pub fn csrf_of(page: &str) -> String {
    let at = page.find(r#"name="csrf" value=""#).expect("csrf field") + r#"name="csrf" value=""#.len();
    page[at..].split('"').next().unwrap_or_default().to_owned()
}
