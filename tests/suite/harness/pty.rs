//! A pseudo-terminal for the tests of what the tool writes on a terminal: the binary runs
//! with stdout and stderr on the terminal's follower side (`isatty` is true there), and the
//! test reads every byte it wrote from the leader side.

use std::ffi::CStr;
use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a run on a terminal wrote, as the terminal received it.
pub struct TerminalRun {
    /// Exit code.
    pub code: i32,
    /// Every byte written on stdout and stderr, interleaved as on a screen (the terminal
    /// turns `\n` into `\r\n`).
    pub screen: String,
}

impl TerminalRun {
    /// Whether the run wrote any escape sequence (ESC, or the 8-bit CSI).
    pub fn has_escapes(&self) -> bool {
        self.screen.contains('\u{1b}') || self.screen.contains('\u{9b}')
    }
}

/// Opens a terminal of `columns` x `rows`: (leader, follower).
fn open_pty(columns: u16, rows: u16) -> (File, OwnedFd) {
    // SAFETY: plain libc calls on descriptors this function owns; every result is checked.
    unsafe {
        let leader = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
        assert!(
            leader >= 0,
            "posix_openpt: {}",
            std::io::Error::last_os_error()
        );
        let leader_file = File::from_raw_fd(leader);
        assert_eq!(libc::grantpt(leader), 0, "grantpt");
        assert_eq!(libc::unlockpt(leader), 0, "unlockpt");
        let mut name = [0 as libc::c_char; 128];
        assert_eq!(
            libc::ptsname_r(leader, name.as_mut_ptr(), name.len()),
            0,
            "ptsname_r"
        );
        let path = CStr::from_ptr(name.as_ptr());
        let follower = libc::open(
            path.as_ptr(),
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        );
        assert!(
            follower >= 0,
            "open {path:?}: {}",
            std::io::Error::last_os_error()
        );
        let size = libc::winsize {
            ws_row: rows,
            ws_col: columns,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        assert_eq!(
            libc::ioctl(follower, libc::TIOCSWINSZ, &size),
            0,
            "TIOCSWINSZ"
        );
        (leader_file, OwnedFd::from_raw_fd(follower))
    }
}

/// Runs `cmd` to the end with stdout and stderr on a 120 x 40 terminal (stdin empty).
/// Gives up after `limit`, killing it.
pub fn run_on_terminal(mut cmd: Command, limit: Duration) -> TerminalRun {
    let (mut leader, follower) = open_pty(120, 40);
    let out = follower.try_clone().expect("dup follower");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(follower));
    let mut child = cmd.spawn().expect("binary starts");
    // The command holds the follower's descriptors: without dropping it, reading the
    // leader would never end (the terminal closes when no one holds its follower).
    drop(cmd);
    let reader = std::thread::spawn(move || {
        let mut screen = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            match leader.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => screen.extend_from_slice(&chunk[..n]),
                // Linux answers EIO once every follower descriptor is closed.
                Err(e) if e.raw_os_error() == Some(libc::EIO) => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("reading the terminal: {e}"),
            }
        }
        screen
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the run on a terminal took longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let screen = reader.join().expect("terminal reader");
    TerminalRun {
        code: status.code().unwrap_or(-1),
        screen: String::from_utf8_lossy(&screen).into_owned(),
    }
}
