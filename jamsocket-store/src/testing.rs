//! For tests only (feature `test-util`): a real `redis-server` on a free loopback port, in a
//! temporary folder, without persistence, killed when dropped.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long [`RedisServer::start`] waits for the server to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A `redis-server` process of a test.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    folder: tempfile::TempDir,
    process: Option<Child>,
}

impl RedisServer {
    /// Starts `redis-server` on a free port of 127.0.0.1 and waits (up to 10 s) until it answers
    /// PING. Fails with a message naming `apt-get install redis-server` if it is not installed.
    pub fn start() -> io::Result<RedisServer> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let mut server = RedisServer {
            port,
            folder: tempfile::tempdir()?,
            process: None,
        };
        server.restart()?;
        Ok(server)
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server (SIGKILL: no goodbye to clients) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// Starts the server again (empty: it keeps nothing on disk) on the same port, and waits
    /// until it answers.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        let log = self.folder.path().join("redis.log");
        let spawned = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.folder.path())
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let process = match spawned {
            Ok(process) => process,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "redis-server is not on PATH: install it with \
                     `apt-get install redis-server` (the tests start their own servers)",
                ));
            }
            Err(error) => return Err(error),
        };
        self.process = Some(process);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if ping(self.port).is_ok() {
                return Ok(());
            }
            let exited = match &mut self.process {
                Some(process) => process.try_wait()?,
                None => None,
            };
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(5).collect();
                let state = match exited {
                    Some(status) => format!("exited ({status})"),
                    None => format!("did not answer within {START_TIMEOUT:?}"),
                };
                self.stop();
                return Err(io::Error::other(format!(
                    "redis-server on port {} {state}; its log ends with: {}",
                    self.port,
                    tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends PING and expects `+PONG`.
fn ping(port: u16) -> io::Result<()> {
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port))?;
    stream.set_read_timeout(Some(Duration::from_secs(1)))?;
    stream.write_all(b"PING\r\n")?;
    let mut line = String::new();
    BufReader::new((&mut stream).take(64)).read_line(&mut line)?;
    match line.trim_end() {
        "+PONG" => Ok(()),
        // Loading, or another server on the port.
        other => Err(io::Error::other(format!("answered {other:?}"))),
    }
}
