//! The kill loop of the durability tests: a command SIGKILLed at random moments, most of them
//! while it writes its output, and after every kill the output is checked: absent (never
//! written yet), the old file, or a new one, whole. Never half of one.
//!
//! That a kill landed mid-write is seen, not assumed: the tool writes an output to a temporary
//! file beside it (`.NAME.PID.tmp`, PID the writer's) and renames it into place, so a
//! temporary file that outlives the process shows that it died between the two. The loop
//! goes on until it has seen [`MID_WRITE_KILLS`] of those (at most [`MAX_ATTEMPTS`] runs), then
//! runs the command once more to its end: the output is whole, and the write removed what the
//! killed ones left beside it (but not the temporary file of a process still running).
//! `KILL_TRACE=1` prints every run.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;

use super::*;

/// Kills that must land between the temporary file's creation and its rename.
pub const MID_WRITE_KILLS: usize = 3;
/// Runs killed before the loop gives up on seeing that many.
pub const MAX_ATTEMPTS: usize = 60;
/// Longest one run may take.
const RUN_LIMIT: Duration = Duration::from_secs(60);
/// How often the output's directory is looked at while a run goes on.
const POLL: Duration = Duration::from_micros(200);
/// The shortest write the kill delays assume (a small file: the fsync).
const SHORTEST_WRITE: Duration = Duration::from_millis(1);

/// When a run was killed.
#[derive(Debug, Clone, Copy)]
pub enum Moment {
    /// Once its first write of the output was seen to end (the first run: how long the
    /// command takes to get there, and how long a write lasts).
    AfterFirstWrite,
    /// This long after it started, whatever it was doing.
    Anytime(Duration),
    /// This long after its temporary file appeared.
    IntoAWrite(Duration),
}

/// What a killed run left at the output's path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Nothing: no run had written it yet.
    Absent,
    /// The file as it was before the run, byte for byte.
    Old,
    /// Another file, whole.
    New,
}

/// One run of the loop.
#[derive(Debug)]
pub struct Attempt {
    /// The run's process id (the PID in its temporary file's name).
    pub pid: u32,
    /// When the kill was sent.
    pub moment: Moment,
    /// Whether the SIGKILL ended it (not: it had ended by itself).
    pub killed: bool,
    /// Its temporary file outlived it: the kill landed between creation and rename.
    pub mid_write: bool,
    /// What was at the output's path afterwards.
    pub found: Found,
    /// What it wrote on stderr.
    pub stderr: String,
}

/// What [`kill_during_writes`] did.
pub struct Kills {
    /// Every killed run, in order.
    pub attempts: Vec<Attempt>,
    /// The run to the end after them.
    pub last: Run,
}

impl Kills {
    /// Runs whose kill landed mid-write.
    pub fn mid_write(&self) -> Vec<&Attempt> {
        self.attempts.iter().filter(|a| a.mid_write).collect()
    }
}

