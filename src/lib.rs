//! livy-gateway: an authenticating TLS reverse proxy in front of Apache Livy.
//!
//! The library holds everything; the binaries (`livy-gateway`, `livy-sim`) only parse
//! command lines. Request flow lives in [`gateway`]; connection handling in
//! [`server`]; everything a deployment configures in [`config`].

pub mod admin;
pub mod audit;
pub mod auth;
pub mod body;
pub mod certgen;
pub mod config;
pub mod connection;
pub mod demo;
pub mod error;
pub mod gateway;
pub mod livy;
pub mod logging;
pub mod metrics;
pub mod ownership;
pub mod proxy;
pub mod ratelimit;
pub mod route;
pub mod runtime;
pub mod server;
pub mod session;
pub mod sim;
pub mod tls;
