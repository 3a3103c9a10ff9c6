//! Measurement helpers of the benchmark: run a child process and get its own CPU time
//! (`wait4`) and peak RSS (its `VmHWM`, sampled while it runs), the CPU time of the bench process itself (`getrusage`), and a
//! description of the machine.
//!
//! Linux only: the rusage layout below is the 64-bit Linux one. On other systems the
//! figures are reported as missing.

use std::io;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// How a child process ended and what it cost.
#[derive(Debug, Clone)]
pub struct Exit {
    /// Exit code, if it exited normally.
    pub code: Option<i32>,
    /// Wall time from just before `spawn` to the moment the process was reaped.
    pub wall: Duration,
    /// User + system CPU seconds of the child (all its threads).
    pub cpu_s: Option<f64>,
    /// Of which system (kernel) CPU seconds.
    pub sys_s: Option<f64>,
    /// Peak resident set size of the child, bytes: the last `VmHWM` seen while it ran
    /// (see [`run_child_killing`]), else `wait4`'s figure.
    pub max_rss: Option<u64>,
}

/// Runs `cmd` to completion. `poll` is called about every `every` while the child runs,
/// with the time since spawn; it returns once the child is reaped.
pub fn run_child(
    cmd: Command,
    every: Duration,
    mut poll: impl FnMut(Duration),
) -> io::Result<Exit> {
    run_child_killing(cmd, every, |elapsed| {
        poll(elapsed);
        false
    })
    .map(|(exit, _)| exit)
}

/// [`run_child`], where `poll` may ask for the child to be killed (SIGKILL) by returning
/// true; returns whether it was.
pub fn run_child_killing(
    mut cmd: Command,
    every: Duration,
    mut poll: impl FnMut(Duration) -> bool,
) -> io::Result<(Exit, bool)> {
    let start = Instant::now();
    let child = cmd.spawn()?;
    let pid = child.id();
    // The child is reaped by wait4 below, never by std (dropping `Child` does not wait).
    drop(child);
    let waiter = std::thread::spawn(move || sys::wait(pid));
    let mut killed = false;
    let mut hwm: Option<u64> = None;
    while !waiter.is_finished() {
        hwm = high_water_mark(pid).or(hwm);
        if !killed && poll(start.elapsed()) {
            // SAFETY: `pid` is our own child, not reaped yet (the waiter reaps it after).
            killed = unsafe { libc::kill(pid as i32, libc::SIGKILL) } == 0;
        }
        std::thread::sleep(every);
    }
    let (code, usage) = waiter
        .join()
        .map_err(|_| io::Error::other("wait thread panicked"))??;
    let wall = start.elapsed();
    let exit = Exit {
        code,
        wall,
        cpu_s: usage.map(|u| u.cpu_s),
        sys_s: usage.map(|u| u.sys_s),
        // wait4's ru_maxrss is no good here: at exec Linux keeps the high-water mark of the
        // memory the child was forked with, i.e. this process's, and the bench holds the
        // simulator's whole fleet. The child's own high-water mark is never above it.
        max_rss: match (hwm, usage.map(|u| u.max_rss)) {
            (Some(h), Some(u)) => Some(h.min(u)),
            (h, u) => h.or(u),
        },
    };
    Ok((exit, killed && code.is_none()))
}

/// The peak RSS of the process `pid` so far (`VmHWM` of /proc/PID/status), once it has
/// exec'd: before that it is still this process (same name) and its figure is ours.
fn high_water_mark(pid: u32) -> Option<u64> {
    let comm = |p: &str| std::fs::read_to_string(format!("/proc/{p}/comm")).ok();
    if comm(&pid.to_string())? == comm("self")? {
        return None;
    }
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU seconds (user + system) the bench process has used so far, all threads.
pub fn self_cpu_s() -> Option<f64> {
    sys::self_usage().map(|u| u.cpu_s)
}

/// CPU seconds every process of the machine has used since boot, busy time only (from
/// the `cpu` line of /proc/stat; Linux counts it in 1/100 s). The difference over a run,
/// minus the tool's and the bench's own CPU, is what other processes took meanwhile.
pub fn machine_busy_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal ...
    let busy =
        v.first()? + v.get(1)? + v.get(2)? + v.get(5)? + v.get(6)? + v.get(7).copied().unwrap_or(0);
    Some(busy as f64 / 100.0)
}

/// What other processes did to the machine during a measurement.
#[derive(Debug, Clone, Copy)]
pub struct Contention {
    busy_before: Option<f64>,
    self_before: Option<f64>,
}

impl Contention {
    /// Starts watching.
    pub fn start() -> Contention {
        Contention {
            busy_before: machine_busy_s(),
            self_before: self_cpu_s(),
        }
    }

