use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
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

    // claude-cli-api patch: run by the last idle thread to leave above the
    // minimum, once the pool is back to its resting size
    on_shrunk: Option<Arc<dyn Fn() + Send + Sync>>,
}

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
        TaskPool::with_options(None, None, Arc::new(AtomicUsize::new(0)))
    }

    /// claude-cli-api patch: threads with `stack_size`, `on_shrunk` run when
    /// the pool has shrunk back to its minimum, and the live thread count
    /// kept in `active`.
    pub fn with_options(
        stack_size: Option<usize>,
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
                on_shrunk,
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
        // Named, or they would show up under the accept thread's name.
        let mut builder = thread::Builder::new().name("http-conn".into());
        if let Some(size) = sharing.stack_size {
            builder = builder.stack_size(size);
        }

        let spawned = builder.spawn(move || {
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
                                todo = sharing.condvar.wait(todo).unwrap();
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
                            // back to it runs the hook.
                            let left = sharing.active_tasks.fetch_update(
                                Ordering::AcqRel,
                                Ordering::Acquire,
                                |n| (n > MIN_THREADS).then(|| n - 1),
                            );
                            if let Ok(before) = left {
                                drop(todo);
                                std::mem::forget(active_guard);
                                if before - 1 == MIN_THREADS {
                                    if let Some(hook) = &sharing.on_shrunk {
                                        hook();
                                    }
                                }
                                return;
                            }
                        }
                    }

                    task
                };

                task();
            }
        });
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
