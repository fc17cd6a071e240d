//! Dev-only test fixtures: real backing services started on loopback for Wharf's tests.

pub mod garage;
