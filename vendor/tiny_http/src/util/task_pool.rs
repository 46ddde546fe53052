use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

/// Manages a collection of threads.
///
/// A new thread is created every time all the existing threads are full.
/// Any idle thread will automatically die after a few seconds.
pub struct TaskPool {
    sharing: Arc<Sharing>,
}

struct Sharing {
    // list of the tasks to be done by worker threads
    todo: Mutex<VecDeque<Box<dyn FnMut() + Send>>>,

    // condvar that will be notified whenever a task is added to `todo`
    condvar: Condvar,

    // number of total worker threads running (shared with the server, which
    // reports it)
    active_tasks: Arc<AtomicUsize>,

    // number of idle worker threads
    waiting_tasks: AtomicUsize,

    // claude-cli-api patch: stack size of new threads (None: std's default)
    stack_size: Option<usize>,

    // claude-cli-api patch: starts a thread in place of std's (None: std)
    spawner: Option<Spawner>,

    // claude-cli-api patch: run by a resting thread once the pool has been
    // back at its minimum for `SETTLE` (the threads that left have finished
    // exiting and freed what they held by then)
    on_shrunk: Option<Arc<dyn Fn() + Send + Sync>>,

    // claude-cli-api patch: the pool has shrunk and `on_shrunk` is due
    shrunk_pending: AtomicBool,
}

/// claude-cli-api patch: how long the pool rests at its minimum before
/// `on_shrunk` runs.
const SETTLE: Duration = Duration::from_secs(1);

/// claude-cli-api patch: starts a named thread running the task, with the
/// stack size given; an error when none could be started.
pub type Spawner =
    Arc<dyn Fn(&str, usize, Box<dyn FnOnce() + Send>) -> std::io::Result<()> + Send + Sync>;

/// Minimum number of active threads.
static MIN_THREADS: usize = 4;

struct Registration<'a> {
    nb: &'a AtomicUsize,
}

impl<'a> Registration<'a> {
    fn new(nb: &'a AtomicUsize) -> Registration<'a> {
        nb.fetch_add(1, Ordering::Release);
        Registration { nb }
    }
}

impl<'a> Drop for Registration<'a> {
    fn drop(&mut self) {
        self.nb.fetch_sub(1, Ordering::Release);
    }
}

impl TaskPool {
    pub fn new() -> TaskPool {
        TaskPool::with_options(None, None, None, Arc::new(AtomicUsize::new(0)))
    }

    /// claude-cli-api patch: threads with `stack_size`, started by
    /// `spawner` when given, `on_shrunk` run when the pool has shrunk back
    /// to its minimum, and the live thread count kept in `active`.
    pub fn with_options(
        stack_size: Option<usize>,
        spawner: Option<Spawner>,
        on_shrunk: Option<Arc<dyn Fn() + Send + Sync>>,
        active: Arc<AtomicUsize>,
    ) -> TaskPool {
        let pool = TaskPool {
            sharing: Arc::new(Sharing {
                todo: Mutex::new(VecDeque::new()),
                condvar: Condvar::new(),
                active_tasks: active,
                waiting_tasks: AtomicUsize::new(0),
                stack_size,
                spawner,
                on_shrunk,
                shrunk_pending: AtomicBool::new(false),
            }),
        };

        for _ in 0..MIN_THREADS {
            pool.add_thread(None)
        }

        pool
    }

    /// Executes a function in a thread.
    /// If no thread is available, spawns a new one.
    pub fn spawn(&self, code: Box<dyn FnMut() + Send>) {
        let mut queue = self.sharing.todo.lock().unwrap();

        // claude-cli-api patch: each waiting thread takes one queued task,
        // so with more queued tasks than waiting threads the surplus sat
        // until some other connection ended (a burst of streams stalled).
        if self.sharing.waiting_tasks.load(Ordering::Acquire) <= queue.len() {
            self.add_thread(Some(code));
        } else {
            queue.push_back(code);
            self.sharing.condvar.notify_one();
        }
    }

    fn add_thread(&self, initial_fn: Option<Box<dyn FnMut() + Send>>) {
        let sharing = self.sharing.clone();
        let spawner = sharing.spawner.clone();
        let stack_size = sharing.stack_size;

        let work = move || {
            let sharing = sharing;
            let active_guard = Registration::new(&sharing.active_tasks);

            if let Some(mut f) = initial_fn {
                f();
            }

            loop {
                let mut task: Box<dyn FnMut() + Send> = {
                    let mut todo = sharing.todo.lock().unwrap();

                    let task;
                    loop {
                        if let Some(poped_task) = todo.pop_front() {
                            task = poped_task;
                            break;
                        }
                        let _waiting_guard = Registration::new(&sharing.waiting_tasks);

                        let received =
                            if sharing.active_tasks.load(Ordering::Acquire) <= MIN_THREADS {
                                if sharing.shrunk_pending.load(Ordering::Acquire) {
                                    let (new_lock, waitres) =
                                        sharing.condvar.wait_timeout(todo, SETTLE).unwrap();
                                    todo = new_lock;
                                    if waitres.timed_out()
                                        && todo.is_empty()
                                        && sharing.shrunk_pending.swap(false, Ordering::AcqRel)
                                    {
                                        drop(todo);
                                        if let Some(hook) = &sharing.on_shrunk {
                                            hook();
                                        }
                                        todo = sharing.todo.lock().unwrap();
                                    }
                                } else {
                                    todo = sharing.condvar.wait(todo).unwrap();
                                }
                                true
                            } else {
                                let (new_lock, waitres) = sharing
                                    .condvar
                                    .wait_timeout(todo, Duration::from_millis(5000))
                                    .unwrap();
                                todo = new_lock;
                                !waitres.timed_out()
                            };

                        if !received && todo.is_empty() {
                            // claude-cli-api patch: leave only while above
                            // the minimum (threads timing out together all
                            // left before), and the one that brings the pool
                            // back to it has a resting thread run the hook
                            // once the others are gone.
                            let left = sharing.active_tasks.fetch_update(
                                Ordering::AcqRel,
                                Ordering::Acquire,
                                |n| (n > MIN_THREADS).then(|| n - 1),
                            );
                            if let Ok(before) = left {
                                if before - 1 == MIN_THREADS && sharing.on_shrunk.is_some() {
                                    sharing.shrunk_pending.store(true, Ordering::Release);
                                    // Resting threads wait without a timeout.
                                    sharing.condvar.notify_all();
                                }
                                drop(todo);
                                std::mem::forget(active_guard);
                                return;
                            }
                        }
                    }

                    task
                };

                task();
            }
        };
        // Named, or they would show up under the accept thread's name.
        let spawned = match (spawner, stack_size) {
            (Some(spawn), Some(size)) => spawn("http-conn", size, Box::new(work)),
            (_, size) => {
                let mut builder = thread::Builder::new().name("http-conn".into());
                if let Some(size) = size {
                    builder = builder.stack_size(size);
                }
                builder.spawn(work).map(|_| ())
            }
        };
        if let Err(e) = spawned {
            // claude-cli-api patch: out of threads the task is dropped (its
            // connection closes) instead of the accept thread panicking.
            log::error!("could not start a connection thread: {}", e);
        }
    }
}

impl Drop for TaskPool {
    fn drop(&mut self) {
        self.sharing
            .active_tasks
            .store(999_999_999, Ordering::Release);
        self.sharing.condvar.notify_all();
    }
}
