//! Errors of the server crate: configuration problems and startup failures.

/// Errors raised while configuring or starting the server.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum ConfigError {
    /// A value parsed but is not acceptable.
    #[error("invalid value for `{key}`: {reason}")]
    Invalid {
        /// Dotted key path, e.g. `scrape_configs[0].scrape_interval`.
        key: String,
        /// Why it was refused.
        reason: String,
    },
}

/// Errors that stop the server.
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum Error {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("HTTP server failed")]
    Serve(#[source] std::io::Error),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
