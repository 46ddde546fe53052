//! Waiting on a turn's CLI while keeping an eye on its client: a client
//! that has gone (a stop button, a closed laptop, a timeout) is noticed
//! within [`CLIENT_TICK`] even while the CLI is silent, not at the next
//! write, so its turn ends and the session is free for the turn that
//! client (or another) sends next. A stream also learns when a keep-alive
//! is due.

use std::time::{Duration, Instant};

use crate::claude::engine::run::Progress;
use crate::claude::engine::turn::Turn;

/// How often a turn looks at its client.
pub(in crate::claude) const CLIENT_TICK: Duration = Duration::from_millis(500);

/// What waiting for the CLI came to.
pub(in crate::claude) enum Waited {
    Progress(Progress),
    /// Nothing by the time a keep-alive was due.
    Quiet,
    /// The client has gone.
    Departed,
}

impl Turn {
    /// The run's next step, waiting at most until `quiet_until` (when a
    /// keep-alive is due), and looking at the client every tick meanwhile,
    /// whether the CLI is silent or writing.
    pub(in crate::claude) fn step_watching(&mut self, quiet_until: Option<Instant>) -> Waited {
        loop {
            if self.client_departed() {
                return Waited::Departed;
            }
            let now = Instant::now();
            if quiet_until.is_some_and(|at| now >= at) {
                return Waited::Quiet;
            }
            let next_look = self.client.as_ref().map(|_| self.client_seen + CLIENT_TICK);
            let until = match (next_look, quiet_until) {
                (Some(look), Some(quiet)) => Some(look.min(quiet)),
                (look, quiet) => look.or(quiet),
            };
            let Some(until) = until else {
                return Waited::Progress(self.run.step());
            };
            if let Some(progress) = self.run.step_within(until.saturating_duration_since(now)) {
                return Waited::Progress(progress);
            }
        }
    }

    /// True when the client has gone; asks at most once a tick.
    fn client_departed(&mut self) -> bool {
        let Some(client) = &self.client else {
            return false;
        };
        if self.client_seen.elapsed() < CLIENT_TICK {
            return false;
        }
        self.client_seen = Instant::now();
        client.departed()
    }

    /// The client has gone before the answer could start: the turn is
    /// interrupted and read to its end, and fails (for nobody) as any turn
    /// stopped for its client does.
    pub(in crate::claude) fn answer_nobody(&mut self) {
        log::info!(
            "{}",
            serde_json::json!({"event": "client_gone", "session_id": self.lease.id().as_str()})
        );
        self.run.client_gone();
        self.client = None;
    }
}
