//! The `jamsocket` command: develop, build and serve Jamsocket services compiled to WebAssembly.

/// Prints a line to stdout, ignoring write errors: unlike `println!`, which panics on them, a
/// closed stdout (`jamsocket dev | head -3`) must not stop a running server.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

mod build;
mod cargo_build;
mod cluster;
mod config;
mod dev;
mod module_slot;
mod new;
mod serve;
mod server_args;
mod user_error;

use clap::{Parser, Subcommand};

use std::process::ExitCode;
use user_error::UserError;

/// Build, serve and develop Jamsocket services compiled to WebAssembly.
#[derive(Parser, Debug)]
#[command(name = "jamsocket", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// How log lines are written to stderr: `text` for people, `json` (one object per line,
    /// with fields such as room and client) for log collectors
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Build the service crate here (or at PATH) for wasm32-wasip1 and serve it, rebuilding on
    /// every change.
    Dev(dev::DevArgs),
    /// Serve a prebuilt WebAssembly module.
    Serve(serve::ServeArgs),
    /// Build the service crate for wasm32-wasip1 and print the path of the module.
    Build(build::BuildArgs),
    /// Create a new service crate that `jamsocket dev` can serve at once.
    New(new::NewArgs),
    /// List the nodes of a cluster (`serve --cluster`): addresses, rooms and leases.
    ClusterStatus(cluster::StatusArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Dev(args) => dev::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Build(args) => build::run(args),
        Command::New(args) => new::run(args),
        Command::ClusterStatus(args) => cluster::status(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            report(&err);
            ExitCode::FAILURE
        }
    }
}

/// Prints `error: ...`, its causes, and the next step when we know it.
fn report(err: &anyhow::Error) {
    if let Some(UserError::BuildFailed) = err.downcast_ref::<UserError>() {
        // Cargo already printed the diagnostics.
        eprintln!("error: the build failed (see cargo's messages above)");
        return;
    }
    eprintln!("error: {err}");
    for cause in err.chain().skip(1) {
        eprintln!("  caused by: {cause}");
    }
    if let Some(hint) = err
        .downcast_ref::<UserError>()
        .and_then(UserError::next_step)
    {
        eprintln!("  next step: {hint}");
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,wasmtime=warn,cranelift=warn"));
    use std::io::IsTerminal;
    // Colours only for people: a log file or collector gets no escape codes.
    let logger = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => logger.try_init(),
        // Fields at the top level of each object, next to `timestamp`, `level`, `target` and
        // `message`, where collectors look for them.
        LogFormat::Json => logger.json().flatten_event(true).try_init(),
    };
}
