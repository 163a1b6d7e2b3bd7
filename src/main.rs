//! The `pupmatch` binary: `serve` (default), `worker`, `migrate`, `seed` and `admin`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use pupmatch::infra::{db::Db, telemetry};
use pupmatch::moderation::model::{Actor, Role};
use pupmatch::{Application, Config};

/// mimalloc instead of the system allocator: it gives freed memory back and packs the many
/// small per-socket allocations tighter (see docs/benchmarks.md, WebSocket).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "pupmatch",
    version,
    about = "PupMatch backend: dating for dogs and their people"
)]
struct Cli {
    /// Optional TOML configuration file (keys as the PUPMATCH_* variables, without the prefix).
    #[arg(long, env = "PUPMATCH_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default). In embedded mode it also runs the background jobs.
    Serve,
    /// Run the background jobs (scale-out mode; any number of workers may run).
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// Create demo data: complete profiles over six real cities, with photos, prompts,
    /// preferences, locations and likes (password of every demo account: `demo-password`).
    Seed {
        /// How many profiles to create.
        #[arg(long, default_value_t = 1000)]
        profiles: usize,
    },
    /// Manage who may moderate (the account signs in as usual, at /admin).
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Give the account with this email a role.
    Grant {
        email: String,
        /// `moderator` handles cases; `admin` also grants roles in the console.
        #[arg(long, value_parser = ["moderator", "admin"])]
        role: String,
        /// Why, for the audit log.
        #[arg(long, default_value = "granted from the command line")]
        reason: String,
    },
    /// Take the account's role away.
    Revoke {
        email: String,
        /// Why, for the audit log.
        #[arg(long, default_value = "revoked from the command line")]
        reason: String,
    },
    /// Lift the account's suspension, ban or hold (e.g. an admin locked out), audited.
    Lift {
        email: String,
        /// Why, for the audit log.
        #[arg(long)]
        reason: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{err}");
            std::process::exit(2);
        }
    };
    let _telemetry = telemetry::init(&config)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => Application::build(config).await?.run_until_stopped().await,
        Command::Worker => pupmatch::server::run_worker(config).await,
        Command::Seed { profiles } => {
            let made = pupmatch::seed::run(&config, profiles).await?;
            tracing::info!(profiles = made, "demo data created");
            Ok(())
        }
        Command::Admin {
            command: AdminCommand::Lift { email, reason },
        } => {
            let db =
                Db::connect(&config.database_url, 1, config.database_ca_file.as_deref()).await?;
            db.migrate().await.context("migration failed")?;
            let store = pupmatch::moderation::store::ModerationStore::new(&db);
            let user_id = pupmatch::moderation::lift_from_command_line(&store, &email, &reason)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            db.close().await;
            pupmatch::server::forget_cached_profile(&config, user_id).await?;
            println!("{email} may sign in again and is visible to others");
            Ok(())
        }
        Command::Admin { command } => {
            let (email, role, reason) = match command {
                AdminCommand::Grant {
                    email,
                    role,
                    reason,
                } => {
                    let role = Role::parse(&role).context("unknown role")?;
                    (email, role, reason)
                }
                AdminCommand::Revoke { email, reason } => (email, Role::Member, reason),
                AdminCommand::Lift { .. } => unreachable!("matched above"),
            };
            let db =
                Db::connect(&config.database_url, 1, config.database_ca_file.as_deref()).await?;
            db.migrate().await.context("migration failed")?;
            let store = pupmatch::moderation::store::ModerationStore::new(&db);
            pupmatch::moderation::set_role(&store, &Actor::command_line(), &email, role, &reason)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            db.close().await;
            println!("{email} is now {}", role.as_db().to_lowercase());
            Ok(())
        }
        Command::Migrate => {
            let db =
                Db::connect(&config.database_url, 1, config.database_ca_file.as_deref()).await?;
            db.migrate().await.context("migration failed")?;
            tracing::info!(database = db.backend_name(), "migrations applied");
            Ok(())
        }
    }
}
