//! Throw-away servers for Wharf's tests: real binaries (PostgreSQL, Garage) started once
//! per test process on loopback and gone when it exits. Dev-only; nothing here is mocked.

pub mod garage;
pub mod postgres;
