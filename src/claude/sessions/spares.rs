//! Work directories for new sessions, made ahead of need by a background
//! thread. Creating a directory allocates an inode and writes the journal;
//! on ext4 after many sessions came and went that took longer than all the
//! rest of the server's work on a Claude request, so it happens while the
//! previous request's CLI runs instead of in front of the next one.
//!
//! A spare is a directory `<work_dir>/<id>` that no session owns yet. The
//! registry's sweeps and adoption skip the ids held here, and
//! [`Spares::close`] removes the unused ones at shutdown.

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// Enough for a burst of new sessions arriving together while the first
/// ones run; each costs one empty directory.
const KEEP_READY: usize = 4;

/// The maker is woken only once the spares fall to this many, and then
/// makes them up to `KEEP_READY` in one go: a wake-up is a futex call on
/// the request's path and a thread switch on the other core, so one every
/// few sessions instead of one each.
const REFILL_AT: usize = 1;

/// After a failure to create one, the thread waits this long before trying
/// again (the request path creates its own meanwhile, and reports why).
const RETRY_AFTER: Duration = Duration::from_secs(1);

pub(super) struct Spares {
    work_dir: PathBuf,
    state: Mutex<State>,
    /// Wakes the maker when one is taken, or when it must stop.
    wanted: Condvar,
}

struct State {
    ready: VecDeque<String>,
    maker: Option<JoinHandle<()>>,
    /// Set once starting the maker was tried, so a failure is not retried
    /// (and logged) on every new session.
    maker_tried: bool,
    closed: bool,
}

impl Spares {
    pub(super) fn new(work_dir: &Path) -> Arc<Spares> {
        Arc::new(Spares {
            work_dir: work_dir.to_path_buf(),
            state: Mutex::new(State {
                ready: VecDeque::new(),
                maker: None,
                maker_tried: false,
                closed: false,
            }),
            wanted: Condvar::new(),
        })
    }

    /// A directory made ahead, if one is ready and still there (a tmp
    /// cleaner may have removed it). `claim` runs before the lock that
    /// guards the spares is released, so the id is at every moment either a
    /// spare or whatever `claim` made it (a registry entry): the orphan
    /// sweep, which looks under the same lock, never sees it as neither.
    /// The first call starts the maker, so a server that never creates a
    /// session never runs it.
    pub(super) fn take(self: &Arc<Self>, claim: impl FnOnce(&str)) -> Option<(String, PathBuf)> {
        let mut state = self.state.lock();
        if state.closed {
            return None;
        }
        if !state.maker_tried {
            state.maker_tried = true;
            state.maker = self.start_maker();
        }
        let id = state.ready.pop_front();
        if state.ready.len() <= REFILL_AT {
            self.wanted.notify_one();
        }
        let id = id?;
        let dir = self.work_dir.join(&id);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {
                claim(&id);
                Some((id, dir))
            }
            _ => None,
        }
    }

    /// True while `id` is a spare no session owns yet.
    pub(super) fn holds(&self, id: &str) -> bool {
        self.unless_spare(id, || ()).is_none()
    }

    /// `None` while `id` is a spare; otherwise what `look` finds, looked up
    /// under the lock that [`Spares::take`] claims under.
    pub(super) fn unless_spare<T>(&self, id: &str, look: impl FnOnce() -> T) -> Option<T> {
        let state = self.state.lock();
        if state.ready.iter().any(|spare| spare == id) {
            return None;
        }
        Some(look())
    }

    /// Stops the maker and removes the spares nobody took. Idempotent.
    pub(super) fn close(&self) {
        let (maker, leftover) = {
            let mut state = self.state.lock();
            state.closed = true;
            self.wanted.notify_all();
            (state.maker.take(), std::mem::take(&mut state.ready))
        };
        if let Some(maker) = maker {
            let _ = maker.join();
        }
        // The maker may have finished one more before it saw `closed`.
        let late = std::mem::take(&mut self.state.lock().ready);
        for id in leftover.iter().chain(late.iter()) {
            let _ = fs::remove_dir(self.work_dir.join(id));
        }
    }

    fn start_maker(self: &Arc<Self>) -> Option<JoinHandle<()>> {
        let spares = Arc::clone(self);
        std::thread::Builder::new()
            .name("session-dirs".into())
            .stack_size(64 * 1024)
            .spawn(move || spares.make_until_closed())
            .map_err(|e| log::warn!("could not start the session directory maker: {e}"))
            .ok()
    }

    fn make_until_closed(&self) {
        loop {
            {
                let mut state = self.state.lock();
                if !state.closed && state.ready.len() >= KEEP_READY {
                    while !state.closed && state.ready.len() > REFILL_AT {
                        self.wanted.wait(&mut state);
                    }
                }
                if state.closed {
                    return;
                }
            }
            match self.make_one() {
                Ok(id) => self.state.lock().ready.push_back(id),
                Err(e) => {
                    log::debug!("making a spare session directory failed: {e}");
                    let mut state = self.state.lock();
                    if !state.closed {
                        self.wanted.wait_for(&mut state, RETRY_AFTER);
                    }
                }
            }
        }
    }

    fn make_one(&self) -> io::Result<String> {
        // The root may have been removed since startup.
        super::disk::create_private_dir(&self.work_dir)?;
        let id = uuid::Uuid::new_v4().hyphenated().to_string();
        fs::DirBuilder::new()
            .mode(0o700)
            .create(self.work_dir.join(&id))?;
        Ok(id)
    }
}
