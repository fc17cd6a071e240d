//! The web portal's pages, rendered on the server as plain HTML forms (no scripts, no
//! assets from the internet). Views only turn data into markup; routes/portal.rs decides
//! who sees what and calls the services.

pub mod access;
pub mod account;
pub mod audit;
pub mod html;
pub mod policies;
pub mod repositories;
pub mod sign_in;
pub mod storage;

/// The portal's one stylesheet, served at `/portal/static/wharf.css`.
pub const STYLESHEET: &str = include_str!("wharf.css");
