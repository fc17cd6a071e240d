//! A small blocking W3C WebDriver client for the web portal tests: Debian's `chromedriver`
//! (package `chromium-driver`) driving headless `chromium`, both installed by
//! `scripts/install-deps.sh`.
//!
//! It speaks the plain JSON wire protocol with the blocking `reqwest` client the other tests
//! already use, instead of pulling in a WebDriver crate and its async stack.
//!
//! Every method panics on failure (like the rest of the test harness), with the WebDriver
//! error JSON in the message, and is `#[track_caller]` so the panic points at the test line.
//! [`Browser::command`] is the non-panicking escape hatch for anything not wrapped here.
//! When a test panics while a [`Browser`] is alive, its `Drop` saves a screenshot of the page
//! under `failures/` in [`screenshot_dir`] before closing the browser.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

/// How long [`Browser::find`] and [`Element::find`] keep polling for a selector to match:
/// long enough for a page load or form round trip to the local server, short enough that a
/// wrong selector fails the test quickly.
pub const FIND_TIMEOUT: Duration = Duration::from_secs(5);

/// The WebDriver key code for Enter, for [`Element::send_keys`] (e.g. submitting a form).
pub const ENTER: &str = "\u{e007}";

/// The W3C name of the JSON property that identifies an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Fail (not skip) when chromium or chromedriver is missing: CI installs both with
/// `scripts/install-deps.sh`, so a missing browser is a broken environment, and a skipped
/// portal test would look like a passing one.
pub fn require_browser() {
    super::require_tool("chromium");
    super::require_tool("chromedriver");
}

/// `target/portal-screenshots/` of the target directory the tests were built into.
///
/// Cargo gives integration tests `CARGO_TARGET_TMPDIR` (`<target dir>/tmp`) at compile time,
/// which already accounts for `CARGO_TARGET_DIR`, so its parent is the target directory even
/// when the test binary is run by hand, without cargo's environment.
pub fn screenshot_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("portal-screenshots")
}

/// A failed WebDriver command: what was sent and what chromedriver answered.
#[derive(Debug)]
pub struct WebDriverError {
    /// `METHOD /path` of the command (relative to the session).
    pub command: String,
    /// HTTP status, 0 when chromedriver could not be reached at all.
    pub status: u16,
    /// The W3C error code (`no such element`, `no such alert`, ...), or a transport error.
    pub error: String,
    /// The response body, without the native stack trace chromedriver appends (a column of
    /// `<unknown>` frames that only hides the message).
    pub json: Value,
}

impl std::fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WebDriver {} failed (HTTP {}): {}: {}",
            self.command, self.status, self.error, self.json
        )
    }
}

impl std::error::Error for WebDriverError {}

