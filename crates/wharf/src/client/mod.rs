//! The client side of `wharf`: talking to a server over HTTPS and keeping credentials
//! where `docker` finds them.

pub mod access;
pub mod account;
pub mod anonymous_pull;
pub mod content_trust;
pub mod docker_config;
pub mod gc;
pub mod http;
pub mod login;
pub mod policy;
pub mod prompt;
pub mod quota;
pub mod report;
pub mod repository;
pub mod retention;
pub mod session;
pub mod trust;
