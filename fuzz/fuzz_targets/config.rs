//! The config loader: `Config::load_text` with the input as the TOML file, and with the
//! input's lines `WHARF_<SECTION>_<KEY>=value` as the environment (file empty).
//! Properties: no panic; a configuration that loads also loads again from its own
//! defaults-merged TOML (what `--print-config` shows is a valid configuration); bounded
//! allocation.
#![no_main]

use std::collections::HashMap;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use wharf_fuzz::within_allocation_bound;
use wharf_server::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("fuzz.toml");
    within_allocation_bound("config", data.len(), || {
        if let Ok(config) = Config::load_text(Some((path, text)), |_| None) {
            let shown = toml::to_string(&config).expect("a loaded configuration serialises");
            if let Err(e) = Config::load_text(Some((path, &shown)), |_| None) {
                panic!("a loaded configuration does not load again: {e}\n{shown}");
            }
        }
        let env: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        let _ = Config::load_text(None, |var| env.get(var).map(|v| (*v).to_owned()));
    });
});