#[track_caller]
fn ok<T>(r: Result<T, WebDriverError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

/// One chromedriver process with one headless chromium session.
pub struct Browser {
    http: reqwest::blocking::Client,
    /// `http://127.0.0.1:PORT` of chromedriver.
    driver_url: String,
    /// `http://127.0.0.1:PORT/session/ID`.
    session: Option<String>,
    driver: Option<Child>,
    /// Holds chromedriver's log and chromium's throwaway profile.
    dir: tempfile::TempDir,
}

impl Browser {
    /// Start chromedriver on a free port and open a headless chromium session.
    #[track_caller]
    pub fn start() -> Self {
        require_browser();
        let chromium = command_path("chromium");
        let dir = tempfile::tempdir().expect("tempdir");
        let log = std::fs::File::create(dir.path().join("chromedriver.log")).expect("log file");
        let port = super::free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            // Its own process group, so Drop can kill chromedriver together with the chromium
            // processes it started, even when the session could not be closed cleanly.
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::blocking::Client::builder()
            // A proxy from the environment must not see the local chromedriver traffic.
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        let mut b = Browser {
            http,
            driver_url: format!("http://127.0.0.1:{port}"),
            session: None,
            driver: Some(driver),
            dir,
        };
        b.wait_ready();
        let profile = b.dir.path().join("profile");
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    // `wharf serve` uses a certificate from the test's own CA.
                    "acceptInsecureCerts": true,
                    // Fail fast instead of chromedriver's 300 s page load default.
                    "timeouts": { "implicit": 0, "pageLoad": 30_000, "script": 10_000 },
                    "goog:chromeOptions": {
                        // The Debian wrapper script, which sets up chromium's environment.
                        "binary": chromium,
                        "args": [
                            "--headless=new",
                            // Chromium refuses to start as root with its sandbox on (CI and
                            // the dev containers run tests as root).
                            "--no-sandbox",
                            "--disable-gpu",
                            // Containers have a small /dev/shm; chromium crashes when it is full.
                            "--disable-dev-shm-usage",
                            "--window-size=1280,900",
                            format!("--user-data-dir={}", profile.display()),
                        ],
                    },
                },
            },
        });
        let v = b.post_driver("/session", caps);
        let id = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in new session response: {v}"));
        b.session = Some(format!("{}/session/{id}", b.driver_url));
        b
    }

    #[track_caller]
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.driver.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!(
                    "chromedriver exited ({status}) at start; log:\n{}",
                    self.driver_log()
                );
            }
            let ready = self
                .http
                .get(format!("{}/status", self.driver_url))
                .timeout(Duration::from_secs(2))
                .send()
                .ok()
                .and_then(|r| r.json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                return;
            }
            if Instant::now() > deadline {
                panic!("chromedriver not ready after 20 s; log:\n{}", self.driver_log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// POST to chromedriver outside a session (creating one); panics with its log.
    #[track_caller]
    fn post_driver(&self, path: &str, body: Value) -> Value {
        match send(&self.http, Method::POST, &self.driver_url, path, Some(body)) {
            Ok(v) => v,
            Err(e) => panic!("{e}\nchromedriver log:\n{}", self.driver_log()),
        }
    }

    fn driver_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default()
    }

    /// Any session command, e.g. `command(Method::GET, "/cookie", None)`; `path` is relative
    /// to `/session/ID`. Returns the response's `value`.
    pub fn command(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value, WebDriverError> {
        let session = self.session.as_deref().expect("session is open");
        send(&self.http, method, session, path, body)
    }

    fn get(&self, path: &str) -> Result<Value, WebDriverError> {
        self.command(Method::GET, path, None)
    }

    fn post(&self, path: &str, body: Value) -> Result<Value, WebDriverError> {
        self.command(Method::POST, path, Some(body))
    }

    /// Navigate and wait for the page load (WebDriver's default `normal` strategy).
    #[track_caller]
    pub fn goto(&self, url: &str) {
        ok(self.post("/url", json!({ "url": url })));
    }

    #[track_caller]
    pub fn back(&self) {
        ok(self.post("/back", json!({})));
    }

    #[track_caller]
    pub fn refresh(&self) {
        ok(self.post("/refresh", json!({})));
    }

    #[track_caller]
    pub fn current_url(&self) -> String {
        string(ok(self.get("/url")))
    }

    #[track_caller]
    pub fn title(&self) -> String {
        string(ok(self.get("/title")))
    }

    #[track_caller]
    pub fn page_source(&self) -> String {
        string(ok(self.get("/source")))
    }

    /// The first element matching `css`, polling up to [`FIND_TIMEOUT`] so a test does not
    /// race the page load that a click or submit started.
    #[track_caller]
    pub fn find(&self, css: &str) -> Element<'_> {
        self.find_from("", css)
    }

    /// Every element matching `css` right now, without waiting: an empty result is a valid
    /// answer (asserting that something is absent). After a navigation, `find` something on
    /// the new page first.
    #[track_caller]
    pub fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        self.find_all_from("", css)
    }

    #[track_caller]
    fn find_from(&self, root: &str, css: &str) -> Element<'_> {
        let deadline = Instant::now() + FIND_TIMEOUT;
        loop {
            match self.post(
                &format!("{root}/element"),
                json!({ "using": "css selector", "value": css }),
            ) {
                Ok(v) => return self.element(&v, css),
                Err(e) if e.error == "no such element" && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) if e.error == "no such element" => panic!(
                    "no element matches `{css}` after {FIND_TIMEOUT:?} on {}: {e}",
                    self.get("/url").map(string).unwrap_or_default()
                ),
                Err(e) => panic!("find `{css}`: {e}"),
            }
        }
    }

    #[track_caller]
    fn find_all_from(&self, root: &str, css: &str) -> Vec<Element<'_>> {
        let v = ok(self.post(
            &format!("{root}/elements"),
            json!({ "using": "css selector", "value": css }),
        ));
        let Value::Array(items) = v else {
            panic!("find elements `{css}`: not an array: {v}")
        };
        items.iter().map(|v| self.element(v, css)).collect()
    }

    #[track_caller]
    fn element(&self, v: &Value, css: &str) -> Element<'_> {
        let id = v[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("find `{css}`: no element reference in {v}"));
        Element {
            browser: self,
            id: id.to_owned(),
            css: css.to_owned(),
        }
    }

    /// Run `script` as a function body (`return ...` to get a value); `args` are its
    /// `arguments` ([`Element::as_arg`] passes an element).
    #[track_caller]
    pub fn execute(&self, script: &str, args: &[Value]) -> Value {
        ok(self.post("/execute/sync", json!({ "script": script, "args": args })))
    }

    /// Resize the window, e.g. to phone width. The viewport (`window.innerWidth`, and the
    /// screenshot) gets exactly `width`; headless chromium still reserves some height for
    /// browser UI it does not draw (900 px gives a 757 px tall viewport with chromium 156).
    #[track_caller]
    pub fn set_window_size(&self, width: u32, height: u32) {
        ok(self.post("/window/rect", json!({ "width": width, "height": height })));
    }

    /// Save a PNG of the viewport. A relative `path` is taken under [`screenshot_dir`];
    /// missing parent directories are created. Returns the file written.
    #[track_caller]
    pub fn screenshot(&self, path: impl AsRef<Path>) -> PathBuf {
        let path = screenshot_dir().join(path); // join keeps an absolute `path` as it is
        let png = ok(self.screenshot_png());
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
        }
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    fn screenshot_png(&self) -> Result<Vec<u8>, WebDriverError> {
        let v = self.get("/screenshot")?;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .map_err(|e| WebDriverError {
                command: "GET /screenshot".into(),
                status: 200,
                error: format!("screenshot is not base64: {e}"),
                json: Value::Null,
            })
    }

    /// The text of the open `alert`/`confirm`/`prompt` dialog.
    #[track_caller]
    pub fn alert_text(&self) -> String {
        string(ok(self.get("/alert/text")))
    }

    /// Press OK in the open dialog (confirming a `confirm()`).
    #[track_caller]
    pub fn accept_alert(&self) {
        ok(self.post("/alert/accept", json!({})));
    }

    /// Press Cancel in the open dialog.
    #[track_caller]
    pub fn dismiss_alert(&self) {
        ok(self.post("/alert/dismiss", json!({})));
    }

    /// Best effort, for a test that has already panicked: never panics itself.
    fn save_failure_screenshot(&self) {
        let name = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .replace("::", "-")
            .replace(
                |c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'),
                "_",
            );
        let dir = screenshot_dir().join("failures");
        let path = dir.join(format!("{name}.png"));
        let url = self.get("/url").map(string).unwrap_or_default();
        let saved = self.screenshot_png().map_err(|e| e.to_string()).and_then(|png| {
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            std::fs::write(&path, png).map_err(|e| e.to_string())
        });
        match saved {
            Ok(()) => eprintln!("browser: screenshot of {url} at failure: {}", path.display()),
            Err(e) => eprintln!("browser: no failure screenshot: {e}"),
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if self.session.is_some() {
            if std::thread::panicking() {
                self.save_failure_screenshot();
            }
            // Closing the session lets chromedriver shut chromium down cleanly; errors are
            // ignored because the process group is killed next anyway.
            let _ = self.command(Method::DELETE, "", None);
        }
        if let Some(mut child) = self.driver.take() {
            // SAFETY: kill(2) with the negated id of the process group `start` created for
            // chromedriver: only chromedriver and the chromium processes it started.
            unsafe {
                libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
            }
            let _ = child.wait();
        }
    }
}

