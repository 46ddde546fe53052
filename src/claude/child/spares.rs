//! How a spare is made (see `warm`): a CLI started with a fresh session id
//! in that session's new directory, the default model (a turn for another
//! one changes it) and no system prompt, holding a process slot it takes only when one is free.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::claude::child::process::{CliProcess, Shape, StartSpec};
use crate::claude::child::settings::Settings;
use crate::claude::child::slots::ProcessSlots;
use crate::claude::child::warm::{Spare, SparePlan};
use crate::claude::request::models::resolve_model;
use crate::claude::request::prompt::spare_invocation;
use crate::claude::tools::ToolSpec;
use crate::config::Config;
use crate::session_id::SessionId;
use crate::supervisor::Supervisor;

/// Makes a new session's directory for a spare (the session store does).
pub(in crate::claude) type FreshDir = Box<dyn Fn() -> Option<(SessionId, PathBuf)> + Send + Sync>;

/// The spares `config` asks for, or `None` when it asks for none (or the
/// CLI is missing).
pub(in crate::claude) fn spare_plan(
    config: &Config,
    cli: Option<PathBuf>,
    pool: Arc<ProcessSlots>,
    supervisor: Arc<Supervisor>,
    fresh_dir: FreshDir,
) -> Option<SparePlan> {
    let cli = cli?;
    if config.warm_spares == 0 {
        return None;
    }
    let model = resolve_model(&config.default_model).unwrap_or("sonnet");
    let shape = Shape::new(None, &ToolSpec::default());
    let count = config.warm_spares;
    let config = config.clone();
    let make = move || -> Option<Spare> {
        let slot = pool.acquire(Duration::ZERO)?;
        let (id, dir) = fresh_dir()?;
        let invocation = spare_invocation(model, id.as_str(), config.claude_skip_permissions);
        let started = CliProcess::start(
            StartSpec {
                cli: &cli,
                config: &config,
                invocation,
                work_dir: &dir,
                session_id: &id,
                shape: Shape::new(None, &ToolSpec::default()),
                settings: Settings::started(model),
                // The spares run on the first account.
                config_dir: config.accounts.first().and_then(|a| a.config_dir.clone()),
                request_id: "spare",
                keep_open: true,
                tools: Arc::new(ToolSpec::default()),
                bridge: None,
            },
            &supervisor,
            slot,
        );
        match started {
            // It has no turn yet: no deadline until it gets one.
            Ok(process) if process.rest() => Some(Spare { process, id, dir }),
            Ok(process) => {
                Spare { process, id, dir }.discard();
                None
            }
            Err(_) => {
                let _ = std::fs::remove_dir_all(&dir);
                None
            }
        }
    };
    Some(SparePlan {
        count,
        shape,
        make: Box::new(make),
    })
}
