//! Parallel login bursts against a real server cost no more password checks than a
//! sequential client gets before the lockout, and memory stays bounded.

mod common;

use common::Server;

fn password_checks(server: &Server) -> u64 {
    common::metric(server, "wharf_password_checks_total")
}

/// Peak resident memory of the server process, in MiB.
fn peak_rss_mib(server: &Server) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM")
        / 1024
}

/// Token requests from `threads` threads at once; the statuses they got.
fn burst(server: &Server, threads: usize, user: impl Fn(usize) -> String + Sync) -> Vec<u16> {
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let name = user(i);
                s.spawn(move || {
                    server
                        .http()
                        .get(server.url("/token?service=wharf"))
                        .basic_auth(name, Some("wrong-password"))
                        .send()
                        .map(|r| r.status().as_u16())
                        .unwrap_or(0)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    })
}

#[test]
fn parallel_login_bursts_cannot_race_the_lockout_or_grow_memory() {
    // What a sequential client gets before the lockout: the free failures, then the one
    // that locks. A lockout starts at 2 s, so a request of the burst that arrives after
    // it expired gets one more check (and a longer lockout): allow two such.
    let server = Server::start();
    let before = password_checks(&server);
    // 60 parallel wrong passwords for one user (5 free failures). Before the fix: 57.
    let statuses = burst(&server, 60, |_| "admin".to_owned());
    let checks = password_checks(&server) - before;
    assert!(
        (6..=8).contains(&checks),
        "{checks} password checks for 60 parallel attempts"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count() as u64,
        checks,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count() as u64,
        60 - checks,
        "{statuses:?}"
    );

    // 200 parallel attempts for unknown names from one address: the address lockout
    // (20 free failures) stops them, and Argon2 runs at most once per core at a time.
    let other = Server::start();
    let before = password_checks(&other);
    let statuses = burst(&other, 200, |i| format!("nobody{i}"));
    let checks = password_checks(&other) - before;
    assert!(
        (21..=23).contains(&checks),
        "{checks} password checks for 200 parallel unknown names"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count() as u64,
        200 - checks,
        "{statuses:?}"
    );
    let peak = peak_rss_mib(&other);
    assert!(peak < 160, "peak RSS {peak} MiB");
}
