//! Authentication and authorisation: tokens, passwords, key sealing and the access policy.

pub mod access;
pub mod password;
pub mod revocations;
pub mod secrets;
pub mod throttle;
pub mod token;

pub use access::{AccessEntry, AccessPolicy, Action, Caller, Grants, Perms, Role, Scope};