    /// CPU seconds other processes (not this one, not `child_cpu_s`) used since
    /// [`Contention::start`], and that as a fraction of the machine's capacity over `wall`.
    pub fn others(&self, child_cpu_s: Option<f64>, wall: Duration) -> Option<(f64, f64)> {
        let busy = machine_busy_s()? - self.busy_before?;
        let me = self_cpu_s()? - self.self_before?;
        let others = (busy - me - child_cpu_s?).max(0.0);
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as f64;
        Some((others, others / (cpus * wall.as_secs_f64()).max(1e-9)))
    }
}

/// Resource usage of a process.
#[derive(Debug, Clone, Copy)]
pub struct Usage {
    /// User + system CPU seconds.
    pub cpu_s: f64,
    /// System CPU seconds.
    pub sys_s: f64,
    /// Peak RSS, bytes.
    pub max_rss: u64,
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
mod sys {
    use super::Usage;
    use std::io;

    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct Timeval {
        tv_sec: i64,
        tv_usec: i64,
    }

    /// `struct rusage` of 64-bit Linux.
    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    struct Rusage {
        ru_utime: Timeval,
        ru_stime: Timeval,
        ru_maxrss: i64,
        rest: [i64; 13],
    }

    extern "C" {
        fn wait4(pid: i32, status: *mut i32, options: i32, rusage: *mut Rusage) -> i32;
        fn getrusage(who: i32, usage: *mut Rusage) -> i32;
    }

    const RUSAGE_SELF: i32 = 0;

    fn usage(r: &Rusage) -> Usage {
        let secs = |t: &Timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Usage {
            cpu_s: secs(&r.ru_utime) + secs(&r.ru_stime),
            sys_s: secs(&r.ru_stime),
            // Linux reports kilobytes.
            max_rss: r.ru_maxrss.max(0) as u64 * 1024,
        }
    }

    /// Waits for `pid` and returns its exit code and resource usage.
    pub fn wait(pid: u32) -> io::Result<(Option<i32>, Option<Usage>)> {
        let pid = i32::try_from(pid).map_err(|_| io::Error::other("pid out of range"))?;
        let mut status = 0i32;
        let mut r = Rusage::default();
        loop {
            // SAFETY: `status` and `r` are valid, writable and of the layout wait4 expects
            // on 64-bit Linux; the pid is our own child, which nothing else reaps.
            let rc = unsafe { wait4(pid, &mut status, 0, &mut r) };
            if rc == pid {
                break;
            }
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
        // WIFEXITED / WEXITSTATUS.
        let code = (status & 0x7f == 0).then_some((status >> 8) & 0xff);
        Ok((code, Some(usage(&r))))
    }

    /// Resource usage of the calling process.
    pub fn self_usage() -> Option<Usage> {
        let mut r = Rusage::default();
        // SAFETY: `r` is valid and writable with the layout getrusage expects.
        let rc = unsafe { getrusage(RUSAGE_SELF, &mut r) };
        (rc == 0).then(|| usage(&r))
    }
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
mod sys {
    use super::Usage;
    use std::io;

    /// Without wait4: the exit code only.
    pub fn wait(pid: u32) -> io::Result<(Option<i32>, Option<Usage>)> {
        let _ = pid;
        Err(io::Error::other("the benchmark needs 64-bit Linux (wait4)"))
    }

    pub fn self_usage() -> Option<Usage> {
        None
    }
}

/// One line per fact about the machine, for the report.
pub fn machine() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    out.push(("nproc".into(), cpus.to_string()));
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    out.push(("CPU model".into(), model));
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb = |key: &str| -> Option<u64> {
        meminfo
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    if let (Some(total), Some(avail)) = (mem_kb("MemTotal:"), mem_kb("MemAvailable:")) {
        out.push((
            "memory".into(),
            format!(
                "{:.1} GiB total, {:.1} GiB available",
                gib(total),
                gib(avail)
            ),
        ));
    }
    if let Ok(kernel) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
        out.push(("kernel".into(), kernel.trim().to_string()));
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    if let Ok(o) = Command::new(rustc).arg("--version").output() {
        out.push((
            "rustc".into(),
            String::from_utf8_lossy(&o.stdout).trim().to_string(),
        ));
    }
    out
}

fn gib(kb: u64) -> f64 {
    kb as f64 / (1024.0 * 1024.0)
}

/// The filesystem type holding `path` (from /proc/mounts), e.g. `ext4` or `tmpfs`: the
/// ledger's fsyncs cost very different amounts on each.
pub fn filesystem_of(path: &Path) -> String {
    let Ok(path) = path.canonicalize() else {
        return "unknown".into();
    };
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let mut best: Option<(usize, String)> = None;
    for line in mounts.lines() {
        let mut f = line.split_whitespace();
        let (Some(_dev), Some(mnt), Some(fs)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        if path.starts_with(mnt) && best.as_ref().is_none_or(|(len, _)| mnt.len() > *len) {
            best = Some((mnt.len(), fs.to_string()));
        }
    }
    best.map(|(_, fs)| fs).unwrap_or_else(|| "unknown".into())
}
