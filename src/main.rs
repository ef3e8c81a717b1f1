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
    /// The audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Writes an encrypted, consistent backup of the database and the object store to FILE.
    Backup {
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[command(flatten)]
        common: Common,
    },
    /// Key rotation while the server runs.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Restores a backup into the empty data dir or database the usual flags name, then verifies
    /// every audit chain of the result.
    Restore {
        #[arg(long, value_name = "FILE")]
        from: PathBuf,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Recompute an org's audit chain (or `--org platform` for account events) from the database,
    /// or from an export with --file. Exits 1 and names the first bad sequence number when the
    /// chain is broken.
    Verify {
        /// The org id whose chain to verify (with --file: optional, taken from the file).
        #[arg(long)]
        org: Option<String>,
        /// A JSON Lines export (GET /api/v1/orgs/{org_id}/audit-events/export without filters).
        #[arg(long)]
        file: Option<PathBuf>,
        /// With --file: the chain head as `SEQ:HASH` (`last_seq` and `last_hash` of
        /// GET …/audit-events/verify, taken before the export). The file must hold that event
        /// with that hash, so an export cut short at the end does not pass.
        #[arg(long, value_name = "SEQ:HASH", requires = "file")]
        head: Option<String>,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Without --org: re-wraps every data key under the master key (master_key_file names the new
    /// key, previous_master_key_file the old one; remove the old one when this reports success).
    /// With --org ID: rotates that org's data key, re-sealing its fields and re-wrapping its
    /// documents' keys under a new one; run it again to resume one that was cut short.
    Rotate {
        /// The org whose data key to rotate.
        #[arg(long, value_name = "ID")]
        org: Option<String>,
        /// With --org: rows re-sealed per transaction.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        batch_size: i64,
        /// With --org: stop after this many batches (the next run resumes).
        #[arg(long, value_name = "N")]
        max_batches: Option<u64>,
        #[command(flatten)]
        common: Common,
    },
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
    // Every file the server creates (database and its -wal/-shm, outbox mail, objects, keys) is
    // for this user only, whatever the umask of the shell or service manager that started it.
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
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
            let _log = strongroom::logging::init(&cfg.log_level);
            if let Err(e) = strongroom::private_dir::create(&cfg.data_dir) {
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
        Command::Audit(AuditCommand::Verify {
            org,
            file,
            head,
            common,
        }) => {
            let cfg = match common.load() {
                Ok(cfg) => cfg,
                Err(p) => return config_error(&p),
            };
            let result = match file {
                Some(path) => verify_file(&cfg, &path, org.as_deref(), head.as_deref()).await,
                None => match org {
                    Some(org) => verify_database(cfg, &org).await,
                    None => Err(anyhow::anyhow!(
                        "say which chain: --org ID (or --file EXPORT)"
                    )),
                },
            };
            match result {
                Ok((chain, report)) => {
                    println!("{}", serde_json::to_string(&report).unwrap_or_default());
                    match report.first_bad_seq {
                        None => {
                            println!(
                                "audit chain {chain}: intact, {} events{}",
                                report.events,
                                if report.checkpoint_signatures_checked {
                                    ""
                                } else {
                                    " (retention checkpoint signatures not checked: no master key or database)"
                                }
                            );
                            ExitCode::SUCCESS
                        }
                        Some(seq) => {
                            eprintln!("audit chain {chain}: BROKEN at seq {seq}");
                            ExitCode::from(1)
                        }
                    }
                }
                Err(e) => {
                    eprintln!("could not verify: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Backup { out, common } => {
            let cfg = match common.load() {
                Ok(cfg) => cfg,
                Err(p) => return config_error(&p),
            };
            let bar = progress_bar("backing up", false);
            let now = strongroom::clock::Clock::now_ms(&SystemClock);
            match strongroom::backup::backup_command(&cfg, &out, now, bar.clone()).await {
                Ok(s) => {
                    bar.finish_and_clear();
                    println!("{}", serde_json::to_string(&s).unwrap_or_default());
                    println!(
                        "backup {} written to {}: {} tables, {} rows, {} objects",
                        s.backup_id,
                        out.display(),
                        s.tables,
                        s.rows,
                        s.objects
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    bar.abandon();
                    eprintln!("backup failed: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Keys(KeysCommand::Rotate {
            org,
            batch_size,
            max_batches,
            common,
        }) => {
            let cfg = match common.load() {
                Ok(cfg) => cfg,
                Err(p) => return config_error(&p),
            };
            let _log = strongroom::logging::init(&cfg.log_level);
            let bar = progress_bar(
                if org.is_some() {
                    "re-sealing the org's fields"
                } else {
                    "re-wrapping data keys"
                },
                true,
            );
            let result = rotate_keys(&cfg, org.as_deref(), batch_size, max_batches, &bar).await;
            match result {
                Ok(report) => {
                    bar.finish_and_clear();
                    println!("{report}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    bar.abandon();
                    eprintln!("key rotation failed: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Restore { from, common } => {
            let cfg = match common.load() {
                Ok(cfg) => cfg,
                Err(p) => return config_error(&p),
            };
            let bar = progress_bar("checking, then restoring", true);
            match strongroom::backup::restore_command(&cfg, &from, bar.clone()).await {
                Ok((s, chains)) => {
                    bar.finish_and_clear();
                    println!("{}", serde_json::to_string(&s).unwrap_or_default());
                    let broken: Vec<_> = chains.iter().filter(|c| !c.valid).collect();
                    for c in &broken {
                        eprintln!(
                            "audit chain {}: BROKEN at seq {}",
                            c.chain,
                            c.first_bad_seq.unwrap_or(0)
                        );
                    }
                    println!(
                        "backup {} restored: {} tables, {} rows, {} objects; {} audit chains verified{}",
                        s.backup_id,
                        s.tables,
                        s.rows,
                        s.objects,
                        chains.len(),
                        if broken.is_empty() { ", all intact" } else { ", SOME BROKEN" }
                    );
                    if broken.is_empty() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    bar.abandon();
                    eprintln!("restore refused: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Serve(c) => {
            let cfg = match c.load() {
                Ok(cfg) => cfg,
                Err(p) => return config_error(&p),
            };
            let _log = strongroom::logging::init(&cfg.log_level);
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

/// A byte progress bar on standard error (drawn only on a terminal).
fn progress_bar(what: &'static str, sized: bool) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    let template = if sized {
        "{msg} {wide_bar} {percent}% ({bytes_per_sec}, {elapsed}, {eta} left)"
    } else {
        "{spinner} {msg}: {bytes} ({bytes_per_sec}, {elapsed})"
    };
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar.set_message(what);
    bar
}

fn config_error(p: &str) -> ExitCode {
    eprintln!("the configuration has problems:");
    for l in p.lines() {
        eprintln!("  - {l}");
    }
    ExitCode::from(2)
}

async fn serve(mut cfg: Config) -> anyhow::Result<()> {
    let admin = match &cfg.metrics_listen {
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await?),
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(&cfg.listen).await?;
    if cfg.public_url.is_none() {
        // With port 0 the real port is known only now.
        let scheme = if cfg.tls.is_some() { "https" } else { "http" };
        cfg.public_url = Some(format!("{scheme}://{}", listener.local_addr()?));
    }
    let app = App::build(cfg, Arc::new(SystemClock)).await?;
    if let Some(admin) = admin {
        // The admin listener: `/metrics` only, never on the public port. It lives as long as the
        // process.
        tracing::info!(metrics_addr = %admin.local_addr()?, "metrics listening");
        let router = strongroom::http::ops::admin_router(app.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(admin, router).await {
                tracing::error!(error = %e, "metrics listener failed");
            }
        });
    }
    strongroom::server::run(app, listener, strongroom::server::shutdown_signal()).await
}

/// `keys rotate`: the master key's (every data key re-wrapped) or one org's.
async fn rotate_keys(
    cfg: &Config,
    org: Option<&str>,
    batch: i64,
    max_batches: Option<u64>,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<String> {
    let db = Db::connect(&strongroom::backup::existing_database(cfg)?, 2).await?;
    let result = async {
        let keyring = strongroom::state::operator_keyring(cfg, &db)
            .await?
            .ok_or_else(|| anyhow::anyhow!("no master key configured, or no keys stored yet"))?;
        let now = strongroom::clock::Clock::now_ms(&SystemClock);
        Ok(match org {
            None => {
                let r = strongroom::keys::rotate_master(&db, &keyring, now, bar).await?;
                format!(
                    "{}\nevery data key ({}) is wrapped under the new master key ({} re-wrapped by this run): previous_master_key_file can be removed",
                    serde_json::to_string(&r).unwrap_or_default(),
                    r.keys,
                    r.rewrapped
                )
            }
            Some(org) => {
                let opts = strongroom::keys::OrgOptions {
                    batch,
                    max_batches,
                    grace: std::time::Duration::from_secs(cfg.key_rotation_grace_secs),
                };
                let r = strongroom::keys::rotate_org(&db, &keyring, &SystemClock, org, &opts, bar)
                    .await?;
                format!(
                    "{}\n{}",
                    serde_json::to_string(&r).unwrap_or_default(),
                    if r.finished {
                        format!("org {org} is under key version {} alone; the old key is gone", r.version)
                    } else {
                        format!("org {org}: rotation to key version {} under way; run this again to resume", r.version)
                    }
                )
            }
        })
    }
    .await;
    db.close().await;
    result
}

/// Verifies a chain in the database the configuration points at. The database is only read: it
/// is neither created nor migrated, and no key is generated for it.
async fn verify_database(
    cfg: Config,
    org: &str,
) -> anyhow::Result<(String, strongroom::audit::Report)> {
    let url = match &cfg.database_url {
        Some(url) => url.clone(),
        None => {
            let path = cfg.embedded_database();
            anyhow::ensure!(path.is_file(), "no database at {}", path.display());
            // Read and write (SQLite's WAL needs it), but never create.
            format!("sqlite://{}?mode=rw", path.display())
        }
    };
    let db = strongroom::store::Db::connect(&url, 2).await?;
    let keyring = strongroom::state::operator_keyring(&cfg, &db).await?;
    let scope = if org == strongroom::audit::PLATFORM_CHAIN {
        ""
    } else {
        org
    };
    let report = strongroom::audit::query::verify_chain(
        || strongroom::store::tenant::TenantTx::for_operator_read(&db, scope),
        keyring.as_ref(),
    )
    .await;
    db.close().await;
    Ok((org.to_string(), report?))
}

/// The keyring for checking retention checkpoints (signed under a key derived from the platform
/// data key): when the configuration has a master key and its database exists (neither is
/// created for a verification).
async fn offline_keyring(cfg: &Config) -> anyhow::Result<Option<strongroom::crypto::Keyring>> {
    let Ok(url) = strongroom::backup::existing_database(cfg) else {
        return Ok(None);
    };
    let db = strongroom::store::Db::connect(&url, 1).await?;
    let keyring = strongroom::state::operator_keyring(cfg, &db).await;
    db.close().await;
    keyring
}

/// Verifies a JSON Lines export, line by line. Retention checkpoints are checked when the
/// configuration names the installation's master key and database (neither is created for this). With `head`
/// (`SEQ:HASH`), the file must also reach that event and agree on its hash.
async fn verify_file(
    cfg: &Config,
    path: &std::path::Path,
    org: Option<&str>,
    head: Option<&str>,
) -> anyhow::Result<(String, strongroom::audit::Report)> {
    use std::io::BufRead;
    use strongroom::audit::query::EventView;
    let head = match head {
        None => None,
        Some(h) => {
            let parsed = h.split_once(':').and_then(|(seq, hash)| {
                let seq = seq.trim().parse::<i64>().ok().filter(|s| *s >= 1)?;
                let hash = hash.trim();
                (hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
                    .then(|| (seq, hash.to_ascii_lowercase()))
            });
            Some(parsed.ok_or_else(|| {
                anyhow::anyhow!(
                    "--head must be SEQ:HASH (last_seq and last_hash of the verify API)"
                )
            })?)
        }
    };
    let mut hash_at_head = None;
    let keyring = offline_keyring(cfg).await?;
    let reader = std::io::BufReader::new(
        std::fs::File::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
    );
    let mut chain = org.map(str::to_string);
    let mut verifier = None;
    for line in reader.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let event = serde_json::from_str::<EventView>(&line)
            .ok()
            .and_then(|v| v.to_stored());
        let chain = chain
            .get_or_insert_with(|| event.as_ref().map(|e| e.chain.clone()).unwrap_or_default());
        let v = verifier
            .get_or_insert_with(|| strongroom::audit::Verifier::new(chain, keyring.as_ref()));
        match &event {
            Some(e) => {
                if head.as_ref().is_some_and(|(seq, _)| *seq == e.seq) {
                    hash_at_head = Some(e.hash.clone());
                }
                v.feed(e)
            }
            None => v.unreadable(),
        }
    }
    let chain = chain.unwrap_or_default();
    let mut report = match verifier {
        Some(v) => v.finish(None),
        None => strongroom::audit::Verifier::new(&chain, keyring.as_ref()).finish(None),
    };
    if report.events == 0 {
        // An empty file proves nothing.
        report.valid = false;
        report.first_bad_seq = Some(1);
    }
    if let (true, Some((seq, hash))) = (report.valid, head) {
        // Events after the head are fine (appended since); missing or different ones are not.
        let last = report.last_seq.unwrap_or(0);
        let bad = if last < seq {
            Some(last + 1)
        } else {
            (hash_at_head.as_deref() != Some(hash.as_str())).then_some(seq)
        };
        if bad.is_some() {
            report.valid = false;
            report.first_bad_seq = bad;
        }
    }
    Ok((chain, report))
}