/// Kills runs of `command` (a new one for every run) at random moments until
/// [`MID_WRITE_KILLS`] kills have landed mid-write of `output`, checking after each that
/// `output` is absent (only while no run has written it), byte for byte what it was before
/// the run, or another file that `is_whole` accepts (it returns why not). Then runs the
/// command to its end: `output` is whole, and the only temporary file of it left is the one
/// planted for a process that still runs (this test). The seed of the random moments is
/// printed (`SURVIVAL_SEED` replays it).
///
/// Three runs in four are killed into a write: half of them as soon as their temporary file
/// is seen, the others a random time after it appeared, within the longest write seen (some
/// land after the rename); the fourth at a random moment from its start to a little after
/// the time its first write ends.
pub fn kill_during_writes(
    name: &str,
    command: impl Fn() -> Command,
    output: &Path,
    is_whole: impl Fn(&[u8]) -> Result<(), String>,
) -> Kills {
    let mut rng = rng(name);
    let logs = tempfile::tempdir().expect("temp dir for the runs' output");
    let spawn = |n: usize| {
        let out = logs.path().join(format!("{n}.out"));
        let err = logs.path().join(format!("{n}.err"));
        let child = command()
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).expect("stdout file"))
            .stderr(std::fs::File::create(&err).expect("stderr file"))
            .spawn()
            .expect("binary starts");
        Spawned { child, out, err }
    };
    // Until the first run shows them: when its first write ends, how long a write lasts.
    let mut first_write_end: Option<Duration> = None;
    let mut longest_write = SHORTEST_WRITE;
    let mut attempts: Vec<Attempt> = Vec::new();
    while attempts.iter().filter(|a| a.mid_write).count() < MID_WRITE_KILLS {
        let n = attempts.len();
        assert!(
            n < MAX_ATTEMPTS,
            "{name}: {} of {n} kills landed while {} was being written (no temporary file \
             .NAME.PID.tmp outlived the others); seed above",
            attempts.iter().filter(|a| a.mid_write).count(),
            output.display()
        );
        let old = read(output);
        let mut run = spawn(n);
        let pid = run.child.id();
        let tmp = temporary_of(output, pid);
        let started = Instant::now();
        let moment = match first_write_end {
            None => Moment::AfterFirstWrite,
            Some(end) if n.is_multiple_of(4) => {
                Moment::Anytime(random_up_to(&mut rng, end + end / 4))
            }
            // Half of them the moment the temporary file is seen: a small file's write is
            // over in a millisecond or two, and a loaded machine's poll may see it late.
            Some(_) if rng.random_bool(0.5) => Moment::IntoAWrite(Duration::ZERO),
            Some(_) => Moment::IntoAWrite(random_up_to(&mut rng, longest_write)),
        };
        match moment {
            Moment::AfterFirstWrite => {
                if let Some(appeared) = poll(&mut run, || tmp.exists()) {
                    if let Some(gone) = poll(&mut run, || !tmp.exists()) {
                        longest_write = longest_write.max(gone - appeared);
                    }
                }
                first_write_end = Some(started.elapsed());
            }
            Moment::Anytime(after) => wait_until_or_exit(&mut run, started + after),
            Moment::IntoAWrite(after) => {
                if let Some(appeared) = poll(&mut run, || tmp.exists()) {
                    wait_until_or_exit(&mut run, appeared + after);
                }
            }
        }
        let _ = run.child.kill();
        let status = run.wait(RUN_LIMIT);
        let killed = status.signal() == Some(9);
        let mid_write = tmp.exists();
        let stderr = run.stderr();
        assert!(
            killed || !mid_write,
            "{name}: run {n} ended by itself ({status}) and left {}:\n{stderr}",
            tmp.display()
        );
        let found = match (read(output), &old) {
            (None, None) => Found::Absent,
            (None, Some(_)) => panic!(
                "{name}: run {n}, killed {moment:?}, removed {} (seed above)",
                output.display()
            ),
            (Some(now), Some(old)) if now == *old => Found::Old,
            (Some(now), _) => {
                if let Err(why) = is_whole(&now) {
                    panic!(
                        "{name}: run {n}, killed {moment:?} (mid-write: {mid_write}), left {} \
                         neither as it was nor whole ({} bytes): {why} (seed above)",
                        output.display(),
                        now.len()
                    );
                }
                Found::New
            }
        };
        if std::env::var_os("KILL_TRACE").is_some() {
            eprintln!(
                "{name} run {n}: {moment:?}, killed {killed}, mid-write {mid_write}, {found:?} \
                 (longest write {longest_write:?})"
            );
        }
        attempts.push(Attempt {
            pid,
            moment,
            killed,
            mid_write,
            found,
            stderr,
        });
    }
    // A write of another process going on (this test's): not the last run's to remove.
    let alive = temporary_of(output, std::process::id());
    std::fs::write(&alive, "being written").expect("write a temporary file");
    let last = spawn(attempts.len()).finish(RUN_LIMIT);
    let text = read(output).unwrap_or_else(|| {
        panic!(
            "{name}: the last run wrote no {}:\n{}",
            output.display(),
            last.stderr
        )
    });
    if let Err(why) = is_whole(&text) {
        panic!("{name}: after the last run: {why}\n{}", last.stderr);
    }
    assert_eq!(
        temporaries_of(output),
        vec![alive.clone()],
        "{name}: the last write left the killed runs' temporary files, or removed a running \
         process's, beside {}",
        output.display()
    );
    std::fs::remove_file(&alive).expect("remove the temporary file");
    let count = |f: Found| attempts.iter().filter(|a| a.found == f).count();
    let anytime = attempts
        .iter()
        .filter(|a| matches!(a.moment, Moment::Anytime(_)))
        .count();
    eprintln!(
        "{name}: {} runs ({anytime} killed at any time, {} ended first), {} killed mid-write; \
         then absent {}, old {}, new {}",
        attempts.len(),
        attempts.iter().filter(|a| !a.killed).count(),
        attempts.iter().filter(|a| a.mid_write).count(),
        count(Found::Absent),
        count(Found::Old),
        count(Found::New)
    );
    Kills { attempts, last }
}

/// The temporary file process `pid` writes `output` to: `.NAME.PID.tmp` beside it.
pub fn temporary_of(output: &Path, pid: u32) -> PathBuf {
    let name = output.file_name().expect("a file name").to_string_lossy();
    output.with_file_name(format!(".{name}.{pid}.tmp"))
}

/// Every temporary file of `output` beside it, whoever wrote it.
pub fn temporaries_of(output: &Path) -> Vec<PathBuf> {
    let name = output.file_name().expect("a file name").to_string_lossy();
    let prefix = format!(".{name}.");
    let dir = output.parent().expect("a directory");
    std::fs::read_dir(dir)
        .expect("read the output's directory")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            let file = p.file_name().unwrap().to_string_lossy();
            file.strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(".tmp"))
                .is_some_and(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect()
}

/// The file's bytes; `None` when there is none.
fn read(path: &Path) -> Option<Vec<u8>> {
    match std::fs::read(path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

/// Polls `cond` while the run goes on: when it first held, or `None` if the run ended first.
fn poll(run: &mut Spawned, mut cond: impl FnMut() -> bool) -> Option<Instant> {
    let deadline = Instant::now() + RUN_LIMIT;
    loop {
        if cond() {
            return Some(Instant::now());
        }
        if run.exited() {
            return None;
        }
        assert!(
            Instant::now() < deadline,
            "the run went on for {RUN_LIMIT:?}"
        );
        std::thread::sleep(POLL);
    }
}

/// Lets the run go on until `at` (the random kill moment), or until it ends.
fn wait_until_or_exit(run: &mut Spawned, at: Instant) {
    while !run.exited() {
        let now = Instant::now();
        if now >= at {
            return;
        }
        std::thread::sleep(POLL.min(at - now));
    }
}

fn random_up_to(rng: &mut impl Rng, max: Duration) -> Duration {
    Duration::from_micros(rng.random_range(0..=max.as_micros() as u64))
}
