//! Starting one CLI child: its argument vector, exactly the environment it
//! is given, its session's working directory, a process group of its own
//! (the supervisor signals the whole group) and pipes for its output.
//!
//! std's `Command` also gives the child a clean signal state: it empties the
//! signal mask and sets SIGPIPE back to the default, which the Rust runtime
//! ignores. The server installs handlers only (SIGTERM, SIGINT), and those
//! are reset by `exec`, so nothing else is left for the child to inherit.

use std::io;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, Stdio};

/// The parent's ends of the child's standard streams.
pub struct Pipes {
    pub stdin: Option<ChildStdin>,
    pub stdout: ChildStdout,
    pub stderr: ChildStderr,
}

/// Starts `program` (an absolute path) with `args` and exactly `env`, in
/// `cwd`, in a new process group whose id is its pid. Stdout and stderr are
/// pipes; stdin is a pipe when `with_stdin`, else `/dev/null`. The caller
/// must reap the child with [`Child::wait`].
pub fn spawn(
    program: &Path,
    args: &[String],
    env: &[(String, String)],
    cwd: &Path,
    with_stdin: bool,
) -> io::Result<(Child, Pipes)> {
    let mut child = Command::new(program)
        .args(args)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .process_group(0)
        .stdin(if with_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdin = child.stdin.take();
    match (child.stdout.take(), child.stderr.take()) {
        (Some(stdout), Some(stderr)) => Ok((
            child,
            Pipes {
                stdin,
                stdout,
                stderr,
            },
        )),
        _ => {
            // Not reached: both were asked for as pipes. A child we cannot
            // read is not kept.
            let _ = child.kill();
            let _ = child.wait();
            Err(io::Error::other("the child's output pipes are missing"))
        }
    }
}
