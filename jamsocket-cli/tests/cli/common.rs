//! Helpers: run the real binary, copy example crates, talk to the server it starts.

use futures_util::{SinkExt, StreamExt};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

/// Long enough for a cold release build of a guest on a 2-core machine.
pub const BUILD_TIMEOUT: Duration = Duration::from_secs(600);
pub const TIMEOUT: Duration = Duration::from_secs(10);

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

pub fn jamsocket() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_jamsocket"));
    // Guests built by these tests share compiled dependencies.
    command.env(
        "CARGO_TARGET_DIR",
        workspace_root().join("target/cli-tests"),
    );
    command.env("RUST_LOG", "info,wasmtime=warn,cranelift=warn");
    command
}

/// Runs the binary to completion.
pub fn run(args: &[&str]) -> Output {
    jamsocket().args(args).output().unwrap()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

/// Builds `examples/<name>` in place with `jamsocket build`; returns the `.wasm` path.
pub fn build_example(name: &str) -> String {
    let dir = workspace_root().join("examples").join(name);
    let output = run(&["build", dir.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

/// A temporary folder, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "jamsocket-cli-{name}-{}-{}",
            std::process::id(),
            Instant::now().elapsed().as_nanos() ^ rand_suffix()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Copies `examples/<name>` into a temporary standalone crate (its own workspace, with
/// absolute paths to the jamsocket crates).
pub fn copy_example(name: &str) -> (TempDir, PathBuf) {
    let temp = TempDir::new(name);
    let source = workspace_root().join("examples").join(name);
    let dest = temp.0.join(name);
    copy_dir(&source, &dest);
    let manifest = dest.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let root = workspace_root();
    let text = text.replace("\"../../", &format!("\"{}/", root.display())) + "\n[workspace]\n";
    std::fs::write(&manifest, text).unwrap();
    (temp, dest)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_name() == "target" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// A running `jamsocket dev` or `serve`, killed on drop. Its stdout lines are collected.
pub struct Running {
    pub child: Child,
    pub port: u16,
    lines: mpsc::Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    /// The room store of a `dev` run, unless the test named one.
    _store: Option<TempDir>,
}

impl Running {
    /// Starts the binary and waits (up to `BUILD_TIMEOUT`) until it prints its URLs.
    pub fn start(args: &[&str]) -> Running {
        Running::launch(args, None, None)
    }

    /// Like [`start`](Running::start), but `dev` keeps its default store (in the shared target
    /// folder) rather than one of its own for this run.
    pub fn start_with_default_store(args: &[&str]) -> Running {
        Running::launch_with(args, None, None, false)
    }

    /// Like [`start`](Running::start), in a process that may open at most `files` files (its
    /// soft and hard `RLIMIT_NOFILE`).
    pub fn start_with_file_limit(files: u64, args: &[&str]) -> Running {
        Running::launch(args, None, Some(files))
    }

    /// Like [`start`](Running::start), then closes the read end of its stdout after the URLs,
    /// as `jamsocket dev | head -3` would: everything it prints later goes to a closed pipe.
    pub fn start_then_close_stdout(args: &[&str]) -> Running {
        Running::launch(args, Some("websocket:"), None)
    }

    fn launch(args: &[&str], last_line: Option<&'static str>, files: Option<u64>) -> Running {
        Running::launch_with(args, last_line, files, true)
    }

    fn launch_with(
        args: &[&str],
        last_line: Option<&'static str>,
        files: Option<u64>,
        own_store: bool,
    ) -> Running {
        let mut command = jamsocket();
        command.args(args);
        // `dev` keeps rooms in the (shared) target folder by default: each run gets a store of
        // its own instead, so that runs do not find each other's rooms.
        let dev = args.first() == Some(&"dev");
        let store = (own_store && dev && !args.iter().any(|a| a.starts_with("--store")))
            .then(|| TempDir::new("dev-store"));
        if let Some(store) = &store {
            command.arg(format!(
                "--store=sqlite:{}",
                store.0.join("rooms.db").display()
            ));
        }
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        if let Some(files) = files {
            use std::os::unix::process::CommandExt;
            // SAFETY: only a system call runs between fork and exec.
            unsafe {
                command.pre_exec(move || rlimit::setrlimit(rlimit::Resource::NOFILE, files, files));
            }
        }
        let mut child = command.spawn().unwrap();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let last = last_line.is_some_and(|last| line.contains(last));
                if tx.send(line).is_err() || last {
                    break;
                }
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = stderr.clone();
        let mut err_pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let mut running = Running {
            child,
            port: 0,
            lines,
            stderr,
            _store: store,
        };
        let line = running.wait_for_line("status:", BUILD_TIMEOUT);
        running.port = port_in_url(&line);
        running
    }

    /// The admin listener's port, from the `admin:` line (`--admin-port`).
    pub fn admin_port(&mut self) -> u16 {
        port_in_url(&self.wait_for_line("admin:", TIMEOUT))
    }

    /// Waits for a stdout line containing `needle`.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => continue,
                Err(_) => panic!(
                    "no line with `{needle}` within {timeout:?}; stderr:\n{}",
                    self.stderr()
                ),
            }
        }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn http_get(&self, path: &str) -> (u16, String) {
        http_request(self.port, "GET", path, None, "")
    }

    /// Sends a WebSocket handshake for `/ws/<room>` from a page of `origin` (none: from no
    /// browser) and returns the status of the answer: 101 when the server accepted it.
    pub fn handshake(&self, room: &str, origin: Option<&str>) -> u16 {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
        write!(
            stream,
            "GET /ws/{room} HTTP/1.1\r\nHost: localhost:{}\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{origin}\r\n",
            self.port
        )
        .unwrap();
        // The status line is all we need; a 101 keeps the connection open, so read no further.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n") {
            let n = stream.read(&mut byte).expect("no answer to the handshake");
            assert_eq!(
                n,
                1,
                "connection closed after {:?}",
                String::from_utf8_lossy(&head)
            );
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        head.get(9..12)
            .and_then(|status| status.parse().ok())
            .unwrap_or_else(|| panic!("no status in `{head}`"))
    }

    pub async fn ws(&self, room: &str) -> Ws {
        let url = format!("ws://127.0.0.1:{}/ws/{room}", self.port);
        let (ws, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect timed out")
            .expect("connect failed");
        Ws(ws)
    }
}

/// A blocking HTTP/1.1 request to 127.0.0.1:`port`, with a bearer token if given: the status
/// and the body (de-chunked).
pub fn http_request(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\
         Connection: close\r\n{auth}\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let response = String::from_utf8_lossy(&response);
    let status = response
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in `{response}`"));
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

/// The body of a `Transfer-Encoding: chunked` response.
pub fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// The port of the first URL in a line the binary printed: `http://localhost:8080/status`,
/// `http://[::1]:8080/status`, ...
pub fn port_in_url(line: &str) -> u16 {
    line.split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|authority| authority.rsplit_once(':'))
        .and_then(|(_, port)| port.parse().ok())
        .unwrap_or_else(|| panic!("no port in `{line}`"))
}

/// An address of this machine that is not loopback (the one its default route leaves from),
/// if it has one.
pub fn non_loopback_ip() -> Option<std::net::IpAddr> {
    // Connecting a UDP socket sends nothing; it only picks the route and the source address.
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("203.0.113.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// Whether a TCP connection to `ip:port` is accepted (within [`TIMEOUT`]).
pub fn accepts_connections(ip: std::net::IpAddr, port: u16) -> bool {
    std::net::TcpStream::connect_timeout(&(ip, port).into(), TIMEOUT).is_ok()
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Ws(
    pub tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
);

impl Ws {
    pub async fn send(&mut self, text: &str) {
        tokio::time::timeout(TIMEOUT, self.0.send(Message::text(text)))
            .await
            .expect("send timed out")
            .expect("send failed");
    }

    /// The next text message, or the close code as `close <code>`.
    pub async fn recv(&mut self) -> String {
        self.recv_within(TIMEOUT).await
    }

    /// Like [`recv`](Ws::recv), waiting up to `timeout`.
    pub async fn recv_within(&mut self, timeout: Duration) -> String {
        loop {
            let message = tokio::time::timeout(timeout, self.0.next())
                .await
                .expect("receive timed out")
                .expect("connection ended")
                .expect("receive failed");
            match message {
                Message::Text(text) => return text.to_string(),
                Message::Close(frame) => {
                    return format!("close {}", frame.map(|f| u16::from(f.code)).unwrap_or(1005))
                }
                _ => continue,
            }
        }
    }
}
