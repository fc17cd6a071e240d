//! Throw-away servers for Wharf's tests: real binaries started once per test process and
//! gone when it exits. Dev-only; nothing here is mocked.

pub mod postgres;
