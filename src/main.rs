//! The `strongroom` command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use strongroom::clock::SystemClock;
use strongroom::config::{Config, Overrides};
use strongroom::state::App;
use strongroom::store::Db;

#[derive(Parser)]
#[command(
    name = "strongroom",
    version,
    about = "Self-hosted collaboration server whose security is the product"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (zero configuration: SQLite, local object store and mail outbox in ./strongroom-data).
    Serve(Common),
    /// Apply database migrations and exit.
    Migrate(Common),
    /// Validate the configuration and say what is wrong, in plain words.
    CheckConfig(Common),
    /// Platform administration.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Make the verified account with this email a platform superadmin.
    CreateSuperadmin {
        #[arg(long)]
        email: String,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Args, Clone)]
struct Common {
    /// TOML configuration file.
    #[arg(long, env = "STRONGROOM_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080 (port 0 picks a free port).
    #[arg(long)]
    listen: Option<String>,
    /// Data directory (database, objects, outbox, generated master key).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The URL people use to reach this server.
    #[arg(long)]
    public_url: Option<String>,
    /// sqlite://… or postgres://…
    #[arg(long)]
    database_url: Option<String>,
}

impl Common {
    fn load(&self) -> Result<Config, String> {
        let o = Overrides {
            listen: self.listen.clone(),
            data_dir: self.data_dir.clone(),
            public_url: self.public_url.clone(),
            database_url: self.database_url.clone(),
        };
        Config::load(self.config.as_deref(), &o)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::CheckConfig(c) => match c.load() {
            Ok(cfg) => {
                for w in cfg.warnings() {
                    println!("warning: {w}");
                }
                println!(
                    "configuration OK (database: {})",
                    if cfg.database_url().starts_with("sqlite") {
                        "SQLite"
                    } else {
                        "PostgreSQL"
                    }
                );
                ExitCode::SUCCESS
            }
            Err(problems) => {
                eprintln!("the configuration has problems:");
                for p in problems.lines() {
                    eprintln!("  - {p}");
                }
                ExitCode::from(2)
            }
        },
        Command::Migrate(c) => {
            let cfg = match c.load() {
                Ok(cfg) => cfg,
                Err(p) => return config_error(&p),
            };
            strongroom::logging::init(&cfg.log_level);
            if let Err(e) = strongroom::state::create_private_dir(&cfg.data_dir) {
                eprintln!("cannot create the data dir: {e}");
                return ExitCode::FAILURE;
            }
            let result = async {
                let db = Db::connect(&cfg.database_url(), 2).await?;
                db.migrate().await?;
                anyhow::Ok(())
            }
            .await;
            match result {
                Ok(()) => {
                    println!("migrations applied");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("migration failed: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Admin(AdminCommand::CreateSuperadmin { email, common }) => {
            let cfg = match common.load() {
                Ok(cfg) => cfg,
                Err(p) => return config_error(&p),
            };
            let result = async {
                let app = App::build(cfg, Arc::new(SystemClock)).await?;
                strongroom::tenancy::admin::grant_superadmin(&app, &email)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))
            }
            .await;
            match result {
                Ok(id) => {
                    println!("{id} is now a superadmin");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("could not create the superadmin: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve(c) => {
            let cfg = match c.load() {
                Ok(cfg) => cfg,
                Err(p) => return config_error(&p),
            };
            strongroom::logging::init(&cfg.log_level);
            for w in cfg.warnings() {
                tracing::warn!("{w}");
            }
            match serve(cfg).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %format!("{e:#}"), "server failed");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn config_error(p: &str) -> ExitCode {
    eprintln!("the configuration has problems:");
    for l in p.lines() {
        eprintln!("  - {l}");
    }
    ExitCode::from(2)
}

async fn serve(mut cfg: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&cfg.listen).await?;
    if cfg.public_url.is_none() {
        // With port 0 the real port is known only now.
        cfg.public_url = Some(format!("http://{}", listener.local_addr()?));
    }
    let app = App::build(cfg, Arc::new(SystemClock)).await?;
    strongroom::server::run(app, listener, strongroom::server::shutdown_signal()).await
}
