//! A restartable server's generations of processes, for tests: each new
//! process is started by the one before it, which then exits. This test
//! process becomes their reaper (Linux's child subreaper), so each
//! generation becomes its child once its parent is gone, is waited for
//! (bounded) and leaves no zombie; whatever is left when the test ends is
//! killed and reaped.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::thread;
use std::time::Instant;

use crossbeam_channel::{Receiver, bounded};

use super::{TIMEOUT, within};

/// The processes of one server, oldest first, and the lines of their
/// shared standard output and error (a new generation writes to its
/// parent's).
pub struct Generations {
    pids: Vec<u32>,
    reaped: Vec<u32>,
    lines: Receiver<String>,
}

impl Generations {
    /// Starts the first generation with its standard output and error
    /// piped to [`wait_for_line`](Self::wait_for_line).
    pub fn start(command: &mut Command) -> Generations {
        // SAFETY: prctl with PR_SET_CHILD_SUBREAPER only changes who
        // adopts this process's orphaned descendants.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(
            rc,
            0,
            "prctl(PR_SET_CHILD_SUBREAPER): {}",
            std::io::Error::last_os_error()
        );
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server");
        let (tx, lines) = bounded(4096);
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        forward_lines(stdout, tx.clone());
        forward_lines(stderr, tx);
        // Waited for with waitpid below, like the later generations.
        let pid = child.id();
        drop(child);
        Generations {
            pids: vec![pid],
            reaped: Vec::new(),
            lines,
        }
    }

    /// The newest generation.
    pub fn current(&self) -> u32 {
        *self.pids.last().unwrap()
    }

    /// Every generation seen, oldest first.
    pub fn pids(&self) -> &[u32] {
        &self.pids
    }

    /// Sends `signal` to the newest generation.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: signals a server process this test started; not reaped
        // yet, so its pid cannot have been reused.
        assert_eq!(unsafe { libc::kill(self.current() as libc::pid_t, signal) }, 0);
    }

    /// Waits for an output line starting with `prefix` (or, with a `*`
    /// first, containing the rest), skipping others, and returns it.
    pub fn wait_for_line(&self, prefix: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            match self.lines.recv_deadline(deadline) {
                Ok(line) if matches(&line, prefix) => return line,
                Ok(_) => {}
                Err(_) => panic!("no output line like {prefix:?} within {TIMEOUT:?}"),
            }
        }
    }

    /// Waits for "ready pid N" from a process; a pid not seen before is a
    /// new generation. Returns the pid.
    pub fn wait_ready(&mut self) -> u32 {
        let line = self.wait_for_line("ready pid ");
        let pid: u32 = line["ready pid ".len()..].parse().expect("a pid");
        if !self.pids.contains(&pid) {
            self.pids.push(pid);
        }
        pid
    }

    /// Waits, bounded, for generation `pid` to exit and reaps it; returns
    /// its exit code (`None`: killed by a signal). Its parent must have
    /// exited before (or be this process), which makes it our child.
    pub fn wait_exit(&mut self, pid: u32) -> Option<i32> {
        let status = within(TIMEOUT, "a server generation's exit", move || waitpid(pid));
        let status = status.unwrap_or_else(|e| panic!("waitpid({pid}): {e}"));
        self.reaped.push(pid);
        libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status))
    }
}

fn matches(line: &str, pattern: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(inner) => line.contains(inner),
        None => line.starts_with(pattern),
    }
}

/// Sends each line read from `reader` to `lines` (and to the test's
/// output); reading goes on if nobody listens any more, so a writer never
/// meets a closed pipe.
fn forward_lines(reader: impl std::io::Read + Send + 'static, lines: crossbeam_channel::Sender<String>) {
    thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            eprintln!("server: {line}");
            let _ = lines.try_send(line);
        }
    });
}

fn waitpid(pid: u32) -> std::io::Result<libc::c_int> {
    let mut status = 0;
    loop {
        // SAFETY: waits for a child process of ours; `status` is valid for
        // writes.
        let rc = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
        if rc >= 0 {
            return Ok(status);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

impl Drop for Generations {
    fn drop(&mut self) {
        // Oldest first: once a parent is reaped, its child is ours to reap.
        for &pid in &self.pids {
            if self.reaped.contains(&pid) {
                continue;
            }
            // SAFETY: kills a server process of this test that has not been
            // reaped, so its pid is not reused.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            let _ = waitpid(pid);
        }
    }
}
