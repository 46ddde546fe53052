//! Starting a CLI child with `posix_spawn`: its own process group, its
//! session's working directory, an explicit environment and three pipes.
//!
//! `std::process::Command` would do, but in a static binary std cannot find
//! `posix_spawn_file_actions_addchdir_np` at run time and falls back to
//! `fork`, which copies the page tables of the whole server for every
//! request (measured: most of the server's per-request cost in Claude mode).
//! glibc's `posix_spawn` uses `clone(CLONE_VFORK)` and does not copy them.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr;

/// A child started by [`spawn`], to be reaped with [`Process::wait`].
pub struct Process {
    pub pid: libc::pid_t,
}

/// The parent's ends of the child's standard streams.
pub struct Pipes {
    pub stdin: Option<File>,
    pub stdout: File,
    pub stderr: File,
}

fn cstring(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in argument"))
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// File actions and attributes, destroyed on every path out of `spawn`.
struct SpawnSetup {
    actions: libc::posix_spawn_file_actions_t,
    attr: libc::posix_spawnattr_t,
}

impl Drop for SpawnSetup {
    fn drop(&mut self) {
        // SAFETY: both were initialised in `spawn` before this value existed.
        unsafe {
            libc::posix_spawn_file_actions_destroy(&mut self.actions);
            libc::posix_spawnattr_destroy(&mut self.attr);
        }
    }
}

/// Starts `program` (an absolute path) with `args` and exactly `env`, in
/// `cwd`, in a new process group whose id is its pid. Stdout and stderr are
/// pipes; stdin is a pipe when `with_stdin`, else `/dev/null`.
pub fn spawn(
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    cwd: &Path,
    with_stdin: bool,
) -> io::Result<(Process, Pipes)> {
    let program_c = cstring(program.as_os_str().as_bytes())?;
    let mut argv_c = vec![program_c.clone()];
    for arg in args {
        argv_c.push(cstring(arg.as_bytes())?);
    }
    let env_c = env
        .iter()
        .map(|(k, v)| cstring(format!("{k}={v}").as_bytes()))
        .collect::<io::Result<Vec<_>>>()?;
    let cwd_c = cstring(cwd.as_os_str().as_bytes())?;
    let devnull = cstring(OsStr::new("/dev/null").as_bytes())?;
    let mut argv: Vec<*mut libc::c_char> = argv_c.iter().map(|c| c.as_ptr() as *mut _).collect();
    argv.push(ptr::null_mut());
    let mut envp: Vec<*mut libc::c_char> = env_c.iter().map(|c| c.as_ptr() as *mut _).collect();
    envp.push(ptr::null_mut());

    let (out_read, out_write) = pipe()?;
    let (err_read, err_write) = pipe()?;
    let stdin_pipe = if with_stdin { Some(pipe()?) } else { None };

    // SAFETY: zeroed storage is only a placeholder until the init calls
    // below fill it in; nothing reads it before.
    let mut setup: SpawnSetup = unsafe { std::mem::zeroed() };
    // SAFETY: initialising the two structures owned by `setup`.
    unsafe {
        check(libc::posix_spawn_file_actions_init(&mut setup.actions))?;
        check(libc::posix_spawnattr_init(&mut setup.attr))?;
    }
    use std::os::fd::AsRawFd;
    // SAFETY: every pointer passed stays alive until posix_spawn returns;
    // the descriptors are open; the signal sets are initialised before use.
    unsafe {
        match &stdin_pipe {
            Some((read, _)) => check(libc::posix_spawn_file_actions_adddup2(
                &mut setup.actions,
                read.as_raw_fd(),
                0,
            ))?,
            None => check(libc::posix_spawn_file_actions_addopen(
                &mut setup.actions,
                0,
                devnull.as_ptr(),
                libc::O_RDONLY,
                0,
            ))?,
        }
        check(libc::posix_spawn_file_actions_adddup2(
            &mut setup.actions,
            out_write.as_raw_fd(),
            1,
        ))?;
        check(libc::posix_spawn_file_actions_adddup2(
            &mut setup.actions,
            err_write.as_raw_fd(),
            2,
        ))?;
        check(libc::posix_spawn_file_actions_addchdir_np(
            &mut setup.actions,
            cwd_c.as_ptr(),
        ))?;

        // The server ignores SIGPIPE (Rust's runtime does) and has no
        // blocked signals to pass on; the child starts from the defaults.
        let mut defaults: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut defaults);
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        check(libc::posix_spawnattr_setsigdefault(
            &mut setup.attr,
            &defaults,
        ))?;
        check(libc::posix_spawnattr_setsigmask(&mut setup.attr, &empty))?;
        check(libc::posix_spawnattr_setpgroup(&mut setup.attr, 0))?;
        check(libc::posix_spawnattr_setflags(
            &mut setup.attr,
            (libc::POSIX_SPAWN_SETPGROUP
                | libc::POSIX_SPAWN_SETSIGDEF
                | libc::POSIX_SPAWN_SETSIGMASK) as libc::c_short,
        ))?;

        let mut pid: libc::pid_t = 0;
        check(libc::posix_spawn(
            &mut pid,
            program_c.as_ptr(),
            &setup.actions,
            &setup.attr,
            argv.as_ptr(),
            envp.as_ptr(),
        ))?;
        drop(setup);
        Ok((
            Process { pid },
            Pipes {
                stdin: stdin_pipe.map(|(_, write)| File::from(write)),
                stdout: File::from(out_read),
                stderr: File::from(err_read),
            },
        ))
    }
}

impl Process {
    /// Reaps the child; `None` when it was killed by a signal.
    pub fn wait(&self) -> io::Result<Option<i32>> {
        let mut status: libc::c_int = 0;
        loop {
            // SAFETY: waiting on a child this process spawned.
            let rc = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if rc == self.pid {
                break;
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
        if libc::WIFEXITED(status) {
            Ok(Some(libc::WEXITSTATUS(status)))
        } else {
            Ok(None)
        }
    }
}
