//! `wharf serve` start-up: the data directory's layout (private keys apart from the
//! certificates clients are pointed at, also for directories an earlier version made).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::Server;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn a_data_directory_with_keys_beside_the_certificates_is_upgraded_on_start() {
    let mut server = Server::start();
    let (public, private) = (server.data.join("tls"), server.data.join("private/tls"));
    let files = ["ca.key", "server.key", "server.names"];
    let read = |p: &Path| std::fs::read(p).unwrap();
    let (ca, server_crt) = (read(&public.join("ca.crt")), read(&public.join("server.crt")));
    let keys: Vec<Vec<u8>> = files.iter().map(|f| read(&private.join(f))).collect();
    server.kill9();

    // The layout of earlier versions: everything in tls/, no private/.
    for f in files {
        std::fs::rename(private.join(f), public.join(f)).unwrap();
        std::fs::set_permissions(public.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    std::fs::remove_dir_all(server.data.join("private")).unwrap();
    server.restart();

    assert_eq!(names_in(&public), ["ca.crt", "server.crt"]);
    assert_eq!(names_in(&private), files);
    assert_eq!(
        (mode(&server.data.join("private")), mode(&private)),
        (0o700, 0o700)
    );
    for (f, key) in files.iter().zip(&keys) {
        assert_eq!(mode(&private.join(f)), 0o600, "{f}");
        assert_eq!(&read(&private.join(f)), key, "{f} changed");
    }
    // The same CA and certificate (not reissued), and clients that trust it connect.
    assert_eq!(read(&public.join("ca.crt")), ca);
    assert_eq!(read(&public.join("server.crt")), server_crt);
    let http = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    assert_eq!(http.get(server.url("/v2/")).send().unwrap().status(), 401);
    assert!(
        server.log().contains("moved a private TLS file"),
        "{}",
        server.log()
    );
}
