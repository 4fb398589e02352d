//! The process wiring of `run`: the start-up checks ([`preflight`]), leader election
//! ([`leader`]), the watches and controllers ([`operator`]), the health of the watches
//! ([`watches`]), the HTTP endpoints ([`http`]) with the object gauges counted at scrape time
//! ([`counts`]), and the logs ([`telemetry`]). Sits on top: may use every other module, and
//! nothing but `main` uses it.

pub(crate) mod counts;
pub(crate) mod http;
pub(crate) mod leader;
pub mod operator;
pub(crate) mod preflight;
pub mod telemetry;
pub(crate) mod watches;
