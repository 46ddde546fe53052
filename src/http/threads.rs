//! Connection threads on stacks this server maps and unmaps itself.
//!
//! glibc keeps the stacks of exited threads in a cache of up to 40 MB, and
//! each cached stack keeps its top pages (thread descriptor, TLS and the
//! last frames, about 20 KiB) resident. After a burst of 64 connections the
//! server held 1.4 MB in stacks of threads that no longer existed. A thread
//! started by [`spawn`] runs on a stack from `mmap`, which glibc neither
//! caches nor reuses; once the thread has ended, [`reap`] joins it and
//! unmaps the whole stack, descriptor included.

use std::ffi::{c_void, CString};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use parking_lot::Mutex;

const PAGE: usize = 4096;

/// Threads that have returned from their work and wait to be joined.
static ENDED: Mutex<Vec<Ended>> = Mutex::new(Vec::new());

struct Ended {
    thread: libc::pthread_t,
    stack: Stack,
}

/// One mapping: a guard page, then the usable stack.
struct Stack {
    base: *mut c_void,
    len: usize,
}

// SAFETY: the mapping is owned by whoever holds the value; the pointer is
// only ever passed to munmap.
unsafe impl Send for Stack {}

impl Stack {
    fn map(usable: usize) -> io::Result<Stack> {
        let usable = usable.max(libc::PTHREAD_STACK_MIN).next_multiple_of(PAGE);
        let len = usable + PAGE;
        // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let stack = Stack { base, len };
        // SAFETY: the lowest page of the mapping just made; an overflow
        // then faults instead of writing into a neighbour.
        if unsafe { libc::mprotect(base, PAGE, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
    }

    fn usable(&self) -> (*mut c_void, usize) {
        // SAFETY: PAGE < len, inside the mapping.
        (unsafe { self.base.add(PAGE) }, self.len - PAGE)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`; dropped only when no thread
        // runs on it (never started, or joined).
        unsafe {
            libc::munmap(self.base, self.len);
        }
    }
}

struct Start {
    name: CString,
    work: Box<dyn FnOnce() + Send>,
    stack: Stack,
}

extern "C" fn run(arg: *mut c_void) -> *mut c_void {
    // SAFETY: `arg` is the Box leaked by `spawn` for this thread alone.
    let start = unsafe { Box::from_raw(arg.cast::<Start>()) };
    let Start { name, work, stack } = *start;
    // SAFETY: naming this thread; the name is at most 15 bytes plus NUL.
    unsafe {
        libc::pthread_setname_np(libc::pthread_self(), name.as_ptr());
    }
    // A panic must not unwind into C; the thread just ends, as a std
    // thread would.
    let _ = catch_unwind(AssertUnwindSafe(work));
    ENDED.lock().push(Ended {
        // SAFETY: always safe to call.
        thread: unsafe { libc::pthread_self() },
        stack,
    });
    ptr::null_mut()
}

/// Starts `work` on a new thread named `name` (cut to 15 bytes) with a
/// stack of `stack_size` bytes, after reaping the threads that have ended.
pub fn spawn(name: &str, stack_size: usize, work: Box<dyn FnOnce() + Send>) -> io::Result<()> {
    reap();
    let name: String = name.chars().filter(|c| *c != '\0').take(15).collect();
    let name = CString::new(name).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let stack = Stack::map(stack_size)?;
    let (addr, len) = stack.usable();
    let start = Box::into_raw(Box::new(Start { name, work, stack }));
    let mut thread: libc::pthread_t = 0;
    // SAFETY: the attribute object lives across pthread_create and is
    // destroyed after; the stack stays mapped until the thread is joined
    // (it travels inside `start`, which the thread owns from here on).
    let rc = unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        let mut rc = libc::pthread_attr_init(&mut attr);
        if rc == 0 {
            rc = libc::pthread_attr_setstack(&mut attr, addr, len);
            if rc == 0 {
                rc = libc::pthread_create(&mut thread, &attr, run, start.cast());
            }
            libc::pthread_attr_destroy(&mut attr);
        }
        rc
    };
    if rc != 0 {
        // SAFETY: no thread took `start`; reclaiming it unmaps the stack.
        drop(unsafe { Box::from_raw(start) });
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(())
}

/// Joins the threads that have ended and unmaps their stacks. Returns how
/// many.
pub fn reap() -> usize {
    let ended = std::mem::take(&mut *ENDED.lock());
    let count = ended.len();
    for Ended { thread, stack } in ended {
        // SAFETY: a joinable thread started by `spawn`, joined only here
        // (it was taken out of ENDED above); it has returned from `run`,
        // so joining waits at most for its last clean-up.
        unsafe {
            libc::pthread_join(thread, ptr::null_mut());
        }
        drop(stack);
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    /// The `start-end` line of /proc/self/maps that holds `addr`.
    fn mapping_of(addr: usize) -> Option<String> {
        let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
        maps.lines().find_map(|line| {
            let range = line.split_whitespace().next()?;
            let (start, end) = range.split_once('-')?;
            let start = usize::from_str_radix(start, 16).ok()?;
            let end = usize::from_str_radix(end, 16).ok()?;
            (start <= addr && addr < end).then(|| range.to_string())
        })
    }

    #[test]
    fn a_thread_runs_named_and_its_stack_is_gone_once_reaped() {
        let (tx, rx) = mpsc::channel();
        spawn(
            "test-own-stack",
            128 * 1024,
            Box::new(move || {
                let marker = 0u8;
                let here = std::hint::black_box(&marker) as *const u8 as usize;
                let name = std::fs::read_to_string("/proc/thread-self/comm").unwrap_or_default();
                let deep = std::hint::black_box([7u8; 32 * 1024]);
                let _ = tx.send((here, name.trim().to_string(), deep[100]));
            }),
        )
        .unwrap();
        let (here, name, value) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!((name.as_str(), value), ("test-own-stack", 7));
        let range = mapping_of(here).unwrap();
        // Other tests' threads may be reaped here too; ours must be among them.
        let deadline = Instant::now() + Duration::from_secs(5);
        while mapping_of(here).as_ref() == Some(&range) && Instant::now() < deadline {
            reap();
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_ne!(
            mapping_of(here).as_ref(),
            Some(&range),
            "the stack is still mapped after the thread ended"
        );
    }

    #[test]
    fn a_panic_ends_only_its_thread() {
        spawn("test-panics", 64 * 1024, Box::new(|| panic!("on purpose"))).unwrap();
        let (tx, rx) = mpsc::channel();
        spawn(
            "test-after",
            64 * 1024,
            Box::new(move || tx.send(1).unwrap()),
        )
        .unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 1);
    }
}
