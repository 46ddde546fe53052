//! Handing back stack pages a connection thread no longer uses.
//!
//! Setting up a request goes deep (the upstream client's connect and TLS
//! frames are tens of KiB), but relaying a stream afterwards needs only a
//! little of the stack. Pages once touched stay resident for the thread's
//! life, so two hundred open streams would each keep the deepest point
//! their thread ever reached. Once a stream's head has gone out (and the
//! stream is not over already), the pages below the current frame (past a
//! margin for the relay loop's own calls) are returned to the kernel; a
//! later deep call simply faults fresh zeroed pages in again.

/// Kept below the current frame for what the relay loop itself calls
/// (socket writes, JSON, logging).
const MARGIN: usize = 8 * 1024;
const PAGE: usize = 4096;

thread_local! {
    /// This thread's stack, looked up once: a connection thread serves many
    /// streams.
    static STACK: Option<(usize, usize)> = current_stack();
}

/// Returns the pages of this thread's stack below the caller's frame and
/// the margin. Does nothing on the main thread, whose stack glibc does not
/// describe cheaply, or when anything about the stack looks unexpected.
#[inline(never)]
pub fn release_unused() {
    let marker = 0u8;
    let here = std::hint::black_box(&marker) as *const u8 as usize;
    let Some((low, high)) = STACK.with(|bounds| *bounds) else {
        return;
    };
    if here <= low || here > high {
        return;
    }
    // One page above the lowest address is skipped in case the range
    // reported includes a guard page.
    let start = (low + PAGE + PAGE - 1) & !(PAGE - 1);
    let end = here.saturating_sub(MARGIN) & !(PAGE - 1);
    if end <= start {
        return;
    }
    // SAFETY: [start, end) lies inside this thread's own stack mapping and
    // below every live frame (the current one starts above `here`), so no
    // data in it is in use; MADV_DONTNEED on private anonymous memory only
    // makes the next touch see a zeroed page.
    unsafe {
        libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn current_stack() -> Option<(usize, usize)> {
    // SAFETY: the attribute object is initialised by pthread_getattr_np
    // before it is read and destroyed on every path after.
    unsafe {
        let me = libc::pthread_self();
        if libc::getpid() == libc::gettid() {
            // The main thread: glibc would read /proc/self/maps for it.
            return None;
        }
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        if libc::pthread_getattr_np(me, &mut attr) != 0 {
            return None;
        }
        let mut addr: *mut libc::c_void = std::ptr::null_mut();
        let mut size: libc::size_t = 0;
        let rc = libc::pthread_attr_getstack(&attr, &mut addr, &mut size);
        libc::pthread_attr_destroy(&mut attr);
        if rc != 0 || addr.is_null() {
            return None;
        }
        let low = addr as usize;
        Some((low, low + size))
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn current_stack() -> Option<(usize, usize)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn deep(n: usize) -> u8 {
        let buf = std::hint::black_box([n as u8; 8192]);
        if n == 0 {
            buf[100]
        } else {
            deep(n - 1).wrapping_add(buf[7])
        }
    }

    /// Resident pages of this thread's stack (mincore).
    fn resident_stack_pages() -> usize {
        let (low, high) = current_stack().unwrap();
        let pages = (high - low) / PAGE;
        let mut map = vec![0u8; pages];
        // SAFETY: the range is this thread's mapped stack; `map` has one
        // byte per page of it.
        let rc = unsafe { libc::mincore(low as *mut libc::c_void, high - low, map.as_mut_ptr()) };
        assert_eq!(rc, 0);
        map.iter().filter(|b| **b & 1 == 1).count()
    }

    #[test]
    fn the_pages_of_a_deep_call_go_back_and_the_thread_still_works() {
        let (first, again, deep_pages, trimmed_pages) = std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(|| {
                let first = deep(16);
                let deep_pages = resident_stack_pages();
                release_unused();
                let trimmed_pages = resident_stack_pages();
                let again = deep(16);
                (first, again, deep_pages, trimmed_pages)
            })
            .unwrap()
            .join()
            .unwrap();
        // 17 frames of 8 KiB were touched; only the frames above this one
        // and the margin stay.
        assert!(deep_pages >= 34, "{deep_pages}");
        assert!(trimmed_pages <= 12, "{trimmed_pages}");
        assert_eq!(first, again);
    }
}
