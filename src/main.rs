//! The `livy-gateway` command: parses the command line and calls the library.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use livy_gateway::config::{Config, LogConfig, StateBackend};
use livy_gateway::demo::{self, DemoOptions};
use livy_gateway::error::StartupError;
use livy_gateway::server;
use livy_gateway::sim::model::LivyVersion;
use livy_gateway::sim::SimConfig;
use livy_gateway::{certgen, logging};
use livy_gateway::{token_admin, transfer};

/// mimalloc: the gateway allocates many small, short-lived buffers per request, which
/// it handles better than the system allocator. Built without transparent huge pages
/// (`no_thp` in Cargo.toml): the gateway's heap is small, and a huge page per thread
/// costs more memory and start-up time than it saves (bench/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How the allocator gives freed memory back to the OS. mimalloc returns an empty
/// page after its purge delay (1 s), but only when some later allocation or free
/// looks: a gateway whose connections have gone idle makes none, so the buffers
/// those connections gave back would stay resident. Purging at once instead makes
/// every page that empties under load fault in again when next used (both measured
/// in bench/README.md). So: a short delay, which load rarely outlasts, and a thread
/// that looks every `PURGE_CHECK`, so pages are back with the OS well within a
/// second of going unused. An operator's `MIMALLOC_PURGE_DELAY` wins over the delay.
fn tune_allocator() {
    // `mi_option_purge_delay` in mimalloc v3's option enum, which libmimalloc-sys
    // does not name; its default there is 1000 (ms), so anything else means another
    // mimalloc, or an operator's setting: leave it alone.
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    const DELAY_MS: std::ffi::c_long = 100;
    const PURGE_CHECK: std::time::Duration = std::time::Duration::from_millis(250);
    // SAFETY: options are not thread-safe to set; this runs first in `main`, before
    // any other thread exists.
    unsafe {
        if libmimalloc_sys::mi_option_get(PURGE_DELAY) == 1000 {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, DELAY_MS);
        }
    }
    let purger = std::thread::Builder::new()
        .name("memory-purge".into())
        .spawn(|| loop {
            std::thread::sleep(PURGE_CHECK);
            // SAFETY: collects this thread's (empty) heap and purges whatever the
            // program's arenas have had unused past the delay; callable any time.
            unsafe { libmimalloc_sys::mi_collect(false) };
        });
    // Without the thread, empty pages go back only when a later allocation looks
    // (as with mimalloc's defaults): not worth refusing to start over.
    drop(purger);
}

/// An authenticating TLS gateway for Apache Livy.
///
/// Checks HTTP Basic credentials against an htpasswd file, issues a session cookie,
/// and forwards /gateway/<topology>/livy/v1/... to Livy.
#[derive(Parser)]
#[command(name = "livy-gateway", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Config file (TOML); see config/gateway.toml.
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate a config file and everything it names (certificate, key, htpasswd).
    CheckConfig {
        #[arg(long, short)]
        config: PathBuf,
        /// Also reach what the config names over the network (the directory's
        /// service account) and report what was found.
        #[arg(long)]
        probe: bool,
    },
    /// Read a password from standard input and print its bcrypt hash.
    HashPassword {
        /// Print an htpasswd line `NAME:HASH` instead of the bare hash.
        #[arg(long)]
        user: Option<String>,
        /// bcrypt cost (4-31).
        #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(4..=31))]
        cost: u32,
    },
    /// Write a development CA and a server certificate signed by it.
    GenCert {
        /// Output directory: ca.crt, ca.key, gateway.crt, gateway.key.
        #[arg(long)]
        dir: PathBuf,
        /// Subject alternative name (DNS name or IP); repeatable. Default: localhost, 127.0.0.1, ::1.
        #[arg(long = "san")]
        sans: Vec<String>,
    },
    /// Move ownership records between state backends (JSON lines).
    State {
        #[command(subcommand)]
        action: StateAction,
    },
    /// Issue, list and revoke personal access tokens on the configured state
    /// backend (local: stop the gateway first; its store is locked).
    Token {
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Run the gateway in front of a built-in Livy simulator, with a demo user.
    Demo {
        /// Address of the gateway's TLS listener.
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// Where the demo keeps its certificates, user and config.
        #[arg(long, default_value = ".livy-gateway-demo")]
        state_dir: PathBuf,
        /// Livy release whose views the simulator imitates: 0.5, 0.7 or 0.8.
        #[arg(long, default_value = "0.8")]
        livy_version: String,
        /// Make simulated jobs progress this many times faster.
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
    },
}

