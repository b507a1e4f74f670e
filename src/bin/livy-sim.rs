//! The `livy-sim` command: a Livy-compatible simulator on plain HTTP, or on https
//! with `--tls-cert` and `--tls-key`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use livy_gateway::config::LogConfig;
use livy_gateway::logging;
use livy_gateway::sim::model::LivyVersion;
use livy_gateway::sim::{self, SimConfig, Simulator};

/// A Livy REST API simulator for trying and testing livy-gateway without Spark.
#[derive(Parser)]
#[command(name = "livy-sim", version, about)]
struct Cli {
    /// Address to serve on (plain HTTP unless `--tls-cert` is given).
    #[arg(long, default_value = "127.0.0.1:8998")]
    listen: SocketAddr,
    /// Serve https with this certificate chain (PEM), as a Livy and YARN with TLS
    /// on; give the views' links https too (`--resourcemanager https://…`).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of `--tls-cert`.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Livy release whose views to imitate: 0.5, 0.7 or 0.8.
    #[arg(long, default_value = "0.8")]
    livy_version: String,
    /// Make jobs progress this many times faster (batch: 2 s starting, 6 s running at 1).
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Behave like livy.impersonation.enabled=false: ignore doAs.
    #[arg(long)]
    no_impersonation: bool,
    /// Behave like livy.server.csrf-protection.enabled=true.
    #[arg(long)]
    csrf: bool,
    /// Lines in each batch's log (try millions for streaming tests).
    #[arg(long, default_value_t = 32)]
    log_lines: usize,
    /// Act as a passive server of an HA pair: answer every request 307 to the same
    /// path on this base URL (the active server).
    #[arg(long, value_name = "URL")]
    redirect_to: Option<String>,
    /// Append a line per creation (`<kind> <name> <proxyUser>`) to this file.
    #[arg(long, value_name = "FILE")]
    journal: Option<std::path::PathBuf>,
    /// The YARN ResourceManager the views' Spark UI links point at.
    #[arg(long, value_name = "URL", default_value = "http://livy-sim-rm:8088")]
    resourcemanager: String,
    /// The NodeManager (`host:port`) the views' driver-log links point at, with
    /// the ResourceManager's scheme.
    #[arg(long, value_name = "HOST:PORT", default_value = "livy-sim-nm1:8042")]
    nodemanager: String,
    /// Also serve stand-in ResourceManager proxy and NodeManager log pages.
    #[arg(long)]
    serve_yarn: bool,
    /// With --serve-yarn: act as a secured cluster's ResourceManager proxy, which
    /// warns anyone but an application's owner (the `doAs` user) first.
    #[arg(long, requires = "serve_yarn")]
    secure_yarn: bool,
    /// Also serve a stand-in Spark History Server on this address (plain HTTP),
    /// holding every batch's and session's application; with --serve-yarn, the
    /// ResourceManager's proxy sends finished applications' pages there.
    #[arg(long, value_name = "ADDR")]
    history_listen: Option<SocketAddr>,
    /// An application the history server holds that Livy does not list
    /// (`<application id>:<user>`; repeatable).
    #[arg(long, value_name = "APP:USER", requires = "history_listen")]
    history_app: Vec<String>,
    /// Behave like livy.ui.basePath: the path Livy's UI pages start their links with.
    #[arg(long, value_name = "PATH", default_value = "")]
    ui_base_path: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(&LogConfig::default());
    let Some(version) = LivyVersion::parse(&cli.livy_version) else {
        eprintln!(
            "error: --livy-version {:?}: use 0.5, 0.7 or 0.8",
            cli.livy_version
        );
        return ExitCode::FAILURE;
    };
    if !(cli.speed.is_finite() && cli.speed > 0.0) {
        eprintln!("error: --speed must be a positive number");
        return ExitCode::FAILURE;
    }
    let mut history_apps = Vec::new();
    for app in &cli.history_app {
        match app.split_once(':') {
            Some((id, user)) if id.starts_with("application_") && !user.is_empty() => history_apps
                .push(sim::HistoryApp {
                    id: id.to_owned(),
                    name: format!("{id} (history only)"),
                    user: user.to_owned(),
                    completed: true,
                }),
            _ => {
                eprintln!("error: --history-app {app:?}: use <application id>:<user>");
                return ExitCode::FAILURE;
            }
        }
    }
    let config = SimConfig {
        version,
        speed: cli.speed,
        impersonation: !cli.no_impersonation,
        csrf: cli.csrf,
        log_lines: cli.log_lines,
        redirect_to: cli.redirect_to,
        journal: cli.journal,
        cluster: sim::Cluster {
            resourcemanager: cli.resourcemanager,
            nodemanager: cli.nodemanager,
            secure: cli.secure_yarn,
            historyserver: cli.history_listen.map(|addr| format!("http://{addr}")),
        },
        serve_yarn: cli.serve_yarn,
        ui_base_path: cli.ui_base_path,
        history_apps,
    };
    if let Some(path) = &config.journal {
        if let Err(e) = sim::journal::Journal::open(path) {
            eprintln!("error: --journal {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    let tls = match (&cli.tls_cert, &cli.tls_key) {
        (Some(cert), Some(key)) => match livy_gateway::tls::server_config(cert, key) {
            Ok(config) => Some(tokio_rustls::TlsAcceptor::from(config)),
            Err(e) => {
                eprintln!("error: --tls-cert/--tls-key: {e}");
                return ExitCode::FAILURE;
            }
        },
        _ => None,
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind(cli.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: cannot listen on {}: {e}", cli.listen);
                return ExitCode::FAILURE;
            }
        };
        tracing::info!(listen = %cli.listen, version = version.release(), "livy-sim listening");
        let sim = Arc::new(Simulator::new(config));
        if let Some(addr) = cli.history_listen {
            let listener = match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: cannot listen on {addr}: {e}");
                    return ExitCode::FAILURE;
                }
            };
            tracing::info!(listen = %addr, "livy-sim history server listening");
            tokio::spawn(sim::run_history(
                listener,
                sim.clone(),
                std::future::pending(),
            ));
        }
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        match tls {
            None => sim::run(listener, sim, stop).await,
            Some(tls) => sim::run_tls(listener, sim, tls, stop).await,
        }
        ExitCode::SUCCESS
    })
}
