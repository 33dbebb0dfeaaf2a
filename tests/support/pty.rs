//! Driving an interactive program through a pseudo-terminal (`script` from util-linux), the way
//! a person at a terminal would: type, then wait for what should appear.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Pty {
    child: Child,
    stdin: ChildStdin,
    output: Arc<Mutex<String>>,
    seen: usize,
}

impl Pty {
    /// Runs `command` (a shell command line) on a new pseudo-terminal.
    pub fn spawn(command: &str, env: &[(&str, &str)]) -> Self {
        // `script` runs the line with `$SHELL -c`; dash (`/bin/sh`, what CI gets with SHELL unset)
        // stays as the parent and dies of the SIGINT that Ctrl-C sends the foreground group, so
        // `script` would report 130 for a program that handled it. `exec` makes the program
        // itself the terminal's foreground process, as it is for a person.
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &format!("exec {command}"), "/dev/null"]).env("TERM", "xterm").env("COLUMNS", "120");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().expect("script");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stdout.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&strip_ansi(&String::from_utf8_lossy(&buf[..n])));
            }
        });
        Pty { child, stdin, output, seen: 0 }
    }

    /// Types `keys` (use "\r" for Enter, "\t" for Tab, "\x03" for Ctrl-C, "\x04" for Ctrl-D).
    pub fn send(&mut self, keys: &str) {
        self.stdin.write_all(keys.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
    }

    /// Waits until `text` appears after what earlier waits consumed; returns the output up to it.
    #[track_caller]
    pub fn expect(&mut self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            {
                let out = self.output.lock().unwrap();
                if let Some(i) = out[self.seen..].find(text) {
                    let got = out[self.seen..self.seen + i + text.len()].to_string();
                    self.seen += i + text.len();
                    return got;
                }
                assert!(Instant::now() < deadline, "waited for {text:?}; the terminal shows:\n{}", &out[self.seen..]);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the program to exit; returns its exit code.
    pub fn wait(mut self) -> Option<i32> {
        drop(self.stdin);
        self.child.wait().ok().and_then(|s| s.code())
    }
}

/// The text without terminal control sequences (colors, cursor moves), as a person reads it.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() || d == '~' {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if c != '\r' {
            out.push(c);
        }
    }
    out
}