/// One element found on the current page; it goes stale when the page changes.
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
    /// The selector it was found with, for error messages.
    css: String,
}

impl Element<'_> {
    fn path(&self, tail: &str) -> String {
        format!("/element/{}{tail}", self.id)
    }

    #[track_caller]
    fn expect<T>(&self, r: Result<T, WebDriverError>) -> T {
        match r {
            Ok(v) => v,
            Err(e) => panic!("element `{}`: {e}", self.css),
        }
    }

    /// Click it; when that submits a form or follows a link, chromedriver waits for the new
    /// page to load before returning.
    #[track_caller]
    pub fn click(&self) {
        self.expect(self.browser.post(&self.path("/click"), json!({})));
    }

    /// Type `text` into it (appending to what is there; [`ENTER`] presses Enter).
    #[track_caller]
    pub fn send_keys(&self, text: &str) {
        self.expect(self.browser.post(&self.path("/value"), json!({ "text": text })));
    }

    #[track_caller]
    pub fn clear(&self) {
        self.expect(self.browser.post(&self.path("/clear"), json!({})));
    }

    /// Its rendered text (what a user sees, whitespace collapsed).
    #[track_caller]
    pub fn text(&self) -> String {
        string(self.expect(self.browser.get(&self.path("/text"))))
    }

    /// An HTML attribute as written in the page, `None` when absent. For the live state of an
    /// input (what was typed, whether it is checked), use [`Element::prop`].
    #[track_caller]
    pub fn attr(&self, name: &str) -> Option<String> {
        match self.expect(self.browser.get(&self.path(&format!("/attribute/{name}")))) {
            Value::Null => None,
            Value::String(s) => Some(s),
            v => Some(v.to_string()),
        }
    }

    /// A DOM property, e.g. `value` or `checked`.
    #[track_caller]
    pub fn prop(&self, name: &str) -> Value {
        self.expect(self.browser.get(&self.path(&format!("/property/{name}"))))
    }

    #[track_caller]
    pub fn is_displayed(&self) -> bool {
        self.expect(self.browser.get(&self.path("/displayed"))) == true
    }

    /// The first descendant matching `css`, polling like [`Browser::find`].
    #[track_caller]
    pub fn find(&self, css: &str) -> Element<'_> {
        self.browser.find_from(&self.path(""), css)
    }

    /// Every descendant matching `css` right now.
    #[track_caller]
    pub fn find_all(&self, css: &str) -> Vec<Element<'_>> {
        self.browser.find_all_from(&self.path(""), css)
    }

    /// This element as an argument for [`Browser::execute`].
    pub fn as_arg(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }
}

