//! What the routes refuse on their own — the request's shape, not a service's rule —
//! typed here; `wire.rs` alone gives each its status, code and headers.

/// A refusal made by a route before (or instead of) a service.
#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("no such endpoint")]
    NoSuchEndpoint,
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    /// A body or query that is not what the endpoint takes; says what was expected.
    #[error("{0}")]
    BadRequest(String),
    /// A token request the token service does not serve (grant type, service, form).
    #[error("{0}")]
    TokenRequestInvalid(String),
    /// No credentials, or a token that does not carry what the request needs.
    /// `challenge` is the `WWW-Authenticate` value telling the client which token to get.
    #[error("{message}")]
    Unauthorized {
        challenge: Option<String>,
        message: String,
    },
    #[error("Content-Range must look like <start>-<end>")]
    ContentRangeInvalid,
    #[error("range {range:?} does not fit a {size}-byte blob")]
    RangeNotSatisfiable { range: String, size: u64 },
    /// The portal: the signed-in user may not do this.
    #[error("{0}")]
    Denied(String),
    /// The portal: a required form field was empty.
    #[error("{0} is required.")]
    FieldRequired(String),
    /// The portal: a repository that does not exist or that the user cannot read (the
    /// two look the same).
    #[error("There is no repository named {0:?} that you can read.")]
    RepositoryNotVisible(String),
    #[error("This form is too large.")]
    FormTooLarge,
}
