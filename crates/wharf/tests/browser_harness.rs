//! Self-test of the browser harness (tests/common/browser.rs) that the web portal tests use:
//! headless chromium through chromedriver against a tiny local HTTP server with one form,
//! so a harness problem shows up here rather than as a confusing portal test failure.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;

use common::browser::{Browser, ENTER, screenshot_dir};

const FORM_PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Harness form</title>
<style>body { font-family: sans-serif; background: #e8f0ff; } h1 { color: #0a3d91; }</style>
</head><body>
<h1>Wharf harness</h1>
<form method="post" action="/greet">
  <label>Name <input id="name" name="name" value="placeholder"></label>
  <button id="go" type="submit">Greet</button>
</form>
<button id="delete" onclick="document.getElementById('answer').textContent = confirm('Delete it?') ? 'yes' : 'no'">Delete</button>
<p id="answer"></p>
</body></html>"#;

/// Serve the form page on a free port from a background thread (it lives as long as the
/// test process); `POST /greet` answers with the submitted name. Returns the base URL.
fn serve() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            // A thread per connection: chromium opens speculative connections that may never
            // send a request, and they must not block the next one.
            std::thread::spawn(move || handle(conn));
        }
    });
    base
}

fn handle(mut conn: TcpStream) {
    let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(10)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let header_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().to_owned())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < header_end + length {
        match conn.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let body = String::from_utf8_lossy(&buf[header_end..header_end + length]).into_owned();
    let request_line = head.lines().next().unwrap_or_default();
    let (status, page) = if request_line.starts_with("GET / ") {
        ("200 OK", FORM_PAGE.to_owned())
    } else if request_line.starts_with("POST /greet ") {
        let name = body
            .split('&')
            .find_map(|kv| kv.strip_prefix("name="))
            .map(form_decode)
            .unwrap_or_default();
        let name = name.replace('&', "&amp;").replace('<', "&lt;");
        let page = format!(
            "<!doctype html><html><head><title>Greeting</title></head>\
             <body><p id=\"greeting\">Hello, {name}!</p></body></html>"
        );
        ("200 OK", page)
    } else {
        ("404 Not Found", "not found".to_owned())
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{page}",
        page.len()
    );
}

/// `application/x-www-form-urlencoded` value decoding (`+` and `%XX`).
fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The width in the IHDR chunk of a PNG (bytes 16..20, big-endian).
fn png_width(png: &[u8]) -> u32 {
    u32::from_be_bytes(png[16..20].try_into().expect("IHDR width"))
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

#[test]
fn form_round_trip_screenshot_and_phone_width() {
    let base = serve();
    let b = Browser::start();
    b.goto(&format!("{base}/"));
    assert_eq!(b.title(), "Harness form");

    let input = b.find("#name");
    assert_eq!(input.attr("value").as_deref(), Some("placeholder"));
    assert_eq!(input.attr("data-missing"), None);
    input.clear();
    input.send_keys("Ada Lovelace & co");
    assert_eq!(input.prop("value"), "Ada Lovelace & co");
    b.find("#go").click();

    assert_eq!(b.find("#greeting").text(), "Hello, Ada Lovelace & co!");
    assert_eq!(b.current_url(), format!("{base}/greet"));
    assert_eq!(b.title(), "Greeting");
    assert!(b.page_source().contains("Hello, Ada Lovelace &amp; co!"));

    b.goto(&format!("{base}/"));
    b.find("h1");
    let shot = b.screenshot("harness/form-desktop.png");
    assert!(shot.starts_with(screenshot_dir()), "{}", shot.display());
    let png = std::fs::read(&shot).expect("read screenshot");
    assert!(png.starts_with(PNG_SIGNATURE), "not a PNG: {}", shot.display());
    assert!(png.len() > 1024, "suspiciously small PNG: {} bytes", png.len());
    assert_eq!(png_width(&png), 1280);

    // Phone width: the viewport itself must shrink, not just the window.
    b.set_window_size(390, 844);
    assert_eq!(b.execute("return window.innerWidth", &[]), 390);
    let png = std::fs::read(b.screenshot("harness/form-phone.png")).expect("read screenshot");
    assert!(png.starts_with(PNG_SIGNATURE));
    assert_eq!(png_width(&png), 390);
}

#[test]
fn enter_key_dialogs_find_all_and_error_messages() {
    let base = serve();
    let b = Browser::start();
    b.goto(&format!("{base}/"));

    let form = b.find("form");
    assert_eq!(form.find_all("input").len(), 1);
    assert!(b.find_all(".absent").is_empty());
    assert!(form.find("#go").is_displayed());
    let name = form.find("#name");
    name.clear();
    name.send_keys(&format!("Grace{ENTER}"));
    assert_eq!(b.find("#greeting").text(), "Hello, Grace!");

    b.back();
    b.find("#delete").click();
    assert_eq!(b.alert_text(), "Delete it?");
    b.dismiss_alert();
    assert_eq!(b.find("#answer").text(), "no");
    b.find("#delete").click();
    b.accept_alert();
    assert_eq!(b.find("#answer").text(), "yes");

    // Failures name the command and carry chromedriver's error JSON.
    let err = std::panic::catch_unwind(AssertUnwindSafe(|| b.accept_alert())).expect_err("no alert is open");
    let msg = err.downcast_ref::<String>().expect("panic message");
    assert!(
        msg.contains("POST /alert/accept") && msg.contains("no such alert"),
        "{msg}"
    );
    assert!(msg.contains(r#""error":"no such alert""#), "{msg}");
}