#[derive(Subcommand)]
enum StateAction {
    /// Write every ownership record to standard output (or --file), one JSON
    /// object per line. Stop a gateway on local state first: its store is locked.
    Export {
        #[arg(long, short)]
        config: PathBuf,
        /// Which backend to read: local or redis (default: the config's).
        #[arg(long)]
        backend: Option<String>,
        #[arg(long)]
        file: Option<PathBuf>,
    },
    /// Read ownership records (as `state export` writes them) from standard input
    /// (or --file) into a backend; a record for the same id is replaced.
    Import {
        #[arg(long, short)]
        config: PathBuf,
        /// Which backend to write: local or redis (default: the config's).
        #[arg(long)]
        backend: Option<String>,
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TokenAction {
    /// Issue a token to a user and print it (once: only its hash is kept).
    Create {
        #[arg(long, short)]
        config: PathBuf,
        #[arg(long)]
        user: String,
        /// What the token is for (shown in lists).
        #[arg(long)]
        name: String,
        /// Days it lives (default: tokens.default_ttl_days).
        #[arg(long)]
        ttl_days: Option<u64>,
    },
    /// List tokens (never their secrets), one JSON object per line.
    List {
        #[arg(long, short)]
        config: PathBuf,
        /// Only this user's (default: everyone's).
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token by its id.
    Revoke {
        #[arg(long, short)]
        config: PathBuf,
        /// Ids are URL-safe base64 and may start with `-`.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

/// The backend named on the command line, or the config's.
fn backend_of(config: &Config, backend: Option<&str>) -> Result<StateBackend, StartupError> {
    Ok(match backend {
        None => config.state.backend,
        Some("local") => StateBackend::Local,
        Some("redis") => StateBackend::Redis,
        Some(other) => {
            return Err(StartupError::Other(format!(
                "--backend {other:?}: use local or redis"
            )))
        }
    })
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, StartupError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| StartupError::Other(format!("cannot start the runtime: {e}")))
}

fn run(command: Command) -> Result<(), StartupError> {
    match command {
        Command::Serve { config: path } => {
            let config = Config::load(&path)?;
            logging::init(&config.log);
            runtime()?.block_on(server::serve(&config, &path, shutdown_signal()))
        }
        Command::CheckConfig {
            config: path,
            probe,
        } => {
            let config = Config::load(&path)?;
            let runtime = runtime()?;
            let _guard = runtime.enter();
            server::check(&config)?;
            println!("{}: OK", path.display());
            println!("{config}");
            if probe {
                for report in runtime.block_on(server::probe(&config))? {
                    println!("  probe:         {report}");
                }
            }
            Ok(())
        }
        Command::HashPassword { user, cost } => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| StartupError::Other(format!("cannot read the password: {e}")))?;
            let password = line.strip_suffix('\n').unwrap_or(&line);
            let password = password.strip_suffix('\r').unwrap_or(password);
            if password.is_empty() {
                return Err(StartupError::Other(
                    "empty password on standard input".into(),
                ));
            }
            let hash = bcrypt::hash_with_result(password, cost)
                .map_err(|e| StartupError::Other(format!("cannot hash: {e}")))?
                .format_for_version(bcrypt::Version::TwoY);
            match user {
                Some(user) if user.is_empty() || user.contains(':') => Err(StartupError::Other(
                    "--user must be non-empty and contain no ':'".into(),
                )),
                Some(user) => {
                    println!("{user}:{hash}");
                    Ok(())
                }
                None => {
                    println!("{hash}");
                    Ok(())
                }
            }
        }
        Command::GenCert { dir, sans } => {
            let sans = if sans.is_empty() {
                certgen::DEFAULT_SANS
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            } else {
                sans
            };
            let files = certgen::write_to_dir(&dir, &sans)?;
            println!("wrote {}", files.ca_cert.display());
            println!("wrote {}", files.ca_key.display());
            println!("wrote {} (SANs: {})", files.cert.display(), sans.join(", "));
            println!("wrote {}", files.key.display());
            Ok(())
        }
        Command::State { action } => {
            let runtime = runtime()?;
            let _guard = runtime.enter();
            match action {
                StateAction::Export {
                    config,
                    backend,
                    file,
                } => {
                    let config = Config::load(&config)?;
                    let backend = backend_of(&config, backend.as_deref())?;
                    let mut out: Box<dyn std::io::Write> = match file {
                        Some(path) => Box::new(std::fs::File::create(&path).map_err(|source| {
                            StartupError::Io {
                                what: "export file",
                                path,
                                source,
                            }
                        })?),
                        None => Box::new(std::io::stdout().lock()),
                    };
                    let count =
                        runtime.block_on(transfer::export_from(&config, backend, &mut *out))?;
                    eprintln!("exported {count} records");
                    Ok(())
                }
                StateAction::Import {
                    config,
                    backend,
                    file,
                } => {
                    let config = Config::load(&config)?;
                    let backend = backend_of(&config, backend.as_deref())?;
                    let mut input: Box<dyn BufRead> = match file {
                        Some(path) => Box::new(std::io::BufReader::new(
                            std::fs::File::open(&path).map_err(|source| StartupError::Io {
                                what: "import file",
                                path,
                                source,
                            })?,
                        )),
                        None => Box::new(std::io::stdin().lock()),
                    };
                    let count =
                        runtime.block_on(transfer::import_into(&config, backend, &mut *input))?;
                    println!("imported {count} records");
                    Ok(())
                }
            }
        }
        Command::Token { action } => {
            let runtime = runtime()?;
            let _guard = runtime.enter();
            let out = match action {
                TokenAction::Create {
                    config,
                    user,
                    name,
                    ttl_days,
                } => {
                    let config = Config::load(&config)?;
                    runtime.block_on(token_admin::create(&config, &user, &name, ttl_days))?
                }
                TokenAction::List { config, user } => {
                    let config = Config::load(&config)?;
                    runtime.block_on(token_admin::list(&config, user.as_deref()))?
                }
                TokenAction::Revoke { config, id } => {
                    let config = Config::load(&config)?;
                    runtime.block_on(token_admin::revoke(&config, &id))?
                }
            };
            print!("{}", out.trim_end_matches('\n'));
            println!();
            Ok(())
        }
        Command::Demo {
            listen,
            state_dir,
            livy_version,
            speed,
        } => {
            logging::init(&LogConfig::default());
            let version = LivyVersion::parse(&livy_version).ok_or_else(|| {
                StartupError::Other(format!(
                    "--livy-version {livy_version:?}: use 0.5, 0.7 or 0.8"
                ))
            })?;
            if !(speed.is_finite() && speed > 0.0) {
                return Err(StartupError::Other(
                    "--speed must be a positive number".into(),
                ));
            }
            let options = DemoOptions {
                listen,
                state_dir,
                sim: SimConfig {
                    version,
                    speed,
                    ..SimConfig::default()
                },
            };
            runtime()?.block_on(demo::run(options, shutdown_signal()))
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown signal received");
}
