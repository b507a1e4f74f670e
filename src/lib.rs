//! livy-gateway: an authenticating TLS reverse proxy in front of Apache Livy.
//!
//! The library holds everything; the binaries (`livy-gateway`, `livy-sim`) only parse
//! command lines. The modules, by what they do:
//!
//! | concern | modules |
//! |---|---|
//! | configuration | [`config`] (the only reader of the file), [`logging`] |
//! | listening | [`server`] (accept loop, caps, reloads, shutdown), `connection` (TLS, HTTP/1.1 and HTTP/2, idle and slow clients), [`tls`], [`runtime`] (what a reload swaps) |
//! | one request | `gateway`: the phases limit → authenticate → route → authorize → rewrite → forward → respond → observe, each in its own file |
//! | who is asking | [`auth`] (the `Authorization` header, verifiers, cache, queue, roles; Kerberos tickets under `[auth.kerberos]`; JWTs under `[auth.jwt]` and the gateway's own tokens under `[tokens]`), [`session`] (the cookie) |
//! | Livy's rules | [`livy`] (operations, create bodies, query identity, listings), [`route`] (URL mapping) |
//! | reaching Livy | `upstream` (the `Livy` trait, several servers with health checks and failover, connection pools, Livy's own authentication: SPNEGO under `[livy.kerberos]`), `kerberos` (GSSAPI as initiator and acceptor, cargo feature `kerberos`) |
//! | YARN's web UIs | `yarn` (`[yarn]`: Spark UI and driver-log links through the gateway, owners of applications, page rewriting) |
//! | what outlives a request | `state` (sessions, ownership, rate limits, lockouts, personal access tokens; backends chosen by `[state]`: `local`, `redis`), [`transfer`] (`state export`/`import`), [`token_admin`] (`token create`/`list`/`revoke`) |
//! | what it tells operators | `access` (the access log), `audit`, `linewriter` (their writer thread), `metrics`, [`admin`] (`/metrics`, `/healthz`, `/readyz`) |
//! | errors | [`error`]: every status, JSON body, metric and audit reason in one place |
//! | trying it | [`sim`] (the Livy simulator), [`demo`], [`certgen`] |
//!
//! Everything only the gateway itself uses is `pub(crate)`.

pub(crate) mod access;
pub mod admin;
pub(crate) mod audit;
pub mod auth;
pub(crate) mod body;
pub mod certgen;
pub mod config;
pub(crate) mod connection;
pub mod demo;
pub mod error;
pub(crate) mod gateway;
#[cfg(feature = "kerberos")]
pub(crate) mod kerberos;
pub(crate) mod linewriter;
pub mod livy;
pub mod logging;
pub(crate) mod metrics;
pub mod route;
pub mod runtime;
pub mod server;
pub mod session;
pub mod sim;
pub(crate) mod state;
pub use state::transfer;
pub mod tls;
pub mod token_admin;
pub(crate) mod upstream;
pub(crate) mod yarn;