fn string(v: Value) -> String {
    match v {
        Value::String(s) => s,
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

/// Where `name` resolves in PATH (`command -v`), so chromium is the one the tests required.
fn command_path(name: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .expect("sh");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// One WebDriver request; `value` on success, the error JSON otherwise.
fn send(
    http: &reqwest::blocking::Client,
    method: Method,
    base: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value, WebDriverError> {
    let command = format!("{method} {path}");
    let mut req = http.request(method, format!("{base}{path}"));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let transport = |e: reqwest::Error| WebDriverError {
        command: command.clone(),
        status: 0,
        error: format!("cannot reach chromedriver: {e}"),
        json: Value::Null,
    };
    let resp = req.send().map_err(transport)?;
    let status = resp.status();
    let text = resp.text().map_err(transport)?;
    let mut v: Value = serde_json::from_str(&text).map_err(|_| WebDriverError {
        command: command.clone(),
        status: status.as_u16(),
        error: "response is not JSON".into(),
        json: Value::String(text.clone()),
    })?;
    if status.is_success() {
        return Ok(v["value"].take());
    }
    if let Some(obj) = v["value"].as_object_mut() {
        obj.remove("stacktrace");
    }
    Err(WebDriverError {
        command,
        status: status.as_u16(),
        error: v["value"]["error"].as_str().unwrap_or("unknown error").to_owned(),
        json: v,
    })
}
