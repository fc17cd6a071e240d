//! `wharf trust`: Docker Content Trust on the client side, without a daemon. Keys live where
//! docker keeps them: `$DOCKER_CONFIG/trust/private/<key id>.key`.

pub mod backup;
